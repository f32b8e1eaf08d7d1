package io.github.starattention.kv;

/**
 * Element type of K and V in a CPU ({@link HeapKvStore}) cache. Scores, softmax, LSE and outputs are fp32 either way.
 *
 * <ul>
 *   <li>{@link #F32} (default): the reference; the fp32 KV transformers and the PyTorch reference compute.</li>
 *   <li>{@link #BF16}: half the memory (a 128K-token Llama-3.2-1B context: 4 GiB instead of 8), K and V rounded to
 *       bfloat16 (8-bit significand, round to nearest even) when stored, widened to fp32 tile by tile when read.</li>
 * </ul>
 */
public enum KvPrecision {
    F32(Float.BYTES),
    BF16(2);

    private final int bytes;

    KvPrecision(int bytes) {
        this.bytes = bytes;
    }

    /** Bytes per element. */
    public int bytes() {
        return bytes;
    }

    /** {@code x} rounded to bfloat16 (nearest, ties to even), as its 16 bits. */
    public static short toBf16(float x) {
        int bits = Float.floatToRawIntBits(x);
        if (Float.isNaN(x)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    /** The float a bfloat16's 16 bits stand for (exact). */
    public static float fromBf16(short b) {
        return Float.intBitsToFloat(b << 16);
    }
}
