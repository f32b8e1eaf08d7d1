package io.github.starattention.kv;

import java.util.Arrays;

/**
 * A {@link KvStore} on the Java heap, read by the CPU kernels.
 *
 * <p>Memory layout, per layer one {@code float[]} for K and one for V, both head-major so that a kernel streams
 * the keys of one KV head contiguously ({@code capacity * headDim} floats per head):
 * <ul>
 *   <li>V is row-major per slot: element {@code (head, slot, i)} is at {@code (head * capacity + slot) * headDim + i}
 *       ({@link #valueIndex}).</li>
 *   <li>K is stored in <em>panels</em> of {@value #KEY_PANEL} consecutive slots, each panel transposed to
 *       {@code [headDim][KEY_PANEL]}: element {@code (head, slot, i)} is at
 *       {@code (head * capacity + slot - slot % 16) * headDim + i * 16 + slot % 16} ({@link #keyIndex}). One
 *       vector load then reads dimension {@code i} of 16 keys, so the kernel scores 16 keys per FMA without a
 *       transpose; a panel is still {@code 16 * headDim} contiguous floats, so the memory footprint is unchanged.</li>
 * </ul>
 * With {@link KvPrecision#BF16} the same layout holds {@code short[]} bfloat16 bits instead ({@link #keysBf16},
 * {@link #valuesBf16}); the kernel widens one tile at a time.
 * Positions are one {@code int[capacity]} shared by all layers. Capacity is a multiple of {@value #CAPACITY_ALIGN}
 * (whole key tiles are always addressable), grows by doubling (a copy per head), and {@link #rollback(int)} keeps it.
 */
public final class HeapKvStore implements KvStore {

    /** Slots per transposed K panel, see the class comment. */
    public static final int KEY_PANEL = 16;

    /** Capacity is always a multiple of this many slots. */
    public static final int CAPACITY_ALIGN = 64;

    private final KvLayout layout;
    private final KvPrecision precision;
    /** fp32 K and V per layer; null with {@link KvPrecision#BF16}. */
    private float[][] keys;
    private float[][] values;
    /** bfloat16 K and V per layer; null with {@link KvPrecision#F32}. */
    private short[][] keys16;
    private short[][] values16;
    private int[] positions;
    private int capacity;
    private int size;
    private boolean closed;

    /** An fp32 store. */
    public HeapKvStore(KvLayout layout) {
        this(layout, KvPrecision.F32);
    }

    public HeapKvStore(KvLayout layout, KvPrecision precision) {
        this.layout = layout;
        this.precision = precision;
        this.capacity = alignCapacity(Math.max(CAPACITY_ALIGN, layout.initialCapacity()));
        int n = layout.kvHeads() * capacity * layout.headDim();
        if (precision == KvPrecision.F32) {
            this.keys = new float[layout.layers()][n];
            this.values = new float[layout.layers()][n];
        } else {
            this.keys16 = new short[layout.layers()][n];
            this.values16 = new short[layout.layers()][n];
        }
        this.positions = new int[capacity];
    }

