package io.github.starattention.jlama.model;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.github.starattention.jlama.Families;
import io.github.starattention.jlama.TestData;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * {@link HfTokenizer} against transformers (tools/parity/reference.py) on the real tokenizers of five model families:
 * ids of code, whitespace runs, CJK, emoji, accents and written special tokens, and the decoded text.
 */
class FamilyTokenizerTest {

    static final List<String> FAMILIES = Families.ALL;

    @TempDir
    Path tmp;

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void idsAndTextEqualTransformers(String family) throws IOException {
        JsonNode reference = Families.reference(family);
        try (HfTokenizer tokenizer = HfTokenizer.open(Families.tokenizerFolder(family, tmp))) {
            for (JsonNode c : reference.get("corpus")) {
                String text = c.get("text").asText();
                int[] ids = tokenizer.encode(text);
                assertThat(ids).as("%s ids of %s", family, text).containsExactly(TestData.ints(c.get("ids")));
                assertThat(tokenizer.decode(ids)).as("%s text of %s", family, text).isEqualTo(c.get("decoded").asText());
            }
        }
    }

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void aPromptGetsOneBos(String family) throws IOException {
        JsonNode prompt = Families.reference(family).get("prompt");
        try (HfTokenizer tokenizer = HfTokenizer.open(Families.tokenizerFolder(family, tmp))) {
            HfTokenizer.Encoded e = tokenizer.encodePrompt(prompt.get("rendered").asText());
            assertThat(e.ids()).as(family).containsExactly(TestData.ints(prompt.get("ids")));
        }
    }
}
