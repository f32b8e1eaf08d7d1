package io.github.starattention.linear;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class MatrixTest {

    private static float widen(short bits) {
        return Float.intBitsToFloat(bits << 16);
    }

    @Test
    void bf16RoundsToNearestWithTiesToEven() {
        assertThat(Matrix.toBf16(1f)).isEqualTo((short) 0x3F80);
        // just below, at and just above half an ulp, from an even and from an odd neighbour
        assertThat(Matrix.toBf16(Float.intBitsToFloat(0x3F807FFF))).isEqualTo((short) 0x3F80);
        assertThat(Matrix.toBf16(Float.intBitsToFloat(0x3F808000))).isEqualTo((short) 0x3F80);
        assertThat(Matrix.toBf16(Float.intBitsToFloat(0x3F808001))).isEqualTo((short) 0x3F81);
        assertThat(Matrix.toBf16(Float.intBitsToFloat(0x3F818000))).isEqualTo((short) 0x3F82);
        assertThat(Matrix.toBf16(Float.intBitsToFloat(0xBF818000))).isEqualTo((short) 0xBF82);
        // a tie that carries into the exponent, and the largest float rounding up to infinity
        assertThat(Matrix.toBf16(Float.intBitsToFloat(0x3FFF8000))).isEqualTo((short) 0x4000);
        assertThat(Matrix.toBf16(Float.MAX_VALUE)).isEqualTo((short) 0x7F80);
        assertThat(Matrix.toBf16(Float.NEGATIVE_INFINITY)).isEqualTo((short) 0xFF80);
        assertThat(Matrix.toBf16(-0f)).isEqualTo((short) 0x8000);
    }

    @Test
    void bf16KeepsNaNsNaN() {
        // a NaN whose payload lies only in the dropped bits would round to infinity if treated as a number
        for (int bits : new int[] {0x7FC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF}) {
            float nan = Float.intBitsToFloat(bits);
            assertThat(widen(Matrix.toBf16(nan))).as("0x%08X", bits).isNaN();
            assertThat(Matrix.toBf16(nan) < 0).isEqualTo(bits < 0);
        }
    }

    @Test
    void bf16MatchesTheNearestOfItsTwoNeighbours() {
        Random rnd = new Random(11);
        for (int i = 0; i < 200_000; i++) {
            float x = Float.intBitsToFloat(rnd.nextInt());
            if (!Float.isFinite(x)) {
                continue;
            }
            int bits = Float.floatToRawIntBits(x);
            int down = bits & 0xFFFF0000;
            int up = down + 0x10000;
            double dDown = Math.abs((double) x - Float.intBitsToFloat(down));
            double dUp = Math.abs((double) x - (Float.isFinite(Float.intBitsToFloat(up)) ? Float.intBitsToFloat(up)
                    : Math.copySign(0x1p128, x)));
            int expected = dDown < dUp || (dDown == dUp && (down & 0x10000) == 0) ? down : up;
            assertThat(Matrix.toBf16(x)).as("0x%08X", bits).isEqualTo((short) (expected >>> 16));
        }
    }

    @Test
    void bf16MatrixHoldsTheRoundedWeightsAndOfBf16TheGivenBits() {
        float[] w = {1f, Float.intBitsToFloat(0x3F818000), -3.3f, 1e-20f, 65504f, 0.1f};
        Matrix m = Matrix.of(WeightType.BF16, w, 2, 3);
        short[] bits = new short[w.length];
        for (int i = 0; i < w.length; i++) {
            bits[i] = Matrix.toBf16(w[i]);
            assertThat(m.get(i / 3, i % 3)).isEqualTo(widen(bits[i]));
        }
        Matrix raw = Matrix.ofBf16(bits, 3, 2);
        for (int i = 0; i < w.length; i++) {
            assertThat(raw.get(i / 2, i % 2)).isEqualTo(widen(bits[i]));
        }
        assertThat(raw.bytes()).isEqualTo(12);
    }

    @Test
    void q8ErrorIsAtMostHalfAStepOfItsBlock() {
        Random rnd = new Random(2);
        int rows = 5;
        int cols = 96;
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            // blocks of very different magnitudes, so a shared scale would show
            w[i] = (float) (rnd.nextGaussian() * Math.pow(10, i / Matrix.BLOCK % 4 - 2));
        }
        Matrix m = Matrix.of(WeightType.Q8, w, rows, cols);
        assertBlockError(m, w, 127);
        assertThat(m.bytes()).isEqualTo((long) rows * cols + 4L * rows * cols / Matrix.BLOCK);
    }

    @Test
    void q4ErrorIsNoWorseThanPlainRounding() {
        Random rnd = new Random(3);
        int rows = 3;
        int cols = 128;
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (rnd.nextGaussian() * Math.pow(10, i / Matrix.BLOCK % 3 - 1));
        }
        Matrix m = Matrix.of(WeightType.Q4, w, rows, cols);
        // the chosen scale is never worse than plain max / 7 rounding, block by block
        for (int b = 0; b < w.length / Matrix.BLOCK; b++) {
            float max = 0;
            for (int i = b * Matrix.BLOCK; i < (b + 1) * Matrix.BLOCK; i++) {
                max = Math.max(max, Math.abs(w[i]));
            }
            double plain = 0;
            double ours = 0;
            for (int i = b * Matrix.BLOCK; i < (b + 1) * Matrix.BLOCK; i++) {
                double d = w[i] - max / 7 * Math.clamp(Math.round(w[i] / (max / 7)), -8, 7);
                plain += d * d;
                double e = w[i] - m.get(i / cols, i % cols);
                ours += e * e;
            }
            assertThat(ours).as("block %d", b).isLessThanOrEqualTo(plain * (1 + 1e-6) + 1e-30);
        }
        assertThat(m.bytes()).isEqualTo((long) rows * cols / 2 + 4L * rows * cols / Matrix.BLOCK);
    }

    /** |w - get| <= step / 2 (plus fp32 rounding), step = the block's max |w| / levels. */
    private static void assertBlockError(Matrix m, float[] w, int levels) {
        int cols = m.cols();
        for (int b = 0; b < w.length / Matrix.BLOCK; b++) {
            float max = 0;
            for (int i = b * Matrix.BLOCK; i < (b + 1) * Matrix.BLOCK; i++) {
                max = Math.max(max, Math.abs(w[i]));
            }
            double step = max / levels;
            for (int i = b * Matrix.BLOCK; i < (b + 1) * Matrix.BLOCK; i++) {
                assertThat((double) Math.abs(m.get(i / cols, i % cols) - w[i])).as("weight %d", i)
                        .isLessThanOrEqualTo(step * (0.5 + 1e-5));
            }
        }
    }

    @Test
    void q8ReconstructsRepresentableWeightsExactly() {
        // each block: integers in [-127, 127] times a power of two, with |q| = 127 present
        Random rnd = new Random(4);
        int rows = 3;
        int cols = 64;
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            float scale = (float) Math.scalb(1.0, i / Matrix.BLOCK - 6);
            int q = i % Matrix.BLOCK == 7 ? (i % 2 == 0 ? 127 : -127) : rnd.nextInt(255) - 127;
            w[i] = q * scale;
        }
        assertExact(Matrix.of(WeightType.Q8, w, rows, cols), w);
        assertExact(Matrix.of(WeightType.Q8, new float[cols], 1, cols), new float[cols]);
    }

    @Test
    void q4ReconstructsRepresentableWeightsExactly() {
        Random rnd = new Random(5);
        int rows = 2;
        int cols = 96;
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            float scale = (float) Math.scalb(1.0, 3 - i / Matrix.BLOCK);
            // +-7 in both halves of every block (low and high nibbles), the rest anywhere in [-7, 7]
            int j = i % Matrix.BLOCK;
            int q = j == 3 ? 7 : j == 20 ? -7 : rnd.nextInt(15) - 7;
            w[i] = q * scale;
        }
        assertExact(Matrix.of(WeightType.Q4, w, rows, cols), w);
        assertExact(Matrix.of(WeightType.Q4, new float[cols], 1, cols), new float[cols]);
    }

    private static void assertExact(Matrix m, float[] w) {
        float[] row = new float[m.cols()];
        for (int r = 0; r < m.rows(); r++) {
            m.row(r, row, 0);
            for (int c = 0; c < m.cols(); c++) {
                assertThat(m.get(r, c)).as("(%d, %d)", r, c).isEqualTo(w[r * m.cols() + c]);
                assertThat(row[c]).isEqualTo(w[r * m.cols() + c]);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(WeightType.class)
    void rowEqualsGet(WeightType type) {
        Random rnd = new Random(6);
        int rows = 7;
        int cols = type.blocked() ? 96 : 13;
        Matrix m = Matrix.of(type, LinearSweep.gaussian(rnd, rows * cols), rows, cols);
        float[] dst = new float[cols + 4];
        for (int r = 0; r < rows; r++) {
            dst[1] = 42;
            m.row(r, dst, 2);
            assertThat(dst[1]).isEqualTo(42);
            for (int c = 0; c < cols; c++) {
                assertThat(dst[2 + c]).as("(%d, %d)", r, c).isEqualTo(m.get(r, c));
            }
        }
        assertThatThrownBy(() -> m.row(rows, dst, 0)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> m.row(0, dst, 5)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> m.get(0, cols)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> m.get(-1, 0)).isInstanceOf(IndexOutOfBoundsException.class);
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(WeightType.class)
    void stackEqualsItsParts(WeightType type) {
        Random rnd = new Random(7);
        int cols = 64;
        int[] rows = {3, 1, 5};
        Matrix[] parts = new Matrix[rows.length];
        long bytes = 0;
        for (int p = 0; p < parts.length; p++) {
            parts[p] = Matrix.of(type, LinearSweep.gaussian(rnd, rows[p] * cols), rows[p], cols);
            bytes += parts[p].bytes();
        }
        Matrix s = Matrix.stack(parts);
        assertThat(s.type()).isEqualTo(type);
        assertThat(s.rows()).isEqualTo(9);
        assertThat(s.cols()).isEqualTo(cols);
        assertThat(s.bytes()).isEqualTo(bytes);
        int at = 0;
        for (Matrix part : parts) {
            for (int r = 0; r < part.rows(); r++) {
                for (int c = 0; c < cols; c++) {
                    assertThat(s.get(at + r, c)).isEqualTo(part.get(r, c));
                }
            }
            at += part.rows();
        }
    }

    @Test
    void shapeChecksThrow() {
        assertThatThrownBy(() -> Matrix.of(WeightType.F32, new float[6], 2, 2))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("needs 4 weights, got 6");
        assertThatThrownBy(() -> Matrix.of(WeightType.F32, new float[0], 0, 0))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Matrix.of(WeightType.BF16, new float[6], -2, -3))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Matrix.of(WeightType.Q8, new float[48], 1, 48))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("multiples of 32");
        assertThatThrownBy(() -> Matrix.of(WeightType.Q4, new float[40], 2, 20))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("multiples of 32");
        assertThatThrownBy(() -> Matrix.ofBf16(new short[5], 2, 3)).isInstanceOf(IllegalArgumentException.class);
        float[] bad = new float[32];
        bad[3] = Float.NaN;
        for (WeightType type : WeightType.values()) {
            assertThatThrownBy(() -> Matrix.of(type, bad, 1, 32)).as("%s", type)
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not finite");
        }
        bad[3] = Float.POSITIVE_INFINITY;
        assertThatThrownBy(() -> Matrix.of(WeightType.Q4, bad, 1, 32)).isInstanceOf(IllegalArgumentException.class);
        Matrix a = Matrix.of(WeightType.Q8, new float[64], 1, 64);
        assertThatThrownBy(() -> Matrix.stack(a, Matrix.of(WeightType.Q4, new float[64], 1, 64)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("cannot stack");
        assertThatThrownBy(() -> Matrix.stack(a, Matrix.of(WeightType.Q8, new float[32], 1, 32)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("cannot stack");
        assertThatThrownBy(Matrix::stack).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void ofCopiesItsInput() {
        float[] w = {1, 2, 3, 4};
        Matrix m = Matrix.of(WeightType.F32, w, 2, 2);
        w[0] = 99;
        assertThat(m.get(0, 0)).isEqualTo(1f);
    }
}
