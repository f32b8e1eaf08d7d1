package io.github.starattention.jlama.eval;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.TestData;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The generator against the templates of reference/tinyllm/tasks.py and the bundled model's tokenizer. */
class RulerTaskGeneratorTest {

    static final String NIAH_INSTRUCTION = "Some special magic numbers are hidden within the following text. Make sure to "
            + "memorize it. I will quiz you about the numbers afterwards.";
    static final Pattern NEEDLE = Pattern.compile(" One of the special magic numbers for ([a-z]+-[a-z]+) is: ([0-9]{7})\\.");
    static final Pattern VAR = Pattern.compile(" VAR ([A-Z]{5}) = (VAR ([A-Z]{5})|([0-9]{5}))\\.");

    static StarAttentionModel model;
    static PromptTokenizer tok;

    @BeforeAll
    static void load() {
        model = TestData.model();
        tok = PromptTokenizer.of(model);
    }

    static RulerTaskGenerator gen(long seed) {
        return new RulerTaskGenerator(tok, RulerTaskGenerator.bundledWords(), seed, RulerTaskGenerator.ValueType.NUMBERS);
    }

    /** Length as tasks.py counts it: BOS + context + query as the engine splits them, the answer, EOS. */
    static int length(RulerTaskGenerator.Example e) {
        return tok.promptTokens(e.context(), e.question()) + model.encode(" " + e.answer()).length + 1;
    }

    static List<String[]> needles(String context) {
        List<String[]> out = new ArrayList<>();
        Matcher m = NEEDLE.matcher(context);
        while (m.find()) {
            out.add(new String[] {m.group(1), m.group(2)});
        }
        return out;
    }

    @Test
    void noExcludedWordIsEverGenerated() {
        assertThat(RulerTaskGenerator.bundledWords()).as("the bundled list holds some").containsAnyElementsOf(
                RulerTaskGenerator.EXCLUDED_WORDS);
        assertThat(RulerTaskGenerator.usable(List.of("green", "Fag", "sky", "green"))).containsExactly("green", "sky");
        for (String task : RulerTaskGenerator.TASKS) {
            for (int k = 0; k < 3; k++) {
                RulerTaskGenerator.Example ex = gen(k).example(task, 1024, task + "-" + k);
                String text = (ex.context() + " " + ex.question() + " " + ex.answer()).toLowerCase(java.util.Locale.ROOT);
                for (String w : text.split("[^a-z]+")) {
                    assertThat(RulerTaskGenerator.EXCLUDED_WORDS).as("%s: %s", ex.id(), w).doesNotContain(w);
                }
            }
        }
    }

    @Test
    void ourTokenCountIsTheDevSetsCount() {
        // the dev set's n_prompt_tokens came from tasks.py; our count of the same prompt must agree
        int checked = 0;
        for (JsonNode ex : TestData.devSet().values()) {
            if (ex.get("length").asInt() > 2048 || checked >= 12) {
                continue;
            }
            assertThat(tok.promptTokens(ex.get("context").asText(), ex.get("question").asText()))
                    .as(ex.get("id").asText()).isEqualTo(ex.get("n_prompt_tokens").asInt());
            checked++;
        }
        assertThat(checked).isEqualTo(12);
    }

    @Test
    void lengthsAreExactInTheModelsTokens() {
        RulerTaskGenerator g = gen(1);
        for (String task : RulerTaskGenerator.TASKS) {
            for (int len : List.of(300, 1024, 2500)) {
                RulerTaskGenerator.Example e = g.example(task, len, task + "-" + len);
                assertThat(e.tokens()).as(task + " @ " + len).isEqualTo(len);
                assertThat(length(e)).as(task + " @ " + len).isEqualTo(len);
                assertThat(e.promptTokens()).isEqualTo(tok.promptTokens(e.context(), e.question()));
            }
        }
    }

