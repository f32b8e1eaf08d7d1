package io.github.starattention.jlama.model;

import io.github.starattention.kv.KvLayout;
import io.github.starattention.kv.KvStore;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/**
 * The anchor of a block whose host does not encode block 0 ({@link AnchorExchange#feed}): a store of the anchor's
 * slots, each layer filled from the feed just before the block's first chunk attends at that layer. All layers are
 * asked for at once, so they arrive while the block's earlier layers are computed; each wait is bounded by the feed's
 * own request timeout.
 */
final class AnchorReceiver implements ChunkAttention.LayerHook {

    private final KvStore store;
    private final KvLayout layout;
    private final int tokens;
    private final List<CompletableFuture<AnchorExchange.Layer>> layers;
    private final boolean[] filled;

    /** Asks {@code feed} for every layer of the anchor's {@code tokens}, to be put into the empty {@code store}. */
    AnchorReceiver(AnchorExchange.Feed feed, KvStore store, KvLayout layout, int tokens) {
        this.store = store;
        this.layout = layout;
        this.tokens = tokens;
        store.reserve(ContextEncoder.range(0, tokens));
        this.layers = new ArrayList<>(layout.layers());
        for (int l = 0; l < layout.layers(); l++) {
            layers.add(feed.layer(l));
        }
        this.filled = new boolean[layout.layers()];
    }

    KvStore store() {
        return store;
    }

    @Override
    public void beforeAttention(int layer) {
        if (filled[layer]) {
            return;
        }
        AnchorExchange.Layer kv;
        try {
            kv = layers.get(layer).join();
        } catch (CompletionException | CancellationException e) {
            throw new AnchorUnavailableException(layer, e.getCause() != null ? e.getCause() : e);
        }
        int floats = tokens * layout.kvHeads() * layout.headDim();
        if (kv.layer() != layer || kv.tokens() != tokens || kv.k().length != floats) {
            throw new AnchorUnavailableException(layer, new IllegalStateException("received layer " + kv.layer()
                    + " of " + kv.tokens() + " tokens (" + kv.k().length + " floats), expected layer " + layer
                    + " of " + tokens + " tokens (" + floats + " floats)"));
        }
        store.put(layer, 0, kv.k(), kv.v(), 0, tokens);
        filled[layer] = true;
    }
}
