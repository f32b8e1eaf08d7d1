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
import java.util.List;
import java.util.stream.IntStream;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The state of one phase 1 with a {@link PassingPolicy}: per layer, a one-layer store holding the K/V the blocks
 * encoded so far have passed on (at their true positions, in context order), which later blocks attend to at that
 * layer. Blocks must be encoded in context order, each one completely (every layer) before the next: block {@code i}
 * needs only what blocks {@code 0..i-1} passed, so this order computes exactly what a layer-synchronous pipeline would.
 *
 * <p>Not thread-safe; one prefill uses one instance and closes it.
 */
final class PassingBlocks implements AutoCloseable {

    /** Lanes of the score products: at most a key panel, which they divide. */
    private static final VectorSpecies<Float> LANES = FloatVector.SPECIES_PREFERRED.length() <= HeapKvStore.KEY_PANEL
            ? FloatVector.SPECIES_PREFERRED : FloatVector.SPECIES_512;

    /** Receives what a block passed on at a layer (for tests and diagnostics). */
    @FunctionalInterface
    interface Trace {
        /** {@code positions}: the context positions block {@code block} passes on at {@code layer}, increasing. */
        void selected(int block, int layer, int[] positions);

        Trace NONE = (b, l, p) -> { };
    }

    private final PassingPolicy policy;
    private final AttentionKernel kernel;
    private final KvLayout layout;
    private final int heads;
    private final float scale;
    private final int anchor;
    private final Trace trace;
    private final KvStore[] passed;

    /**
     * @param layout the model's KV layout (layers, KV heads, head size)
     * @param heads query heads
     * @param scale attention score scale
     * @param anchor anchor size: block 0's first {@code anchor} tokens are already seen by every block, so never passed
     */
    PassingBlocks(PassingPolicy policy, AttentionKernel kernel, KvLayout layout, int heads, float scale, int anchor,
                  int blocks, Trace trace) {
        this.policy = policy;
        this.kernel = kernel;
        this.layout = layout;
        this.heads = heads;
        this.scale = scale;
        this.anchor = anchor;
        this.trace = trace;
        this.passed = new KvStore[layout.layers()];
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

    /** The hook of every chunk of {@code block}: attends to what earlier blocks passed and records the observers. */
    BlockHook hook(Block block) {
        return new BlockHook(block);
    }

    /** Tokens passed on so far at {@code layer}. */
    int passedTokens(int layer) {
        return passed[layer].size();
    }

    /**
     * Selects what {@code block} passes on from its complete {@code store} and the observers its hook recorded (see
     * {@link PassingPolicy}), and appends the selected tokens' K/V of every layer to that layer's passed partition.
     * Call after the block is encoded, in context order; {@code anchorStore} is the anchor the block attended to (null
     * for block 0, whose store holds it).
     */
    void pass(Block block, KvStore store, KvStore anchorStore, BlockHook hook) {
        if (!policy.enabled()) {
            return;
        }
        if (!(store instanceof HeapKvStore heap)) {
            throw new IllegalStateException("passing blocks read the block's keys on the CPU; the store is " + store);
        }
        HeapKvStore anchorHeap = block.index() > 0 && anchorStore instanceof HeapKvStore h ? h : null;
        int first = block.index() == 0 ? Math.min(anchor, block.length()) : 0; // first candidate slot
        // every layer's attention mass, summed in layer order: one set of positions for every layer
        double[][] perLayer = new double[layout.layers()][];
        IntStream.range(0, layout.layers()).parallel().forEach(l ->
                perLayer[l] = scores(heap, anchorHeap, l, block.length(), hook.observers(l), hook.observerPositions(l)));
        double[] sum = new double[block.length()];
        for (double[] x : perLayer) {
            for (int i = 0; i < sum.length; i++) {
                sum[i] += x[i];
            }
        }
        int[] slots = select(sum, first, policy.tokensPerBlock(), PassingPolicy.POOL_RADIUS);
        int rowLength = layout.rowLength();
        int[] positions = new int[slots.length];
        for (int s = 0; s < slots.length; s++) {
            positions[s] = heap.position(slots[s]);
        }
        for (int l = 0; l < layout.layers(); l++) {
            trace.selected(block.index(), l, positions);
            if (slots.length == 0) {
                continue;
            }
            float[] k = new float[slots.length * rowLength];
            float[] v = new float[slots.length * rowLength];
            for (int s = 0; s < slots.length; s++) {
                for (int g = 0; g < layout.kvHeads(); g++) {
                    for (int i = 0; i < layout.headDim(); i++) {
                        k[s * rowLength + g * layout.headDim() + i] = heap.key(l, g, slots[s], i);
                        v[s * rowLength + g * layout.headDim() + i] = heap.value(l, g, slots[s], i);
                    }
                }
            }
            int at = passed[l].reserve(positions);
            passed[l].put(0, at, k, v, 0, slots.length);
        }
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

    /**
     * What a chunk of one block does at each layer: attends to what the blocks before it passed on at that layer, and
     * keeps the queries of the block's observer tokens for the block's own selection.
     */
    final class BlockHook implements ChunkAttention.LayerHook {
        private final Block block;
        private final List<List<float[]>> observers = new ArrayList<>();
        private final List<List<Integer>> positions = new ArrayList<>();

        private BlockHook(Block block) {
            this.block = block;
            for (int l = 0; l < layout.layers(); l++) {
                observers.add(new ArrayList<>());
                positions.add(new ArrayList<>());
            }
        }

        @Override
        public PartialAttention attendExtra(int layer, AttentionQuery query) {
            if (policy.enabled()) {
                int row = query.heads() * query.headDim();
                for (int t = 0; t < query.tokens(); t++) {
                    int p = query.positions()[t];
                    if (policy.isObserver(p, block.start(), block.end())) {
                        observers.get(layer).add(Arrays.copyOfRange(query.q(), t * row, (t + 1) * row));
                        positions.get(layer).add(p);
                    }
                }
            }
            KvStore store = passed[layer];
            return store.size() == 0 ? null : kernel.attend(store, 0, query);
        }

        /** The recorded observer queries of {@code layer}: {@code [observers][heads][headDim]}, rotated. */
        float[] observers(int layer) {
            List<float[]> rows = observers.get(layer);
            int row = heads * layout.headDim();
            float[] out = new float[rows.size() * row];
            for (int i = 0; i < rows.size(); i++) {
                System.arraycopy(rows.get(i), 0, out, i * row, row);
            }
            return out;
        }

        /** Positions of the recorded observers of {@code layer}. */
        int[] observerPositions(int layer) {
            return positions.get(layer).stream().mapToInt(Integer::intValue).toArray();
        }
    }
}
