package io.github.starattention.cuda;

import static jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR;
import static jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR;

import jcuda.driver.CUdevice;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * Finds out, once per JVM, whether the CUDA kernels can run here: the JCuda native library loads (it needs
 * {@code libcuda.so.1}), {@code cuInit} succeeds, a device exists and device 0 has compute capability 8.0 or more
 * (the kernels use {@code mma.sync} bf16/fp16, {@code cp.async}, {@code ldmatrix}). Never throws.
 *
 * <p>Setting the system property {@value #DISABLE_PROPERTY}{@code =true} makes the probe report "unavailable".
 */
public final class CudaProbe {

    /** System property that turns the GPU off for {@code Device.AUTO}. */
    public static final String DISABLE_PROPERTY = "starattention.cuda.disable";

    /**
     * Outcome of the probe.
     *
     * @param available whether {@code Device.CUDA} can be opened
     * @param devices number of CUDA devices seen (0 when the driver did not load)
     * @param detail the device (name, compute capability, driver version) or why CUDA is unusable
     */
    public record Result(boolean available, int devices, String detail) {
    }

    private static volatile Result result;

    private CudaProbe() {
    }

    /** Probes on the first call, then returns the cached result. */
    public static Result probe() {
        Result r = result;
        if (r == null) {
            synchronized (CudaProbe.class) {
                r = result;
                if (r == null) {
                    r = run();
                    result = r;
                }
            }
        }
        return r;
    }

    /** Shorthand for {@code probe().available()}. */
    public static boolean isAvailable() {
        return probe().available();
    }

    private static Result run() {
        if (Boolean.getBoolean(DISABLE_PROPERTY)) {
            return new Result(false, 0, "disabled by -D" + DISABLE_PROPERTY + "=true");
        }
        if (!jcudaOnClassPath()) {
            return new Result(false, 0, "JCuda is not on the class path (add the dependency org.jcuda:jcuda to run "
                    + "attention on a GPU; the star-attention command line has it)");
        }
        try {
            JCudaDriver.setExceptionsEnabled(false);
            int rc = JCudaDriver.cuInit(0);
            if (rc != CUresult.CUDA_SUCCESS) {
                return new Result(false, 0, "cuInit failed: " + CUresult.stringFor(rc));
            }
            int[] count = {0};
            rc = JCudaDriver.cuDeviceGetCount(count);
            if (rc != CUresult.CUDA_SUCCESS || count[0] <= 0) {
                return new Result(false, 0, "no CUDA device (" + CUresult.stringFor(rc) + ", count " + count[0] + ")");
            }
            CUdevice dev = new CUdevice();
            rc = JCudaDriver.cuDeviceGet(dev, 0);
            if (rc != CUresult.CUDA_SUCCESS) {
                return new Result(false, count[0], "cuDeviceGet(0) failed: " + CUresult.stringFor(rc));
            }
            int[] major = {0};
            int[] minor = {0};
            JCudaDriver.cuDeviceGetAttribute(major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
            JCudaDriver.cuDeviceGetAttribute(minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
            byte[] name = new byte[256];
            JCudaDriver.cuDeviceGetName(name, name.length, dev);
            int[] driver = {0};
            JCudaDriver.cuDriverGetVersion(driver);
            String desc = cString(name) + ", compute capability " + major[0] + "." + minor[0] + ", driver CUDA "
                    + driver[0] / 1000 + "." + (driver[0] % 1000) / 10 + ", " + count[0] + " device(s)";
            if (major[0] < 8) {
                return new Result(false, count[0], desc + ": the kernels need compute capability 8.0 or newer");
            }
            return new Result(true, count[0], desc);
        } catch (LinkageError | RuntimeException e) {
            // UnsatisfiedLinkError when libcuda.so.1 (or the JCuda natives for this platform) is missing,
            // NoClassDefFoundError after a failed static initialiser, CudaException on unsupported platforms.
            return new Result(false, 0, describe(e));
        }
    }

    /** First line of the error, plus the line naming the missing shared object when JCuda's message has one. */
    /**
     * For a setting that asks for CUDA explicitly: returns when CUDA is usable, else throws naming the setting, why
     * CUDA is not usable, and what to use {@code instead}.
     *
     * @throws IllegalArgumentException when {@link #isAvailable()} is false
     */
    public static void requireAvailable(String setting, String instead) {
        Result r = probe();
        if (!r.available()) {
            throw new IllegalArgumentException(setting + ": CUDA is not usable here (" + r.detail() + "); use "
                    + instead);
        }
    }

    /** JCuda is an optional dependency: library users who want no GPU leave it out. */
    private static boolean jcudaOnClassPath() {
        try {
            Class.forName("jcuda.driver.JCudaDriver", false, CudaProbe.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }

    static String describe(Throwable e) {
        String msg = String.valueOf(e.getMessage());
        String[] lines = msg.split("\\R");
        String d = e.getClass().getSimpleName() + ": " + lines[0].strip();
        for (String l : lines) {
            int at = l.indexOf(": cannot open shared object file");
            if (at > 0) {
                int start = l.lastIndexOf(": ", at - 1);
                d += " (" + l.substring(start < 0 ? 0 : start + 2).strip() + ")";
                break;
            }
        }
        return d;
    }

    static String cString(byte[] b) {
        int n = 0;
        while (n < b.length && b[n] != 0) {
            n++;
        }
        return new String(b, 0, n, java.nio.charset.StandardCharsets.US_ASCII);
    }
}
