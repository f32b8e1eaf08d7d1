package io.github.starattention.attention;

/** Where attention runs. */
public enum Device {
    /** The Vector API kernels on the Java heap. */
    CPU,
    /** The CUDA kernels (JCuda driver API, PTX); fails if no usable GPU. */
    CUDA,
    /** CUDA when a GPU is usable, otherwise CPU (probed once, one log line). */
    AUTO
}
