package io.github.starattention.jlama.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionKernels;
import io.github.starattention.attention.Device;
import io.github.starattention.jlama.Fp64Llama;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.TestData;
import io.github.starattention.kv.HeapKvStore;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.Block;
import io.github.starattention.plan.BlockPlan;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Passing blocks ({@link PassingPolicy}) against independent computations on the bundled model:
 * <ul>
 *   <li>the KV of every block at every layer equals an fp64 forward pass ({@link Fp64Llama}, no code of ours) whose
 *       attention at layer {@code l} lets a token of block {@code i} see exactly the anchor, what blocks
 *       {@code 0..i-1} passed on at layer {@code l} (at their true positions) and its own block up to itself;</li>
 *   <li>what each block passes on is a top-k of the attention mass its observers put on its tokens, recomputed in
 *       fp64 from the reference's own queries and keys, and only positions of that block that exist (never the
 *       anchor, never another block's, never beyond the block);</li>
 *   <li>nothing passed is the plain phase 1 bit for bit, and everything passed (anchor = block) is global attention.</li>
 * </ul>
 */
class PassingBlocksIT {

    private static StarAttentionModel model;
    private static AttentionKernel kernel;
    private static int[] context;

    @BeforeAll
    static void setUp() {
        model = TestData.model();
        kernel = AttentionKernels.open(Device.CPU, 2);
        context = Arrays.copyOf(TestData.referenceContext(model, TestData.devSet().values().iterator().next()), 1000);
        // warm up (as AnchorExchangeIT): cold and JIT-compiled Vector API loops of Jlama round differently
        ContextEncoder encoder = new ContextEncoder(model.decoder(), kernel, 64);
        BlockPlan plan = BlockPlan.builder(1000).blockSize(250).anchorSize(128).build();
        for (int i = 0; i < 2; i++) {
            encoder.encodeBlocks(plan, context, plan.blocks(), false, PassingPolicy.of(16, PassingPolicy.Selection.SPREAD),
                    n -> { }).forEach(KvStore::close);
            encoder.encodeBlocks(plan, context, plan.blocks(), false, n -> { }).forEach(KvStore::close);
        }
    }

    @AfterAll
    static void tearDown() {
        kernel.close();
    }

