package io.github.starattention.cuda;

import static jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR;
import static jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR;
import static jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH;
import static jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE;
import static jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT;
import static jcuda.driver.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
import static jcuda.driver.CUresult.CUDA_ERROR_NOT_FOUND;
import static jcuda.driver.CUresult.CUDA_ERROR_OUT_OF_MEMORY;
import static jcuda.driver.CUresult.CUDA_SUCCESS;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUjit_option;
import jcuda.driver.CUmodule;
import jcuda.driver.JCudaDriver;
import jcuda.driver.JITOptions;

/**
 * One device's primary context with the kernels' PTX modules loaded. Every driver call runs between {@link #enter()}
 * and {@link #exit()}: a lock (the kernels share scratch buffers) plus making the context current on the calling
 * thread. All work goes to the legacy default stream, so each call is ordered after the previous one.
 *
 * <p>While {@link #record} runs a step, the step's kernel launches are collected into a {@link LaunchPlan} (a CUDA
 * graph) instead of being launched one by one; copies and waits are refused then, since they would run before the
 * graph does.
 */
final class CudaRuntime {

    /** Hopper's kernels (wgmma), arch-specific PTX (compute_90a): loaded on compute capability 9.x only. */
    static final List<String> HOPPER_PTX = List.of("/io/github/starattention/cuda/attention_sm90.ptx",
            "/io/github/starattention/cuda/gemm_sm90.ptx");
    /** The PTX modules: the attention kernels and the layer kernels in every context, plus {@link #HOPPER_PTX}. */
    static final List<String> PTX_RESOURCES = List.of("/io/github/starattention/cuda/attention.ptx",
            "/io/github/starattention/cuda/layers.ptx", HOPPER_PTX.get(0), HOPPER_PTX.get(1));
    private static final int DEFAULT_SMEM_LIMIT = 48 * 1024;

    final int ordinal;
    final String deviceName;
    final int smCount;
    final int ccMajor;
    final int ccMinor;
    /** Whether {@link #HOPPER_PTX} is loaded (compute capability 9.x). */
    final boolean hopper;
    /** Theoretical DRAM bandwidth in GB/s from the memory clock and bus width (0 if the driver does not say). */
    final double peakGBps;

    private final CUdevice device = new CUdevice();
    private final CUcontext context = new CUcontext();
    private final List<CUmodule> modules = new ArrayList<>();
    private final Map<String, CUfunction> functions = new ConcurrentHashMap<>();
    private final Map<String, Integer> occupancy = new ConcurrentHashMap<>();
    private final ReentrantLock lock = new ReentrantLock();
    private boolean closed;
    /** The plan collecting launches while {@link #record} runs; read and written only by the lock's holder. */
    private LaunchPlan recording;

    CudaRuntime(int ordinal) {
        CudaProbe.Result probe = CudaProbe.probe();
        if (!probe.available()) {
            throw new IllegalStateException("CUDA is not usable: " + probe.detail()
                    + ". Use Device.AUTO or Device.CPU to run attention on the CPU.");
        }
        this.ordinal = ordinal;
        check(JCudaDriver.cuDeviceGet(device, ordinal), "cuDeviceGet(" + ordinal + ")");
        byte[] name = new byte[256];
        JCudaDriver.cuDeviceGetName(name, name.length, device);
        this.deviceName = CudaProbe.cString(name);
        this.smCount = attribute(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        this.ccMajor = attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        this.ccMinor = attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        int clockKHz = attribute(CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE);
        int busBits = attribute(CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH);
        this.hopper = ccMajor == 9;
        this.peakGBps = 2.0 * clockKHz * 1e3 * (busBits / 8.0) / 1e9;
        if (ccMajor < 8) {
            throw new IllegalStateException("CUDA device " + ordinal + " (" + deviceName + ") has compute capability "
                    + ccMajor + "." + ccMinor + "; the attention kernels need 8.0 or newer");
        }
        check(JCudaDriver.cuDevicePrimaryCtxRetain(context, device), "cuDevicePrimaryCtxRetain(" + ordinal + ")");
        boolean ok = false;
        try {
            check(JCudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
            for (String resource : PTX_RESOURCES) {
                if (hopper || !HOPPER_PTX.contains(resource)) {
                    modules.add(loadModule(resource));
                }
            }
            ok = true;
        } finally {
            if (!ok) {
                modules.forEach(JCudaDriver::cuModuleUnload);
                JCudaDriver.cuDevicePrimaryCtxRelease(device);
            }
        }
    }

    private int attribute(int attr) {
        int[] v = {0};
        JCudaDriver.cuDeviceGetAttribute(v, attr, device);
        return v[0];
    }

    private CUmodule loadModule(String resource) {
        byte[] ptx;
        try (InputStream in = CudaRuntime.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("PTX resource " + resource + " is missing from the class path");
            }
            byte[] b = in.readAllBytes();
            ptx = Arrays.copyOf(b, b.length + 1); // NUL-terminated image
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + resource, e);
        }
        CUmodule module = new CUmodule();
        int rc = JCudaDriver.cuModuleLoadData(module, ptx);
        if (rc != CUDA_SUCCESS) {
            String log = "";
            try {
                JITOptions jit = new JITOptions();
                jit.putBytes(CUjit_option.CU_JIT_ERROR_LOG_BUFFER, new byte[16384]);
                JCudaDriver.cuModuleLoadDataJIT(new CUmodule(), Pointer.to(ptx), jit);
                log = jit.getString(CUjit_option.CU_JIT_ERROR_LOG_BUFFER);
            } catch (RuntimeException | LinkageError e) {
                log = "(no JIT log: " + e + ")";
            }
            throw new CudaAttentionException("loading " + resource + " on " + deviceName + " (JIT log: "
                    + log.strip() + ")", rc);
        }
        return module;
    }

