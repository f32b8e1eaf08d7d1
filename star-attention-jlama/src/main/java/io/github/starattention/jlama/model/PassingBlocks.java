package io.github.starattention.jlama.model;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionQuery;
import io.github.starattention.attention.PartialAttention;
import io.github.starattention.kv.HeapKvStore;
import io.github.starattention.kv.KvLayout;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.Block;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import java.util.stream.IntStream;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The state of one phase 1 with a {@link PassingPolicy} on one host: per layer, a one-layer store holding what the
 * earlier blocks passed on (at their true positions, in context order), which a block attends to at that layer.
 *
 * <p><b>Data.</b> {@code passed[l]}: KV layout {@code [1 layer][KV heads][slots][headDim]} fp32, post-RoPE; its slots
 * are blocks {@code 0..filled[l]-1}'s passed tokens, block by block, each block's in increasing position. A block's
 * selection is {@code int[]} slots of the block (0 = its first token), increasing. Blocks encoded here are kept as
 * {@link Encoded} (store and selection) for the later blocks here; the others' come from {@link PassingExchange#feed}.
 *
 * <p>Block {@code i} gathers layer {@code l} of blocks {@code 0..i-1} just before it attends at {@code l}, so in
 * process (every block here, each encoded completely before the next) and across hosts (each block waiting for one
 * layer of the others) it attends to the same K/V. Not thread-safe; one prefill uses one instance and closes it.
 */
final class PassingBlocks implements AutoCloseable {

    /** Lanes of the score products: at most a key panel, which they divide. */
    private static final VectorSpecies<Float> LANES = FloatVector.SPECIES_PREFERRED.length() <= HeapKvStore.KEY_PANEL
            ? FloatVector.SPECIES_PREFERRED : FloatVector.SPECIES_512;

    /** Receives what each block passes on (for tests and diagnostics). */
    @FunctionalInterface
    interface Trace {
        /** {@code positions}: the context positions block {@code block} passes on at every layer, increasing. */
        void selected(int block, int[] positions);

        Trace NONE = (b, p) -> { };
    }

    /** A block encoded here: its K/V and the slots it passes on. */
    private record Encoded(HeapKvStore store, int[] slots) { }

    private final PassingPolicy policy;
    private final AttentionKernel kernel;
    private final KvLayout layout;
    private final int heads;
    private final float scale;
    private final int anchor;
    private final PassingExchange exchange;
    private final Trace trace;
    private final KvStore[] passed;
    private final int[] filled;
    private final Map<Integer, Encoded> local = new HashMap<>();

