package io.github.starattention.jlama;

import io.github.starattention.jlama.model.Logits;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionKernels;
import io.github.starattention.attention.Device;
import io.github.starattention.jlama.model.ContextEncoder;
import io.github.starattention.jlama.model.WeightFormat;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.BlockPlan;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * The parity suite: five real architectures (their real config, tokenizer and chat template; seeded weights, fewer
 * layers) against Hugging Face transformers in fp32 ({@code tools/parity/reference.py}). Per family: the chat prompt's
 * ids equal transformers' (one BOS), and where the context ends; the logits after the prompt within
 * {@link #LOGIT_TOLERANCE}; 32 greedy tokens identical; for global attention, for Star Attention with one block and
 * for Star Attention with 4 blocks against the reference's own implementation of it.
 */
class FamilyParityIT {

    static final List<String> FAMILIES = Families.ALL;

    /** Largest difference from transformers' logits; fp32 sums in another order differ by about 1e-5 here. */
    static final double LOGIT_TOLERANCE = 1e-3;

    @TempDir
    Path tmp;

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void matchesTransformers(String family) throws IOException {
        JsonNode reference = Families.reference(family);
        JsonNode prompt = reference.get("prompt");
        JsonNode expected = reference.get("model");
        Path dir = Families.modelFolder(family, tmp.resolve(family));
        try (StarAttentionModel model = StarAttentionModel.load(dir, WeightFormat.F32, 0)) {
            PromptSplit split = model.split(prompt.get("system").asText(), prompt.get("user").asText());
            int[] ctx = split.contextTokens();
            int[] query = split.queryTokens();
            int[] ids = concat(ctx, query);
            assertThat(ids).as("%s prompt ids", family).containsExactly(TestData.ints(prompt.get("ids")));
            assertThat(ctx.length).as("%s context tokens", family).isEqualTo(prompt.get("context_tokens").asInt());
            // apply_chat_template leaves out the BOS a tokenizer adds when the template does not write it (TinyLlama)
            int[] template = TestData.ints(prompt.get("apply_chat_template_ids"));
            boolean tokenizersBos = ids.length == template.length + 1 && ids[0] == model.bosToken();
            assertThat(ids).as("%s: apply_chat_template's ids", family)
                    .containsExactly(tokenizersBos ? concat(new int[] {model.bosToken()}, template) : template);

            int[] indices = TestData.ints(expected.get("logit_indices"));
            for (String run : List.of("global", "star1", "star4")) {
                JsonNode want = expected.get(run);
                int block = want.get("block").asInt();
                Mode mode = run.equals("global") ? Mode.GLOBAL : Mode.STAR;
                float[] logits = firstLogits(model, ctx, query, mode, block);
                double worst = 0;
                for (int i = 0; i < indices.length; i++) {
                    worst = Math.max(worst, Math.abs(logits[indices[i]] - want.get("logits").get(i).asDouble()));
                }
                int[] greedy = greedy(model, ctx, query, mode, block);
                int[] wantGreedy = TestData.ints(want.get("greedy"));
                System.out.printf("%s: %d prompt ids (%d context); %s max |logit error| %.1e, greedy %d/%d %s%n", family,
                        ids.length, ctx.length, run, worst, matching(greedy, wantGreedy), wantGreedy.length,
                        Arrays.toString(Arrays.copyOf(greedy, 6)));
                assertThat(worst).as("%s %s max |logit - transformers'|", family, run).isLessThanOrEqualTo(LOGIT_TOLERANCE);
                assertThat(greedy).as("%s %s greedy tokens", family, run)
                        .containsExactly(Arrays.copyOf(wantGreedy, greedy.length));
                if (greedy.length < wantGreedy.length) {
                    assertThat(model.eosTokens()).as("%s %s stopped early", family, run).contains(wantGreedy[greedy.length]);
                }
            }
        }
    }

    /** Logits after the query: phase 1 over the plan's blocks, phase 2 over all of them. */
    static float[] firstLogits(StarAttentionModel model, int[] ctx, int[] query, Mode mode, int block) {
        BlockPlan plan = mode == Mode.GLOBAL ? BlockPlan.global(ctx.length)
                : BlockPlan.builder(ctx.length).blockSize(block).anchorSize(block).build();
        try (AttentionKernel kernel = AttentionKernels.open(Device.CPU, 2)) {
            ContextEncoder encoder = new ContextEncoder(model.decoder(), kernel, ContextEncoder.DEFAULT_CHUNK);
            List<KvStore> stores = encoder.encodeBlocks(plan, ctx, plan.blocks(), false, n -> { });
            try {
                return encoder.append(query, ContextEncoder.range(ctx.length, ctx.length + query.length),
                        stores.getLast(), stores.subList(0, stores.size() - 1), null, Logits.Want.ALL, n -> { }).values();
            } finally {
                stores.forEach(KvStore::close);
            }
        }
    }

    private static int[] greedy(StarAttentionModel model, int[] ctx, int[] query, Mode mode, int block) {
        EngineOptions.Builder options = EngineOptions.builder().mode(mode).device(Device.CPU).threads(2);
        if (mode == Mode.STAR) {
            options.blockSize(block).anchorSize(block);
        }
        try (LocalEngine engine = LocalEngine.create(model, options.build());
             ContextSession session = engine.prefill(ctx, PrefillListener.NONE)) {
            return session.generate(query, GenerationOptions.greedy(32), TokenListener.NONE).tokens();
        }
    }

    /** Leading tokens of {@code got} equal to {@code want}'s. */
    static int matching(int[] got, int[] want) {
        int n = 0;
        while (n < Math.min(got.length, want.length) && got[n] == want[n]) {
            n++;
        }
        return n;
    }

    static int[] concat(int[] a, int[] b) {
        int[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
