package io.github.starattention.linear;

import java.lang.reflect.Array;
import java.util.Objects;
import java.util.function.Function;

/**
 * A weight matrix of {@link #rows()} output features by {@link #cols()} input features in one {@link WeightType},
 * Hugging Face's {@code [out][in]} layout: {@code y[r] = sum_c W[r][c] x[c]}. Immutable and thread-safe.
 *
 * <p>Layout in memory, row-major throughout:
 * <ul>
 *   <li>{@code F32}: {@code float[rows * cols]}.</li>
 *   <li>{@code BF16}: {@code short[rows * cols]}, the upper 16 bits of each fp32.</li>
 *   <li>{@code Q8}: {@code byte[rows * cols]} signed quants and {@code float[rows * cols / BLOCK]} scales, block
 *       {@code b} of row {@code r} covering columns {@code [b*BLOCK, (b+1)*BLOCK)}, scale index
 *       {@code r * cols/BLOCK + b}.</li>
 *   <li>{@code Q4}: {@code byte[rows * cols / 2]}, block {@code k} of the whole matrix (row-major, {@code k =
 *       (r * cols + c) / BLOCK}) in bytes {@code [k * BLOCK/2, (k+1) * BLOCK/2)}; column {@code j} of a block is in
 *       the low nibble of byte {@code j} for {@code j < BLOCK/2} and in the high nibble of byte {@code j - BLOCK/2}
 *       for the rest (so unpacking one block's 16 bytes gives columns 0..15 and 16..31 as two contiguous runs). A
 *       nibble is the quant {@code q} in {@code [-8, 7]} as a 4-bit two's complement number, so an arithmetic
 *       shift of the sign-extended byte yields it ({@code q_hi = b >> 4}, {@code q_lo = (b << 28) >> 28} on ints)
 *       with no offset to subtract; weight = scale x q. {@code float[rows * cols / BLOCK]} scales as for Q8.</li>
 * </ul>
 */
public final class Matrix {

    /** Weights per quantization block along a row ({@link WeightType#Q8}, {@link WeightType#Q4}). */
    public static final int BLOCK = 32;

    /** Divisors of a block's max |w| tried as Q4 scales (7 first: see {@link #quantize4}). */
    private static final float[] Q4_DIVISORS = {7f, 7.5f, 8f, 6.5f, 6f};

    private final WeightType type;
    private final int rows;
    private final int cols;
    final float[] f32;
    final short[] bf16;
    final byte[] quants;
    final float[] scales;

    private Matrix(WeightType type, int rows, int cols, float[] f32, short[] bf16, byte[] quants, float[] scales) {
        this.type = type;
        this.rows = rows;
        this.cols = cols;
        this.f32 = f32;
        this.bf16 = bf16;
        this.quants = quants;
        this.scales = scales;
    }

    /**
     * A matrix of {@code type} from fp32 weights {@code w[rows * cols]} (row-major): kept (F32), rounded to nearest
     * even (BF16) or quantized per block (Q8, Q4). {@code w} is not retained.
     *
     * @throws IllegalArgumentException if the shape does not match {@code w}, or a blocked type's columns are not a
     *     multiple of {@value #BLOCK}, or a weight is not finite
     */
    public static Matrix of(WeightType type, float[] w, int rows, int cols) {
        Objects.requireNonNull(type, "type");
        checkShape(type, w.length, rows, cols);
        return switch (type) {
            case F32 -> {
                for (float x : w) {
                    requireFinite(x);
                }
                yield new Matrix(type, rows, cols, w.clone(), null, null, null);
            }
            case BF16 -> {
                short[] b = new short[w.length];
                for (int i = 0; i < w.length; i++) {
                    b[i] = toBf16(requireFinite(w[i]));
                }
                yield new Matrix(type, rows, cols, null, b, null, null);
            }
            case Q8 -> quantize8(w, rows, cols);
            case Q4 -> quantize4(w, rows, cols);
        };
    }

    /** A BF16 matrix from bfloat16 bits {@code bits[rows * cols]} as stored (no rounding); not retained. */
    public static Matrix ofBf16(short[] bits, int rows, int cols) {
        checkShape(WeightType.BF16, bits.length, rows, cols);
        return new Matrix(WeightType.BF16, rows, cols, null, bits.clone(), null, null);
    }