    /** Locks and makes the context current on this thread; always pair with {@link #exit()} in a finally block. */
    void enter() {
        lock.lock();
        if (closed) {
            lock.unlock();
            throw new IllegalStateException("the CUDA attention kernel is closed");
        }
        int rc = JCudaDriver.cuCtxSetCurrent(context);
        if (rc != CUDA_SUCCESS) {
            lock.unlock();
            throw new CudaAttentionException("cuCtxSetCurrent on device " + ordinal, rc);
        }
    }

    void exit() {
        lock.unlock();
    }

    boolean isClosed() {
        return closed;
    }

    static void check(int rc, String what) {
        if (rc != CUDA_SUCCESS) {
            throw new CudaAttentionException(what, rc);
        }
    }

    /** Allocates (and zeroes) device memory; the message of an out-of-memory error says what was being allocated. */
    CUdeviceptr alloc(long bytes, String what) {
        CUdeviceptr p = new CUdeviceptr();
        long n = Math.max(bytes, 16);
        int rc = JCudaDriver.cuMemAlloc(p, n);
        if (rc == CUDA_ERROR_OUT_OF_MEMORY) {
            long[] free = {0};
            long[] total = {0};
            JCudaDriver.cuMemGetInfo(free, total);
            throw new CudaAttentionException(String.format("out of GPU memory allocating %.1f MiB for %s on %s"
                    + " (%.1f MiB free of %.1f MiB)", n / 1048576.0, what, deviceName, free[0] / 1048576.0,
                    total[0] / 1048576.0), rc);
        }
        check(rc, "cuMemAlloc(" + n + " bytes) for " + what);
        rc = JCudaDriver.cuMemsetD8(p, (byte) 0, n);
        if (rc != CUDA_SUCCESS) {
            JCudaDriver.cuMemFree(p);
            check(rc, "cuMemsetD8 for " + what);
        }
        return p;
    }

    void free(CUdeviceptr p) {
        if (p != null) {
            JCudaDriver.cuMemFree(p);
        }
    }

