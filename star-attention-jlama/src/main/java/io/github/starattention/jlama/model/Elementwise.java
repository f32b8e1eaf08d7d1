package io.github.starattention.jlama.model;

import io.github.starattention.linear.Lanes;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The decoder's element-wise steps on fp32 rows with the Vector API: RMSNorm, SwiGLU, residual add. Small next to the
 * matrix products, but at a few hundred thousand elements per layer and chunk a scalar {@code Math.exp} per MLP
 * element cost about 5% of a prefill.
 */
final class Elementwise {

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    // exp(x) = 2^n * e^f, n = round(x log2 e), |f| <= ln2/2, e^f by a degree-7 polynomial (relative error ~2e-7)
    // ln 2 in two parts (Cody-Waite): n * LN2_HI is exact for |n| < 2^15, so the reduction loses nothing
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float LOG2E = 1.4426950408889634f;
    private static final float EXP_MIN = -87.3f;
    private static final float EXP_MAX = 88.3f;
    private static final float[] EXP_POLY = {1f, 1f, 1 / 2f, 1 / 6f, 1 / 24f, 1 / 120f, 1 / 720f, 1 / 5040f};

    private Elementwise() {
    }

    /** {@code out[t][i] = weight[i] * (x[t][i] / sqrt(mean_i(x[t]^2) + eps))} for {@code x [tokens][dim]}. */
    static void rmsNorm(float[] x, float[] weight, float eps, int tokens, int dim, float[] out) {
        for (int t = 0; t < tokens; t++) {
            int off = t * dim;
            FloatVector acc = FloatVector.zero(S);
            int i = 0;
            for (; i <= dim - L; i += L) {
                FloatVector v = FloatVector.fromArray(S, x, off + i);
                acc = v.fma(v, acc);
            }
            float ss = Lanes.sum(acc);
            for (; i < dim; i++) {
                ss += x[off + i] * x[off + i];
            }
            float inv = (float) (1.0 / Math.sqrt(ss / dim + eps));
            i = 0;
            for (; i <= dim - L; i += L) {
                FloatVector.fromArray(S, x, off + i).mul(inv).mul(FloatVector.fromArray(S, weight, i))
                        .intoArray(out, off + i);
            }
            for (; i < dim; i++) {
                out[off + i] = weight[i] * (x[off + i] * inv);
            }
        }
    }

    /** {@code h[t][i] = silu(gate) * up} from {@code gateUp [tokens][gate(ffn) | up(ffn)]} into {@code h [tokens][ffn]}. */
    static void swiglu(float[] gateUp, int tokens, int ffn, float[] h) {
        for (int t = 0; t < tokens; t++) {
            int g = t * 2 * ffn;
            int u = g + ffn;
            int o = t * ffn;
            int i = 0;
            for (; i <= ffn - L; i += L) {
                FloatVector gate = FloatVector.fromArray(S, gateUp, g + i);
                FloatVector sig = exp(gate.neg()).add(1f);
                gate.div(sig).mul(FloatVector.fromArray(S, gateUp, u + i)).intoArray(h, o + i);
            }
            for (; i < ffn; i++) {
                float gate = gateUp[g + i];
                h[o + i] = gate / (1f + (float) Math.exp(-gate)) * gateUp[u + i];
            }
        }
    }

    /** {@code x += y}. */
    static void add(float[] x, float[] y, int n) {
        int i = 0;
        for (; i <= n - L; i += L) {
            FloatVector.fromArray(S, x, i).add(FloatVector.fromArray(S, y, i)).intoArray(x, i);
        }
        for (; i < n; i++) {
            x[i] += y[i];
        }
    }

    /** e^x per lane; 0 below {@value #EXP_MIN}, +Infinity above {@value #EXP_MAX}. */
    static FloatVector exp(FloatVector x) {
        FloatVector c = x.max(EXP_MIN).min(EXP_MAX);
        FloatVector n = roundHalfEven(c.mul(LOG2E));
        FloatVector f = n.mul(-LN2_HI).add(c).sub(n.mul(LN2_LO));
        FloatVector p = FloatVector.broadcast(S, EXP_POLY[7]);
        for (int k = 6; k >= 0; k--) {
            p = p.fma(f, FloatVector.broadcast(S, EXP_POLY[k]));
        }
        // 2^n through the exponent bits; n + 127 in [1, 254] after the clamp (n in [-126, 127])
        var bits = n.convert(VectorOperators.F2I, 0).reinterpretAsInts().add(127)
                .lanewise(VectorOperators.LSHL, 23);
        FloatVector r = p.mul(bits.reinterpretAsFloats());
        r = r.blend(0f, x.compare(VectorOperators.LT, EXP_MIN));
        return r.blend(Float.POSITIVE_INFINITY, x.compare(VectorOperators.GT, EXP_MAX));
    }

    private static FloatVector roundHalfEven(FloatVector v) {
        // adding and subtracting 1.5 * 2^23 rounds an fp32 of magnitude < 2^22 to the nearest integer, ties to even
        return v.add(12582912f).sub(12582912f);
    }
}
