package io.github.starattention.jlama.model;

import java.util.Objects;

/**
 * What a forward pass returns after its last token: the logits over the vocabulary ({@link Want#ALL}), or only the
 * index of their maximum ({@link Want#ARGMAX}, greedy decoding), which a GPU pass computes on the device so that one
 * token id, not the vocabulary's logits, comes back per step.
 */
public final class Logits {

    /** What a pass is asked to return. */
    public enum Want {
        /** Nothing: the pass only writes K/V (context encoding). */
        NONE,
        /** The index of the maximum logit. */
        ARGMAX,
        /** Every logit. */
        ALL
    }

    private final float[] values;
    private final int argmax;

    private Logits(float[] values, int argmax) {
        this.values = values;
        this.argmax = argmax;
    }

    /** All logits ({@code values} is kept, not copied). */
    public static Logits of(float[] values) {
        Objects.requireNonNull(values, "values");
        if (values.length == 0) {
            throw new IllegalArgumentException("no logits");
        }
        return new Logits(values, firstMax(values));
    }

    /** Only the index of the maximum, {@code token}. */
    public static Logits argmaxOnly(int token) {
        if (token < 0) {
            throw new IllegalArgumentException("token " + token);
        }
        return new Logits(null, token);
    }

    /** The index of the first maximum (as {@code torch.argmax}). */
    public int argmax() {
        return argmax;
    }

    /** Whether {@link #values()} is available. */
    public boolean hasValues() {
        return values != null;
    }

    /**
     * The logits.
     *
     * @throws IllegalStateException when the pass returned only the argmax
     */
    public float[] values() {
        if (values == null) {
            throw new IllegalStateException("only the argmax of these logits was computed (Logits.Want.ARGMAX)");
        }
        return values;
    }

    private static int firstMax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        return best;
    }
}