    /** The rows of {@code parts} one after another (all of one type and column count), e.g. Q, K and V fused. */
    public static Matrix stack(Matrix... parts) {
        if (parts.length == 0) {
            throw new IllegalArgumentException("nothing to stack");
        }
        WeightType type = parts[0].type;
        int cols = parts[0].cols;
        long rows = 0;
        for (Matrix m : parts) {
            if (m.type != type || m.cols != cols) {
                throw new IllegalArgumentException("cannot stack " + m + " onto " + parts[0]);
            }
            rows += m.rows;
        }
        int r = Math.toIntExact(rows);
        checkShape(type, (long) r * cols, r, cols);
        return switch (type) {
            case F32 -> new Matrix(type, r, cols, concat(parts, m -> m.f32, new float[r * cols]), null, null, null);
            case BF16 -> new Matrix(type, r, cols, null, concat(parts, m -> m.bf16, new short[r * cols]), null, null);
            case Q8, Q4 -> {
                int quantBytes = type == WeightType.Q8 ? r * cols : r * cols / 2;
                yield new Matrix(type, r, cols, null, null, concat(parts, m -> m.quants, new byte[quantBytes]),
                        concat(parts, m -> m.scales, new float[r * (cols / BLOCK)]));
            }
        };
    }

    /** {@code field} of every part, one after another, into {@code out} (an array of the field's type). */
    private static <A> A concat(Matrix[] parts, Function<Matrix, A> field, A out) {
        int at = 0;
        for (Matrix m : parts) {
            A a = field.apply(m);
            int n = Array.getLength(a);
            System.arraycopy(a, 0, out, at, n);
            at += n;
        }
        return out;
    }

    public WeightType type() {
        return type;
    }

    /** Output features. */
    public int rows() {
        return rows;
    }

    /** Input features. */
    public int cols() {
        return cols;
    }

    /** Bytes the weights take in memory. */
    public long bytes() {
        return switch (type) {
            case F32 -> 4L * f32.length;
            case BF16 -> 2L * bf16.length;
            case Q8, Q4 -> quants.length + 4L * scales.length;
        };
    }

    /** Writes row {@code r}, dequantized to fp32, to {@code dst[off .. off + cols)} (e.g. an embedding lookup). */
    public void row(int r, float[] dst, int off) {
        Objects.checkIndex(r, rows);
        Objects.checkFromIndexSize(off, cols, dst.length);
        long base = (long) r * cols;
        switch (type) {
            case F32 -> System.arraycopy(f32, (int) base, dst, off, cols);
            case BF16 -> {
                for (int c = 0; c < cols; c++) {
                    dst[off + c] = Float.intBitsToFloat(bf16[(int) base + c] << 16);
                }
            }
            case Q8 -> {
                for (int c = 0; c < cols; c++) {
                    dst[off + c] = scales[(int) ((base + c) / BLOCK)] * quants[(int) base + c];
                }
            }
            case Q4 -> {
                for (int c = 0; c < cols; c++) {
                    dst[off + c] = q4(r, c);
                }
            }
        }
    }

    /** Weight {@code (r, c)} as the kernels see it (dequantized). For tests and reference code. */
    public float get(int r, int c) {
        Objects.checkIndex(r, rows);
        Objects.checkIndex(c, cols);
        int i = r * cols + c;
        return switch (type) {
            case F32 -> f32[i];
            case BF16 -> Float.intBitsToFloat(bf16[i] << 16);
            case Q8 -> scales[i / BLOCK] * quants[i];
            case Q4 -> q4(r, c);
        };
    }

    private float q4(int r, int c) {
        int block = (r * cols + c) / BLOCK;
        int within = c % BLOCK;
        int half = BLOCK / 2;
        int b = quants[block * half + within % half];
        int q = within < half ? (b << 28) >> 28 : b >> 4;
        return scales[block] * q;
    }

    @Override
    public String toString() {
        return type + "[" + rows + " x " + cols + "]";
    }

    /**
     * Copies elements {@code [from, from + dst.length)} of an {@link WeightType#F32} matrix (row-major) into
     * {@code dst}, e.g. to upload it in slices.
     */
    public void copyFloats(long from, float[] dst) {
        requireType(WeightType.F32);
        System.arraycopy(f32, Math.toIntExact(from), dst, 0, dst.length);
    }

    /**
     * Copies the bfloat16 bits of elements {@code [from, from + dst.length)} of a {@link WeightType#BF16} matrix
     * (row-major) into {@code dst}, e.g. to upload it in slices.
     */
    public void copyBf16(long from, short[] dst) {
        requireType(WeightType.BF16);
        System.arraycopy(bf16, Math.toIntExact(from), dst, 0, dst.length);
    }

