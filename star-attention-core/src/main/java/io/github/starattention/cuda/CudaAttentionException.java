package io.github.starattention.cuda;

import jcuda.driver.CUresult;

/** A CUDA driver call failed (out of memory, launch failure, illegal address, ...); the message names the call. */
public final class CudaAttentionException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final int result;

    public CudaAttentionException(String message, int result) {
        super(message + ": " + CUresult.stringFor(result) + " (" + result + ")");
        this.result = result;
    }

    public CudaAttentionException(String message) {
        super(message);
        this.result = -1;
    }

    /** The {@code CUresult} code, or -1 when the error did not come from the driver. */
    public int result() {
        return result;
    }

    /** Whether the driver reported {@code CUDA_ERROR_OUT_OF_MEMORY}. */
    public boolean outOfMemory() {
        return result == CUresult.CUDA_ERROR_OUT_OF_MEMORY;
    }
}
