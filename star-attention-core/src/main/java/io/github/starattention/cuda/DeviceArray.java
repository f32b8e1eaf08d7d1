package io.github.starattention.cuda;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * A grow-only allocation of GPU memory on one {@link CudaLayers} device, for the activations of a forward pass.
 * Not thread-safe: one pass uses an array at a time. {@link #close()} frees it.
 */
public final class DeviceArray implements AutoCloseable {

    private final CudaRuntime rt;
    private final String what;
    private CUdeviceptr ptr;
    private long bytes;

    DeviceArray(CudaRuntime rt, String what) {
        this.rt = rt;
        this.what = what;
    }

    /** Makes room for {@code need} bytes (contents are lost when it grows); returns this array. */
    public DeviceArray ensure(long need) {
        if (ptr == null || need > bytes) {
            rt.enter();
            try {
                rt.free(ptr);
                ptr = null;
                long n = Math.max(need, 1L << 12);
                n = (n + (1L << 16) - 1) >>> 16 << 16;
                ptr = rt.alloc(n, what);
                bytes = n;
            } finally {
                rt.exit();
            }
        }
        return this;
    }

    /** Bytes allocated. */
    public long bytes() {
        return bytes;
    }

    CUdeviceptr at(long byteOffset) {
        if (ptr == null || byteOffset < 0 || byteOffset > bytes) {
            throw new IllegalStateException(what + ": offset " + byteOffset + " outside " + bytes + " bytes");
        }
        return byteOffset == 0 ? ptr : ptr.withByteOffset(byteOffset);
    }

    CUdeviceptr ptr() {
        return at(0);
    }

    /** Copies {@code values} to the start of the array (growing it if needed). */
    public void upload(int[] values) {
        long n = (long) values.length * Integer.BYTES;
        ensure(n);
        copyIn(0, Pointer.to(values), n);
    }

    /** Copies {@code values} to the start of the array (growing it if needed). */
    public void upload(float[] values) {
        ensure((long) values.length * Float.BYTES);
        upload(0, values);
    }

    /** Copies {@code values} to byte offset {@code byteOffset}, which must lie within the array. */
    public void upload(long byteOffset, float[] values) {
        copyIn(byteOffset, Pointer.to(values), (long) values.length * Float.BYTES);
    }

    /** Copies {@code out.length} floats from byte offset {@code byteOffset} into {@code out} (waits for the GPU). */
    public void download(long byteOffset, float[] out) {
        copyOut(byteOffset, Pointer.to(out), (long) out.length * Float.BYTES);
    }

    /** Copies {@code out.length} ints from byte offset {@code byteOffset} into {@code out} (waits for the GPU). */
    public void download(long byteOffset, int[] out) {
        copyOut(byteOffset, Pointer.to(out), (long) out.length * Integer.BYTES);
    }

    private void copyIn(long byteOffset, Pointer src, long n) {
        checkRange(byteOffset, n);
        rt.enter();
        try {
            rt.copyHtoD(at(byteOffset), src, n, what);
        } finally {
            rt.exit();
        }
    }

    private void copyOut(long byteOffset, Pointer dst, long n) {
        checkRange(byteOffset, n);
        rt.enter();
        try {
            rt.copyDtoH(dst, at(byteOffset), n, () -> what);
        } finally {
            rt.exit();
        }
    }

    private void checkRange(long off, long n) {
        if (ptr == null || off < 0 || off + n > bytes) {
            throw new IndexOutOfBoundsException(what + ": bytes [" + off + ", " + (off + n) + ") of " + bytes);
        }
    }

    @Override
    public void close() {
        if (ptr != null && !rt.isClosed()) {
            rt.enter();
            try {
                rt.free(ptr);
            } finally {
                rt.exit();
            }
        }
        ptr = null;
        bytes = 0;
    }

    @Override
    public String toString() {
        return "DeviceArray[" + what + ", " + bytes + " bytes]";
    }
}
