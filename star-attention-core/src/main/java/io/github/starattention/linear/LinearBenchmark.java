package io.github.starattention.linear;

import java.util.Arrays;
import java.util.Locale;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Times {@link CpuLinearKernel} on the products of SmolLM2-135M (hidden 576, 30 layers): fused QKV {@code [960 x
 * 576]}, o_proj {@code [576 x 576]}, fused gate+up {@code [3072 x 576]}, down {@code [576 x 1536]} and the LM head
 * {@code [49152 x 576]}, for 1 token (decode) and 512 tokens (a prefill chunk), in every {@link WeightType}. For each
 * it prints the median milliseconds per product after a warm-up of both paths, GFLOP/s ({@code 2 * rows * cols * tokens}) and GB/s
 * of weights read ({@link Matrix#bytes()} per product), and per type the time of one decode step's products (30
 * layers and the head). First it prints a memory-bandwidth reference: a vector sum of a 256 MB float array on the
 * same threads.
 *
 * <p>Run after {@code mvn -pl star-attention-core compile}:
 * <pre>
 * java --add-modules jdk.incubator.vector -cp star-attention-core/target/classes \
 *   io.github.starattention.linear.LinearBenchmark [threads] [--types=F32,BF16,Q8,Q4]
 * </pre>
 */
public final class LinearBenchmark {

    private static final int HIDDEN = 576;
    private static final int LAYERS = 30;
    private static final int PREFILL_TOKENS = 512;
    private static final String[] NAMES = {"qkv", "o_proj", "gate_up", "down", "lm_head"};
    private static final int[][] SHAPES = {{960, HIDDEN}, {HIDDEN, HIDDEN}, {3072, HIDDEN}, {HIDDEN, 1536},
        {49152, HIDDEN}};
    /** Products of one decode step: each layer's four, then the head once. */
    private static final int[] PER_STEP = {LAYERS, LAYERS, LAYERS, LAYERS, 1};
    /** Timed runs last at least this long (and 5 runs), after a warm-up as long. */
    private static final long MEASURE_NANOS = 400_000_000L;
    private static final int BANDWIDTH_FLOATS = 64 << 20;
    /** Per weight type, before its first timing (about twice what C2 took for both paths on a busy 2-core VM). */
    private static final long WARM_UP_NANOS = 4_000_000_000L;

    private LinearBenchmark() {
    }

    /** Arguments: {@code [threads] [--types=F32,BF16,Q8,Q4]}. */
    public static void main(String[] args) {
        int threads = Runtime.getRuntime().availableProcessors();
        WeightType[] types = WeightType.values();
        for (String a : args) {
            if (a.startsWith("--types=")) {
                types = Arrays.stream(a.substring("--types=".length()).split(",")).map(WeightType::valueOf)
                        .toArray(WeightType[]::new);
            } else {
                threads = Integer.parseInt(a);
            }
        }
        System.out.printf(Locale.ROOT, "linear kernels: %d threads, %d fp32 lanes%n", threads,
                CpuLinearKernel.SPECIES.length());
        try (CpuLinearKernel kernel = new CpuLinearKernel(threads)) {
            bandwidth(kernel);
            for (WeightType type : types) {
                warmUp(kernel, type);
                run(kernel, type);
            }
        }
    }

    /** Sums a 256 MB array on the kernel's threads: what a decode that reads every weight once can hope for. */
    private static void bandwidth(CpuLinearKernel kernel) {
        float[] a = values(BANDWIDTH_FLOATS, 7);
        int chunk = 1 << 16;
        int tasks = BANDWIDTH_FLOATS / chunk;
        float[] sums = new float[tasks];
        Runnable sum = () -> kernel.run(tasks, Long.MAX_VALUE, t -> {
            FloatVector acc0 = FloatVector.zero(CpuLinearKernel.SPECIES);
            FloatVector acc1 = acc0;
            int step = CpuLinearKernel.SPECIES.length();
            for (int i = t * chunk; i < (t + 1) * chunk; i += 2 * step) {
                acc0 = acc0.add(FloatVector.fromArray(CpuLinearKernel.SPECIES, a, i));
                acc1 = acc1.add(FloatVector.fromArray(CpuLinearKernel.SPECIES, a, i + step));
            }
            sums[t] = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        });
        double ns = medianNanos(sum);
        System.out.printf(Locale.ROOT, "memory bandwidth reference: sum of %d MB floats %8.3f ms  %6.1f GB/s%n",
                BANDWIDTH_FLOATS * 4L >> 20, ns / 1e6, BANDWIDTH_FLOATS * 4.0 / ns);
    }

    private static void run(CpuLinearKernel kernel, WeightType type) {
        double step = 0;
        for (int s = 0; s < SHAPES.length; s++) {
            int rows = SHAPES[s][0];
            int cols = SHAPES[s][1];
            Matrix w = Matrix.of(type, values(rows * cols, s), rows, cols);
            for (int tokens : new int[] {1, PREFILL_TOKENS}) {
                float[] x = values(tokens * cols, 100 + s);
                float[] out = new float[tokens * rows];
                double ns = medianNanos(() -> kernel.multiply(w, x, tokens, out));
                if (tokens == 1) {
                    step += ns * PER_STEP[s];
                }
                System.out.printf(Locale.ROOT, "%-4s %-7s [%5d x %4d] x %3d tokens: %9.3f ms  %7.1f GFLOP/s  %6.1f GB/s%n",
                        type, NAMES[s], rows, cols, tokens, ns / 1e6, 2.0 * rows * cols * tokens / ns, w.bytes() / ns);
            }
        }
        System.out.printf(Locale.ROOT, "%-4s decode step (%d layers + head, 1 token): %.3f ms%n", type, LAYERS, step / 1e6);
    }

    /**
     * Runs both paths of {@code type} on a small matrix until C2 has compiled them: interpreted, the Vector API
     * allocates per operation and a product takes tens of milliseconds, and compilation needs thousands of calls.
     */
    private static void warmUp(CpuLinearKernel kernel, WeightType type) {
        Matrix w = Matrix.of(type, values(256 * HIDDEN, 99), 256, HIDDEN);
        int prefill = CpuLinearKernel.packedMinTokens(type);
        float[] x = values(prefill * HIDDEN, 98);
        float[] out = new float[prefill * 256];
        long end = System.nanoTime() + WARM_UP_NANOS;
        while (System.nanoTime() < end) {
            kernel.multiply(w, x, 1, out);
            kernel.multiply(w, x, prefill, out);
        }
    }

    /** Median time of {@code task} after a warm-up. */
    private static double medianNanos(Runnable task) {
        long start = System.nanoTime();
        int warm = 0;
        while (warm < 5 || System.nanoTime() - start < MEASURE_NANOS) {
            task.run();
            warm++;
        }
        long[] t = new long[Math.max(5, warm)];
        int n = 0;
        start = System.nanoTime();
        while (n < t.length && (n < 5 || System.nanoTime() - start < MEASURE_NANOS)) {
            long t0 = System.nanoTime();
            task.run();
            t[n++] = System.nanoTime() - t0;
        }
        Arrays.sort(t, 0, n);
        return t[n / 2];
    }

    /** Deterministic values in about [-1, 1) from a cheap hash (a Random would take seconds for the LM head). */
    private static float[] values(int n, int seed) {
        float[] v = new float[n];
        long h = seed * 0x9E3779B97F4A7C15L;
        for (int i = 0; i < n; i++) {
            h = h * 6364136223846793005L + 1442695040888963407L;
            v[i] = (int) (h >>> 40) * 0x1p-23f - 1f;
        }
        return v;
    }
}