    private void requireType(WeightType t) {
        if (type != t) {
            throw new IllegalStateException(this + " is not " + t);
        }
    }

    /** fp32 to bfloat16, rounded to nearest even (NaN kept NaN). */
    public static short toBf16(float x) {
        int bits = Float.floatToRawIntBits(x);
        if (Float.isNaN(x)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    private static Matrix quantize8(float[] w, int rows, int cols) {
        byte[] q = new byte[w.length];
        float[] s = new float[w.length / BLOCK];
        for (int b = 0; b < s.length; b++) {
            float max = 0;
            for (int i = b * BLOCK; i < (b + 1) * BLOCK; i++) {
                max = Math.max(max, Math.abs(requireFinite(w[i])));
            }
            float scale = max / 127f;
            s[b] = scale;
            float inv = scale == 0 ? 0 : 1f / scale;
            for (int i = b * BLOCK; i < (b + 1) * BLOCK; i++) {
                q[i] = (byte) Math.round(w[i] * inv);
            }
        }
        return new Matrix(WeightType.Q8, rows, cols, null, null, q, s);
    }

    /**
     * Q4 per block: of the scales {@code ±max|w| / m} for the divisors in {@link #Q4_DIVISORS} (a negative scale puts
     * the extreme weight on the -8 side of the nibble range), each refitted by least squares to the nibbles it rounds
     * to, the one with the least squared error; {@code max|w| / 7} wins ties, so weights it represents exactly stay
     * exact. Plain {@code max / 7} rounding gave logits at cosine 0.88-0.99 of transformers on the parity models.
     */
    private static Matrix quantize4(float[] w, int rows, int cols) {
        int half = BLOCK / 2;
        byte[] q = new byte[w.length / 2];
        float[] s = new float[w.length / BLOCK];
        int[] trial = new int[BLOCK];
        int[] best = new int[BLOCK];
        for (int b = 0; b < s.length; b++) {
            int base = b * BLOCK;
            float max = 0;
            for (int i = base; i < base + BLOCK; i++) {
                max = Math.max(max, Math.abs(requireFinite(w[i])));
            }
            float bestScale = 0;
            double bestError = Double.POSITIVE_INFINITY;
            if (max == 0) {
                java.util.Arrays.fill(best, 0);
            }
            for (int k = 0; k < 2 * Q4_DIVISORS.length && max > 0; k++) {
                float scale = (k % 2 == 0 ? max : -max) / Q4_DIVISORS[k / 2];
                float inv = 1f / scale;
                double xq = 0;
                double qq = 0;
                for (int j = 0; j < BLOCK; j++) {
                    trial[j] = Math.clamp(Math.round(w[base + j] * inv), -8, 7);
                    xq += (double) w[base + j] * trial[j];
                    qq += (double) trial[j] * trial[j];
                }
                float fitted = qq == 0 ? scale : (float) (xq / qq);
                double error = 0;
                for (int j = 0; j < BLOCK; j++) {
                    double d = w[base + j] - fitted * trial[j];
                    error += d * d;
                }
                if (error < bestError) {
                    bestError = error;
                    bestScale = fitted;
                    System.arraycopy(trial, 0, best, 0, BLOCK);
                }
            }
            s[b] = bestScale;
            for (int j = 0; j < half; j++) {
                q[b * half + j] = (byte) ((best[j] & 0x0F) | best[half + j] << 4);
            }
        }
        return new Matrix(WeightType.Q4, rows, cols, null, null, q, s);
    }

    private static void checkShape(WeightType type, long length, int rows, int cols) {
        if (rows <= 0 || cols <= 0 || (long) rows * cols != length) {
            throw new IllegalArgumentException("a " + rows + " x " + cols + " matrix needs " + (long) rows * cols
                    + " weights, got " + length);
        }
        if ((long) rows * cols > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("a " + rows + " x " + cols + " matrix is larger than one Java array");
        }
        if (type.blocked() && cols % BLOCK != 0) {
            throw new IllegalArgumentException(type + " needs columns in multiples of " + BLOCK + ", got " + cols);
        }
    }

    private static float requireFinite(float x) {
        if (!Float.isFinite(x)) {
            throw new IllegalArgumentException("weight is not finite: " + x);
        }
        return x;
    }
}
