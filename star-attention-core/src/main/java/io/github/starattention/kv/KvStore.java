package io.github.starattention.kv;

/**
 * A KV cache with compact slots and an explicit position id per slot.
 *
 * <p>Slots {@code 0..size-1} hold tokens in append order; slot {@code i} carries position id {@link #position(int)},
 * and positions are strictly increasing, so the keys a token at position {@code p} may see are always a prefix of
 * the store. Keys are stored after RoPE and are never rotated again.
 *
 * <p>Appending is two-step, because a forward pass fills one layer at a time: {@link #reserve(int[])} adds slots
 * with their positions (for all layers), then {@link #put} writes each layer's K and V rows for those slots before
 * that layer attends. {@link #mark()} / {@link #rollback(int)} drop everything appended after a mark (a question's
 * KV after it has been answered). Stores are not thread-safe; one session uses one store at a time.
 */
public interface KvStore extends AutoCloseable {

    KvLayout layout();

    /** Number of filled slots. */
    int size();

    /** Position id of slot {@code slot}. */
    int position(int slot);

    /** Position id of the last slot, or -1 when empty. */
    default int lastPosition() {
        return size() == 0 ? -1 : position(size() - 1);
    }

    /**
     * Adds {@code positions.length} slots at the end and returns the first new slot. Positions must be strictly
     * increasing and greater than {@link #lastPosition()}.
     */
    int reserve(int[] positions);

    /**
     * Writes K and V for {@code tokens} slots starting at {@code firstSlot} in layer {@code layer}.
     *
     * @param k {@code [tokens][kvHeads][headDim]} fp32, post-RoPE, starting at {@code offset}
     * @param v same layout as {@code k}
     */
    void put(int layer, int firstSlot, float[] k, float[] v, int offset, int tokens);

    /** Appends slots {@code [from, to)} of {@code source} (all layers, with their positions). */
    void appendFrom(KvStore source, int from, int to);

    /** The current size, to pass to {@link #rollback(int)}. */
    default int mark() {
        return size();
    }

    /** Drops every slot at or after {@code mark}. */
    void rollback(int mark);

    /** Bytes of memory held (capacity, not size). */
    long bytes();

    /** Frees the memory; the store is unusable afterwards. */
    @Override
    void close();
}
