package io.github.starattention.cuda;

import io.github.starattention.kv.HeapKvStore;
import io.github.starattention.kv.KvLayout;
import io.github.starattention.kv.KvStore;
import java.util.Arrays;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * A {@link KvStore} in GPU memory, read by {@link CudaAttentionKernel}.
 *
 * <p>Layout, per layer, one device buffer for K and one for V, head-major like {@link HeapKvStore} so that a kernel
 * streams the keys of one KV head contiguously: element {@code (head, slot, d)} is at
 * {@code (head * capacity + slot) * headDim + d}, stored as {@link KvDtype} (fp16 or bf16; {@link #put} converts
 * from fp32 and transposes on the GPU). Positions are one {@code int[capacity]} device buffer shared by all layers,
 * mirrored on the host for {@link #position(int)}. Capacity grows by doubling (a device-to-device copy of the filled
 * slots of each head); {@link #rollback(int)} keeps the capacity. {@link #close()} frees the GPU memory.
 */
public final class CudaKvStore implements KvStore {

    private final CudaAttentionKernel kernel;
    private final CudaRuntime rt;
    private final KvLayout layout;
    private final KvDtype dtype;
    private final long rowBytes;
    private final long slotBytes;
    private CUdeviceptr[] keys;
    private CUdeviceptr[] values;
    private CUdeviceptr positions;
    private int[] hostPositions;
    private int capacity;
    private int size;
    private boolean closed;

    CudaKvStore(CudaAttentionKernel kernel, CudaRuntime rt, KvLayout layout, KvDtype dtype) {
        this.kernel = kernel;
        this.rt = rt;
        this.layout = layout;
        this.dtype = dtype;
        this.rowBytes = (long) layout.rowLength() * dtype.bytes();
        this.slotBytes = (long) layout.headDim() * dtype.bytes();
        int cap = Math.max(16, layout.initialCapacity());
        this.keys = new CUdeviceptr[layout.layers()];
        this.values = new CUdeviceptr[layout.layers()];
        rt.enter();
        try {
            allocate(cap);
        } finally {
            rt.exit();
        }
        this.hostPositions = new int[cap];
        this.capacity = cap;
    }

    private void allocate(int cap) {
        CUdeviceptr[] k = new CUdeviceptr[layout.layers()];
        CUdeviceptr[] v = new CUdeviceptr[layout.layers()];
        CUdeviceptr p = null;
        boolean ok = false;
        try {
            for (int l = 0; l < layout.layers(); l++) {
                k[l] = rt.alloc(cap * rowBytes, "KV store " + layout + " K of layer " + l + " (" + cap + " slots)");
                v[l] = rt.alloc(cap * rowBytes, "KV store " + layout + " V of layer " + l + " (" + cap + " slots)");
            }
            p = rt.alloc((long) cap * Integer.BYTES, "KV store positions (" + cap + " slots)");
            ok = true;
        } finally {
            if (!ok) {
                for (int l = 0; l < layout.layers(); l++) {
                    rt.free(k[l]);
                    rt.free(v[l]);
                }
                rt.free(p);
            }
        }
        for (int l = 0; l < layout.layers(); l++) {
            if (keys[l] != null) {
                for (int h = 0; h < layout.kvHeads(); h++) {
                    long dst = h * cap * slotBytes;
                    long src = h * (long) capacity * slotBytes;
                    rt.copyDtoD(k[l].withByteOffset(dst), keys[l].withByteOffset(src), size * slotBytes,
                            "growing the KV store");
                    rt.copyDtoD(v[l].withByteOffset(dst), values[l].withByteOffset(src), size * slotBytes,
                            "growing the KV store");
                }
                rt.free(keys[l]);
                rt.free(values[l]);
            }
        }
        if (positions != null) {
            rt.copyDtoD(p, positions, (long) size * Integer.BYTES, "growing the KV store");
            rt.free(positions);
        }
        keys = k;
        values = v;
        positions = p;
    }

    @Override
    public KvLayout layout() {
        return layout;
    }

    /** Element type of K and V on the GPU. */
    public KvDtype dtype() {
        return dtype;
    }

    /** Slots allocated. */
    public int capacity() {
        return capacity;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public int position(int slot) {
        if (slot < 0 || slot >= size) {
            throw new IndexOutOfBoundsException("slot " + slot + " of " + size);
        }
        return hostPositions[slot];
    }

    /** Number of leading slots whose position is {@code <= p}. */
    int visibleKeys(int p) {
        int lo = 0;
        int hi = size;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (hostPositions[mid] <= p) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    @Override
    public int reserve(int[] newPositions) {
        checkOpen();
        int last = lastPosition();
        for (int p : newPositions) {
            if (p <= last) {
                throw new IllegalArgumentException("positions must increase: " + p + " after " + last);
            }
            last = p;
        }
        int n = newPositions.length;
        int first = size;
        rt.enter();
        try {
            ensureCapacity(size + n);
            rt.copyHtoD(positions.withByteOffset((long) size * Integer.BYTES), Pointer.to(newPositions),
                    (long) n * Integer.BYTES, "KV store positions");
        } finally {
            rt.exit();
        }
        System.arraycopy(newPositions, 0, hostPositions, size, n);
        size += n;
        return first;
    }

    private void ensureCapacity(int needed) {
        if (needed <= capacity) {
            return;
        }
        int newCap = (int) Math.min(Integer.MAX_VALUE - 8, Math.max(needed, 2L * capacity));
        allocate(newCap);
        hostPositions = Arrays.copyOf(hostPositions, newCap);
        capacity = newCap;
    }

    @Override
    public void put(int layer, int firstSlot, float[] k, float[] v, int offset, int tokens) {
        checkOpen();
        checkLayer(layer);
        if (firstSlot < 0 || tokens < 0 || firstSlot + tokens > size) {
            throw new IndexOutOfBoundsException("slots [" + firstSlot + ", " + (firstSlot + tokens) + ") of " + size);
        }
        long n = (long) tokens * layout.rowLength();
        if (offset < 0 || offset + n > k.length || offset + n > v.length) {
            throw new IndexOutOfBoundsException("K/V arrays of " + k.length + "/" + v.length + " floats hold no "
                    + tokens + " rows of " + layout.rowLength() + " at offset " + offset);
        }
        if (tokens == 0) {
            return;
        }
        rt.enter();
        try {
            kernel.writeKv(keys[layer], capacity, firstSlot, layout, dtype, k, offset, tokens);
            kernel.writeKv(values[layer], capacity, firstSlot, layout, dtype, v, offset, tokens);
        } finally {
            rt.exit();
        }
    }

    @Override
    public void appendFrom(KvStore source, int from, int to) {
        checkOpen();
        KvLayout sl = source.layout();
        if (sl.layers() != layout.layers() || sl.kvHeads() != layout.kvHeads() || sl.headDim() != layout.headDim()) {
            throw new IllegalArgumentException("layouts differ: " + sl + " vs " + layout);
        }
        if (from < 0 || to > source.size() || from > to) {
            throw new IndexOutOfBoundsException("slots [" + from + ", " + (to) + ") of " + source.size());
        }
        int n = to - from;
        int[] pos = new int[n];
        for (int i = 0; i < n; i++) {
            pos[i] = source.position(from + i);
        }
        if (source instanceof CudaKvStore src) {
            if (src.rt != rt) {
                throw new IllegalArgumentException("cannot copy between CUDA stores of different kernels");
            }
            if (src.dtype != dtype) {
                throw new IllegalArgumentException("cannot copy " + src.dtype + " KV into a " + dtype + " store");
            }
            src.checkOpen();
            int first = reserve(pos);
            rt.enter();
            try {
                for (int l = 0; l < layout.layers(); l++) {
                    for (int h = 0; h < layout.kvHeads(); h++) {
                        long dst = (h * (long) capacity + first) * slotBytes;
                        long from0 = (h * (long) src.capacity + from) * slotBytes;
                        rt.copyDtoD(keys[l].withByteOffset(dst), src.keys[l].withByteOffset(from0), n * slotBytes,
                                "appendFrom");
                        rt.copyDtoD(values[l].withByteOffset(dst), src.values[l].withByteOffset(from0), n * slotBytes,
                                "appendFrom");
                    }
                }
            } finally {
                rt.exit();
            }
        } else if (source instanceof HeapKvStore src) {
            int first = reserve(pos);
            int heads = layout.kvHeads();
            int d = layout.headDim();
            float[] k = new float[n * heads * d];
            float[] v = new float[n * heads * d];
            int[] slots = java.util.stream.IntStream.range(from, from + n).toArray();
            for (int l = 0; l < layout.layers(); l++) {
                src.rows(l, slots, k, v);
                put(l, first, k, v, 0, n);
            }
        } else {
            throw new IllegalArgumentException("cannot copy from " + source.getClass().getSimpleName()
                    + " into a CUDA store");
        }
    }

    @Override
    public void rollback(int mark) {
        if (mark < 0 || mark > size) {
            throw new IllegalArgumentException("mark " + mark + " is not in [0, " + size + "]");
        }
        size = mark;
    }

    @Override
    public long bytes() {
        return closed ? 0 : 2L * layout.layers() * capacity * rowBytes + (long) capacity * Integer.BYTES;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (!rt.isClosed()) {
            rt.enter();
            try {
                for (int l = 0; l < layout.layers(); l++) {
                    rt.free(keys[l]);
                    rt.free(values[l]);
                }
                rt.free(positions);
            } finally {
                rt.exit();
            }
        }
        keys = null;
        values = null;
        positions = null;
        hostPositions = null;
        size = 0;
        kernel.forget(this);
    }

    boolean isClosed() {
        return closed;
    }

    boolean ownedBy(CudaAttentionKernel k) {
        return kernel == k;
    }

    CUdeviceptr keys(int layer) {
        return keys[layer];
    }

    CUdeviceptr values(int layer) {
        return values[layer];
    }

    CUdeviceptr positionsPtr() {
        return positions;
    }

    private void checkLayer(int layer) {
        if (layer < 0 || layer >= layout.layers()) {
            throw new IndexOutOfBoundsException("layer " + layer + " of " + layout.layers());
        }
    }

    void checkOpen() {
        if (closed) {
            throw new IllegalStateException("KV store is closed");
        }
    }

    @Override
    public String toString() {
        return "CudaKvStore[" + layout + ", " + dtype + ", size=" + size + ", capacity=" + capacity + "]";
    }
}
