package io.github.starattention.linear;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Sums of a vector's lanes in one fixed order: the upper half folded onto the lower half until one lane is left.
 *
 * <p>Not {@code reduceLanes(VectorOperators.ADD)}: the Vector API leaves the order of a float sum open, and the
 * interpreter's fallback code and C2's intrinsic do use different orders, so a kernel that reduced that way would give
 * results (ulps apart) that depend on whether its caller had been compiled yet. Every CPU kernel that must be
 * reproducible, bit for bit, sums its lanes here.
 */
public final class Lanes {

    private static final VectorShuffle<Float> F16_8 = fold(FloatVector.SPECIES_512, 8);
    private static final VectorShuffle<Float> F16_4 = fold(FloatVector.SPECIES_512, 4);
    private static final VectorShuffle<Float> F16_2 = fold(FloatVector.SPECIES_512, 2);
    private static final VectorShuffle<Float> F16_1 = fold(FloatVector.SPECIES_512, 1);
    private static final VectorShuffle<Float> F8_4 = fold(FloatVector.SPECIES_256, 4);
    private static final VectorShuffle<Float> F8_2 = fold(FloatVector.SPECIES_256, 2);
    private static final VectorShuffle<Float> F8_1 = fold(FloatVector.SPECIES_256, 1);
    private static final VectorShuffle<Float> F4_2 = fold(FloatVector.SPECIES_128, 2);
    private static final VectorShuffle<Float> F4_1 = fold(FloatVector.SPECIES_128, 1);
    private static final VectorShuffle<Float> F2_1 = fold(FloatVector.SPECIES_64, 1);

    private Lanes() {
    }

    /** The sum of {@code v}'s lanes, halves folded onto each other (the same order on every path). */
    public static float sum(FloatVector v) {
        return switch (v.length()) {
            case 16 -> add(add(add(add(v, F16_8), F16_4), F16_2), F16_1).lane(0);
            case 8 -> add(add(add(v, F8_4), F8_2), F8_1).lane(0);
            case 4 -> add(add(v, F4_2), F4_1).lane(0);
            case 2 -> add(v, F2_1).lane(0);
            default -> throw new IllegalArgumentException("no fixed-order sum for " + v.length() + " lanes");
        };
    }

    private static FloatVector add(FloatVector v, VectorShuffle<Float> fold) {
        return v.add(v.rearrange(fold));
    }

    private static VectorShuffle<Float> fold(VectorSpecies<Float> s, int by) {
        return VectorShuffle.fromOp(s, i -> (i + by) % s.length());
    }
}