    /** The kernel {@code name}, with its dynamic shared-memory limit raised to {@code smem} bytes. */
    CUfunction function(String name, int smem) {
        return functions.computeIfAbsent(name + "@" + smem, key -> {
            CUfunction f = new CUfunction();
            int rc = CUDA_ERROR_NOT_FOUND;
            for (CUmodule m : modules) {
                rc = JCudaDriver.cuModuleGetFunction(f, m, name);
                if (rc == CUDA_SUCCESS) {
                    break;
                }
            }
            check(rc, "cuModuleGetFunction(" + name + ")");
            if (smem > DEFAULT_SMEM_LIMIT) {
                check(JCudaDriver.cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem),
                        "cuFuncSetAttribute(" + name + ", max dynamic shared memory " + smem + ")");
            }
            return f;
        });
    }

    /** Resident blocks per SM of {@code name} at {@code threads} threads and {@code smem} bytes (at least 1). */
    int blocksPerSm(String name, int threads, int smem) {
        return occupancy.computeIfAbsent(name + "@" + threads + "@" + smem, key -> {
            int[] n = {0};
            int rc = JCudaDriver.cuOccupancyMaxActiveBlocksPerMultiprocessor(n, function(name, smem), threads, smem);
            return rc == CUDA_SUCCESS ? Math.max(1, n[0]) : 1;
        });
    }

    /**
     * Launches {@code name} on the default stream with kernel arguments {@code args} ({@link CUdeviceptr},
     * {@link Integer}, {@link Long} or {@link Float}, in the kernel's order), or adds it to the plan being recorded;
     * {@code shapes} describes the call for error messages.
     */
    void launch(String name, int gx, int gy, int gz, int threads, int smem, Supplier<String> shapes, Object... args) {
        CUfunction f = function(name, smem);
        if (recording != null) {
            recording.add(new LaunchPlan.Launch(name, f, gx, gy, gz, threads, smem, args, shapes));
            return;
        }
        int rc = JCudaDriver.cuLaunchKernel(f, gx, gy, gz, threads, 1, 1, smem, null, kernelParams(args), null);
        if (rc != CUDA_SUCCESS) {
            throw new CudaAttentionException("launching kernel " + name + " (grid " + gx + "x" + gy + "x" + gz
                    + ", block " + threads + ", shared memory " + smem + " B, " + shapes.get() + ") on " + deviceName, rc);
        }
    }

    /** The {@code kernelParams} of a launch: a pointer to each argument's value. */
    static Pointer kernelParams(Object... args) {
        Pointer[] params = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            params[i] = switch (args[i]) {
                case CUdeviceptr p -> Pointer.to(p);
                case Integer v -> Pointer.to(new int[] {v});
                case Long v -> Pointer.to(new long[] {v});
                case Float v -> Pointer.to(new float[] {v});
                default -> throw new IllegalArgumentException("kernel argument " + args[i]);
            };
        }
        return Pointer.to(params);
    }

    /**
     * Runs {@code step} with its kernel launches collected into {@code plan}, then launches them as one CUDA graph
     * ({@link LaunchPlan#launch}). Holds the device lock throughout, so no other thread's launch interleaves; the
     * step may allocate, but not copy or wait.
     */
    void record(LaunchPlan plan, Runnable step) {
        enter();
        try {
            if (recording != null) {
                throw new IllegalStateException("a launch plan is already being recorded on " + deviceName);
            }
            recording = plan;
            try {
                step.run();
            } catch (RuntimeException | Error e) {
                plan.discard();
                throw e;
            } finally {
                recording = null;
            }
            plan.launch();
        } finally {
            exit();
        }
    }

    /** Whether the calling thread is recording a plan (only the lock's holder can be). */
    boolean recording() {
        return recording != null && lock.isHeldByCurrentThread();
    }

    /** Fails when {@code what} (a copy or a wait) is attempted while a plan is recorded: it would run before the plan. */
    void refuseWhileRecording(String what) {
        if (recording()) {
            throw new IllegalStateException(what + " while a launch plan is recorded on " + deviceName
                    + ": it would run before the plan's kernels");
        }
    }

    /** Waits for the device; an asynchronous kernel failure is reported with {@code what}. */
    void sync(Supplier<String> what) {
        refuseWhileRecording("waiting for the device");
        int rc = JCudaDriver.cuCtxSynchronize();
        if (rc != CUDA_SUCCESS) {
            throw new CudaAttentionException(what.get() + " on " + deviceName, rc);
        }
    }

    void copyHtoD(CUdeviceptr dst, Pointer src, long bytes, String what) {
        refuseWhileRecording("a copy to the GPU for " + what);
        if (bytes > 0) {
            check(JCudaDriver.cuMemcpyHtoD(dst, src, bytes), "copy to GPU (" + bytes + " bytes) for " + what);
        }
    }

    void copyDtoH(Pointer dst, CUdeviceptr src, long bytes, Supplier<String> what) {
        refuseWhileRecording("a copy from the GPU");
        if (bytes > 0) {
            int rc = JCudaDriver.cuMemcpyDtoH(dst, src, bytes);
            if (rc != CUDA_SUCCESS) {
                throw new CudaAttentionException("copy from GPU (" + bytes + " bytes) after " + what.get(), rc);
            }
        }
    }

    void copyDtoD(CUdeviceptr dst, CUdeviceptr src, long bytes, String what) {
        refuseWhileRecording("a device copy for " + what);
        if (bytes > 0) {
            check(JCudaDriver.cuMemcpyDtoD(dst, src, bytes), "device copy (" + bytes + " bytes) for " + what);
        }
    }

    /** Unloads the module and releases the primary context. */
    void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            JCudaDriver.cuCtxSetCurrent(context);
            modules.forEach(JCudaDriver::cuModuleUnload);
            JCudaDriver.cuDevicePrimaryCtxRelease(device);
        } finally {
            lock.unlock();
        }
    }
}