    /** Element type of K and V. */
    public KvPrecision precision() {
        return precision;
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

    /** K of layer {@code layer} of an fp32 store, layout in the class comment. Valid until the next {@link #reserve}. */
    public float[] keys(int layer) {
        checkOpen();
        requirePrecision(KvPrecision.F32);
        return keys[layer];
    }

    /** V of layer {@code layer} of an fp32 store, layout in the class comment. Valid until the next {@link #reserve}. */
    public float[] values(int layer) {
        checkOpen();
        requirePrecision(KvPrecision.F32);
        return values[layer];
    }

    /** K of layer {@code layer} of a bfloat16 store (same layout). Valid until the next {@link #reserve}. */
    public short[] keysBf16(int layer) {
        checkOpen();
        requirePrecision(KvPrecision.BF16);
        return keys16[layer];
    }

    /** V of layer {@code layer} of a bfloat16 store (same layout). Valid until the next {@link #reserve}. */
    public short[] valuesBf16(int layer) {
        checkOpen();
        requirePrecision(KvPrecision.BF16);
        return values16[layer];
    }

    /** {@link #keys} of an fp32 store; of a bf16 store, a widened copy (for readers that are not the fast kernel). */
    public float[] keysAsF32(int layer) {
        checkOpen();
        return precision == KvPrecision.F32 ? keys[layer] : widened(keys16[layer]);
    }

    /** {@link #values} of an fp32 store; of a bf16 store, a widened copy. */
    public float[] valuesAsF32(int layer) {
        checkOpen();
        return precision == KvPrecision.F32 ? values[layer] : widened(values16[layer]);
    }

    private static float[] widened(short[] bits) {
        float[] r = new float[bits.length];
        for (int i = 0; i < bits.length; i++) {
            r[i] = KvPrecision.fromBf16(bits[i]);
        }
        return r;
    }

    /** Element {@code i} of the key of {@code (head, slot)} in layer {@code layer}, as fp32, whatever the precision. */
    public float key(int layer, int head, int slot, int i) {
        int at = keyIndex(head, slot, i);
        return precision == KvPrecision.F32 ? keys[layer][at] : KvPrecision.fromBf16(keys16[layer][at]);
    }

    /** Element {@code i} of the value of {@code (head, slot)} in layer {@code layer}, as fp32. */
    public float value(int layer, int head, int slot, int i) {
        int at = valueIndex(head, slot, i);
        return precision == KvPrecision.F32 ? values[layer][at] : KvPrecision.fromBf16(values16[layer][at]);
    }

    /**
     * K and V of {@code slots} at {@code layer}, as fp32, into {@code k} and {@code v}: {@code [slots][kvHeads][headDim]},
     * the layout {@link #put} takes (K is stored in transposed panels, maybe in bf16: gathered element by element).
     */
    public void rows(int layer, int[] slots, float[] k, float[] v) {
        int heads = layout.kvHeads();
        int d = layout.headDim();
        for (int s = 0; s < slots.length; s++) {
            for (int h = 0; h < heads; h++) {
                for (int i = 0; i < d; i++) {
                    k[(s * heads + h) * d + i] = key(layer, h, slots[s], i);
                    v[(s * heads + h) * d + i] = value(layer, h, slots[s], i);
                }
            }
        }
    }

    /** Index of element {@code i} of the key of {@code (head, slot)} in {@link #keys(int)}. */
    public int keyIndex(int head, int slot, int i) {
        return (head * capacity + (slot & -KEY_PANEL)) * layout.headDim() + i * KEY_PANEL + (slot & (KEY_PANEL - 1));
    }

    /** Index of element {@code i} of the value of {@code (head, slot)} in {@link #values(int)}. */
    public int valueIndex(int head, int slot, int i) {
        return (head * capacity + slot) * layout.headDim() + i;
    }

    /** Positions of slots {@code 0..size-1} (the array may be longer). */
    public int[] positions() {
        checkOpen();
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
        if (precision == KvPrecision.BF16) {
            short[] kl = keys16[layer];
            short[] vl = values16[layer];
            for (int t = 0; t < tokens; t++) {
                int src = offset + t * heads * d;
                for (int h = 0; h < heads; h++) {
                    int kd = keyIndex(h, firstSlot + t, 0);
                    int vd = valueIndex(h, firstSlot + t, 0);
                    for (int i = 0; i < d; i++) {
                        kl[kd + i * KEY_PANEL] = KvPrecision.toBf16(k[src + h * d + i]);
                        vl[vd + i] = KvPrecision.toBf16(v[src + h * d + i]);
                    }
                }
            }
            return;
        }
        float[] kl = keys[layer];
        float[] vl = values[layer];
        for (int t = 0; t < tokens; t++) {
            int src = offset + t * heads * d;
            for (int h = 0; h < heads; h++) {
                int slot = firstSlot + t;
                int kd = keyIndex(h, slot, 0);
                for (int i = 0; i < d; i++) {
                    kl[kd + i * KEY_PANEL] = k[src + h * d + i];
                }
                System.arraycopy(v, src + h * d, vl, valueIndex(h, slot, 0), d);
            }
        }
    }

    @Override
    public void appendFrom(KvStore source, int from, int to) {
        if (!(source instanceof HeapKvStore src)) {
            throw new IllegalArgumentException("cannot copy from " + source.getClass().getSimpleName() + " into a heap store");
        }
        checkOpen();
        src.checkOpen();
        if (!src.layout.equals(layout) && (src.layout.layers() != layout.layers()
                || src.layout.kvHeads() != layout.kvHeads() || src.layout.headDim() != layout.headDim())) {
            throw new IllegalArgumentException("layouts differ: " + src.layout + " vs " + layout);
        }
        if (src.precision != precision) {
            throw new IllegalArgumentException("cannot copy " + src.precision + " KV into a " + precision + " store");
        }
        if (from < 0 || to > src.size || from > to) {
            throw new IndexOutOfBoundsException("slots [" + from + ", " + to + ") of " + src.size);
        }
        int first = reserve(Arrays.copyOfRange(src.positions, from, to));
        int n = to - from;
        int d = layout.headDim();
        for (int l = 0; l < layout.layers(); l++) {
            Object srcKeys = precision == KvPrecision.F32 ? src.keys[l] : src.keys16[l];
            Object dstKeys = precision == KvPrecision.F32 ? keys[l] : keys16[l];
            Object srcValues = precision == KvPrecision.F32 ? src.values[l] : src.values16[l];
            Object dstValues = precision == KvPrecision.F32 ? values[l] : values16[l];
            for (int h = 0; h < layout.kvHeads(); h++) {
                copyKeys(src, srcKeys, h, from, dstKeys, first, n);
                System.arraycopy(srcValues, src.valueIndex(h, from, 0), dstValues, valueIndex(h, first, 0), n * d);
            }
        }
    }

    @Override
    public void rollback(int mark) {
        checkOpen();
        if (mark < 0 || mark > size) {
            throw new IllegalArgumentException("mark " + mark + " is not in [0, " + size + "]");
        }
        size = mark;
    }

    @Override
    public long bytes() {
        return closed ? 0 : 2L * layout.layers() * layout.kvHeads() * (long) capacity * layout.headDim()
                * precision.bytes() + (long) capacity * Integer.BYTES;
    }

    @Override
    public void close() {
        closed = true;
        keys = null;
        values = null;
        keys16 = null;
        values16 = null;
        positions = null;
        size = 0;
    }

    private void requirePrecision(KvPrecision wanted) {
        if (precision != wanted) {
            throw new IllegalStateException("this KV store holds " + precision + ", not " + wanted);
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("KV store is closed");
        }
    }

    /** Copies the keys of {@code n} slots of one head; whole panels move with one copy when the slots line up. */
    private void copyKeys(HeapKvStore src, Object from, int head, int srcSlot, Object to, int dstSlot, int n) {
        int d = layout.headDim();
        int done = 0;
        if (((srcSlot ^ dstSlot) & (KEY_PANEL - 1)) == 0) {
            while (done < n && ((dstSlot + done) & (KEY_PANEL - 1)) != 0) {
                copyKey(src, from, head, srcSlot + done, to, dstSlot + done);
                done++;
            }
            int whole = (n - done) & -KEY_PANEL;
            System.arraycopy(from, src.keyIndex(head, srcSlot + done, 0), to, keyIndex(head, dstSlot + done, 0), whole * d);
            done += whole;
        }
        for (; done < n; done++) {
            copyKey(src, from, head, srcSlot + done, to, dstSlot + done);
        }
    }

    private void copyKey(HeapKvStore src, Object from, int head, int srcSlot, Object to, int dstSlot) {
        int s = src.keyIndex(head, srcSlot, 0);
        int t = keyIndex(head, dstSlot, 0);
        for (int i = 0; i < layout.headDim(); i++) {
            System.arraycopy(from, s + i * KEY_PANEL, to, t + i * KEY_PANEL, 1);
        }
    }

    private static int alignCapacity(int slots) {
        return (slots + CAPACITY_ALIGN - 1) & -CAPACITY_ALIGN;
    }

    private void ensureCapacity(int needed) {
        if (needed <= capacity) {
            return;
        }
        int newCap = alignCapacity(Math.max(needed, capacity * 2));
        int d = layout.headDim();
        for (int l = 0; l < layout.layers(); l++) {
            if (precision == KvPrecision.F32) {
                keys[l] = (float[]) regrow(keys[l], new float[layout.kvHeads() * newCap * d], newCap, d);
                values[l] = (float[]) regrow(values[l], new float[layout.kvHeads() * newCap * d], newCap, d);
            } else {
                keys16[l] = (short[]) regrow(keys16[l], new short[layout.kvHeads() * newCap * d], newCap, d);
                values16[l] = (short[]) regrow(values16[l], new short[layout.kvHeads() * newCap * d], newCap, d);
            }
        }
        positions = Arrays.copyOf(positions, newCap);
        capacity = newCap;
    }

    /** Both layouts keep a head's slots in order within its {@code capacity * headDim} floats, whole panels included. */
    private Object regrow(Object old, Object n, int newCap, int d) {
        int used = (size + KEY_PANEL - 1) & -KEY_PANEL;
        for (int h = 0; h < layout.kvHeads(); h++) {
            System.arraycopy(old, h * capacity * d, n, h * newCap * d, used * d);
        }
        return n;
    }
}
