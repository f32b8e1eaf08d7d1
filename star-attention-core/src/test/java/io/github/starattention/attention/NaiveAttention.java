package io.github.starattention.attention;

/**
 * Test oracle: attention in fp64, straight from the definition, over keys kept in plain arrays (not in a store).
 *
 * <p>Layouts: {@code q [tokens][heads][d]}, {@code k} and {@code v [keys][kvHeads][d]}; {@code included[j]} selects
 * a subset of the keys (for partitions), {@code null} means all.
 */
final class NaiveAttention {

    final double[] output;
    final double[] lse;

    private NaiveAttention(double[] output, double[] lse) {
        this.output = output;
        this.lse = lse;
    }

    static NaiveAttention compute(float[] q, int[] qpos, int tokens, int heads, int d, double scale,
                                  float[] k, float[] v, int[] kpos, int keys, int kvHeads, boolean[] included) {
        int group = heads / kvHeads;
        double[] out = new double[tokens * heads * d];
        double[] lse = new double[tokens * heads];
        double[] s = new double[keys];
        for (int t = 0; t < tokens; t++) {
            for (int h = 0; h < heads; h++) {
                int kvh = h / group;
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < keys; j++) {
                    s[j] = Double.NEGATIVE_INFINITY;
                    if (kpos[j] > qpos[t] || (included != null && !included[j])) {
                        continue;
                    }
                    double dot = 0;
                    for (int i = 0; i < d; i++) {
                        dot += (double) q[(t * heads + h) * d + i] * k[(j * kvHeads + kvh) * d + i];
                    }
                    s[j] = dot * scale;
                    max = Math.max(max, s[j]);
                }
                int row = t * heads + h;
                if (max == Double.NEGATIVE_INFINITY) {
                    lse[row] = Double.NEGATIVE_INFINITY;
                    continue;
                }
                double sum = 0;
                for (int j = 0; j < keys; j++) {
                    if (s[j] == Double.NEGATIVE_INFINITY) {
                        continue;
                    }
                    double p = Math.exp(s[j] - max);
                    sum += p;
                    for (int i = 0; i < d; i++) {
                        out[row * d + i] += p * v[(j * kvHeads + kvh) * d + i];
                    }
                }
                for (int i = 0; i < d; i++) {
                    out[row * d + i] /= sum;
                }
                lse[row] = max + Math.log(sum);
            }
        }
        return new NaiveAttention(out, lse);
    }

    /** This result as a (rounded) fp32 partial. */
    PartialAttention toPartial(int tokens, int heads, int d) {
        float[] o = new float[output.length];
        float[] l = new float[lse.length];
        for (int i = 0; i < o.length; i++) {
            o[i] = (float) output[i];
        }
        for (int i = 0; i < l.length; i++) {
            l[i] = (float) lse[i];
        }
        return new PartialAttention(tokens, heads, d, o, l);
    }
}
