package io.github.starattention.kv;

import java.util.Arrays;

/**
 * A {@link KvStore} on the Java heap, read by the CPU kernels.
 *
 * <p>Memory layout, per layer, one {@code float[]} for K and one for V, head-major so that a kernel streams the
 * keys of one KV head contiguously: element {@code (head, slot, d)} is at {@code (head * capacity + slot) *
 * headDim + d}. Positions are one {@code int[capacity]} shared by all layers. Capacity grows by doubling (a copy per
 * head); {@link #rollback(int)} keeps the capacity.
 */
public final class HeapKvStore implements KvStore {

    private final KvLayout layout;
    private float[][] keys;
    private float[][] values;
    private int[] positions;
    private int capacity;
    private int size;
    private boolean closed;

    public HeapKvStore(KvLayout layout) {
        this.layout = layout;
        this.capacity = Math.max(16, layout.initialCapacity());
        this.keys = new float[layout.layers()][];
        this.values = new float[layout.layers()][];
        for (int l = 0; l < layout.layers(); l++) {
            keys[l] = new float[layout.kvHeads() * capacity * layout.headDim()];
            values[l] = new float[layout.kvHeads() * capacity * layout.headDim()];
        }
        this.positions = new int[capacity];
    }

    @Override
    public KvLayout layout() {
        return layout;
    }

    @Override
    public int size() {
        return size;
    }

    /** Slots allocated per head; the stride between heads in {@link #keys(int)} is {@code capacity * headDim}. */
    public int capacity() {
        return capacity;
    }

    /** K of layer {@code layer}, layout in the class comment. Valid until the next {@link #reserve}. */
    public float[] keys(int layer) {
        return keys[layer];
    }

    /** V of layer {@code layer}, layout in the class comment. Valid until the next {@link #reserve}. */
    public float[] values(int layer) {
        return values[layer];
    }

    /** Positions of slots {@code 0..size-1} (the array may be longer). */
    public int[] positions() {
        return positions;
    }

    @Override
    public int position(int slot) {
        if (slot < 0 || slot >= size) {
            throw new IndexOutOfBoundsException("slot " + slot + " of " + size);
        }
        return positions[slot];
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
        ensureCapacity(size + newPositions.length);
        System.arraycopy(newPositions, 0, positions, size, newPositions.length);
        int first = size;
        size += newPositions.length;
        return first;
    }

    @Override
    public void put(int layer, int firstSlot, float[] k, float[] v, int offset, int tokens) {
        checkOpen();
        if (firstSlot < 0 || firstSlot + tokens > size) {
            throw new IndexOutOfBoundsException("slots [" + firstSlot + ", " + (firstSlot + tokens) + ") of " + size);
        }
        int heads = layout.kvHeads();
        int d = layout.headDim();
        float[] kl = keys[layer];
        float[] vl = values[layer];
        for (int t = 0; t < tokens; t++) {
            int src = offset + t * heads * d;
            for (int h = 0; h < heads; h++) {
                int dst = (h * capacity + firstSlot + t) * d;
                System.arraycopy(k, src + h * d, kl, dst, d);
                System.arraycopy(v, src + h * d, vl, dst, d);
            }
        }
    }

    @Override
    public void appendFrom(KvStore source, int from, int to) {
        if (!(source instanceof HeapKvStore src)) {
            throw new IllegalArgumentException("cannot copy from " + source.getClass().getSimpleName() + " into a heap store");
        }
        if (!src.layout.equals(layout) && (src.layout.layers() != layout.layers()
                || src.layout.kvHeads() != layout.kvHeads() || src.layout.headDim() != layout.headDim())) {
            throw new IllegalArgumentException("layouts differ: " + src.layout + " vs " + layout);
        }
        if (from < 0 || to > src.size || from > to) {
            throw new IndexOutOfBoundsException("slots [" + from + ", " + to + ") of " + src.size);
        }
        int first = reserve(Arrays.copyOfRange(src.positions, from, to));
        int n = to - from;
        int d = layout.headDim();
        for (int l = 0; l < layout.layers(); l++) {
            for (int h = 0; h < layout.kvHeads(); h++) {
                System.arraycopy(src.keys[l], (h * src.capacity + from) * d, keys[l], (h * capacity + first) * d, n * d);
                System.arraycopy(src.values[l], (h * src.capacity + from) * d, values[l], (h * capacity + first) * d, n * d);
            }
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
        return closed ? 0 : 2L * layout.layers() * layout.kvHeads() * (long) capacity * layout.headDim() * Float.BYTES
                + (long) capacity * Integer.BYTES;
    }

    @Override
    public void close() {
        closed = true;
        keys = null;
        values = null;
        positions = null;
        size = 0;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("KV store is closed");
        }
    }

    private void ensureCapacity(int needed) {
        if (needed <= capacity) {
            return;
        }
        int newCap = Math.max(needed, capacity * 2);
        int d = layout.headDim();
        for (int l = 0; l < layout.layers(); l++) {
            keys[l] = regrow(keys[l], newCap, d);
            values[l] = regrow(values[l], newCap, d);
        }
        positions = Arrays.copyOf(positions, newCap);
        capacity = newCap;
    }

    private float[] regrow(float[] old, int newCap, int d) {
        float[] n = new float[layout.kvHeads() * newCap * d];
        for (int h = 0; h < layout.kvHeads(); h++) {
            System.arraycopy(old, h * capacity * d, n, h * newCap * d, size * d);
        }
        return n;
    }
}
