package io.github.starattention.jlama;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.github.starattention.jlama.model.WeightFormat;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * Every weight format on every family of the parity suite: the logits after the prompt (global attention) against
 * transformers' fp32 logits at the reference's 128 indices, with each format's documented tolerance (cosine
 * similarity, and transformers' top token among our top 5 of those indices). {@code F32} itself is held to 1e-3 by
 * {@link FamilyParityIT}.
 */
class FamilyWeightFormatsIT {

    static final List<Arguments> CASES = cases();

    @TempDir
    static Path tmp;

    private static List<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        for (String family : Families.ALL) {
            cases.add(Arguments.of(family, WeightFormat.BF16, 0.9999));
            cases.add(Arguments.of(family, WeightFormat.AS_STORED, 0.999));
            cases.add(Arguments.of(family, WeightFormat.Q8, 0.999));
            cases.add(Arguments.of(family, WeightFormat.Q4, 0.95));
        }
        return cases;
    }

    @ParameterizedTest(name = "{0}, {1}")
    @FieldSource("CASES")
    void staysCloseToTransformers(String family, WeightFormat format, double minCosine) throws IOException {
        JsonNode reference = Families.reference(family);
        JsonNode global = reference.get("model").get("global");
        Path dir = tmp.resolve(family);
        if (!dir.resolve("model.safetensors").toFile().exists()) {
            Families.modelFolder(family, dir);
        }
        int[] indices = TestData.ints(reference.get("model").get("logit_indices"));
        try (StarAttentionModel model = StarAttentionModel.load(dir, format, 0)) {
            JsonNode prompt = reference.get("prompt");
            PromptSplit split = model.split(prompt.get("system").asText(), prompt.get("user").asText());
            float[] logits = FamilyParityIT.firstLogits(model, split.contextTokens(), split.queryTokens(), Mode.GLOBAL, 0);
            double dot = 0;
            double nw = 0;
            double ng = 0;
            int top = 0;
            for (int i = 0; i < indices.length; i++) {
                double w = global.get("logits").get(i).asDouble();
                double g = logits[indices[i]];
                dot += w * g;
                nw += w * w;
                ng += g * g;
                top = w > global.get("logits").get(top).asDouble() ? i : top;
            }
            double cosine = dot / Math.sqrt(nw * ng);
            int best = indices[top];
            long above = IntStream.of(indices).filter(j -> logits[j] > logits[best]).count();
            System.out.printf("%s, %s weights: logit cosine %.6f, transformers' top token ranked %d%n", family, format,
                    cosine, above + 1);
            assertThat(cosine).as("%s %s cosine", family, format).isGreaterThanOrEqualTo(minCosine);
            assertThat(above).as("%s %s: tokens ranked above transformers' top token", family, format).isLessThan(5);
        }
    }
}
