package io.github.starattention.jlama.model;

import com.github.tjake.jlama.safetensors.DType;
import io.github.starattention.linear.WeightType;
import java.util.Optional;

/**
 * Number format of the weights in memory ({@link io.github.starattention.linear.Matrix}). Activations, norms and
 * biases are fp32 in every format, and the products accumulate in fp32.
 */
public enum WeightFormat {
    /** Weights widened to fp32: the reference-exact setting (default). */
    F32(WeightType.F32, Optional.of(DType.F32)),
    /** Weights in bf16 (half of fp32's memory); a bf16 checkpoint is kept bit for bit. */
    BF16(WeightType.BF16, Optional.of(DType.BF16)),
    /** Weights as stored: bf16 checkpoints as {@link #BF16}, others (fp32, fp16) as {@link #F32}. */
    AS_STORED(null, Optional.empty()),
    /**
     * 8-bit weights with an fp32 scale per block of 32 (llama.cpp's Q8_0 but for the scale's width), quantized at load
     * time: about a quarter of fp32's memory, logits within cosine 0.9997 of transformers' on the parity models.
     */
    Q8(WeightType.Q8, Optional.empty()),
    /**
     * 4-bit weights with an fp32 scale per block of 32, quantized at load time; the embedding and LM head take
     * {@link #Q8} (llama.cpp also keeps its output matrix wider): smallest, least exact.
     */
    Q4(WeightType.Q4, Optional.of(DType.Q4));

    private final WeightType type;
    private final Optional<DType> stockQuantization;

    WeightFormat(WeightType type, Optional<DType> stockQuantization) {
        this.type = type;
        this.stockQuantization = stockQuantization;
    }

    /** The matrix format of a tensor stored as bf16 ({@code storedBf16}) or otherwise. */
    WeightType weightType(boolean storedBf16) {
        if (type != null) {
            return type;
        }
        return storedBf16 ? WeightType.BF16 : WeightType.F32;
    }

    /** The weight format stock Jlama (the benchmark baseline) gets for this format, if it has one. */
    Optional<DType> stockQuantization() {
        if (this == Q8) {
            throw new IllegalArgumentException("stock Jlama 0.8.4 has no 8-bit weights with fp32 activations; "
                    + "compare Q8 with llama.cpp's Q8_0 (bench-llamacpp) instead");
        }
        return stockQuantization;
    }
}
