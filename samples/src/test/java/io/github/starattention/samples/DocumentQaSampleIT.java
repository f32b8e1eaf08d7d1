package io.github.starattention.samples;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole-document QA sample as {@code samples/run doc-qa} runs it, on a 4K-token dev-set document (the default
 * 16K one takes minutes on two cores with global attention).
 */
class DocumentQaSampleIT {

    @TempDir
    Path tmp;

    /** The example {@code id} of the bundled dev set (a context, its question and answers). */
    static JsonNode devExample(String id) throws IOException {
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(SampleHome.resolve("data/evalsets/ruler-tiny-dev.jsonl"))) {
            if (!line.isBlank()) {
                JsonNode n = json.readTree(line);
                if (n.get("id").asText().equals(id)) {
                    return n;
                }
            }
        }
        throw new IllegalStateException("no dev example " + id);
    }

    @Test
    void answersWithGlobalAndStarAttentionAndPrintsTimeToFirstToken() throws IOException {
        JsonNode ex = devExample("niah_multikey-4096-0");
        String answer = ex.get("answers").get(0).asText();
        Path doc = Files.writeString(tmp.resolve("report.txt"), ex.get("context").asText());
        // A .json beside the document holds its question and answers, as for the default 16K demo document.
        new ObjectMapper().writeValue(tmp.resolve("report.json").toFile(),
                new ObjectMapper().createObjectNode().put("question", ex.get("question").asText())
                        .set("answers", new ObjectMapper().createArrayNode().add(answer)));

        SampleRunner r = SampleRunner.run("doc-qa", "--document", doc.toString());
        assertThat(r.exitCode()).as(r.err()).isZero();
        assertThat(r.out()).contains("Question: " + ex.get("question").asText());
        assertThat(r.out()).containsPattern("global: +The special magic number .*" + answer + ".*\\[correct\\]");
        assertThat(r.out()).containsPattern("star \\(4 blocks\\): +The special magic number .*" + answer + ".*\\[correct\\]");
        assertThat(r.out()).containsPattern("time to first token [0-9,]+ ms");
        assertThat(r.out()).contains("Star Attention: time to first token");
    }

    @Test
    void ownQuestionInStarModeOnly() throws IOException {
        JsonNode ex = devExample("niah_single-4096-1");
        Path doc = Files.writeString(tmp.resolve("notes.txt"), ex.get("context").asText());
        SampleRunner r = SampleRunner.run("doc-qa", "--document", doc.toString(), "--modes", "star",
                "--question", ex.get("question").asText());
        assertThat(r.exitCode()).as(r.err()).isZero();
        assertThat(r.out()).contains(ex.get("answers").get(0).asText()).doesNotContain("global:");
    }
}
