package io.github.starattention.attention;

import io.github.starattention.cuda.CudaAttentionKernel;
import io.github.starattention.cuda.CudaProbe;
import io.github.starattention.kv.KvPrecision;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Opens the {@link AttentionKernel} for a {@link Device}. */
public final class AttentionKernels {

    private static final Logger LOG = LoggerFactory.getLogger(AttentionKernels.class);
    private static final AtomicBoolean FALLBACK_LOGGED = new AtomicBoolean();

    private AttentionKernels() {
    }

    /**
     * Opens a kernel on {@code device}.
     *
     * <ul>
     *   <li>{@link Device#CPU}: the CPU kernel on {@code threads} worker threads.</li>
     *   <li>{@link Device#CUDA}: the CUDA kernel on GPU 0 ({@link CudaAttentionKernel}); throws
     *       {@link IllegalStateException} when no usable GPU is present.</li>
     *   <li>{@link Device#AUTO}: CUDA when the probe ({@link CudaProbe}, run once per JVM: the JCuda native library
     *       loads, {@code cuInit} succeeds, a device of compute capability 8.0+ exists) passes and the kernel opens;
     *       otherwise the CPU kernel, with one log line saying why.</li>
     * </ul>
     *
     * @param threads CPU worker threads (used by the CPU kernel)
     */
    public static AttentionKernel open(Device device, int threads) {
        return open(device, threads, KvPrecision.F32);
    }

    /**
     * {@link #open(Device, int)} with the CPU kernel's KV in {@code cpuKv} (the CUDA kernel keeps its fp16 or bf16,
     * {@link io.github.starattention.cuda.KvDtype}).
     */
    public static AttentionKernel open(Device device, int threads, KvPrecision cpuKv) {
        return switch (device) {
            case CPU -> new CpuAttentionKernel(threads, cpuKv);
            case CUDA -> {
                CudaProbe.Result probe = CudaProbe.probe();
                if (!probe.available()) {
                    throw new IllegalStateException("Device.CUDA requested but CUDA is not usable: " + probe.detail()
                            + ". Use Device.AUTO or Device.CPU to run attention on the CPU.");
                }
                yield new CudaAttentionKernel();
            }
            case AUTO -> {
                CudaProbe.Result probe = CudaProbe.probe();
                if (probe.available()) {
                    try {
                        yield new CudaAttentionKernel();
                    } catch (RuntimeException e) {
                        logFallback("the CUDA kernel failed to open on " + probe.detail() + ": " + e.getMessage());
                        yield new CpuAttentionKernel(threads, cpuKv);
                    }
                }
                logFallback(probe.detail());
                yield new CpuAttentionKernel(threads, cpuKv);
            }
        };
    }

    private static void logFallback(String why) {
        if (FALLBACK_LOGGED.compareAndSet(false, true)) {
            LOG.info("No usable GPU for attention ({}); using the CPU kernel", why);
        }
    }
}