    @Test
    void sameSeedSameSetOtherSeedOtherSet() {
        List<String> tasks = RulerTaskGenerator.DEFAULT_TASKS;
        List<RulerTaskGenerator.Example> a = gen(7).generate(tasks, List.of(512), 2);
        List<RulerTaskGenerator.Example> b = gen(7).generate(tasks, List.of(512), 2);
        List<RulerTaskGenerator.Example> c = gen(8).generate(tasks, List.of(512), 2);
        assertThat(a).hasSize(10).isEqualTo(b);
        assertThat(a).isNotEqualTo(c);
        assertThat(a).extracting(RulerTaskGenerator.Example::id).startsWith("niah_single-512-0", "niah_single-512-1",
                "niah_multikey-512-0");
    }

    @Test
    void niahSingleFollowsTasksPy() {
        RulerTaskGenerator.Example e = gen(3).example("niah_single", 1024, "x");
        assertThat(e.context()).startsWith(NIAH_INSTRUCTION + " ");
        List<String[]> n = needles(e.context());
        assertThat(n).hasSize(1);
        String key = n.getFirst()[0];
        String value = n.getFirst()[1];
        assertThat(e.question()).isEqualTo("What is the special magic number for " + key + " mentioned in the provided text?");
        assertThat(e.answer()).isEqualTo("The special magic number for " + key + " mentioned in the provided text is " + value + ".");
        assertThat(e.answers()).containsExactly(value);
        assertThat(e.context().contains(RulerTaskGenerator.NOISE) || e.context().matches("(?s).*[a-z]+ [a-z]+ [a-z]+ [a-z]+ [a-z]+\\..*"))
                .as("a noise or a word haystack").isTrue();
    }

    @Test
    void multikeyHasThreeSixOrTwelveDistractors() {
        RulerTaskGenerator g = gen(4);
        for (int i = 0; i < 6; i++) {
            RulerTaskGenerator.Example e = g.example("niah_multikey", 2048, "x");
            List<String[]> n = needles(e.context());
            assertThat(n.size()).isIn(4, 7, 13);
            String asked = e.question().replace("What is the special magic number for ", "").replace(" mentioned in the provided text?", "");
            List<String[]> hits = n.stream().filter(x -> x[0].equals(asked)).toList();
            assertThat(hits).hasSize(1);
            assertThat(e.answers()).containsExactly(hits.getFirst()[1]);
            assertThat(n.stream().map(x -> x[0]).distinct().count()).isEqualTo(n.size());
        }
    }

    @Test
    void multivalueListsFourValuesOfOneKey() {
        RulerTaskGenerator.Example e = gen(5).example("niah_multivalue", 1024, "x");
        List<String[]> n = needles(e.context());
        assertThat(n).hasSize(4);
        String key = n.getFirst()[0];
        assertThat(n).allSatisfy(x -> assertThat(x[0]).isEqualTo(key));
        assertThat(e.question()).isEqualTo("What are all the special magic numbers for " + key + " mentioned in the provided text?");
        assertThat(e.answers()).hasSize(4).allSatisfy(v -> assertThat(e.context()).contains(" is: " + v + "."));
        assertThat(e.answer()).isEqualTo("The special magic numbers for " + key + " mentioned in the provided text are "
                + String.join(", ", e.answers()) + ".");
    }

    @Test
    void multiqueryAsksTwoOrFourKeys() {
        RulerTaskGenerator g = gen(6);
        for (int i = 0; i < 4; i++) {
            RulerTaskGenerator.Example e = g.example("niah_multiquery", 1024, "x");
            List<String[]> n = needles(e.context());
            assertThat(n.size()).isIn(2, 4);
            assertThat(e.answers()).hasSize(n.size());
            String keys = e.question().replace("What are the special magic numbers for ", "").replace(" mentioned in the provided text?", "");
            List<String> asked = List.of(keys.split(", "));
            assertThat(asked).hasSize(n.size());
            for (int k = 0; k < asked.size(); k++) {
                String key = asked.get(k);
                String value = e.answers().get(k);
                assertThat(e.context()).contains(" One of the special magic numbers for " + key + " is: " + value + ".");
            }
            assertThat(e.answer()).isEqualTo("The special magic numbers for " + keys + " mentioned in the provided text are "
                    + String.join(", ", e.answers()) + ".");
        }
    }

