package io.github.starattention.jlama;

/** How the context is encoded. Decoding is exact global attention in both modes. */
public enum Mode {
    /** Ordinary causal attention over the whole context (our kernels, one block). */
    GLOBAL,
    /** Star Attention: anchored blockwise local attention in phase 1, global attention in phase 2. */
    STAR
}
