package io.github.starattention.jlama.model;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.cuda.CudaAttentionKernel;
import io.github.starattention.cuda.CudaProbe;
import io.github.starattention.kv.HeapKvStore;
import io.github.starattention.kv.KvLayout;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.Block;
import io.github.starattention.plan.BlockPlan;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.IntConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Star Attention's two phases as {@link Decoder} passes over our KV stores: phase 1 ({@link #encodeBlocks}, anchored
 * blockwise context encoding) and the steps of phase 2 ({@link #append} with every partition as a source). Thread-safe:
 * every call works on the stores it is given, and passes share only the read-only decoder.
 *
 * <p>Long inputs are cut into chunks of {@link #chunkSize()} tokens; each chunk runs through all layers before the
 * next, attending to the chunks before it (their KV is already in the store) and causally to itself.
 */
public final class ContextEncoder implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(ContextEncoder.class);

    /** Default chunk: large enough for efficient matrix products, small enough to bound activation memory. */
    public static final int DEFAULT_CHUNK = 512;

    /** Slots reserved beyond the last block for query and answer tokens, so a first question does not regrow it. */
    static final int QUERY_SLACK = 512;

    private final ForwardPass model;
    private final AttentionKernel kernel;
    private final KvLayout layout;
    private final int chunkSize;
    private final boolean ownsModel;

    /** An encoder running {@code model} with {@code kernel}'s attention, {@code chunkSize} tokens per pass. */
    public ContextEncoder(ForwardPass model, AttentionKernel kernel, int chunkSize) {
        this(model, kernel, chunkSize, false);
    }

    private ContextEncoder(ForwardPass model, AttentionKernel kernel, int chunkSize, boolean ownsModel) {
        this.model = model;
        this.kernel = kernel;
        var c = model.config();
        this.layout = new KvLayout(c.numberOfLayers, c.numberOfKeyValueHeads, c.headSize, 0);
        this.chunkSize = chunkSize;
        this.ownsModel = ownsModel;
    }

    /**
     * An encoder whose whole forward pass runs where {@code kernel} runs attention: with a {@link CudaAttentionKernel}
     * the weights of {@code cpu} are uploaded to that GPU ({@link CudaDecoder}, {@value CudaDecoder#DEFAULT_CHUNK}
     * tokens per pass) unless the GPU kernels cannot read them (Q8, Q4: then only attention runs on the GPU, logged);
     * otherwise {@code cpu} itself, {@value #DEFAULT_CHUNK} tokens per pass. {@link #close()} frees what was uploaded.
     */
    public static ContextEncoder open(Decoder cpu, AttentionKernel kernel) {
        // the probe first: without JCuda on the class path the CUDA classes must not be loaded
        if (CudaProbe.isAvailable() && kernel instanceof CudaAttentionKernel cuda) {
            try {
                return new ContextEncoder(CudaDecoder.upload(cpu, cuda), kernel, CudaDecoder.DEFAULT_CHUNK, true);
            } catch (UnsupportedOperationException e) {
                log.info("{}: the weights stay on the CPU and only attention runs on {}", e.getMessage(), kernel.name());
            }
        }
        return new ContextEncoder(cpu, kernel, DEFAULT_CHUNK, false);
    }

    /** Where the forward pass runs, e.g. {@code cpu} or {@code cuda:0}. */
    public String passName() {
        return model.name();
    }

    /** Frees the forward pass if {@link #open} made it (a GPU copy of the weights). */
    @Override
    public void close() {
        if (ownsModel) {
            model.close();
        }
    }

    public int chunkSize() {
        return chunkSize;
    }

    public AttentionKernel kernel() {
        return kernel;
    }

    /** Whether this encoder runs {@link PassingPolicy passing blocks}: they read the keys on the CPU, from heap stores. */
    public boolean canPassBlocks() {
        try (KvStore probe = kernel.createStore(new KvLayout(1, layout.kvHeads(), layout.headDim(), 0))) {
            return probe instanceof HeapKvStore;
        }
    }

    /** A new empty store sized for {@code tokens} slots. */
    public KvStore newStore(int tokens) {
        return kernel.createStore(new KvLayout(layout.layers(), layout.kvHeads(), layout.headDim(), tokens));
    }

    /**
     * Appends {@code tokens} at {@code positions} to {@code target}, attending to {@code prefix} (earlier
     * partitions, e.g. the anchor) and to {@code target}. Calls {@code progress} with the number of tokens done after
     * each chunk. Returns the last token's logits as {@code want} asks ({@code null} for {@link Logits.Want#NONE}).
     */
    public Logits append(int[] tokens, int[] positions, KvStore target, List<KvStore> prefix,
                         RemotePartitions remote, Logits.Want want, IntConsumer progress) {
        List<KvStore> sources = new ArrayList<>(prefix);
        sources.add(target);
        Logits logits = null;
        for (int from = 0; from < tokens.length; from += chunkSize) {
            int to = Math.min(tokens.length, from + chunkSize);
            int[] pos = Arrays.copyOfRange(positions, from, to);
            int first = target.reserve(pos);
            ChunkAttention call = new ChunkAttention(kernel, pos, target, first, sources, remote, null);
            logits = model.forward(Arrays.copyOfRange(tokens, from, to), call,
                    to == tokens.length ? want : Logits.Want.NONE);
            progress.accept(to);
        }
        return logits;
    }

    /**
     * {@link #append} with the chunks run layer by layer ({@link ForwardPass#forwardLayerMajor}) through the first
     * {@code layers} layers: the same KV, but each layer is done for every chunk before the next starts, so a layer's
     * input from elsewhere is needed only then, and a layer's output is complete early. Chunk {@code i} is tokens
     * {@code cuts[i]..cuts[i+1]-1}.
     */
    private void appendLayerMajor(int[] tokens, int[] positions, int[] cuts, KvStore target, List<KvStore> prefix,
                                  ChunkHooks hooks, int layers, IntConsumer progress) {
        List<KvStore> sources = new ArrayList<>(prefix);
        sources.add(target);
        int n = cuts.length - 1;
        int[][] chunks = new int[n][];
        ChunkAttention[] calls = new ChunkAttention[n];
        for (int i = 0; i < n; i++) {
            int[] pos = Arrays.copyOfRange(positions, cuts[i], cuts[i + 1]);
            // later chunks' slots are reserved before earlier chunks attend: their positions are higher, so unseen
            calls[i] = new ChunkAttention(kernel, pos, target, target.reserve(pos), sources, null,
                    hooks.forChunk(cuts[i]));
            chunks[i] = Arrays.copyOfRange(tokens, cuts[i], cuts[i + 1]);
        }
        int all = Math.min(layers, layout.layers());
        model.forwardLayerMajor(chunks, calls, all, layer -> progress.accept((int) ((long) tokens.length * (layer + 1) / all)));
    }

    /** Chunk boundaries of {@code length} tokens: every {@link #chunkSize()}, and at {@code split} (0: none). */
    private int[] cuts(int length, int split) {
        List<Integer> cuts = new ArrayList<>();
        for (int from = 0; from < split; from += chunkSize) {
            cuts.add(from);
        }
        for (int from = split; from < length; from += chunkSize) {
            cuts.add(from);
        }
        cuts.add(length);
        return cuts.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The {@link ChunkAttention.LayerHook} of the chunk starting at token {@code from} of an append. */
    @FunctionalInterface
    private interface ChunkHooks {
        ChunkAttention.LayerHook forChunk(int from);
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
     * it encodes its block layer by layer ({@link Decoder#forwardLayerMajor}), so it waits for the anchor
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
        return encodeBlocks(plan, context, blocks, recomputeAnchor, exchange, null, progress);
    }

    /** Phase 1 as above; with {@code passed} not null, each block also attends to and passes on as it says. */
    private List<KvStore> encodeBlocks(BlockPlan plan, int[] context, List<Block> blocks, boolean recomputeAnchor,
                                       AnchorExchange exchange, PassingBlocks passed, IntConsumer progress) {
        requireMemory(plan, blocks);
        List<KvStore> stores = new ArrayList<>(blocks.size());
        KvStore anchor = null;
        AnchorReceiver remoteAnchor = null;
        int done = 0;
        try {
            int a = plan.blockCount() > 1 ? plan.effectiveAnchor() : 0;
            for (Block block : blocks) {
                long t0 = System.nanoTime();
                int slack = block.index() == plan.blockCount() - 1 ? QUERY_SLACK : 0;
                int base = done;
                IntConsumer blockProgress = n -> progress.accept(base + n);
                PassingBlocks.BlockHook hook = null;
                KvStore store;
                if (block.index() == 0) {
                    hook = passed == null ? null : passingHook(passed, plan, block, context, null, null);
                    store = encodeBlock0(block, slack, context, a, exchange.sink(), hook, blockProgress);
                } else if (a == 0) {
                    hook = passed == null ? null : passingHook(passed, plan, block, context, null, null);
                    store = encodeBlock(block, slack, context, List.of(), null, hook, blockProgress);
                } else {
                    if (anchor == null) {
                        if (!recomputeAnchor && !stores.isEmpty() && blocks.getFirst().index() == 0) {
                            anchor = prefixCopy(stores.getFirst(), a);
                        } else if (exchange.feed() != null) {
                            remoteAnchor = new AnchorReceiver(exchange.feed(), newStore(a), layout, a);
                            anchor = remoteAnchor.store();
                        } else {
                            anchor = encodeAnchor(context, a);
                        }
                    }
                    try {
                        hook = passed == null ? null : passingHook(passed, plan, block, context, anchor, remoteAnchor);
                        store = encodeBlock(block, slack, context, List.of(anchor), remoteAnchor, hook, blockProgress);
                    } catch (AnchorUnavailableException e) {
                        log.warn("block {}: {}; encoding the anchor here instead", block.index(), e.getMessage());
                        KvStore unusable = anchor;
                        anchor = null;
                        remoteAnchor = null;
                        unusable.close();
                        anchor = encodeAnchor(context, a);
                        hook = passed == null ? null : passingHook(passed, plan, block, context, anchor, null);
                        store = encodeBlock(block, slack, context, List.of(anchor), null, hook, blockProgress);
                    }
                }
                stores.add(store);
                if (passed != null && block.index() < plan.blockCount() - 1) {
                    passed.finish(hook, store, anchor);
                }
                done += block.length();
                log.debug("block {} [{}, {}) encoded in {} ms (anchor {}{}{})", block.index(), block.start(),
                        block.end(), (System.nanoTime() - t0) / 1_000_000, block.index() == 0 ? 0 : a,
                        remoteAnchor != null ? ", from the host of block 0" : "",
                        passed != null ? ", " + passed.passedTokens(0) + " passed tokens" : "");
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

    /**
     * Phase 1 of every block of {@code plan} in one process with a {@link PassingPolicy} (beyond the paper): as
     * {@link #encodeBlocks(BlockPlan, int[], List, boolean, IntConsumer)}, but each block passes the K/V of
     * {@link PassingPolicy#tokensPerBlock()} of its tokens per layer on to every later block, which attends to them
     * at that layer at their true positions, next to the anchor and itself. With nothing to pass ({@code
     * tokensPerBlock = 0}) or a one-block plan this is the plain phase 1.
     *
     * @param blocks every block of the plan, in order (the earlier blocks must be here to pass anything on)
     */
    public List<KvStore> encodeBlocks(BlockPlan plan, int[] context, List<Block> blocks, boolean recomputeAnchor,
                                      PassingPolicy passing, IntConsumer progress) {
        return encodeBlocks(plan, context, blocks, recomputeAnchor, AnchorExchange.NONE, passing, PassingExchange.NONE,
                PassingBlocks.Trace.NONE, progress);
    }

    /**
     * Phase 1 of {@code blocks} (in context order) with a {@link PassingPolicy} on one of several hosts: the anchor
     * comes and goes through {@code anchors}, what earlier blocks encoded elsewhere pass on comes from {@code
     * exchange}'s feed, and what these blocks pass on goes to its sink, layer by layer. Each block first runs its
     * scout (its plain encoding through {@link PassingPolicy#scoredLayers()} layers) to choose what it passes, then is
     * encoded layer by layer, waiting at each layer for that layer of the earlier blocks. If an earlier block's
     * layer cannot be had, the earlier blocks are encoded here and the result is the same.
     */
    public List<KvStore> encodeBlocks(BlockPlan plan, int[] context, List<Block> blocks, AnchorExchange anchors,
                                      PassingPolicy passing, PassingExchange exchange, IntConsumer progress) {
        if (blocks.size() > 1 && passing.enabled() && plan.blockCount() > 1) {
            return encodeAtOnce(plan, context, blocks, anchors, passing, exchange, progress);
        }
        return encodeBlocks(plan, context, blocks, false, anchors, passing, exchange, PassingBlocks.Trace.NONE,
                progress);
    }

    /**
     * Several blocks of one host with passing blocks: each on its own thread, exchanging the anchor and what they pass
     * with each other as hosts do (and with the other hosts through {@code anchors} and {@code exchange}), so that
     * they run layer by layer side by side instead of one after another, which would make the hosts after them wait.
     */
    private List<KvStore> encodeAtOnce(BlockPlan plan, int[] context, List<Block> blocks, AnchorExchange anchors,
                                       PassingPolicy passing, PassingExchange exchange, IntConsumer progress) {
        Set<Integer> here = new HashSet<>();
        blocks.forEach(b -> here.add(b.index()));
        Map<Long, CompletableFuture<PassingExchange.Passed>> passed = new ConcurrentHashMap<>();
        Map<Integer, CompletableFuture<AnchorExchange.Layer>> anchorLayers = new ConcurrentHashMap<>();
        Function<Long, CompletableFuture<PassingExchange.Passed>> slot = k -> passed.computeIfAbsent(k,
                x -> new CompletableFuture<>());
        Function<Integer, CompletableFuture<AnchorExchange.Layer>> anchorSlot = l -> anchorLayers.computeIfAbsent(l,
                x -> new CompletableFuture<>());
        PassingExchange.Feed feed = (b, l) -> here.contains(b) ? slot.apply(key(b, l))
                : exchange.feed() != null ? exchange.feed().passed(b, l)
                : CompletableFuture.failedFuture(new IllegalStateException("block " + b + " is encoded nowhere"));
        Consumer<PassingExchange.Passed> sink = p -> {
            slot.apply(key(p.block(), p.layer())).complete(p);
            if (exchange.sink() != null) {
                exchange.sink().accept(p);
            }
        };
        int a = plan.effectiveAnchor();
        AnchorExchange.Feed anchorFeed = anchors.feed();
        if (here.contains(0) || anchorFeed == null) {
            anchorFeed = anchorSlot::apply;
        }
        if (!here.contains(0) && anchors.feed() == null && a > 0) { // the anchor once for all of them
            try (KvStore encoded = encodeAnchor(context, a)) {
                HeapKvStore anchor = (HeapKvStore) encoded; // passing blocks run on the CPU kernels
                int[] slots = range(0, a);
                for (int l = 0; l < layout.layers(); l++) {
                    float[] k = new float[a * layout.rowLength()];
                    float[] v = new float[a * layout.rowLength()];
                    anchor.rows(l, slots, k, v);
                    anchorSlot.apply(l).complete(new AnchorExchange.Layer(l, a, k, v));
                }
            }
        }
        Consumer<AnchorExchange.Layer> anchorSink = kv -> {
            anchorSlot.apply(kv.layer()).complete(kv);
            if (anchors.sink() != null) {
                anchors.sink().accept(kv);
            }
        };
        AnchorExchange.Feed laterAnchor = anchorFeed;
        int[] done = new int[blocks.size()];
        List<CompletableFuture<KvStore>> running = new ArrayList<>();
        for (int i = 0; i < blocks.size(); i++) {
            Block b = blocks.get(i);
            int at = i;
            IntConsumer own = n -> {
                synchronized (done) {
                    done[at] = n;
                    progress.accept(Arrays.stream(done).sum());
                }
            };
            AnchorExchange anchor = b.index() == 0 ? new AnchorExchange(null, anchorSink)
                    : new AnchorExchange(laterAnchor, null);
            CompletableFuture<KvStore> f = new CompletableFuture<>();
            Thread.ofPlatform().name("sa-block-" + b.index()).daemon().start(() -> {
                try {
                    f.complete(encodeBlocks(plan, context, List.of(b), false, anchor, passing,
                            new PassingExchange(feed, sink), PassingBlocks.Trace.NONE, own).getFirst());
                } catch (RuntimeException | Error e) {
                    // whoever waits for this block encodes it itself
                    for (int l = 0; l < layout.layers(); l++) {
                        slot.apply(key(b.index(), l)).completeExceptionally(e);
                        if (b.index() == 0) {
                            anchorSlot.apply(l).completeExceptionally(e);
                        }
                    }
                    f.completeExceptionally(e);
                }
            });
            running.add(f);
        }
        List<KvStore> stores = new ArrayList<>();
        RuntimeException failure = null;
        for (CompletableFuture<KvStore> f : running) {
            try {
                stores.add(f.join()); // each block's waits are bounded by the feeds' timeouts
            } catch (CompletionException e) {
                failure = failure != null ? failure
                        : e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e.getCause());
            }
        }
        if (failure != null) {
            stores.forEach(KvStore::close);
            throw failure;
        }
        return stores;
    }

    private static long key(int block, int layer) {
        return (long) block << 32 | layer;
    }

    /** As above, reporting what each block passes on to {@code trace}. */
    List<KvStore> encodeBlocks(BlockPlan plan, int[] context, List<Block> blocks, boolean recomputeAnchor,
                               AnchorExchange anchors, PassingPolicy passing, PassingExchange exchange,
                               PassingBlocks.Trace trace, IntConsumer progress) {
        if (!passing.enabled() || plan.blockCount() == 1) {
            return encodeBlocks(plan, context, blocks, recomputeAnchor, anchors, progress);
        }
        for (int i = 0; i < blocks.size(); i++) {
            int index = blocks.get(i).index();
            if (exchange.feed() == null ? index != i : i > 0 && index <= blocks.get(i - 1).index()) {
                throw new IllegalArgumentException("passing blocks encode " + (exchange.feed() == null
                        ? "every block of the plan in order in one process" : "blocks in context order")
                        + "; got block " + index + " at " + i);
            }
        }
        if (!canPassBlocks()) {
            throw new IllegalArgumentException("passing blocks need the CPU attention kernels (--device cpu); "
                    + kernel.name() + " is in use");
        }
        try {
            return encodePassing(plan, context, blocks, recomputeAnchor, anchors, passing, exchange, trace, progress);
        } catch (PassedUnavailableException e) {
            // the earlier blocks here too: the same K/V, and what these blocks pass still goes to the other hosts
            int last = blocks.getLast().index();
            Set<Integer> mine = new HashSet<>();
            blocks.forEach(b -> mine.add(b.index()));
            log.warn("{}; encoding blocks 0..{} here instead", e.getMessage(), last);
            Consumer<PassingExchange.Passed> sink = exchange.sink() == null ? null : p -> {
                if (mine.contains(p.block())) {
                    exchange.sink().accept(p);
                }
            };
            List<KvStore> all = encodePassing(plan, context, plan.blocks().subList(0, last + 1), true,
                    new AnchorExchange(null, anchors.sink()), passing, new PassingExchange(null, sink), trace, n -> { });
            List<KvStore> kept = new ArrayList<>();
            for (int i = 0; i < all.size(); i++) {
                if (mine.contains(i)) {
                    kept.add(all.get(i));
                } else {
                    all.get(i).close();
                }
            }
            progress.accept(blocks.stream().mapToInt(Block::length).sum());
            return kept;
        }
    }

    private List<KvStore> encodePassing(BlockPlan plan, int[] context, List<Block> blocks, boolean recomputeAnchor,
                                        AnchorExchange anchors, PassingPolicy passing, PassingExchange exchange,
                                        PassingBlocks.Trace trace, IntConsumer progress) {
        try (PassingBlocks passed = new PassingBlocks(passing, kernel, layout, model.config().numberOfHeads,
                model.attentionScale(), plan.effectiveAnchor(), plan.blockCount(), exchange, trace)) {
            return encodeBlocks(plan, context, blocks, recomputeAnchor, anchors, passed, progress);
        }
    }

    /**
     * The passing hook of {@code block}: the last block passes nothing; in one process block 0 chooses what it passes
     * from its own encoding (which is its plain one); every other block from its scout, before it is encoded.
     */
    private PassingBlocks.BlockHook passingHook(PassingBlocks passed, BlockPlan plan, Block block, int[] context,
                                                KvStore anchor, AnchorReceiver gate) {
        if (block.index() == plan.blockCount() - 1) {
            return passed.hook(block, new int[0], null);
        }
        if (block.index() == 0) { // its own encoding is its plain one: no scout
            return passed.hook(block, null, passed.observers(block));
        }
        return passed.hook(block, scout(passed, plan, block, context, anchor, gate), null);
    }

    /**
     * The scout of {@code block}: its plain phase-1 encoding (after {@code anchor}, nothing passed) through the first
     * {@link PassingBlocks#scoredLayers()} layers, chunked as its real encoding (so the same K/V as its first layers
     * would be without passing), and the slots it passes on from there.
     */
    private int[] scout(PassingBlocks passed, BlockPlan plan, Block block, int[] context, KvStore anchor,
                        AnchorReceiver gate) {
        int m = passed.scoredLayers();
        PassingBlocks.Observers observers = passed.observers(block);
        KvStore plain = kernel.createStore(new KvLayout(m, layout.kvHeads(), layout.headDim(), block.length()));
        try {
            int split = block.index() == 0 ? Math.min(plan.effectiveAnchor(), block.length()) : 0;
            ChunkAttention.LayerHook hook = gate == null ? observers : ChunkAttention.LayerHook.both(gate, observers);
            appendLayerMajor(Arrays.copyOfRange(context, block.start(), block.end()), range(block.start(), block.end()),
                    cuts(block.length(), split), plain, anchor == null ? List.of() : List.of(anchor), from -> hook, m,
                    n -> { });
            return passed.select(block, plain, anchor, observers);
        } finally {
            plain.close();
        }
    }

    /**
     * Encodes {@code block} after {@code prefix}; {@code gate} (a remote anchor) or {@code hook} may be null. Layer by
     * layer when either is there, so the block waits for one layer of the anchor or of the earlier blocks at a time.
     */
    private KvStore encodeBlock(Block block, int slack, int[] context, List<KvStore> prefix, AnchorReceiver gate,
                                PassingBlocks.BlockHook hook, IntConsumer progress) {
        int[] tokens = Arrays.copyOfRange(context, block.start(), block.end());
        int[] positions = range(block.start(), block.end());
        return filled(block.length() + slack, store -> {
            if (hook != null) {
                hook.attach(store);
            }
            if (gate == null && hook == null) {
                append(tokens, positions, store, prefix, null, Logits.Want.NONE, progress);
            } else {
                ChunkHooks hooks = hook == null ? from -> gate
                        : gate == null ? hook::forChunk : from -> ChunkAttention.LayerHook.both(gate, hook.forChunk(from));
                appendLayerMajor(tokens, positions, cuts(tokens.length, 0), store, prefix, hooks, layout.layers(),
                        progress);
            }
        });
    }

    /**
     * Block 0: the anchor's chunks first (layer by layer, each layer to {@code sink} when there is one), then the rest;
     * with passing, all of it layer by layer with the same chunks, so each layer of what it passes is ready early.
     */
    private KvStore encodeBlock0(Block block, int slack, int[] context, int a, Consumer<AnchorExchange.Layer> sink,
                                 PassingBlocks.BlockHook hook, IntConsumer progress) {
        if (a == 0) {
            return encodeBlock(block, slack, context, List.of(), null, hook, progress);
        }
        if (hook != null) {
            AnchorPublisher publisher = sink == null ? null : new AnchorPublisher(a, layout, sink);
            return filled(block.length() + slack, store -> {
                hook.attach(store);
                appendLayerMajor(Arrays.copyOf(context, block.end()), range(0, block.end()), cuts(block.end(), a), store,
                        List.of(), from -> from < a && publisher != null
                                ? ChunkAttention.LayerHook.both(publisher.forChunk(from), hook.forChunk(from))
                                : hook.forChunk(from), layout.layers(), progress);
            });
        }
        return filled(block.length() + slack, store -> {
            appendAnchor(context, a, store, sink, progress);
            append(Arrays.copyOfRange(context, a, block.end()), range(a, block.end()), store, List.of(), null, Logits.Want.NONE,
                    n -> progress.accept(a + n));
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
            append(tokens, range(0, a), target, List.of(), null, Logits.Want.NONE, progress);
        } else {
            appendLayerMajor(tokens, range(0, a), cuts(a, 0), target, List.of(), new AnchorPublisher(a, layout, sink)::forChunk,
                    layout.layers(), progress);
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
}
