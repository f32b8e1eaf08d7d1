package io.github.starattention.linear;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.offset;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

class CpuLinearKernelTest {

    @ParameterizedTest(name = "{0}")
    @EnumSource(WeightType.class)
    void matchesTheFp64ProductOnOddShapesWithAnyThreadCount(WeightType type) {
        try (CpuLinearKernel one = new CpuLinearKernel(1); CpuLinearKernel two = new CpuLinearKernel(2);
             CpuLinearKernel three = new CpuLinearKernel(3)) {
            assertThat(LinearSweep.check(type, one, two, three)).isEmpty();
        }
    }

    /** The sweep again in a JVM limited to 128-bit (4 lanes) or 256-bit (8 lanes) vectors. */
    @ParameterizedTest(name = "{0}-byte vectors")
    @ValueSource(ints = {16, 32})
    void matchesWithNarrowerVectors(int maxVectorBytes) throws IOException, InterruptedException {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(java.toString(), "--add-modules", "jdk.incubator.vector",
                "-XX:MaxVectorSize=" + maxVectorBytes, "-cp", System.getProperty("java.class.path"),
                LinearSweep.class.getName()).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(5, TimeUnit.MINUTES)).isTrue();
        assertThat(p.exitValue()).as(output).isZero();
        // the JVM may offer fewer lanes than asked for, never more
        int lanes = Integer.parseInt(output.replaceAll("(?s).*lanes=(\\d+).*", "$1"));
        assertThat(lanes).isBetween(4, maxVectorBytes / Float.BYTES);
    }

    @Test
    void decodeAndPrefillPathsAgreeWithinRounding() {
        Random rnd = new Random(3);
        int rows = 70;
        int cols = 96;
        try (CpuLinearKernel kernel = new CpuLinearKernel(2)) {
            for (WeightType type : WeightType.values()) {
                Matrix w = Matrix.of(type, LinearSweep.gaussian(rnd, rows * cols), rows, cols);
                float[] x = LinearSweep.gaussian(rnd, 40 * cols);
                float[] all = new float[40 * rows];
                kernel.multiply(w, x, 40, all);
                // token by token takes the dot-product path, the 40 tokens the packed one
                for (int t = 0; t < 40; t++) {
                    float[] one = new float[rows];
                    kernel.multiply(w, Arrays.copyOfRange(x, t * cols, (t + 1) * cols), 1, one);
                    for (int r = 0; r < rows; r++) {
                        assertThat(one[r]).as("%s token %d row %d", type, t, r)
                                .isCloseTo(all[t * rows + r], offset(1e-4f));
                    }
                }
            }
        }
    }

    @Test
    void concurrentCallsGiveTheSameResultsAsOneCaller() throws Exception {
        Random rnd = new Random(5);
        int rows = 300;
        int cols = 576;
        List<Matrix> weights = new ArrayList<>();
        for (WeightType type : WeightType.values()) {
            weights.add(Matrix.of(type, LinearSweep.gaussian(rnd, rows * cols), rows, cols));
        }
        int[] tokens = {1, 3, 40};
        List<float[]> inputs = new ArrayList<>();
        List<float[]> expected = new ArrayList<>();
        try (CpuLinearKernel alone = new CpuLinearKernel(1)) {
            for (Matrix w : weights) {
                for (int t : tokens) {
                    float[] x = LinearSweep.gaussian(rnd, t * cols);
                    float[] out = new float[t * rows];
                    alone.multiply(w, x, t, out);
                    inputs.add(x);
                    expected.add(out);
                }
            }
        }
        ExecutorService callers = Executors.newFixedThreadPool(4);
        try (CpuLinearKernel shared = new CpuLinearKernel(3)) {
            List<Future<?>> done = new ArrayList<>();
            for (int c = 0; c < 4; c++) {
                int caller = c;
                done.add(callers.submit(() -> {
                    for (int rep = 0; rep < 4; rep++) {
                        for (int i = 0; i < inputs.size(); i++) {
                            // each caller starts at another product, so different shapes overlap
                            int k = (i + caller * 5) % inputs.size();
                            int t = tokens[k % tokens.length];
                            float[] out = new float[t * rows];
                            shared.multiply(weights.get(k / tokens.length), inputs.get(k), t, out);
                            assertThat(out).as("caller %d product %d", caller, k).containsExactly(expected.get(k));
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get(2, TimeUnit.MINUTES);
            }
        } finally {
            callers.shutdownNow();
        }
    }

    @Test
    void aTaskFailingOnAWorkerReachesTheCaller() {
        RuntimeException boom = new IllegalStateException("boom");
        Set<String> ranOn = ConcurrentHashMap.newKeySet();
        try (CpuLinearKernel kernel = new CpuLinearKernel(2)) {
            assertThatThrownBy(() -> kernel.run(40, Long.MAX_VALUE, i -> {
                ranOn.add(Thread.currentThread().getName());
                sleep();
                if (Thread.currentThread().getName().startsWith("star-attention-linear-")) {
                    throw boom;
                }
            })).isSameAs(boom);
            // the kernel is still usable afterwards
            float[] out = new float[2];
            kernel.multiply(Matrix.of(WeightType.F32, new float[] {1, 2, 3, 4}, 2, 2), new float[] {1, 1}, 1, out);
            assertThat(out).containsExactly(3, 7);
        }
        assertThat(ranOn).anyMatch(n -> n.startsWith("star-attention-linear-"));
    }

    @Test
    void aTaskFailingOnTheCallerIsRethrownAfterTheOthersEnd() {
        RuntimeException boom = new IllegalArgumentException("boom");
        try (CpuLinearKernel kernel = new CpuLinearKernel(3)) {
            assertThatThrownBy(() -> kernel.run(10, Long.MAX_VALUE, i -> {
                sleep();
                if (i == 0) {
                    throw boom;
                }
            })).isSameAs(boom);
        }
    }

    @Test
    void checksLengthsBeforeAnyWork() {
        Matrix w = Matrix.of(WeightType.Q8, new float[64 * 3], 3, 64);
        try (CpuLinearKernel kernel = new CpuLinearKernel(2)) {
            float[] out = new float[5];
            Arrays.fill(out, 9f);
            assertThatThrownBy(() -> kernel.multiply(w, new float[64 * 2], 2, out))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("out holds 5 floats");
            assertThat(out).containsOnly(9f);
            assertThatThrownBy(() -> kernel.multiply(w, new float[64 * 2 - 1], 2, new float[6]))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("x holds 127 floats");
            assertThatThrownBy(() -> kernel.multiply(w, new float[64], -1, new float[6]))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("tokens");
            assertThatThrownBy(() -> kernel.multiply(null, new float[64], 1, new float[3]))
                    .isInstanceOf(NullPointerException.class);
            // zero tokens: nothing to do, nothing written
            kernel.multiply(w, new float[0], 0, out);
            assertThat(out).containsOnly(9f);
        }
        assertThatThrownBy(() -> new CpuLinearKernel(0)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void knownSmallProduct() {
        // W = [[1, 2, 3], [4, 5, 6]], tokens x = [1, 0, -1] and [0.5, 0.5, 0.5]
        Matrix w = Matrix.of(WeightType.F32, new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        float[] x = {1, 0, -1, 0.5f, 0.5f, 0.5f};
        for (int threads = 1; threads <= 2; threads++) {
            try (CpuLinearKernel kernel = new CpuLinearKernel(threads)) {
                float[] out = new float[4];
                kernel.multiply(w, x, 2, out);
                assertThat(out).containsExactly(-2, -2, 3, 7.5f);
            }
        }
    }

    private static void sleep() {
        try {
            Thread.sleep(5);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
