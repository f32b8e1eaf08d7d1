package io.github.starattention.jlama.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

/** The vectorized element-wise steps against fp64 formulas. */
class ElementwiseTest {

    @Test
    void expIsWithinFewUlpsOverTheWholeRange() {
        SplittableRandom r = new SplittableRandom(7);
        int lanes = FloatVector.SPECIES_PREFERRED.length();
        float[] x = new float[lanes * 4096];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (r.nextDouble() * 180 - 90);
        }
        x[0] = 0f;
        x[1] = -100f;
        x[2] = 100f;
        float[] y = new float[x.length];
        for (int i = 0; i < x.length; i += lanes) {
            Elementwise.exp(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, x, i)).intoArray(y, i);
        }
        for (int i = 0; i < x.length; i++) {
            double want = Math.exp(x[i]);
            if (x[i] < -87.3f) {
                assertEquals(0f, y[i], "exp(" + x[i] + ")");
            } else if (x[i] > 88.3f) {
                assertEquals(Float.POSITIVE_INFINITY, y[i], "exp(" + x[i] + ")");
            } else {
                assertTrue(Math.abs(y[i] - want) <= 1e-6 * want, "exp(" + x[i] + ") = " + y[i] + ", want " + want);
            }
        }
    }

    @Test
    void swigluAndRmsNormMatchFp64() {
        SplittableRandom r = new SplittableRandom(11);
        int tokens = 3;
        int ffn = 37; // not a multiple of the lanes: the scalar tail runs too
        float[] gateUp = new float[tokens * 2 * ffn];
        for (int i = 0; i < gateUp.length; i++) {
            gateUp[i] = (float) (r.nextGaussian() * 6);
        }
        float[] h = new float[tokens * ffn];
        Elementwise.swiglu(gateUp, tokens, ffn, h);
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < ffn; i++) {
                double g = gateUp[t * 2 * ffn + i];
                double want = g / (1 + Math.exp(-g)) * gateUp[t * 2 * ffn + ffn + i];
                assertEquals(want, h[t * ffn + i], 1e-6 * Math.max(1, Math.abs(want)), "t " + t + " i " + i);
            }
        }
        int dim = 45;
        float[] x = new float[tokens * dim];
        float[] w = new float[dim];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < dim; i++) {
            w[i] = (float) (1 + r.nextGaussian() * 0.1);
        }
        float[] out = new float[x.length];
        Elementwise.rmsNorm(x, w, 1e-5f, tokens, dim, out);
        for (int t = 0; t < tokens; t++) {
            double ss = 0;
            for (int i = 0; i < dim; i++) {
                ss += (double) x[t * dim + i] * x[t * dim + i];
            }
            double inv = 1 / Math.sqrt(ss / dim + 1e-5);
            for (int i = 0; i < dim; i++) {
                assertEquals(w[i] * x[t * dim + i] * inv, out[t * dim + i], 1e-5, "t " + t + " i " + i);
            }
        }
    }
}
