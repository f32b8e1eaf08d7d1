package io.github.starattention.attention;

import java.util.Arrays;

/**
 * Attention of some query tokens over one partition of the keys: the normalised output and its log-sum-exp.
 *
 * <p>Layout (row-major, fp32):
 * <ul>
 *   <li>{@code output}: {@code [tokens][heads][headDim]}, the softmax-weighted sum of values over this partition
 *       only (already divided by this partition's softmax denominator);</li>
 *   <li>{@code lse}: {@code [tokens][heads]}, {@code log(sum_j exp(s_j))} in natural log, where {@code s_j} are
 *       the <em>scaled</em> scores {@code q.k_j * scale} of the keys this token may see in the partition.</li>
 * </ul>
 * A token that sees no key in the partition has {@code lse = -Infinity} and a zero output; {@link LseMerge} gives
 * it weight 0. Instances are mutable so that merges can work in place; they are not thread-safe.
 */
public final class PartialAttention {

    private final int tokens;
    private final int heads;
    private final int headDim;
    private final float[] output;
    private final float[] lse;

    /** Wraps existing arrays (no copy). */
    public PartialAttention(int tokens, int heads, int headDim, float[] output, float[] lse) {
        if (tokens < 0 || heads <= 0 || headDim <= 0) {
            throw new IllegalArgumentException("bad shape tokens=" + tokens + " heads=" + heads + " headDim=" + headDim);
        }
        if (output.length != tokens * heads * headDim || lse.length != tokens * heads) {
            throw new IllegalArgumentException("arrays do not match [" + tokens + "][" + heads + "][" + headDim + "]: output "
                    + output.length + ", lse " + lse.length);
        }
        this.tokens = tokens;
        this.heads = heads;
        this.headDim = headDim;
        this.output = output;
        this.lse = lse;
    }

    /** The partial of an empty partition: zero output, {@code lse = -Infinity} everywhere. */
    public static PartialAttention empty(int tokens, int heads, int headDim) {
        float[] lse = new float[tokens * heads];
        Arrays.fill(lse, Float.NEGATIVE_INFINITY);
        return new PartialAttention(tokens, heads, headDim, new float[tokens * heads * headDim], lse);
    }

    public int tokens() {
        return tokens;
    }

    public int heads() {
        return heads;
    }

    public int headDim() {
        return headDim;
    }

    /** {@code [tokens][heads][headDim]}, see the class comment. */
    public float[] output() {
        return output;
    }

    /** {@code [tokens][heads]}, natural-log log-sum-exp of the scaled scores. */
    public float[] lse() {
        return lse;
    }

    /** Deep copy. */
    public PartialAttention copy() {
        return new PartialAttention(tokens, heads, headDim, output.clone(), lse.clone());
    }

    boolean sameShape(PartialAttention o) {
        return tokens == o.tokens && heads == o.heads && headDim == o.headDim;
    }

    @Override
    public String toString() {
        return "PartialAttention[tokens=" + tokens + ", heads=" + heads + ", headDim=" + headDim + "]";
    }
}
