package io.github.starattention.jlama;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SmokeScratchTest {
    @Test
    void smoke() {
        StarAttentionModel m = TestData.model();
        Map<String, JsonNode> dev = TestData.devSet();
        int i = 0;
        for (JsonNode ref : TestData.reference()) {
            if (i++ >= 3) break;
            JsonNode ex = dev.get(ref.get("id").asText());
            int[] ctx = TestData.referenceContext(m, ex);
            int[] q = TestData.referenceQuery(m, ex);
            System.out.println(ref.get("id") + " ctx " + ctx.length + " vs " + ref.get("context_tokens") + " q " + q.length + " vs " + ref.get("query_tokens"));
            for (Mode mode : Mode.values()) {
                try (LocalEngine e = LocalEngine.create(m, EngineOptions.builder().mode(mode).blockSize(ref.get("block").asInt()).threads(2).build());
                     ContextSession s = e.prefill(ctx, PrefillListener.NONE)) {
                    Generation g = s.generate(q, GenerationOptions.greedy(48), TokenListener.NONE);
                    int[] want = TestData.ints(ref.get(mode == Mode.GLOBAL ? "global_ids" : "star_ids"));
                    System.out.println(mode + " prefill " + s.prefillMillis() + " ms ttft " + g.ttftMillis() + " tps " + g.decodeTokensPerSecond() + " equal=" + Arrays.equals(want, g.tokens()) + " : " + g.text());
                }
            }
        }
    }
}
