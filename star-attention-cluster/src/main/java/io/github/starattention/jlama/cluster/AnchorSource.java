package io.github.starattention.jlama.cluster;

import io.github.starattention.jlama.model.AnchorExchange;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The anchor's KV of one context session on the host that encodes its block 0, layer by layer, for the hosts that
 * encode the later blocks ({@link io.github.starattention.wire.WireMessage.AnchorRequest}). A request may arrive
 * before the layer is encoded, or even shortly before the host's own prefill request: it is answered as soon as the
 * layer is there. A source is {@linkplain #claim() claimed} when a prefill request with block 0 arrives; one asked for
 * but never claimed is failed after a short grace, so a host asking the wrong host (one that lost the session) soon
 * encodes the anchor itself. Kept while the host holds the session, so that blocks taken over after a failover get it
 * too; it holds one copy of the anchor's KV ({@code a x layers x kvHeads x headDim x 8} bytes).
 */
final class AnchorSource {

    private final List<CompletableFuture<AnchorExchange.Layer>> layers;
    private final long created = System.nanoTime();
    private volatile boolean claimed;

    AnchorSource(int layers) {
        this.layers = new ArrayList<>(layers);
        for (int l = 0; l < layers; l++) {
            this.layers.add(new CompletableFuture<>());
        }
    }

    /** Marks this source as one this host will fill: a prefill request with block 0 of the session arrived. */
    void claim() {
        claimed = true;
    }

    boolean claimed() {
        return claimed;
    }

    /** Completes with the anchor's KV at {@code layer} once it is encoded here. */
    CompletableFuture<AnchorExchange.Layer> layer(int layer) {
        return layers.get(layer);
    }

    /** Called by block 0's encoding as each layer of the anchor is complete. */
    void publish(AnchorExchange.Layer kv) {
        layers.get(kv.layer()).complete(kv);
    }

    /** Fails the layers not published yet: whoever waits for them encodes the anchor itself. */
    void fail(String why) {
        for (CompletableFuture<AnchorExchange.Layer> f : layers) {
            f.completeExceptionally(new IllegalStateException(why));
        }
    }

    /** Nanoseconds since this source was created ({@link System#nanoTime()} based). */
    long ageNanos() {
        return System.nanoTime() - created;
    }

    /** Bytes of the anchor KV held. */
    long bytes() {
        long n = 0;
        for (CompletableFuture<AnchorExchange.Layer> f : layers) {
            AnchorExchange.Layer kv = f.isDone() && !f.isCompletedExceptionally() ? f.join() : null;
            if (kv != null) {
                n += 8L * kv.k().length;
            }
        }
        return n;
    }
}
