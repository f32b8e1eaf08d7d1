package io.github.starattention.jlama.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.github.tjake.jlama.tensor.FloatBufferTensor;
import com.github.tjake.jlama.tensor.operations.NativeSimdTensorOperations;
import com.github.tjake.jlama.tensor.operations.PanamaTensorOperations;
import com.github.tjake.jlama.tensor.operations.TensorOperations;
import com.github.tjake.jlama.util.MachineSpec;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The reproduction behind {@link JlamaOperations}: Jlama 0.8.4's native F32 matrix product leaves the corner tile of
 * its recursion unwritten when both the rows (tokens) and the output features leave a remainder over its 5 x 5
 * tiles; its Panama operations, which we use, are right. When a Jlama upgrade fixes the native code, the first test
 * fails: then the native path can be considered again.
 */
class JlamaNativeGemmTest {

    /** {@code out[M x N] = a[M x K] . b[N x K]^T} as Jlama's projections call it, and the largest error vs fp64. */
    private static double worstError(TensorOperations ops, int m, int n, int k) {
        Random r = new Random(m * 1_000_003L + n * 1009L + k);
        FloatBufferTensor a = new FloatBufferTensor(m, k);
        FloatBufferTensor b = new FloatBufferTensor(n, k);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < k; j++) {
                a.set((float) r.nextGaussian(), i, j);
            }
        }
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < k; j++) {
                b.set((float) r.nextGaussian(), i, j);
            }
        }
        FloatBufferTensor out = new FloatBufferTensor(m, n);
        for (int i = 0; i < m; i++) {
            for (int c = 0; c < n; c++) {
                out.set(Float.NaN, i, c); // what a reused buffer might hold: an unwritten output shows
            }
        }
        ops.dotProductChunk(out, a, b, 0, k, 0, n);
        double worst = 0;
        for (int i = 0; i < m; i++) {
            for (int c = 0; c < n; c++) {
                double s = 0;
                for (int j = 0; j < k; j++) {
                    s += (double) a.get(i, j) * b.get(c, j);
                }
                double e = Math.abs(s - out.get(i, c));
                worst = Double.isNaN(e) ? Double.POSITIVE_INFINITY : Math.max(worst, e);
            }
        }
        return worst;
    }

    private static TensorOperations nativeOps() {
        try {
            return new NativeSimdTensorOperations();
        } catch (Throwable t) { // no native library for this platform or JDK
            assumeTrue(false, "Jlama's native operations do not load here: " + t);
            return null;
        }
    }

    @ParameterizedTest(name = "M {0} x N {1} x K {2}")
    @CsvSource({"6, 192, 576", "13, 256, 256", "7, 1536, 576", "512, 256, 256"})
    void jlamasNativeGemmLeavesOutputsUnwritten(int m, int n, int k) {
        assertThat(worstError(nativeOps(), m, n, k)).as("native error").isInfinite();
    }

    @ParameterizedTest(name = "M {0} x N {1} x K {2}")
    @CsvSource({"6, 192, 576", "13, 256, 256", "7, 1536, 576", "512, 256, 256", "1, 576, 576", "5, 192, 64"})
    void jlamasPanamaGemmIsRight(int m, int n, int k) {
        assertThat(worstError(new PanamaTensorOperations(MachineSpec.VECTOR_TYPE), m, n, k)).isLessThan(1e-3);
    }
}