    @ParameterizedTest(name = "{0} tokens per block by {1}, blocks of {2}, anchor {3}, chunks of {4}, {5} layers scored")
    @CsvSource({"8, SPREAD, 80, 32, 32, 2", "12, WINDOW, 80, 32, 48, 1", "6, SPREAD, 70, 0, 64, 8",
            "10, WINDOW, 64, 64, 32, 2"})
    void passedBlocksEqualAnFp64PassWithThatAttentionMask(int k, PassingPolicy.Selection rule, int blockSize,
                                                           int anchor, int chunk, int scored) throws IOException {
        int n = 4 * blockSize;
        int[] tokens = Arrays.copyOf(context, n);
        BlockPlan plan = BlockPlan.builder(n).blockSize(blockSize).anchorSize(anchor).build();
        PassingPolicy policy = PassingPolicy.of(k, rule).withScoredLayers(scored);
        ContextEncoder encoder = new ContextEncoder(model.decoder(), kernel, chunk);
        Map<Integer, int[]> selected = new HashMap<>();
        List<KvStore> stores = encoder.encodeBlocks(plan, tokens, plan.blocks(), false, AnchorExchange.NONE, policy,
                PassingExchange.NONE, selected::put, x -> { });
        int layers = model.decoder().config().numberOfLayers;
        int a = plan.effectiveAnchor();
        try {
            // 1. what is passed exists: positions of the block itself, past the anchor, increasing, as many as asked
            for (Block b : plan.blocks()) {
                int[] p = selected.get(b.index());
                if (b.index() == plan.blockCount() - 1) {
                    assertThat(p).as("the last block passes nothing on").isNull();
                    continue;
                }
                int first = b.index() == 0 ? Math.max(b.start(), a) : b.start();
                assertThat(p).as("block %d", b.index()).isNotNull()
                        .hasSize(Math.min(k, b.end() - first)).isSorted().doesNotHaveDuplicates();
                assertThat(Arrays.stream(p).boxed().toList()).allMatch(x -> x >= first && x < b.end());
            }

            // 2. the KV equals the fp64 pass with the attention mask this policy defines, given those selections
            boolean[] passed = new boolean[n];
            selected.values().forEach(p -> Arrays.stream(p).forEach(x -> passed[x] = true));
            Fp64Llama ref = new Fp64Llama(TestData.modelDir());
            Fp64Llama.Internals want = ref.internals(tokens, (layer, q, key) -> {
                int start = q / blockSize * blockSize;
                if (key >= start) {
                    return key <= q; // own block, causal
                }
                return start > 0 && (key < a || passed[key]); // anchor, passed on by an earlier block
            });
            double worst = 0;
            for (Block b : plan.blocks()) {
                HeapKvStore store = (HeapKvStore) stores.get(b.index());
                assertThat(store.size()).isEqualTo(b.length());
                for (int l = 0; l < layers; l++) {
                    double scale = 1;
                    double err = 0;
                    for (int s = 0; s < b.length(); s++) {
                        int pos = b.start() + s;
                        assertThat(store.position(s)).isEqualTo(pos);
                        for (int g = 0; g < ref.kvHeads(); g++) {
                            for (int i = 0; i < ref.headDim(); i++) {
                                double wk = want.k()[l][pos][g * ref.headDim() + i];
                                double wv = want.v()[l][pos][g * ref.headDim() + i];
                                scale = Math.max(scale, Math.max(Math.abs(wk), Math.abs(wv)));
                                err = Math.max(err, Math.abs(wk - store.key(l, g, s, i)));
                                err = Math.max(err, Math.abs(wv - store.value(l, g, s, i)));
                            }
                        }
                    }
                    worst = Math.max(worst, err / scale);
                    assertThat(err).as("block %d layer %d: max |K/V - fp64| (values up to %.1f)", b.index(), l, scale)
                            .isLessThan(1e-4 * scale);
                }
            }
            System.out.printf("passing %s, blocks of %d, anchor %d: K/V within %.1e of fp64 (relative)%n", policy,
                    blockSize, a, worst);

            // 3. the selection is a top-k of the fp64 attention mass of the block's observers in the block's plain
            //    phase-1 encoding (the anchor and itself, nothing passed), summed over the first layers scored
            Fp64Llama.Internals plain = ref.internals(tokens, (layer, q, key) -> {
                int start = q / blockSize * blockSize;
                return key >= start ? key <= q : start > 0 && key < a;
            });
            for (Block b : plan.blocks().subList(0, plan.blockCount() - 1)) {
                int first = b.index() == 0 ? Math.min(a, b.length()) : 0;
                double[] score = new double[b.length()];
                for (int l = 0; l < Math.min(scored, layers); l++) {
                    double[] s = fp64Scores(ref, plain, policy, b, l, a);
                    for (int i = 0; i < score.length; i++) {
                        score[i] += s[i];
                    }
                }
                double[] pooled = pooled(score, first, PassingPolicy.POOL_RADIUS);
                int[] p = selected.get(b.index());
                double minIn = Double.POSITIVE_INFINITY;
                double maxOut = Double.NEGATIVE_INFINITY;
                for (int s = first; s < b.length(); s++) {
                    if (Arrays.binarySearch(p, b.start() + s) >= 0) {
                        minIn = Math.min(minIn, pooled[s]);
                    } else {
                        maxOut = Math.max(maxOut, pooled[s]);
                    }
                }
                assertThat(minIn).as("block %d: least pooled mass passed on vs most left out", b.index())
                        .isGreaterThanOrEqualTo(maxOut - 1e-3);
            }
        } finally {
            stores.forEach(KvStore::close);
        }
    }

    /**
     * Attention mass (fp64) of the block's observers on each of its slots at {@code layer}: per observer and query
     * head, the softmax over the anchor's keys and the block's own up to the observer.
     */
    private static double[] fp64Scores(Fp64Llama ref, Fp64Llama.Internals in, PassingPolicy policy, Block b, int layer,
                                       int a) {
        int d = ref.headDim();
        int group = ref.heads() / ref.kvHeads();
        double[] score = new double[b.length()];
        List<Integer> normalisation = new ArrayList<>();
        if (b.index() > 0) {
            for (int j = 0; j < a; j++) {
                normalisation.add(j);
            }
        }
        for (int o = b.start(); o < b.end(); o++) {
            if (!policy.isObserver(o, b.start(), b.end())) {
                continue;
            }
            for (int h = 0; h < ref.heads(); h++) {
                int g = h / group;
                List<Integer> keys = new ArrayList<>(normalisation);
                for (int j = b.start(); j <= o; j++) {
                    keys.add(j);
                }
                double[] s = new double[keys.size()];
                double max = Double.NEGATIVE_INFINITY;
                for (int x = 0; x < s.length; x++) {
                    double dot = 0;
                    for (int i = 0; i < d; i++) {
                        dot += in.q()[layer][o][h * d + i] * in.k()[layer][keys.get(x)][g * d + i];
                    }
                    s[x] = dot / Math.sqrt(d);
                    max = Math.max(max, s[x]);
                }
                double sum = 0;
                for (double v : s) {
                    sum += Math.exp(v - max);
                }
                for (int x = 0; x < s.length; x++) {
                    int key = keys.get(x);
                    if (key >= b.start()) {
                        score[key - b.start()] += Math.exp(s[x] - max) / sum;
                    }
                }
            }
        }
        return score;
    }

