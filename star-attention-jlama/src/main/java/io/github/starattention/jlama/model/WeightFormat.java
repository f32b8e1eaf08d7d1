package io.github.starattention.jlama.model;

import com.github.tjake.jlama.safetensors.DType;
import java.util.Optional;

/**
 * Number format of the weights in memory and of the activations fed to Jlama's matrix products. Activations and
 * the KV cache are fp32 in every format.
 */
public enum WeightFormat {
    /** Weights widened to fp32, fp32 activations: the reference-exact setting (default). */
    F32(Optional.of(DType.F32), DType.F32),
    /** Weights in bf16 (half of fp32's memory), fp32 activations. */
    BF16(Optional.of(DType.BF16), DType.F32),
    /** Weights as stored (e.g. bf16), activations rounded to the weights' type before each product (Jlama's default). */
    AS_STORED(Optional.empty(), DType.I8),
    /**
     * Weights quantized to Jlama's Q4 at load time (blocks of 32 with a scale), fp32 activations: smallest, least
     * exact (logits within cosine 0.95 of an fp64 reference on random SmolLM2-shaped weights, {@code Fp64ReferenceIT}).
     * Activations stay fp32 because Jlama has no int8 product for the tensors it leaves unquantized (the embedding:
     * "I8 BF16" in 0.8.4).
     */
    Q4(Optional.of(DType.Q4), DType.F32);

    private final Optional<DType> modelQuantization;
    private final DType workingQuantization;

    WeightFormat(Optional<DType> modelQuantization, DType workingQuantization) {
        this.modelQuantization = modelQuantization;
        this.workingQuantization = workingQuantization;
    }

    Optional<DType> modelQuantization() {
        return modelQuantization;
    }

    DType workingQuantization() {
        return workingQuantization;
    }
}
