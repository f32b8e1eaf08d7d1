package io.github.starattention.kv;

/**
 * Shape of a KV store.
 *
 * @param layers number of transformer layers
 * @param kvHeads number of key/value heads
 * @param headDim head dimension
 * @param initialCapacity slots reserved up front (grows on demand)
 */
public record KvLayout(int layers, int kvHeads, int headDim, int initialCapacity) {

    public KvLayout {
        if (layers <= 0 || kvHeads <= 0 || headDim <= 0 || initialCapacity < 0) {
            throw new IllegalArgumentException("bad KV layout: layers=" + layers + " kvHeads=" + kvHeads
                    + " headDim=" + headDim + " capacity=" + initialCapacity);
        }
    }

    /** Floats per token per layer for K (or V): {@code kvHeads * headDim}. */
    public int rowLength() {
        return kvHeads * headDim;
    }

    /** Bytes of K and V per token over all layers in fp32. */
    public long bytesPerToken() {
        return 2L * layers * rowLength() * Float.BYTES;
    }
}
