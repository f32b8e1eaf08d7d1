package io.github.starattention.jlama;

import io.github.starattention.jlama.model.Logits;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.github.tjake.jlama.model.AbstractModel;
import com.github.tjake.jlama.safetensors.prompt.PromptContext;
import com.github.tjake.jlama.tensor.AbstractTensor;
import com.github.tjake.jlama.tensor.KvBufferCache;
import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionKernels;
import io.github.starattention.attention.Device;
import io.github.starattention.jlama.model.ContextEncoder;
import io.github.starattention.jlama.model.ModelFolder;
import io.github.starattention.jlama.model.WeightFormat;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.BlockPlan;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The engine against independent references on the bundled model: stock Jlama (its own attention and KV cache),
 * global attention (star with one block), and recomputing the anchor instead of reusing block 0's KV.
 */
class EngineEquivalenceIT {

    private static StarAttentionModel model;
    private static AttentionKernel kernel;
    private static ContextEncoder encoder;
    private static List<JsonNode> examples;

    @BeforeAll
    static void setUp() {
        model = TestData.model();
        kernel = AttentionKernels.open(Device.CPU, 2);
        encoder = new ContextEncoder(model.decoder(), kernel, ContextEncoder.DEFAULT_CHUNK);
        examples = TestData.devSet().values().stream().filter(e -> e.get("length").asInt() == 1024).toList();
    }

    @AfterAll
    static void tearDown() {
        kernel.close();
    }

    /** Logits of the first query token after encoding the context with {@code plan}. */
    private static float[] queryLogits(int[] context, int[] query, BlockPlan plan, boolean recomputeAnchor) {
        List<KvStore> stores = encoder.encodeBlocks(plan, context, plan.blocks(), recomputeAnchor, n -> { });
        try {
            return encoder.append(query, ContextEncoder.range(context.length, context.length + query.length),
                    stores.getLast(), stores.subList(0, stores.size() - 1), null, Logits.Want.ALL, n -> { }).values();
        } finally {
            stores.forEach(KvStore::close);
        }
    }

    @Test
    void starWithOneBlockEqualsGlobalAttention() {
        for (JsonNode ex : examples.subList(0, 5)) {
            int[] ctx = TestData.referenceContext(model, ex);
            int[] q = TestData.referenceQuery(model, ex);
            float[] global = queryLogits(ctx, q, BlockPlan.global(ctx.length), false);
            float[] oneBlock = queryLogits(ctx, q, BlockPlan.builder(ctx.length).blocks(1).anchorSize(0).build(), false);
            assertThat(maxAbsDiff(global, oneBlock)).as(ex.get("id").asText()).isLessThanOrEqualTo(1e-4f);
            try (LocalEngine g = LocalEngine.create(model, options(Mode.GLOBAL).build());
                 LocalEngine s = LocalEngine.create(model, options(Mode.STAR).blocks(1).build());
                 ContextSession gs = g.prefill(ctx, PrefillListener.NONE);
                 ContextSession ss = s.prefill(ctx, PrefillListener.NONE)) {
                assertThat(ss.plan().blockCount()).isEqualTo(1);
                assertThat(ss.generate(q, GenerationOptions.greedy(48), TokenListener.NONE).tokens())
                        .isEqualTo(gs.generate(q, GenerationOptions.greedy(48), TokenListener.NONE).tokens());
            }
        }
    }

    @Test
    void reusedAnchorEqualsRecomputedAnchor() {
        JsonNode ex = examples.get(7);
        int[] ctx = TestData.referenceContext(model, ex);
        int[] q = TestData.referenceQuery(model, ex);
        BlockPlan plan = BlockPlan.builder(ctx.length).blocks(4).build();
        float[] reused = queryLogits(ctx, q, plan, false);
        float[] recomputed = queryLogits(ctx, q, plan, true);
        assertThat(maxAbsDiff(reused, recomputed)).isLessThanOrEqualTo(1e-4f);
        // and star differs from global: the anchor is not the whole context
        float[] global = queryLogits(ctx, q, BlockPlan.global(ctx.length), false);
        assertThat(maxAbsDiff(reused, global)).isGreaterThan(1e-3f);
    }