    @Test
    void vtChainsAppearInOrderAndTheAnswerListsEveryVariable() {
        RulerTaskGenerator.Example e = gen(9).example("vt", 2048, "x");
        assertThat(e.context()).startsWith("Memorize and track the chain of variable assignment hidden in the following text. ");
        Matcher m = VAR.matcher(e.context());
        List<String> names = new ArrayList<>();
        String value = null;
        while (m.find()) {
            if (names.isEmpty()) {
                value = m.group(4);
                assertThat(value).as("the chain starts with the value").isNotNull();
            } else {
                assertThat(m.group(3)).as("each hop points at the previous variable").isEqualTo(names.getLast());
            }
            names.add(m.group(1));
        }
        assertThat(names.size()).isIn(3, 4, 5);
        assertThat(e.answers()).isEqualTo(names);
        assertThat(e.question()).isEqualTo("Find all variables that are assigned the value " + value + " in the text above.");
        assertThat(e.answer()).isEqualTo("According to the chain of variable assignment in the text above, " + names.size()
                + " variables are assigned the value " + value + ", they are: " + String.join(" ", names) + ".");
    }

    @Test
    void wordValuesUseTheWordTemplates() {
        RulerTaskGenerator g = new RulerTaskGenerator(tok, RulerTaskGenerator.bundledWords(), 1, RulerTaskGenerator.ValueType.WORDS);
        RulerTaskGenerator.Example e = g.example("niah_single", 512, "x");
        assertThat(e.context()).startsWith("Some special magic words are hidden within the following text.");
        assertThat(e.context()).contains(" One of the special magic words for ");
        assertThat(e.answers().getFirst()).matches("[a-z]+");
    }

    @Test
    void anotherTokenizerGetsWithinTolerance() {
        // a tokenizer that merges across pieces (one token per 3 characters): the haystack is adjusted by measuring
        PromptTokenizer coarse = new PromptTokenizer() {
            @Override
            public int[] encode(String text) {
                return new int[(text.length() + 2) / 3];
            }

            @Override
            public int promptTokens(String context, String question) {
                return 1 + encode("system: " + context).length + encode("\nuser: " + question + "\nassistant:").length;
            }
        };
        RulerTaskGenerator g = new RulerTaskGenerator(coarse, RulerTaskGenerator.bundledWords(), 2, RulerTaskGenerator.ValueType.NUMBERS);
        for (String task : RulerTaskGenerator.DEFAULT_TASKS) {
            RulerTaskGenerator.Example e = g.example(task, 4096, "x");
            int measured = coarse.promptTokens(e.context(), e.question()) + coarse.encode(" " + e.answer()).length + 1;
            assertThat(measured).isEqualTo(e.tokens());
            assertThat(Math.abs(e.tokens() - 4096)).as(task).isLessThanOrEqualTo(RulerTaskGenerator.tolerance(4096));
        }
    }

    @Test
    void tooShortAndUnknownTasksAreClearErrors() {
        assertThatThrownBy(() -> gen(1).example("niah_multikey", 70, "x")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("length 70 is too short for niah_multikey");
        assertThatThrownBy(() -> gen(1).generate(List.of("cwe"), List.of(1024), 1)).hasMessageContaining("unknown task 'cwe'");
    }

    @Test
    void jsonHasTheDevSetsFields() {
        RulerTaskGenerator.Example e = gen(1).example("vt", 512, "vt-512-0");
        assertThat(e.toJson()).containsKeys("id", "task", "length", "context", "question", "answers", "n_prompt_tokens");
        EvalExample ex = e.toEvalExample();
        assertThat(ex.answers()).isEqualTo(e.answers());
        assertThat(ex.length()).isEqualTo(512);
    }
}
