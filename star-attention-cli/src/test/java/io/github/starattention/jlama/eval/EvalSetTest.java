package io.github.starattention.jlama.eval;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.starattention.jlama.TestData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EvalSetTest {

    static String line(String id, String task, int length) {
        return "{\"id\": \"" + id + "\", \"task\": \"" + task + "\", \"length\": " + length
                + ", \"context\": \"Some text.\", \"question\": \"What?\", \"answers\": [\"42\"], \"n_prompt_tokens\": 10}";
    }

    @Test
    void readsGoodLinesAndReportsEachMalformedLineWithItsNumber(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("set.jsonl");
        Files.write(f, List.of(
                line("a", "niah_single", 1024),
                "{\"id\": \"b\", \"task\": \"vt\", \"length\": 1024, \"context\": \"x\"",      // 2: truncated JSON
                "",                                                                               // 3: blank, skipped
                "{\"id\": \"c\", \"task\": \"vt\", \"length\": 1024, \"context\": \"x\", \"question\": \"q\"}", // 4: no answers
                "[1, 2]",                                                                         // 5: not an object
                line("d", "vt", 2048).replace("2048", "\"2K\""),                                   // 6: length not a number
                line("e", "vt", 2048).replace("[\"42\"]", "[]"),                                  // 7: empty answers
                line("a", "vt", 2048),                                                            // 8: duplicate id
                line("f", "niah_multikey", 2048)));
        EvalSet set = EvalSet.read(f);

        assertThat(set.examples()).extracting(EvalExample::id).containsExactly("a", "f");
        assertThat(set.examples().get(1).line()).isEqualTo(9);
        assertThat(set.examples().getFirst().answers()).containsExactly("42");
        assertThat(set.errors()).extracting(EvalSet.LineError::line).containsExactly(2, 4, 5, 6, 7, 8);
        assertThat(set.errors().get(0).toString()).startsWith("line 2: not valid JSON");
        assertThat(set.errors().get(1).toString()).isEqualTo("line 4 (id 'c'): missing field 'answers'");
        assertThat(set.errors().get(2).message()).isEqualTo("expected a JSON object, got an array [1,2]");
        assertThat(set.errors().get(3).message()).isEqualTo("field 'length' must be a positive integer, got a string \"2K\"");
        assertThat(set.errors().get(4).message()).startsWith("field 'answers' must be a non-empty array of strings");
        assertThat(set.errors().get(5).message()).isEqualTo("duplicate id 'a' (first on line 1)");
        assertThat(set.lineCount()).isEqualTo(8);
    }

    @Test
    void wrongFieldTypesNameTheField() {
        EvalSet set = EvalSet.parse(Path.of("x"), List.of(
                line("a", "niah_single", 1024).replace("\"What?\"", "7"),
                line("b", "niah_single", 1024).replace("[\"42\"]", "[42]"),
                line("c", "niah_single", 1024).replace("\"task\": \"niah_single\"", "\"task\": \"\"")));
        assertThat(set.examples()).isEmpty();
        assertThat(set.errors()).extracting(EvalSet.LineError::message).containsExactly(
                "field 'question' must be a string, got a number 7",
                "field 'answers' must hold non-empty strings, got a number 42",
                "field 'task' is empty");
    }

    @Test
    void selectsByLengthTaskLimitAndIds() {
        EvalSet set = EvalSet.parse(Path.of("x"), List.of(line("s1", "niah_single", 1024), line("s2", "niah_single", 1024),
                line("s3", "niah_single", 1024), line("v1", "vt", 1024), line("s4", "niah_single", 2048)));
        assertThat(set.select(null, null, null, null)).hasSize(5);
        assertThat(set.select(List.of(1024), null, 2, null)).extracting(EvalExample::id).containsExactly("s1", "s2", "v1");
        assertThat(set.select(null, List.of("niah_single"), 1, null)).extracting(EvalExample::id).containsExactly("s1", "s4");
        assertThat(set.select(null, null, null, Set.of("v1", "s4"))).extracting(EvalExample::id).containsExactly("v1", "s4");
    }

    @Test
    void aMissingFileIsAClearError(@TempDir Path dir) {
        assertThatThrownBy(() -> EvalSet.read(dir.resolve("nope.jsonl")))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("cannot read evaluation set");
    }

    @Test
    void theBundledDevSetReadsCleanly() {
        EvalSet set = EvalSet.read(TestData.root().resolve("data/evalsets/ruler-tiny-dev.jsonl"));
        assertThat(set.errors()).isEmpty();
        assertThat(set.examples()).hasSize(250);
        assertThat(set.select(List.of(4096), null, 4, null)).hasSize(20);
    }
}