    @Test
    void globalModeMatchesStockJlama() {
        AbstractModel stock = ModelFolder.open(TestData.modelDir()).loadStock(WeightFormat.F32);
        int identical = 0;
        List<String> diffs = new ArrayList<>();
        List<JsonNode> sample = Stream.of(examples.get(0), examples.get(10), examples.get(20), examples.get(30), examples.get(40))
                .toList();
        try (LocalEngine engine = LocalEngine.create(model, options(Mode.GLOBAL).build())) {
            for (JsonNode ex : sample) {
                int[] ctx = TestData.referenceContext(model, ex);
                int[] q = TestData.referenceQuery(model, ex);
                int[] prompt = concat(ctx, q);
                float[] ours = softmaxOf(queryLogits(ctx, q, BlockPlan.global(ctx.length), false));
                float[] theirs;
                try (KvBufferCache cache = new KvBufferCache(stock);
                     KvBufferCache.KvBuffer kv = cache.getEphemeralKvBuffer();
                     AbstractTensor out = stock.batchForward(prompt, 0, kv)) {
                    theirs = stock.getLogits(out.slice(out.shape().first() - 1));
                }
                assertThat(maxAbsDiff(ours, theirs)).as("probabilities of " + ex.get("id").asText()).isLessThanOrEqualTo(2e-3f);

                String text = "system: " + ex.get("context").asText() + "\nuser: " + ex.get("question").asText() + "\nassistant:";
                // stock Jlama counts the first sampled token outside its position cap: prompt + 47 gives 48 tokens
                String stockText = stock.generate(UUID.randomUUID(), PromptContext.of(text), 0f, prompt.length + 47, (s, f) -> { })
                        .responseText;
                try (ContextSession s = engine.prefill(ctx, PrefillListener.NONE)) {
                    String ourText = s.generate(q, GenerationOptions.greedy(48), TokenListener.NONE).text();
                    if (ourText.strip().equals(stockText.strip())) {
                        identical++;
                    } else {
                        diffs.add(ex.get("id").asText() + ": ours '" + ourText + "' stock '" + stockText + "'");
                    }
                }
            }
        } finally {
            stock.close();
        }
        assertThat(identical).as("greedy outputs identical to stock Jlama; differences: %s", diffs).isEqualTo(sample.size());
    }

    @Test
    void oneContextAnswersManyQuestionsIndependently() {
        JsonNode a = examples.get(1);
        int[] ctx = TestData.referenceContext(model, a);
        int[] q1 = TestData.referenceQuery(model, a);
        int[] q2 = model.encode("\nuser: What is the special magic number for nothing-here mentioned in the provided text?\nassistant:");
        try (LocalEngine engine = LocalEngine.create(model, options(Mode.STAR).build());
             ContextSession session = engine.prefill(ctx, PrefillListener.NONE)) {
            long bytes = session.kvBytes();
            Generation first = session.generate(q1, GenerationOptions.greedy(48), TokenListener.NONE);
            Generation other = session.generate(q2, GenerationOptions.greedy(48), TokenListener.NONE);
            Generation again = session.generate(q1, GenerationOptions.greedy(48), TokenListener.NONE);
            assertThat(again.tokens()).isEqualTo(first.tokens());
            assertThat(other.tokens()).isNotEqualTo(first.tokens());
            assertThat(session.kvBytes()).isEqualTo(bytes);
            assertThat(first.text()).contains(a.get("answers").get(0).asText());
        }
    }

    private static EngineOptions.Builder options(Mode mode) {
        return EngineOptions.builder().mode(mode).device(Device.CPU).threads(2);
    }

    static float maxAbsDiff(float[] a, float[] b) {
        assertThat(a).hasSameSizeAs(b);
        float m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }

    static float[] softmaxOf(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double sum = 0;
        for (float l : logits) {
            sum += Math.exp(l - max);
        }
        float[] p = new float[logits.length];
        for (int i = 0; i < p.length; i++) {
            p[i] = (float) (Math.exp(logits[i] - max) / sum);
        }
        return p;
    }

    private static int[] concat(int[] a, int[] b) {
        int[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