    /**
     * @param layout the model's KV layout (layers, KV heads, head size)
     * @param heads query heads
     * @param scale attention score scale
     * @param anchor anchor size: block 0's first {@code anchor} tokens are already seen by every block, so never passed
     * @param blocks blocks of the plan
     */
    PassingBlocks(PassingPolicy policy, AttentionKernel kernel, KvLayout layout, int heads, float scale, int anchor,
                  int blocks, PassingExchange exchange, Trace trace) {
        this.policy = policy;
        this.kernel = kernel;
        this.layout = layout;
        this.heads = heads;
        this.scale = scale;
        this.anchor = anchor;
        this.exchange = exchange;
        this.trace = trace;
        this.passed = new KvStore[layout.layers()];
        this.filled = new int[layout.layers()];
        int capacity = (int) Math.min(Integer.MAX_VALUE / 2, (long) policy.tokensPerBlock() * Math.max(0, blocks - 1));
        try {
            for (int l = 0; l < passed.length; l++) {
                passed[l] = kernel.createStore(new KvLayout(1, layout.kvHeads(), layout.headDim(), capacity));
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** The layers whose attention mass scores a block's tokens: the policy's, at most the model's. */
    int scoredLayers() {
        return Math.min(policy.scoredLayers(), layout.layers());
    }

    /** Whether what the blocks here pass on goes to other hosts. */
    boolean publishes() {
        return exchange.sink() != null;
    }

    /** A hook recording the queries of {@code block}'s observers, for {@link #select}. */
    Observers observers(Block block) {
        return new Observers(block);
    }

    /**
     * The slots {@code block} passes on: the top {@link PassingPolicy#tokensPerBlock()} of the attention mass its
     * {@code observers} put on its slots at the first {@link #scoredLayers()} layers of {@code plain}, the block's plain
     * phase-1 encoding ({@code anchorStore}: the anchor it attended to, null for block 0).
     */
    int[] select(Block block, KvStore plain, KvStore anchorStore, Observers observers) {
        if (!(plain instanceof HeapKvStore heap)) {
            throw new IllegalStateException("passing blocks read the block's keys on the CPU; the store is " + plain);
        }
        HeapKvStore anchorHeap = block.index() > 0 && anchorStore instanceof HeapKvStore h ? h : null;
        int first = block.index() == 0 ? Math.min(anchor, block.length()) : 0; // first candidate slot
        double[][] perLayer = new double[scoredLayers()][];
        IntStream.range(0, perLayer.length).parallel().forEach(l -> perLayer[l] = scores(heap, anchorHeap, l,
                block.length(), observers.queries(l), observers.positions(l)));
        double[] sum = new double[block.length()];
        for (double[] x : perLayer) { // in layer order
            for (int i = 0; i < sum.length; i++) {
                sum[i] += x[i];
            }
        }
        return select(sum, first, policy.tokensPerBlock(), PassingPolicy.POOL_RADIUS);
    }

    /**
     * The hook of {@code block}'s encoding: gathers what earlier blocks passed on and attends to it, and publishes what
     * the block passes on ({@code slots}) layer by layer when there is a sink. {@code slots} null: chosen from the
     * block's own encoding ({@code observers} recording), which is its plain one only for block 0: once its first
     * {@link #scoredLayers()} layers are done when there is a sink (it publishes the layers so far then), else by
     * {@link #finish}.
     */
    BlockHook hook(Block block, int[] slots, Observers observers) {
        if (slots == null && (observers == null || block.index() > 0 && exchange.sink() != null)) {
            throw new IllegalStateException("block " + block.index() + " must know what it passes on before it is "
                    + "encoded when other hosts wait for it");
        }
        return new BlockHook(block, slots, observers);
    }

    /**
     * After {@code block} is encoded into {@code store}: completes its selection if it was not known before (from its
     * observers and the first layers of the store itself) and keeps both for the later blocks here.
     */
    void finish(BlockHook hook, KvStore store, KvStore anchorStore) {
        if (!(store instanceof HeapKvStore heap)) {
            throw new IllegalStateException("passing blocks read the block's K/V on the CPU; the store is " + store);
        }
        if (hook.slots == null) {
            hook.slots = select(hook.block, store, anchorStore, hook.observers);
            hook.publishFrom(heap, layout.layers() - 1);
        }
        local.put(hook.block.index(), new Encoded(heap, hook.slots));
        trace.selected(hook.block.index(), positions(heap, hook.slots));
    }

    /** Tokens gathered so far at {@code layer}. */
    int passedTokens(int layer) {
        return passed[layer].size();
    }

    /** Appends layer {@code layer} of blocks {@code filled[layer]..upTo-1} to {@code passed[layer]}, in order. */
    private void gather(int layer, int upTo) {
        for (int i = filled[layer]; i < upTo; i++) {
            Encoded e = local.get(i);
            PassingExchange.Passed p = e != null ? read(e, i, layer) : fetch(i, layer);
            if (p.tokens() > 0) {
                int at = passed[layer].reserve(p.positions());
                passed[layer].put(0, at, p.k(), p.v(), 0, p.tokens());
            }
            filled[layer] = i + 1;
        }
    }

    private PassingExchange.Passed fetch(int block, int layer) {
        if (exchange.feed() == null) {
            throw new IllegalStateException("block " + block + " was not encoded here and no host passes it on");
        }
        PassingExchange.Passed p;
        try {
            p = exchange.feed().passed(block, layer).join();
        } catch (CompletionException | CancellationException e) {
            throw new PassedUnavailableException(block, layer, e.getCause() != null ? e.getCause() : e);
        }
        if (p.block() != block || p.layer() != layer || p.k().length != p.tokens() * layout.rowLength()) {
            throw new PassedUnavailableException(block, layer, new IllegalStateException("received block " + p.block()
                    + " layer " + p.layer() + " with " + p.tokens() + " tokens of " + p.k().length + " floats"));
        }
        return p;
    }

    /** What local block {@code block} passes on at {@code layer}, read from its store. */
    private PassingExchange.Passed read(Encoded e, int block, int layer) {
        float[] k = new float[e.slots.length * layout.rowLength()];
        float[] v = new float[e.slots.length * layout.rowLength()];
        e.store.rows(layer, e.slots, k, v);
        return new PassingExchange.Passed(block, layer, positions(e.store, e.slots), k, v);
    }

    private static int[] positions(HeapKvStore store, int[] slots) {
        int[] p = new int[slots.length];
        for (int s = 0; s < slots.length; s++) {
            p[s] = store.position(slots[s]);
        }
        return p;
    }

    /**
     * The attention mass the observers put on each of the block's slots {@code 0..len-1} at {@code layer}: for every
     * observer and query head, the softmax over the anchor's keys ({@code anchorStore} when not null) and the block's
     * own up to itself, summed; the anchor's share is left out of the scores.
     */
    double[] scores(HeapKvStore store, HeapKvStore anchorStore, int layer, int len, float[] observers,
                    int[] observerPositions) {
        double[] score = new double[len];
        int d = layout.headDim();
        int group = heads / layout.kvHeads();
        int[] kpos = store.positions();
        int a = anchorStore == null ? 0 : anchorStore.size();
        float[] logits = new float[len];
        float[] anchorLogits = new float[a];
        double[] weights = new double[len];
        for (int o = 0; o < observerPositions.length; o++) {
            int visible = 0;
            while (visible < len && kpos[visible] <= observerPositions[o]) {
                visible++;
            }
            if (visible == 0) {
                continue;
            }
            for (int h = 0; h < heads; h++) {
                int kvh = h / group;
                int qo = (o * heads + h) * d;
                float max = Math.max(logits(store, layer, kvh, observers, qo, visible, logits),
                        logits(anchorStore, layer, kvh, observers, qo, a, anchorLogits));
                double sum = 0;
                for (int j = 0; j < visible; j++) {
                    weights[j] = Math.exp(logits[j] - max);
                    sum += weights[j];
                }
                for (int j = 0; j < a; j++) {
                    sum += Math.exp(anchorLogits[j] - max);
                }
                for (int j = 0; j < visible; j++) {
                    score[j] += weights[j] / sum;
                }
            }
        }
        return score;
    }

    /** Scaled scores of the query at {@code q[qo..]} against slots {@code 0..n-1} of {@code store}; returns their max. */
    private float logits(HeapKvStore store, int layer, int kvh, float[] q, int qo, int n, float[] out) {
        float max = Float.NEGATIVE_INFINITY;
        if (n == 0) {
            return max;
        }
        float[] keys = store.keysAsF32(layer);
        float[] acc = new float[HeapKvStore.KEY_PANEL];
        int d = layout.headDim();
        for (int p = 0; p < n; p += HeapKvStore.KEY_PANEL) {
            // keys are stored in transposed panels of KEY_PANEL slots: element i of the panel's keys is contiguous.
            // acc[j] += q[i] * key_j[i] for i in order, lane by lane (a product then a sum, no fused multiply-add)
            int base = store.keyIndex(kvh, p, 0);
            for (int j = 0; j < HeapKvStore.KEY_PANEL; j += LANES.length()) {
                FloatVector sum = FloatVector.zero(LANES);
                for (int i = 0; i < d; i++) {
                    FloatVector k = FloatVector.fromArray(LANES, keys, base + i * HeapKvStore.KEY_PANEL + j);
                    sum = sum.add(k.mul(q[qo + i]));
                }
                sum.intoArray(acc, j);
            }
            int m = Math.min(HeapKvStore.KEY_PANEL, n - p);
            for (int j = 0; j < m; j++) {
                float s = acc[j] * scale;
                out[p + j] = s;
                max = Math.max(max, s);
            }
        }
        return max;
    }

    /**
     * The slots to pass on: the {@code k} best of {@code first..scores.length-1} by their score max-pooled over
     * {@code radius} neighbours on each side (within the candidates), ties to the later slot, returned in increasing
     * order. Fewer than {@code k} when there are fewer candidates.
     */
    static int[] select(double[] scores, int first, int k, int radius) {
        int n = scores.length - first;
        if (n <= 0 || k <= 0) {
            return new int[0];
        }
        if (k >= n) {
            return IntStream.range(first, scores.length).toArray();
        }
        double[] pooled = new double[n];
        for (int i = 0; i < n; i++) {
            double m = Double.NEGATIVE_INFINITY;
            for (int j = Math.max(0, i - radius); j <= Math.min(n - 1, i + radius); j++) {
                m = Math.max(m, scores[first + j]);
            }
            pooled[i] = m;
        }
        Integer[] order = new Integer[n];
        Arrays.setAll(order, i -> i);
        // best first; among equal pooled scores the own score decides, then the later slot
        Arrays.sort(order, (x, y) -> {
            int c = Double.compare(pooled[y], pooled[x]);
            if (c != 0) {
                return c;
            }
            c = Double.compare(scores[first + y], scores[first + x]);
            return c != 0 ? c : Integer.compare(y, x);
        });
        int[] out = new int[k];
        for (int i = 0; i < k; i++) {
            out[i] = first + order[i];
        }
        Arrays.sort(out);
        return out;
    }

    @Override
    public void close() {
        for (KvStore s : passed) {
            if (s != null) {
                s.close();
            }
        }
    }

    /** Records the queries of a block's observer tokens at each layer (a scout, or block 0's own encoding). */
    final class Observers implements ChunkAttention.LayerHook {
        private final Block block;
        private final List<List<float[]>> queries = new ArrayList<>();
        private final List<List<Integer>> positions = new ArrayList<>();

        private Observers(Block block) {
            this.block = block;
            for (int l = 0; l < layout.layers(); l++) {
                queries.add(new ArrayList<>());
                positions.add(new ArrayList<>());
            }
        }

        @Override
        public PartialAttention attendExtra(int layer, AttentionQuery query) {
            int row = query.heads() * query.headDim();
            for (int t = 0; t < query.tokens(); t++) {
                int p = query.positions()[t];
                if (policy.isObserver(p, block.start(), block.end())) {
                    queries.get(layer).add(Arrays.copyOfRange(query.q(), t * row, (t + 1) * row));
                    positions.get(layer).add(p);
                }
            }
            return null;
        }

        /** The recorded observer queries of {@code layer}: {@code [observers][heads][headDim]}, rotated. */
        float[] queries(int layer) {
            List<float[]> rows = queries.get(layer);
            int row = heads * layout.headDim();
            float[] out = new float[rows.size() * row];
            for (int i = 0; i < rows.size(); i++) {
                System.arraycopy(rows.get(i), 0, out, i * row, row);
            }
            return out;
        }

        /** Positions of the recorded observers of {@code layer}. */
        int[] positions(int layer) {
            return positions.get(layer).stream().mapToInt(Integer::intValue).toArray();
        }
    }

    /**
     * What the chunks of one block do at each layer: before attending, gather what the earlier blocks passed on at
     * that layer (waiting for other hosts' if needed) and attend to it; once the block's K/V of a layer are all
     * written, publish what the block passes on at that layer.
     */
    final class BlockHook {
        private final Block block;
        private int[] slots;
        private final Observers observers;
        private final boolean publish;
        private final int[] rows;
        private final float[][] keys;
        private final float[][] values;
        private HeapKvStore store;

        private BlockHook(Block block, int[] slots, Observers observers) {
            this.block = block;
            this.slots = slots;
            this.observers = observers;
            this.publish = exchange.sink() != null;
            this.rows = new int[layout.layers()];
            this.keys = new float[layout.layers()][];
            this.values = new float[layout.layers()][];
        }

        /** The store the block is encoded into, read when what it passes is chosen from it. */
        void attach(KvStore target) {
            this.store = target instanceof HeapKvStore h ? h : null;
        }

        /** Publishes layers {@code 0..upTo} of what the block passes on, read from {@code from}. */
        private void publishFrom(HeapKvStore from, int upTo) {
            if (!publish) {
                return;
            }
            for (int l = 0; l <= upTo; l++) {
                exchange.sink().accept(read(new Encoded(from, slots), block.index(), l));
            }
        }

        /** The hook of the block's chunk starting at slot {@code from}. */
        ChunkAttention.LayerHook forChunk(int from) {
            return new ChunkAttention.LayerHook() {
                @Override
                public void stored(int layer, float[] k, float[] v, int tokens) {
                    if (publish) {
                        collect(layer, from, k, v, tokens);
                    }
                }

                @Override
                public void beforeAttention(int layer) {
                    gather(layer, block.index());
                }

                @Override
                public PartialAttention attendExtra(int layer, AttentionQuery query) {
                    if (observers != null) {
                        observers.attendExtra(layer, query);
                    }
                    return passed[layer].size() == 0 ? null : kernel.attend(passed[layer], 0, query);
                }
            };
        }

        /** Keeps the selected rows of a chunk's K/V; publishes the layer once the whole block has written it. */
        private void collect(int layer, int from, float[] k, float[] v, int tokens) {
            if (slots == null) { // block 0: chosen once its first layers are done, then those layers go out
                rows[layer] += tokens;
                if (rows[layer] == block.length() && layer == scoredLayers() && store != null) {
                    slots = select(block, store, null, observers);
                    publishFrom(store, layer);
                }
                return;
            }
            int row = layout.rowLength();
            if (keys[layer] == null) {
                keys[layer] = new float[slots.length * row];
                values[layer] = new float[slots.length * row];
            }
            for (int s = 0; s < slots.length; s++) {
                if (slots[s] >= from && slots[s] < from + tokens) {
                    System.arraycopy(k, (slots[s] - from) * row, keys[layer], s * row, row);
                    System.arraycopy(v, (slots[s] - from) * row, values[layer], s * row, row);
                }
            }
            rows[layer] += tokens;
            if (rows[layer] == block.length()) {
                int[] positions = new int[slots.length];
                for (int s = 0; s < slots.length; s++) {
                    positions[s] = block.start() + slots[s];
                }
                exchange.sink().accept(new PassingExchange.Passed(block.index(), layer, positions, keys[layer],
                        values[layer]));
                keys[layer] = null;
                values[layer] = null;
            }
        }
    }
}
