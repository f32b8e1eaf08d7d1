package io.github.starattention.attention;

import java.util.List;

/**
 * Exact merge of {@link PartialAttention}s over disjoint key partitions into the attention over their union.
 *
 * <p>For each (token, head): {@code m = max_i L_i}, {@code w_i = exp(L_i - m)}, {@code L = m + log(sum w_i)},
 * {@code O = sum_i w_i O_i / sum_i w_i}. The max shift keeps every exponent {@code <= 0}, so extreme LSE values
 * cannot overflow; a partition with {@code L_i = -Infinity} (no visible key) gets weight 0, and a token that sees
 * no key anywhere keeps {@code L = -Infinity} and a zero output, never NaN. A NaN or {@code +Infinity} LSE is a
 * broken partial (a kernel or a host computed garbage): the merge throws {@link IllegalStateException} rather than
 * drop or spread it. All arithmetic is fp32 with the weights formed in double. The merge is associative and
 * commutative up to rounding.
 */
public final class LseMerge {

    private LseMerge() {
    }

    /** Merges {@code other} into {@code acc} in place and returns {@code acc}. */
    public static PartialAttention mergeInto(PartialAttention acc, PartialAttention other) {
        if (!acc.sameShape(other)) {
            throw new IllegalArgumentException("cannot merge " + acc + " with " + other);
        }
        int d = acc.headDim();
        float[] ao = acc.output();
        float[] al = acc.lse();
        float[] bo = other.output();
        float[] bl = other.lse();
        for (int r = 0; r < al.length; r++) {
            float la = checked(al[r], r);
            float lb = checked(bl[r], r);
            if (lb == Float.NEGATIVE_INFINITY) {
                continue;
            }
            if (la == Float.NEGATIVE_INFINITY) {
                System.arraycopy(bo, r * d, ao, r * d, d);
                al[r] = lb;
                continue;
            }
            float m = Math.max(la, lb);
            double wa = Math.exp((double) la - m);
            double wb = Math.exp((double) lb - m);
            double sum = wa + wb;
            float fa = (float) (wa / sum);
            float fb = (float) (wb / sum);
            int base = r * d;
            for (int i = 0; i < d; i++) {
                ao[base + i] = fa * ao[base + i] + fb * bo[base + i];
            }
            al[r] = (float) (m + Math.log(sum));
        }
        return acc;
    }

    /** {@code lse} if it is finite or {@code -Infinity} (no visible key); a NaN or {@code +Infinity} is an error. */
    private static float checked(float lse, int row) {
        if (Float.isNaN(lse) || lse == Float.POSITIVE_INFINITY) {
            throw new IllegalStateException("log-sum-exp " + lse + " in row " + row + " of a partial attention: a "
                    + "partition's attention is broken (NaN or infinite scores)");
        }
        return lse;
    }

    /** Merges all partials (none modified) into a new one. */
    public static PartialAttention merge(List<PartialAttention> parts) {
        if (parts.isEmpty()) {
            throw new IllegalArgumentException("nothing to merge");
        }
        PartialAttention first = parts.getFirst();
        int n = parts.size();
        int d = first.headDim();
        int rows = first.tokens() * first.heads();
        for (PartialAttention p : parts) {
            if (!first.sameShape(p)) {
                throw new IllegalArgumentException("cannot merge " + first + " with " + p);
            }
        }
        PartialAttention out = PartialAttention.empty(first.tokens(), first.heads(), d);
        float[] oo = out.output();
        float[] ol = out.lse();
        double[] w = new double[n];
        for (int r = 0; r < rows; r++) {
            float m = Float.NEGATIVE_INFINITY;
            for (PartialAttention p : parts) {
                float l = checked(p.lse()[r], r);
                if (l > m) {
                    m = l;
                }
            }
            if (m == Float.NEGATIVE_INFINITY) {
                continue;
            }
            double sum = 0;
            for (int i = 0; i < n; i++) {
                float l = parts.get(i).lse()[r];
                w[i] = l == Float.NEGATIVE_INFINITY ? 0 : Math.exp((double) l - m);
                sum += w[i];
            }
            int base = r * d;
            for (int i = 0; i < n; i++) {
                if (w[i] == 0) {
                    continue;
                }
                float f = (float) (w[i] / sum);
                float[] po = parts.get(i).output();
                for (int k = 0; k < d; k++) {
                    oo[base + k] += f * po[base + k];
                }
            }
            ol[r] = (float) (m + Math.log(sum));
        }
        return out;
    }
}
