package io.github.starattention.linear;

/**
 * Number format of a {@link Matrix} in memory. Activations are fp32 in every format; only the weights differ.
 */
public enum WeightType {
    /** IEEE fp32, 4 bytes per weight: exact. */
    F32(4.0),
    /** bfloat16 (the upper half of an fp32), 2 bytes per weight: exact for bf16 checkpoints. */
    BF16(2.0),
    /**
     * 8-bit: blocks of {@value Matrix#BLOCK} weights along a row, each an fp32 scale and 32 signed bytes, weight =
     * scale x byte, scale = max |w| / 127 (llama.cpp's Q8_0 with an fp32 scale): 1.125 bytes per weight.
     */
    Q8(1.125),
    /**
     * 4-bit: blocks of {@value Matrix#BLOCK} weights along a row, each an fp32 scale and 32 signed nibbles q in
     * [-8, 7], weight = scale x q, the scale chosen per block for the least squared error (llama.cpp's Q4_0 with an
     * fp32 scale, nibbles in two's complement instead of offset by 8): 0.625 bytes per weight.
     */
    Q4(0.625);

    private final double bytesPerWeight;

    WeightType(double bytesPerWeight) {
        this.bytesPerWeight = bytesPerWeight;
    }

    /** Bytes per weight in memory, scales included. */
    public double bytesPerWeight() {
        return bytesPerWeight;
    }

    /** Whether rows are cut into blocks of {@value Matrix#BLOCK} (columns must then be a multiple of it). */
    public boolean blocked() {
        return this == Q8 || this == Q4;
    }
}
