package io.github.starattention.jlama.model;

import io.github.starattention.kv.KvLayout;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Block 0's side of {@link AnchorExchange}: gathers the anchor's K/V rows chunk by chunk as the anchor is encoded
 * layer by layer, and hands each layer to the sink once all its rows are in.
 */
final class AnchorPublisher {

    private static final Logger log = LoggerFactory.getLogger(AnchorPublisher.class);

    private final int tokens;
    private final int rowFloats;
    private final Consumer<AnchorExchange.Layer> sink;
    private final float[][] keys;
    private final float[][] values;
    private final int[] rows;

    AnchorPublisher(int tokens, KvLayout layout, Consumer<AnchorExchange.Layer> sink) {
        this.tokens = tokens;
        this.rowFloats = layout.kvHeads() * layout.headDim();
        this.sink = sink;
        this.keys = new float[layout.layers()][];
        this.values = new float[layout.layers()][];
        this.rows = new int[layout.layers()];
    }

    /** The hook of the anchor's chunk starting at token {@code from}. */
    ChunkAttention.LayerHook forChunk(int from) {
        return new ChunkAttention.LayerHook() {
            @Override
            public void stored(int layer, float[] k, float[] v, int n) {
                collect(layer, from, k, v, n);
            }
        };
    }

    private void collect(int layer, int from, float[] k, float[] v, int n) {
        if (from == 0 && n == tokens) {
            publish(new AnchorExchange.Layer(layer, tokens, k, v)); // the whole anchor in one chunk: no copy
            return;
        }
        if (keys[layer] == null) {
            keys[layer] = new float[tokens * rowFloats];
            values[layer] = new float[tokens * rowFloats];
        }
        System.arraycopy(k, 0, keys[layer], from * rowFloats, n * rowFloats);
        System.arraycopy(v, 0, values[layer], from * rowFloats, n * rowFloats);
        rows[layer] += n;
        if (rows[layer] == tokens) {
            publish(new AnchorExchange.Layer(layer, tokens, keys[layer], values[layer]));
            keys[layer] = null;
            values[layer] = null;
        }
    }

    private void publish(AnchorExchange.Layer kv) {
        try {
            sink.accept(kv);
        } catch (RuntimeException e) {
            log.warn("the anchor's layer {} could not be published (the other hosts will encode it): {}",
                    kv.layer(), e.toString());
        }
    }
}
