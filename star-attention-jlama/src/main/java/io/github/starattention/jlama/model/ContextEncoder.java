package io.github.starattention.jlama.model;

import com.github.tjake.jlama.tensor.AbstractTensor;
import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.kv.KvLayout;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.Block;
import io.github.starattention.plan.BlockPlan;
import io.github.starattention.rope.RotaryEmbedding;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.Consumer;
import java.util.function.IntConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Forward passes of a {@link StarLlamaModel} over our KV stores: phase 1 (anchored blockwise context encoding) and
 * the steps of phase 2. Thread-safe: every call works on the stores it is given, and passes over the shared model
 * take turns chunk by chunk (see {@link StarLlamaModel}).
 *
 * <p>Long inputs are cut into chunks of {@link #chunkSize()} tokens; each chunk runs through all layers before the
 * next, attending to the chunks before it (their KV is already in the store) and causally to itself.
 */
public final class ContextEncoder {

    private static final Logger log = LoggerFactory.getLogger(ContextEncoder.class);

    /** Default chunk: large enough for efficient matrix products, small enough to bound activation memory. */
    public static final int DEFAULT_CHUNK = 512;

    /** Slots reserved beyond the last block for query and answer tokens, so a first question does not regrow it. */
    static final int QUERY_SLACK = 512;

    private final StarLlamaModel model;
    private final AttentionKernel kernel;
    private final RotaryEmbedding rope;
    private final KvLayout layout;
    private final int chunkSize;

    public ContextEncoder(StarLlamaModel model, AttentionKernel kernel, RotaryEmbedding rope, int chunkSize) {
        this.model = model;
        this.kernel = kernel;
        this.rope = rope;
        var c = model.getConfig();
        this.layout = new KvLayout(c.numberOfLayers, c.numberOfKeyValueHeads, c.headSize, 0);
        this.chunkSize = chunkSize;
    }

    public int chunkSize() {
        return chunkSize;
    }

    public AttentionKernel kernel() {
        return kernel;
    }

    /** A new empty store sized for {@code tokens} slots. */
    public KvStore newStore(int tokens) {
        return kernel.createStore(new KvLayout(layout.layers(), layout.kvHeads(), layout.headDim(), tokens));
    }

    /**
     * Appends {@code tokens} at {@code positions} to {@code target}, attending to {@code prefix} (earlier
     * partitions, e.g. the anchor) and to {@code target}. Calls {@code progress} with the number of tokens done after
     * each chunk. Returns the logits of the last token when {@code wantLogits}, else {@code null}.
     */
    public float[] append(int[] tokens, int[] positions, KvStore target, List<KvStore> prefix,
                          AttentionCall.RemotePartitions remote, boolean wantLogits, IntConsumer progress) {
        return append(tokens, positions, target, prefix, remote, wantLogits, progress, null);
    }

    private float[] append(int[] tokens, int[] positions, KvStore target, List<KvStore> prefix,
                           AttentionCall.RemotePartitions remote, boolean wantLogits, IntConsumer progress,
                           ChunkHooks hooks) {
        List<KvStore> sources = new ArrayList<>(prefix);
        sources.add(target);
        float[] logits = null;
        for (int from = 0; from < tokens.length; from += chunkSize) {
            int to = Math.min(tokens.length, from + chunkSize);
            int[] pos = Arrays.copyOfRange(positions, from, to);
            int first = target.reserve(pos);
            AttentionCall call = new AttentionCall(kernel, rope, pos, target, first, sources, remote,
                    hooks == null ? null : hooks.forChunk(from));
            boolean last = wantLogits && to == tokens.length;
            logits = forward(Arrays.copyOfRange(tokens, from, to), call, last);
            progress.accept(to);
        }
        return logits;
    }

    /**
     * {@link #append} with the chunks run layer by layer ({@link StarLlamaModel#forwardLayerMajor}): the same KV, but
     * each layer is done for every chunk before the next starts, so a layer's input from elsewhere is needed only
     * then, and a layer's output is complete early.
     */
    private void appendLayerMajor(int[] tokens, int[] positions, KvStore target, List<KvStore> prefix,
                                  ChunkHooks hooks, IntConsumer progress) {
        List<KvStore> sources = new ArrayList<>(prefix);
        sources.add(target);
        int n = (tokens.length + chunkSize - 1) / chunkSize;
        int[][] chunks = new int[n][];
        AttentionCall[] calls = new AttentionCall[n];
        for (int i = 0; i < n; i++) {
            int from = i * chunkSize;
            int to = Math.min(tokens.length, from + chunkSize);
            int[] pos = Arrays.copyOfRange(positions, from, to);
            // later chunks' slots are reserved before earlier chunks attend: their positions are higher, so unseen
            calls[i] = new AttentionCall(kernel, rope, pos, target, target.reserve(pos), sources, null, hooks.forChunk(from));
            chunks[i] = Arrays.copyOfRange(tokens, from, to);
        }
        int layers = layout.layers();
        model.forwardLayerMajor(chunks, calls, layer -> progress.accept((int) ((long) tokens.length * (layer + 1) / layers)));
    }

    /** The {@link AttentionCall.LayerHook} of the chunk starting at token {@code from} of an append. */
    @FunctionalInterface
    private interface ChunkHooks {
        AttentionCall.LayerHook forChunk(int from);
    }

    private float[] forward(int[] chunk, AttentionCall call, boolean wantLogits) {
        try (AbstractTensor hidden = model.forward(chunk, call)) {
            return wantLogits ? model.logits(hidden, chunk.length - 1) : null;
        }
    }

    /**
     * Phase 1 for {@code blocks} of {@code plan} (in context order) with nothing shared with other hosts; see
     * {@link #encodeBlocks(BlockPlan, int[], List, boolean, AnchorExchange, IntConsumer)}.
     */
    public List<KvStore> encodeBlocks(BlockPlan plan, int[] context, List<Block> blocks, boolean recomputeAnchor,
                                      IntConsumer progress) {
        return encodeBlocks(plan, context, blocks, recomputeAnchor, AnchorExchange.NONE, progress);
    }

    /**
     * Phase 1 for {@code blocks} of {@code plan} (in context order): block 0 is encoded alone; every other block with
     * the anchor's KV as a prefix, the anchor (context tokens {@code 0..a-1} at positions {@code 0..a-1}) being
     * obtained once and reused, and dropped at the end. Returns one store per block, holding only that block's tokens.
     *
     * <p>When the plan has several blocks, block 0 is chunked as the anchor is, up to {@code a} and then on from
     * there: the anchor's KV is then the same, bit for bit, whether copied from block 0, encoded again, or received
     * from the host that encodes block 0. That host encodes the anchor's chunks layer by layer, and a host receiving
     * it encodes its block layer by layer ({@link StarLlamaModel#forwardLayerMajor}), so it waits for the anchor
     * about one layer's time, not the anchor's whole encoding.
     *
     * @param context all context tokens (BOS first)
     * @param recomputeAnchor encode the anchor on its own even when block 0 is among {@code blocks}
     * @param exchange where the anchor comes from when block 0 is not among {@code blocks}, and where block 0's
     *     anchor goes; a feed that fails makes this method encode the anchor here and encode the block again
     * @param progress receives the number of context tokens of {@code blocks} encoded so far
     */
    public List<KvStore> encodeBlocks(BlockPlan plan, int[] context, List<Block> blocks, boolean recomputeAnchor,
                                      AnchorExchange exchange, IntConsumer progress) {
        requireMemory(plan, blocks);
        List<KvStore> stores = new ArrayList<>(blocks.size());
        KvStore anchor = null;
        RemoteAnchor remoteAnchor = null;
        int done = 0;
        try {
            int a = plan.blockCount() > 1 ? plan.effectiveAnchor() : 0;
            for (Block block : blocks) {
                long t0 = System.nanoTime();
                int slack = block.index() == plan.blockCount() - 1 ? QUERY_SLACK : 0;
                int base = done;
                IntConsumer blockProgress = n -> progress.accept(base + n);
                KvStore store;
                if (block.index() == 0) {
                    store = encodeBlock0(block, slack, context, a, exchange.sink(), blockProgress);
                } else if (a == 0) {
                    store = encodeBlock(block, slack, context, List.of(), null, blockProgress);
                } else {
                    if (anchor == null) {
                        if (!recomputeAnchor && !stores.isEmpty() && blocks.getFirst().index() == 0) {
                            anchor = prefixCopy(stores.getFirst(), a);
                        } else if (exchange.feed() != null) {
                            remoteAnchor = new RemoteAnchor(exchange.feed(), a);
                            anchor = remoteAnchor.store;
                        } else {
                            anchor = encodeAnchor(context, a);
                        }
                    }
                    try {
                        store = encodeBlock(block, slack, context, List.of(anchor), remoteAnchor, blockProgress);
                    } catch (AnchorUnavailableException e) {
                        log.warn("block {}: {}; encoding the anchor here instead", block.index(), e.getMessage());
                        KvStore unusable = anchor;
                        anchor = null;
                        remoteAnchor = null;
                        unusable.close();
                        anchor = encodeAnchor(context, a);
                        store = encodeBlock(block, slack, context, List.of(anchor), null, blockProgress);
                    }
                }
                stores.add(store);
                done += block.length();
                log.debug("block {} [{}, {}) encoded in {} ms (anchor {}{})", block.index(), block.start(), block.end(),
                        (System.nanoTime() - t0) / 1_000_000, block.index() == 0 ? 0 : a,
                        remoteAnchor != null ? ", from the host of block 0" : "");
            }
        } catch (RuntimeException e) {
            stores.forEach(KvStore::close);
            throw e;
        } finally {
            if (anchor != null) {
                anchor.close();
            }
        }
        return stores;
    }

    private KvStore encodeBlock(Block block, int slack, int[] context, List<KvStore> prefix, RemoteAnchor gate,
                                IntConsumer progress) {
        int[] tokens = Arrays.copyOfRange(context, block.start(), block.end());
        int[] positions = range(block.start(), block.end());
        return filled(block.length() + slack, store -> {
            if (gate == null) {
                append(tokens, positions, store, prefix, null, false, progress, null);
            } else {
                appendLayerMajor(tokens, positions, store, prefix, from -> gate, progress);
            }
        });
    }

    private KvStore encodeBlock0(Block block, int slack, int[] context, int a, Consumer<AnchorExchange.Layer> sink,
                                 IntConsumer progress) {
        if (a == 0) {
            return encodeBlock(block, slack, context, List.of(), null, progress);
        }
        return filled(block.length() + slack, store -> {
            appendAnchor(context, a, store, sink, progress);
            append(Arrays.copyOfRange(context, a, block.end()), range(a, block.end()), store, List.of(), null, false,
                    n -> progress.accept(a + n), null);
        });
    }

    private KvStore encodeAnchor(int[] context, int a) {
        return filled(a, anchor -> appendAnchor(context, a, anchor, null, n -> { }));
    }

    /** A new store of {@code slots} slots after {@code fill}; closed if filling fails. */
    private KvStore filled(int slots, Consumer<KvStore> fill) {
        KvStore store = newStore(slots);
        try {
            fill.accept(store);
            return store;
        } catch (RuntimeException e) {
            store.close();
            throw e;
        }
    }

    /**
     * Appends the anchor (tokens {@code 0..a-1}) to an empty {@code target}; with a {@code sink}, layer by layer,
     * handing each layer to the sink as soon as every chunk has it.
     */
    private void appendAnchor(int[] context, int a, KvStore target, Consumer<AnchorExchange.Layer> sink,
                              IntConsumer progress) {
        int[] tokens = Arrays.copyOf(context, a);
        if (sink == null) {
            append(tokens, range(0, a), target, List.of(), null, false, progress, null);
        } else {
            appendLayerMajor(tokens, range(0, a), target, List.of(), new AnchorCollector(a, sink)::forChunk, progress);
        }
    }

    /**
     * Fails before phase 1 when the KV of {@code blocks} (in the kernel's element type, with the anchor's and the
     * query's slack) would not fit the Java heap a CPU kernel keeps it on. Garbage is collected once before refusing.
     *
     * @throws NotEnoughMemoryException naming the bytes needed and free and what to change
     */
    void requireMemory(BlockPlan plan, List<Block> blocks) {
        int elementBytes = kernel.heapBytesPerKvElement();
        if (elementBytes == 0 || blocks.isEmpty()) {
            return;
        }
        long tokens = QUERY_SLACK + (plan.blockCount() > 1 ? plan.effectiveAnchor() : 0);
        for (Block b : blocks) {
            tokens += b.length();
        }
        long needed = tokens * 2L * layout.layers() * layout.rowLength() * elementBytes;
        Runtime rt = Runtime.getRuntime();
        long free = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        if (needed > free) {
            System.gc();
            free = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        }
        if (needed > free) {
            throw new NotEnoughMemoryException(String.format("this prefill needs about %s for the KV cache of %,d "
                    + "tokens (%d layers x %d KV heads x %d x K and V x %d bytes) but the JVM has %s free of %s "
                    + "(-Xmx): raise -Xmx, shorten the context or spread its blocks over more hosts",
                    gib(needed), tokens, layout.layers(), layout.kvHeads(), layout.headDim(), elementBytes, gib(free),
                    gib(rt.maxMemory())), needed, free);
        }
    }

    private static String gib(long bytes) {
        return String.format("%.1f GiB", bytes / (double) (1L << 30));
    }

    /** Position ids {@code from..to-1}. */
    public static int[] range(int from, int to) {
        int[] r = new int[to - from];
        Arrays.setAll(r, i -> from + i);
        return r;
    }

    private KvStore prefixCopy(KvStore block0, int a) {
        KvStore anchor = newStore(a);
        anchor.appendFrom(block0, 0, a);
        return anchor;
    }

    /**
     * The anchor of a block whose host does not encode block 0: a store of the anchor's slots, each layer filled from
     * the feed when the block's first chunk is about to attend at that layer. All layers are asked for at once, so
     * they arrive while the block's earlier layers are computed. Waiting steps aside from the model (other passes
     * run meanwhile), as a wait for remote partials does.
     */
    private final class RemoteAnchor implements AttentionCall.LayerHook {

        final KvStore store;
        private final int tokens;
        private final List<CompletableFuture<AnchorExchange.Layer>> layers;
        private final boolean[] filled;

        RemoteAnchor(AnchorExchange.Feed feed, int tokens) {
            this.tokens = tokens;
            this.store = newStore(tokens);
            store.reserve(range(0, tokens));
            this.layers = new ArrayList<>(layout.layers());
            for (int l = 0; l < layout.layers(); l++) {
                layers.add(feed.layer(l));
            }
            this.filled = new boolean[layout.layers()];
        }

        @Override
        public void beforeAttention(int layer) {
            if (filled[layer]) {
                return;
            }
            AnchorExchange.Layer kv;
            try {
                kv = model.awaitRemote(layers.get(layer));
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

    /** Gathers the anchor's K/V rows chunk by chunk and hands each layer to the sink once all its rows are in. */
    private final class AnchorCollector {

        private final int tokens;
        private final int rowFloats = layout.kvHeads() * layout.headDim();
        private final Consumer<AnchorExchange.Layer> sink;
        private final float[][] keys = new float[layout.layers()][];
        private final float[][] values = new float[layout.layers()][];
        private final int[] rows = new int[layout.layers()];

        AnchorCollector(int tokens, Consumer<AnchorExchange.Layer> sink) {
            this.tokens = tokens;
            this.sink = sink;
        }

        AttentionCall.LayerHook forChunk(int from) {
            return new AttentionCall.LayerHook() {
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
}