    /** Max over {@code radius} neighbours on each side among the candidates {@code first..}. */
    private static double[] pooled(double[] score, int first, int radius) {
        double[] out = new double[score.length];
        for (int s = first; s < score.length; s++) {
            double m = Double.NEGATIVE_INFINITY;
            for (int j = Math.max(first, s - radius); j <= Math.min(score.length - 1, s + radius); j++) {
                m = Math.max(m, score[j]);
            }
            out[s] = m;
        }
        return out;
    }

    @ParameterizedTest(name = "anchor {0}, chunks of {1}")
    @CsvSource({"128, 64", "250, 100", "0, 64"})
    void passingNothingIsThePlainPhaseOneBitForBit(int anchor, int chunk) {
        BlockPlan plan = BlockPlan.builder(1000).blockSize(250).anchorSize(anchor).build();
        ContextEncoder encoder = new ContextEncoder(model.decoder(), kernel, chunk);
        List<KvStore> plain = encoder.encodeBlocks(plan, context, plan.blocks(), false, x -> { });
        List<Integer> traced = new ArrayList<>();
        List<KvStore> none = encoder.encodeBlocks(plan, context, plan.blocks(), false, AnchorExchange.NONE,
                PassingPolicy.of(0, PassingPolicy.Selection.WINDOW), PassingExchange.NONE, (b, p) -> traced.add(b),
                x -> { });
        try {
            assertThat(traced).as("nothing selected").isEmpty();
            assertSameKv(plain, none);
        } finally {
            plain.forEach(KvStore::close);
            none.forEach(KvStore::close);
        }
    }

    @Test
    void passingEveryTokenWithTheWholeFirstBlockAsAnchorIsGlobalAttention() {
        int n = 1000;
        BlockPlan plan = BlockPlan.builder(n).blockSize(250).build(); // anchor = block: block 0 is seen whole
        ContextEncoder encoder = new ContextEncoder(model.decoder(), kernel, 64);
        Map<Integer, int[]> selected = new HashMap<>();
        List<KvStore> all = encoder.encodeBlocks(plan, context, plan.blocks(), false, AnchorExchange.NONE,
                PassingPolicy.of(300, PassingPolicy.Selection.WINDOW), PassingExchange.NONE, selected::put, x -> { });
        List<KvStore> global = encoder.encodeBlocks(BlockPlan.global(n), context, BlockPlan.global(n).blocks(), false,
                x -> { });
        try {
            assertThat(selected.get(0)).as("block 0 is all anchor: nothing to pass on").isEmpty();
            assertThat(selected.get(1)).hasSize(250).startsWith(250).endsWith(499);
            // the same keys in a different partitioning: equal up to the fp32 rounding of the LSE merge
            HeapKvStore g = (HeapKvStore) global.getFirst();
            double worst = 0;
            for (Block b : plan.blocks()) {
                HeapKvStore s = (HeapKvStore) all.get(b.index());
                for (int l = 0; l < g.layout().layers(); l++) {
                    for (int slot = 0; slot < b.length(); slot++) {
                        for (int h = 0; h < g.layout().kvHeads(); h++) {
                            for (int i = 0; i < g.layout().headDim(); i++) {
                                worst = Math.max(worst, Math.abs(s.key(l, h, slot, i) - g.key(l, h, b.start() + slot, i)));
                                worst = Math.max(worst, Math.abs(s.value(l, h, slot, i) - g.value(l, h, b.start() + slot, i)));
                            }
                        }
                    }
                }
            }
            System.out.printf("passing everything vs global: max |K/V difference| %.2e%n", worst);
            assertThat(worst).isLessThan(1e-3);
        } finally {
            all.forEach(KvStore::close);
            global.forEach(KvStore::close);
        }
    }

    /** Every block's K/V and positions at every layer equal bit for bit (also used by {@link PassingExchangeIT}). */
    static void assertSameKv(List<KvStore> want, List<KvStore> got) {
        assertThat(got).hasSameSizeAs(want);
        for (int b = 0; b < want.size(); b++) {
            HeapKvStore w = (HeapKvStore) want.get(b);
            HeapKvStore g = (HeapKvStore) got.get(b);
            assertThat(g.size()).as("block %d", b).isEqualTo(w.size());
            for (int l = 0; l < w.layout().layers(); l++) {
                for (int slot = 0; slot < w.size(); slot++) {
                    assertThat(g.position(slot)).isEqualTo(w.position(slot));
                    for (int h = 0; h < w.layout().kvHeads(); h++) {
                        for (int i = 0; i < w.layout().headDim(); i++) {
                            if (Float.floatToRawIntBits(g.key(l, h, slot, i)) != Float.floatToRawIntBits(w.key(l, h, slot, i))
                                    || Float.floatToRawIntBits(g.value(l, h, slot, i))
                                    != Float.floatToRawIntBits(w.value(l, h, slot, i))) {
                                throw new AssertionError("block " + b + " layer " + l + " slot " + slot + " head " + h
                                        + " element " + i + " differs");
                            }
                        }
                    }
                }
            }
        }
    }
}
