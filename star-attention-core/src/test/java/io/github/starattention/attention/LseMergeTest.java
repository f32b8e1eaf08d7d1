package io.github.starattention.attention;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class LseMergeTest {

    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV_HEADS = 2;

    /** Random keys and queries; query positions make some tokens see only part of the keys, one sees none. */
    private record Setup(float[] q, int[] qpos, float[] k, float[] v, int[] kpos) {

        static Setup random(Random rnd, int keys, int tokens) {
            int[] kpos = IntStream.range(0, keys).map(i -> 10 + 2 * i).toArray();
            int[] qpos = IntStream.range(0, tokens).map(i -> i == 0 ? 0 : rnd.nextInt(2 * keys + 20)).toArray();
            return new Setup(CpuAttentionKernelTest.gaussian(rnd, tokens * HEADS * D, 2),
                    qpos, CpuAttentionKernelTest.gaussian(rnd, keys * KV_HEADS * D, 1),
                    CpuAttentionKernelTest.gaussian(rnd, keys * KV_HEADS * D, 1), kpos);
        }

        NaiveAttention attention(boolean[] included) {
            return NaiveAttention.compute(q, qpos, qpos.length, HEADS, D, 1 / Math.sqrt(D), k, v, kpos, kpos.length,
                    KV_HEADS, included);
        }

        PartialAttention partial(boolean[] included) {
            return attention(included).toPartial(qpos.length, HEADS, D);
        }
    }

    @ParameterizedTest(name = "{0} partitions")
    @ValueSource(ints = {2, 3, 5})
    void mergingPartitionsEqualsAttentionOverTheirUnion(int partitions) {
        Random rnd = new Random(partitions);
        Setup s = Setup.random(rnd, 150, 12);
        List<boolean[]> masks = randomPartition(rnd, 150, partitions);
        List<PartialAttention> parts = masks.stream().map(s::partial).toList();
        NaiveAttention whole = s.attention(null);

        CpuAttentionKernelTest.assertClose(LseMerge.merge(parts), whole, "merge");
        PartialAttention acc = parts.getFirst().copy();
        for (PartialAttention p : parts.subList(1, parts.size())) {
            LseMerge.mergeInto(acc, p);
        }
        CpuAttentionKernelTest.assertClose(acc, whole, "mergeInto");
        assertThat(acc.lse()[0]).as("token at position 0 sees no key").isEqualTo(Float.NEGATIVE_INFINITY);
    }

    @Test
    void mergeIsAssociativeAndCommutative() {
        Random rnd = new Random(1);
        Setup s = Setup.random(rnd, 120, 10);
        List<PartialAttention> p = randomPartition(rnd, 120, 3).stream().map(s::partial).toList();
        PartialAttention left = LseMerge.mergeInto(LseMerge.mergeInto(p.get(0).copy(), p.get(1)), p.get(2));
        PartialAttention right = LseMerge.mergeInto(p.get(0).copy(), LseMerge.mergeInto(p.get(1).copy(), p.get(2)));
        PartialAttention swapped = LseMerge.merge(List.of(p.get(2), p.get(0), p.get(1)));
        assertSame(left, right, 1e-5f);
        assertSame(left, swapped, 1e-5f);
    }

    @Test
    void mergeLeavesItsInputsUntouched() {
        Random rnd = new Random(2);
        Setup s = Setup.random(rnd, 60, 4);
        List<PartialAttention> parts = randomPartition(rnd, 60, 2).stream().map(s::partial).toList();
        List<PartialAttention> copies = parts.stream().map(PartialAttention::copy).toList();
        LseMerge.merge(parts);
        for (int i = 0; i < parts.size(); i++) {
            assertThat(parts.get(i).output()).isEqualTo(copies.get(i).output());
            assertThat(parts.get(i).lse()).isEqualTo(copies.get(i).lse());
        }
    }

    @Test
    void partitionsWithMinusInfinityLseHaveNoWeight() {
        PartialAttention real = partial(new float[] {1, 2}, 0.5f);
        // an empty partition whose output is garbage must still be ignored
        PartialAttention empty = partial(new float[] {1e6f, Float.NaN}, Float.NEGATIVE_INFINITY);
        assertSame(LseMerge.merge(List.of(empty, real, empty)), real, 0);
        assertSame(LseMerge.mergeInto(empty.copy(), real), real, 0);
        assertSame(LseMerge.mergeInto(real.copy(), empty), real, 0);

        PartialAttention none = LseMerge.merge(List.of(PartialAttention.empty(1, 1, 2), PartialAttention.empty(1, 1, 2)));
        assertThat(none.lse()[0]).isEqualTo(Float.NEGATIVE_INFINITY);
        assertThat(none.output()).containsExactly(0f, 0f);
        PartialAttention noneInPlace = LseMerge.mergeInto(PartialAttention.empty(1, 1, 2), PartialAttention.empty(1, 1, 2));
        assertThat(noneInPlace.lse()[0]).isEqualTo(Float.NEGATIVE_INFINITY);
        assertThat(noneInPlace.output()).containsExactly(0f, 0f);
    }

    @ParameterizedTest(name = "lse {0}")
    @ValueSource(floats = {Float.NaN, Float.POSITIVE_INFINITY})
    void aBrokenPartialIsAnErrorNotAnEmptyPartition(float broken) {
        PartialAttention real = partial(new float[] {1, 2}, 0.5f);
        PartialAttention bad = partial(new float[] {3, 4}, broken);
        assertThatThrownBy(() -> LseMerge.merge(List.of(real, bad))).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("log-sum-exp " + broken);
        assertThatThrownBy(() -> LseMerge.mergeInto(real.copy(), bad)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> LseMerge.mergeInto(bad.copy(), real)).isInstanceOf(IllegalStateException.class);
    }

    @ParameterizedTest(name = "lse {0}")
    @ValueSource(floats = {1e30f, -1e30f, 3e38f, -3e38f})
    void extremeLseValuesGiveNoNaNOrInfinity(float big) {
        PartialAttention a = partial(new float[] {1, -1}, big);
        PartialAttention b = partial(new float[] {3, 5}, big);
        for (PartialAttention m : List.of(LseMerge.merge(List.of(a, b)), LseMerge.mergeInto(a.copy(), b))) {
            // equal LSEs: equal weights, and the LSE grows by log 2 (lost in fp32 at this magnitude)
            assertThat(m.output()).containsExactly(2f, 2f);
            assertThat(m.lse()[0]).isEqualTo((float) (big + Math.log(2)));
        }
        PartialAttention small = partial(new float[] {7, 7}, -Math.abs(big));
        PartialAttention large = partial(new float[] {-2, 4}, Math.abs(big));
        for (PartialAttention m : List.of(LseMerge.merge(List.of(small, large)), LseMerge.mergeInto(small.copy(), large))) {
            assertThat(m.output()).containsExactly(-2f, 4f);
            assertThat(m.lse()[0]).isEqualTo(Math.abs(big));
        }
    }

    @Test
    void weightsFollowTheLseDifference() {
        // exp(0) : exp(-log 3) = 3 : 1
        PartialAttention a = partial(new float[] {4, 0}, 0);
        PartialAttention b = partial(new float[] {0, 4}, (float) -Math.log(3));
        PartialAttention m = LseMerge.merge(List.of(a, b));
        assertThat(m.output()[0]).isCloseTo(3f, within(1e-6f));
        assertThat(m.output()[1]).isCloseTo(1f, within(1e-6f));
        assertThat(m.lse()[0]).isCloseTo((float) Math.log(4.0 / 3), within(1e-6f));
    }

    @Test
    void rejectsMismatchedShapesAndEmptyInput() {
        assertThatThrownBy(() -> LseMerge.merge(List.of())).isInstanceOf(IllegalArgumentException.class);
        PartialAttention a = PartialAttention.empty(2, 4, 32);
        PartialAttention b = PartialAttention.empty(2, 4, 64);
        assertThatThrownBy(() -> LseMerge.merge(List.of(a, b))).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> LseMerge.mergeInto(a, b)).isInstanceOf(IllegalArgumentException.class);
    }

    private static PartialAttention partial(float[] output, float lse) {
        return new PartialAttention(1, 1, output.length, output.clone(), new float[] {lse});
    }

    private static List<boolean[]> randomPartition(Random rnd, int keys, int parts) {
        List<boolean[]> masks = new ArrayList<>();
        for (int p = 0; p < parts; p++) {
            masks.add(new boolean[keys]);
        }
        for (int j = 0; j < keys; j++) {
            masks.get(rnd.nextInt(parts))[j] = true;
        }
        return masks;
    }

    private static void assertSame(PartialAttention actual, PartialAttention expected, float tolerance) {
        assertThat(actual.lse().length).isEqualTo(expected.lse().length);
        for (int i = 0; i < expected.lse().length; i++) {
            if (expected.lse()[i] == Float.NEGATIVE_INFINITY) {
                assertThat(actual.lse()[i]).isEqualTo(Float.NEGATIVE_INFINITY);
            } else {
                assertThat(actual.lse()[i]).isCloseTo(expected.lse()[i], within(tolerance));
            }
        }
        for (int i = 0; i < expected.output().length; i++) {
            assertThat(actual.output()[i]).as("output[%d]", i).isCloseTo(expected.output()[i], within(tolerance));
        }
    }
}
