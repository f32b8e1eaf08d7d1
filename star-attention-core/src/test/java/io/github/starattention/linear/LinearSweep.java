package io.github.starattention.linear;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Checks {@link LinearKernel}s against an fp64 product of the dequantized weights ({@link Matrix#get}) on odd shapes,
 * and that kernels of different thread counts agree bit for bit. Shared by {@link CpuLinearKernelTest} and, as a
 * {@code main}, by the JVMs it starts with narrower vectors.
 */
final class LinearSweep {

    static final int[] ROWS = {1, 3, 7, 33, 200};
    static final int[] BLOCKED_COLS = {32, 64, 96, 576};
    static final int[] ODD_COLS = {5, 13, 100};
    static final int[] TOKENS = {1, 2, 3, 5, 17, 130};
    /** Allowed error per output, relative to {@code sum_c |x w|}: fp32 rounding of a few hundred terms. */
    static final double RELATIVE = 1e-5;
    static final double ABSOLUTE = 1e-6;

    private LinearSweep() {
    }

    /** Columns tried for {@code type}: multiples of the block, and for F32/BF16 also lengths no vector divides. */
    static int[] cols(WeightType type) {
        if (type.blocked()) {
            return BLOCKED_COLS;
        }
        int[] all = new int[BLOCKED_COLS.length + ODD_COLS.length];
        System.arraycopy(BLOCKED_COLS, 0, all, 0, BLOCKED_COLS.length);
        System.arraycopy(ODD_COLS, 0, all, BLOCKED_COLS.length, ODD_COLS.length);
        return all;
    }

    /**
     * Runs every shape of {@code type} on every kernel; returns the failures (empty when all pass). Outputs past
     * {@code tokens * rows} must stay untouched.
     */
    static List<String> check(WeightType type, LinearKernel... kernels) {
        List<String> failures = new ArrayList<>();
        Random rnd = new Random(type.ordinal() * 1000L + 17);
        for (int rows : ROWS) {
            for (int cols : cols(type)) {
                Matrix w = Matrix.of(type, gaussian(rnd, rows * cols), rows, cols);
                for (int tokens : TOKENS) {
                    float[] x = gaussian(rnd, tokens * cols + 3);
                    double[] expected = new double[tokens * rows];
                    double[] bound = new double[tokens * rows];
                    reference(w, x, tokens, expected, bound);
                    float[] first = null;
                    for (LinearKernel k : kernels) {
                        float[] out = new float[tokens * rows + 5];
                        java.util.Arrays.fill(out, Float.NaN);
                        k.multiply(w, x, tokens, out);
                        String at = w + " x " + tokens + " tokens, " + k;
                        for (int i = 0; i < expected.length; i++) {
                            if (!(Math.abs(out[i] - expected[i]) <= bound[i])) {
                                failures.add(at + ": out[" + i + "] = " + out[i] + ", expected " + expected[i]
                                        + " +- " + bound[i]);
                                break;
                            }
                        }
                        for (int i = expected.length; i < out.length; i++) {
                            if (!Float.isNaN(out[i])) {
                                failures.add(at + ": wrote out[" + i + "] past the result");
                                break;
                            }
                        }
                        if (first == null) {
                            first = out;
                        } else if (!java.util.Arrays.equals(first, out)) {
                            failures.add(at + ": differs from " + kernels[0]);
                        }
                    }
                }
            }
        }
        return failures;
    }

    /** {@code expected[t][r] = sum_c x[t][c] w(r, c)} in fp64, and the tolerance of each from the magnitudes. */
    static void reference(Matrix w, float[] x, int tokens, double[] expected, double[] bound) {
        int rows = w.rows();
        int cols = w.cols();
        for (int t = 0; t < tokens; t++) {
            for (int r = 0; r < rows; r++) {
                double sum = 0;
                double magnitude = 0;
                for (int c = 0; c < cols; c++) {
                    double p = (double) x[t * cols + c] * w.get(r, c);
                    sum += p;
                    magnitude += Math.abs(p);
                }
                expected[t * rows + r] = sum;
                bound[t * rows + r] = RELATIVE * magnitude + ABSOLUTE;
            }
        }
    }

    static float[] gaussian(Random rnd, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        return v;
    }

    /** Prints the lanes in use, runs every type on kernels of 1 and 3 threads, exits 1 on any failure. */
    public static void main(String[] args) {
        System.out.println("lanes=" + CpuLinearKernel.SPECIES.length());
        int failed = 0;
        try (CpuLinearKernel one = new CpuLinearKernel(1); CpuLinearKernel three = new CpuLinearKernel(3)) {
            for (WeightType type : WeightType.values()) {
                for (String f : check(type, one, three)) {
                    System.out.println(f);
                    failed++;
                }
            }
        }
        System.exit(failed == 0 ? 0 : 1);
    }
}
