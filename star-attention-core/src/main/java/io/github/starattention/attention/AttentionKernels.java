package io.github.starattention.attention;

/** Opens the {@link AttentionKernel} for a {@link Device}. */
public final class AttentionKernels {

    private AttentionKernels() {
    }

    /**
     * Opens a kernel on {@code device}; {@link Device#AUTO} falls back to the CPU kernels when no GPU is usable.
     *
     * @param threads CPU worker threads
     */
    public static AttentionKernel open(Device device, int threads) {
        return switch (device) {
            case CPU, AUTO -> new CpuAttentionKernel(threads);
            case CUDA -> throw new UnsupportedOperationException("CUDA kernels are not available in this build");
        };
    }
}
