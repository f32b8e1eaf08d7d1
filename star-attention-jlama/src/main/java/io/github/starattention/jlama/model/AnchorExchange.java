package io.github.starattention.jlama.model;

import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;

/**
 * How phase 1 shares the anchor between hosts (distributed Star Attention). Every block after the first is encoded
 * after the anchor, whose KV is exactly the KV of block 0's first {@code a} tokens: the host that encodes block 0
 * publishes it layer by layer ({@link #sink}), and the other hosts take it from there ({@link #feed}) instead of
 * encoding the anchor again. A host waits for layer {@code l} only when its own block reaches layer {@code l}, so the
 * anchor's encoding overlaps theirs; if the feed fails, the host encodes the anchor itself (same KV, bit for bit).
 *
 * @param feed where to take the anchor from when block 0 is not encoded here, or {@code null} to encode it here
 * @param sink receives the anchor's KV layer by layer when block 0 is encoded here, or {@code null}
 */
public record AnchorExchange(Feed feed, Consumer<Layer> sink) {

    /** Nothing shared: the anchor is encoded (or copied from block 0) wherever it is needed. */
    public static final AnchorExchange NONE = new AnchorExchange(null, null);

    /** The anchor's KV at one layer, from the host that encodes block 0. */
    @FunctionalInterface
    public interface Feed {
        /** Completes with the anchor's K and V at {@code layer}, or exceptionally if they cannot be had. */
        CompletableFuture<Layer> layer(int layer);
    }

    /**
     * The anchor's K and V at {@code layer}: slots at positions {@code 0..tokens-1}, each
     * {@code [tokens][kvHeads][headDim]} fp32, post-RoPE.
     */
    public record Layer(int layer, int tokens, float[] k, float[] v) {
        public Layer {
            Objects.requireNonNull(k, "k");
            Objects.requireNonNull(v, "v");
            if (k.length != v.length || tokens <= 0 || k.length % tokens != 0) {
                throw new IllegalArgumentException("K and V of " + tokens + " tokens cannot hold " + k.length + " and "
                        + v.length + " floats");
            }
        }
    }
}
