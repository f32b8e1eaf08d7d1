package io.github.starattention.jlama.eval;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import java.util.Set;

/**
 * RULER-style examples whose lengths are counted in a model's own tokens: a Java port of the task templates the
 * bundled model was trained on ({@code reference/tinyllm/tasks.py}), which are RULER's niah and variable-tracking
 * templates.
 *
 * <p>An example is a system message (an instruction, then a haystack of filler sentences with the needles at random
 * depths), a user question and the answer sentence. Its length, as in {@code tasks.py}, is the whole sequence: BOS,
 * context and query as the engine splits the chat prompt, the answer and EOS. The haystack is first filled from
 * per-piece token counts, then the real prompt is tokenized and the haystack trimmed or topped up with single words
 * until the length is exact (for the bundled model it is exact at once; other tokenizers may need a few rounds and end
 * within {@link #tolerance(int)}).
 *
 * <p>Tasks: {@code niah_single}, {@code niah_multikey} (3, 6 or 12 distractor keys), {@code niah_multivalue} (4
 * values for one key), {@code niah_multiquery} (2 or 4 keys asked at once), {@code vt} (a chain of 2 to 4 hops) and
 * {@code fact_qa} (which the bundled model did not learn). Differences from {@code tasks.py}: Java's random numbers
 * (so a seed gives other examples than in Python), distinct keys and values within an example, and needle values are
 * numbers by default (the dev sets' choice, {@code WORDS_P=0}).
 */
public final class RulerTaskGenerator {

    /** Tasks in RULER's order. */
    public static final List<String> TASKS = List.of("niah_single", "niah_multikey", "niah_multivalue",
            "niah_multiquery", "vt", "fact_qa");
    /** The tasks the bundled model learned (number-valued needles and vt). */
    public static final List<String> DEFAULT_TASKS = TASKS.subList(0, 5);

    /** The "noise" haystack sentence (RULER's). */
    public static final String NOISE = " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
    static final String NIAH_INSTRUCTION = "Some special magic %ss are hidden within the following text. Make sure to memorize it. I will quiz you about the %ss afterwards.";
    static final String NIAH_NEEDLE = " One of the special magic %ss for %s is: %s.";
    static final String VT_INSTRUCTION = "Memorize and track the chain of variable assignment hidden in the following text.";
    static final String QA_INSTRUCTION = "Read the following document and remember where each person lives.";

    /** Needle value types: numbers (7 digits), words, or two numbers to one word at random (the training mix). */
    public enum ValueType { NUMBERS, WORDS, MIXED }

    /**
     * A generated example.
     *
     * @param id {@code TASK-LENGTH-K}
     * @param task task
     * @param length requested length
     * @param tokens the length reached (equal to {@code length} unless the tokenizer made that impossible)
     * @param promptTokens context + query tokens
     * @param context system message
     * @param question user message
     * @param answer the full answer sentence the model was trained to give
     * @param answers the strings a correct output contains
     */
    public record Example(String id, String task, int length, int tokens, int promptTokens, String context,
                          String question, String answer, List<String> answers) {

        /** As an {@link EvalExample}. */
        public EvalExample toEvalExample() {
            return new EvalExample(id, task, length, context, question, answers, 0);
        }

        /** The JSONL object: the dev set's fields ({@code id, task, length, context, question, answers,
         *  n_prompt_tokens}) and {@code answer}. */
        public Map<String, Object> toJson() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("id", id);
            m.put("task", task);
            m.put("length", length);
            m.put("context", context);
            m.put("question", question);
            m.put("answers", answers);
            m.put("n_prompt_tokens", promptTokens);
            m.put("answer", answer);
            return m;
        }
    }

    private record Piece(String text, int tokens) {
    }

    private final PromptTokenizer tok;
    private final List<String> words;
    private final Random r;
    private final ValueType valueType;
    private final Map<String, Integer> wordTokens = new HashMap<>();
    private final Piece noise;
    private final int dotTokens;

    /**
     * @param tokenizer the model's tokenizer
     * @param words the word list for keys, filler sentences and word values; {@link #EXCLUDED_WORDS} are left out
     * @param seed random seed: the same seed, tokenizer and words give the same examples
     * @param valueType needle values
     */
    public RulerTaskGenerator(PromptTokenizer tokenizer, List<String> words, long seed, ValueType valueType) {
        this.tok = Objects.requireNonNull(tokenizer, "tokenizer");
        this.words = usable(words);
        if (this.words.size() < 20) {
            throw new IllegalArgumentException("the word list needs at least 20 distinct words, got " + this.words.size());
        }
        this.r = new Random(seed);
        this.valueType = Objects.requireNonNull(valueType, "valueType");
        this.noise = new Piece(NOISE, tok.encode(NOISE).length);
        this.dotTokens = tok.encode(".").length;
    }

    /**
     * Words never put into a generated example: slurs and profanity a word list or a model's vocabulary may hold
     * ({@code excluded-words.txt} beside this class).
     */
    public static final Set<String> EXCLUDED_WORDS = Set.copyOf(resourceLines("excluded-words.txt"));

    /** {@code words} without duplicates and without {@link #EXCLUDED_WORDS} (case-insensitive), in order. */
    public static List<String> usable(List<String> words) {
        return words.stream().filter(w -> !EXCLUDED_WORDS.contains(w.toLowerCase(Locale.ROOT))).distinct().toList();
    }

    /** The bundled word list (the 3,000 words the bundled model's vocabulary was built from). */
    public static List<String> bundledWords() {
        return resourceLines("words.txt");
    }

    private static List<String> resourceLines(String name) {
        try (InputStream in = RulerTaskGenerator.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IllegalStateException(name + " is missing from the classpath");
            }
            return new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8)).lines().map(String::strip)
                    .filter(w -> !w.isEmpty()).toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Words of a file, one per line (blank lines skipped). */
    public static List<String> readWords(Path file) {
        try {
            return Files.readAllLines(file, StandardCharsets.UTF_8).stream().map(String::strip).filter(w -> !w.isEmpty()).toList();
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read word list " + file + ": " + e.getMessage(), e);
        }
    }

    /** How far from the requested length an example may end when the tokenizer makes the exact length impossible. */
    public static int tolerance(int length) {
        return Math.max(4, length / 200);
    }

    /**
     * {@code perTask} examples for every length and task, lengths outermost (the dev sets' order), ids
     * {@code TASK-LENGTH-K}.
     */
    public List<Example> generate(List<String> tasks, List<Integer> lengths, int perTask) {
        for (String t : tasks) {
            if (!TASKS.contains(t)) {
                throw new IllegalArgumentException("unknown task '" + t + "' (known: " + String.join(", ", TASKS) + ")");
            }
        }
        if (perTask < 1) {
            throw new IllegalArgumentException("--per-task must be at least 1, got " + perTask);
        }
        List<Example> out = new ArrayList<>();
        for (int length : lengths) {
            for (String t : tasks) {
                for (int k = 0; k < perTask; k++) {
                    out.add(example(t, length, t + "-" + length + "-" + k));
                }
            }
        }
        return out;
    }

    /**
     * One example of {@code task} with {@code length} tokens.
     *
     * @throws IllegalArgumentException for an unknown task or a length too short for the task's fixed text
     */
    public Example example(String task, int length, String id) {
        IllegalArgumentException last = null;
        for (int attempt = 0; attempt < 50; attempt++) {
            try {
                return switch (task) {
                    case "niah_single", "niah_multikey", "niah_multivalue", "niah_multiquery" -> niah(task, length, id);
                    case "vt" -> vt(length, id);
                    case "fact_qa" -> factQa(length, id);
                    default -> throw new IllegalArgumentException("unknown task '" + task + "' (known: "
                            + String.join(", ", TASKS) + ")");
                };
            } catch (TooShort e) {
                last = new IllegalArgumentException("length " + length + " is too short for " + task + ": " + e.getMessage());
            }
        }
        throw last;
    }

    /** Thrown when the fixed text does not fit; another draw (fewer needles) may fit. */
    private static final class TooShort extends RuntimeException {
        TooShort(String message) {
            super(message, null, false, false);
        }
    }

    // ---- pieces -----------------------------------------------------------------------------------------------

    private String number() {
        return String.valueOf(1_000_000 + r.nextInt(9_000_000));
    }

    private String word() {
        return words.get(r.nextInt(words.size()));
    }

    private String key() {
        return word() + "-" + word();
    }

    private String var() {
        StringBuilder b = new StringBuilder(5);
        for (int i = 0; i < 5; i++) {
            b.append((char) ('A' + r.nextInt(26)));
        }
        return b.toString();
    }

    private <T> T choice(List<T> options) {
        return options.get(r.nextInt(options.size()));
    }

    private int wordTokens(String w) {
        return wordTokens.computeIfAbsent(w, x -> tok.encode(" " + x).length);
    }

    private Piece sentence(String kind) {
        if (kind.equals("noise")) {
            return noise;
        }
        int n = 5 + r.nextInt(8);
        StringBuilder b = new StringBuilder();
        int t = dotTokens;
        for (int i = 0; i < n; i++) {
            String w = word();
            b.append(' ').append(w);
            t += wordTokens(w);
        }
        return new Piece(b.append('.').toString(), t);
    }

    private List<String> distinct(int n, java.util.function.Supplier<String> gen) {
        Set<String> s = new LinkedHashSet<>();
        int guard = 0;
        while (s.size() < n && guard++ < 1000) {
            s.add(gen.get());
        }
        return new ArrayList<>(s);
    }

    // ---- tasks ------------------------------------------------------------------------------------------------

    private Example niah(String variant, int length, String id) {
        String kind = choice(List.of("noise", "words"));
        boolean numbers = switch (valueType) {
            case NUMBERS -> true;
            case WORDS -> false;
            case MIXED -> r.nextInt(3) < 2;
        };
        java.util.function.Supplier<String> val = numbers ? this::number : this::word;
        String unit = numbers ? "number" : "word";
        String instr = String.format(Locale.ROOT, NIAH_INSTRUCTION, unit, unit);
        List<String> needles = new ArrayList<>();
        List<String> vals;
        String q;
        String a;
        switch (variant) {
            case "niah_single", "niah_multikey" -> {
                int distractors = variant.equals("niah_multikey") ? choice(List.of(3, 6, 12)) : 0;
                List<String> keys = distinct(1 + distractors, this::key);
                String k = keys.getFirst();
                String v = val.get();
                needles.add(needle(unit, k, v));
                for (String dk : keys.subList(1, keys.size())) {
                    needles.add(needle(unit, dk, val.get()));
                }
                q = String.format(Locale.ROOT, "What is the special magic %s for %s mentioned in the provided text?", unit, k);
                a = String.format(Locale.ROOT, "The special magic %s for %s mentioned in the provided text is %s.", unit, k, v);
                vals = List.of(v);
            }
            case "niah_multivalue" -> {
                String k = key();
                vals = distinct(4, val);
                vals.forEach(v -> needles.add(needle(unit, k, v)));
                q = String.format(Locale.ROOT, "What are all the special magic %ss for %s mentioned in the provided text?", unit, k);
                a = String.format(Locale.ROOT, "The special magic %ss for %s mentioned in the provided text are %s.", unit, k,
                        String.join(", ", vals));
            }
            default -> {
                List<String> keys = distinct(choice(List.of(2, 4)), this::key);
                vals = distinct(keys.size(), val);
                for (int i = 0; i < keys.size(); i++) {
                    needles.add(needle(unit, keys.get(i), vals.get(i)));
                }
                String kl = String.join(", ", keys);
                q = String.format(Locale.ROOT, "What are the special magic %ss for %s mentioned in the provided text?", unit, kl);
                a = String.format(Locale.ROOT, "The special magic %ss for %s mentioned in the provided text are %s.", unit, kl,
                        String.join(", ", vals));
            }
        }
        return build(id, variant, length, instr, needles, q, a, vals, kind, true);
    }

    private static String needle(String unit, String key, String value) {
        return String.format(Locale.ROOT, NIAH_NEEDLE, unit, key, value);
    }

    private Example vt(int length, String id) {
        int hops = choice(List.of(2, 3, 4));
        List<String> names = distinct(hops + 1, this::var);
        String v = String.valueOf(10_000 + r.nextInt(90_000));
        List<String> needles = new ArrayList<>();
        needles.add(" VAR " + names.getFirst() + " = " + v + ".");
        for (int i = 0; i < hops; i++) {
            needles.add(" VAR " + names.get(i + 1) + " = VAR " + names.get(i) + ".");
        }
        String q = "Find all variables that are assigned the value " + v + " in the text above.";
        String a = "According to the chain of variable assignment in the text above, " + (hops + 1)
                + " variables are assigned the value " + v + ", they are: " + String.join(" ", names) + ".";
        return build(id, "vt", length, VT_INSTRUCTION, needles, q, a, names, choice(List.of("noise", "words")), false);
    }

    private Example factQa(int length, String id) {
        int n = choice(List.of(4, 8, 16));
        List<String> people = distinct(n, this::word);
        List<String> cities = new ArrayList<>();
        List<String> needles = new ArrayList<>();
        for (String p : people) {
            String c = word();
            cities.add(c);
            needles.add(" Note: the person " + p + " lives in the city " + c + ".");
        }
        int i = r.nextInt(people.size());
        String q = "Where does the person " + people.get(i) + " live?";
        String a = "The person " + people.get(i) + " lives in the city " + cities.get(i) + ".";
        return build(id, "fact_qa", length, QA_INSTRUCTION, needles, q, a, List.of(cities.get(i)), "words", true);
    }

    // ---- assembly ---------------------------------------------------------------------------------------------

    private Example build(String id, String task, int length, String instruction, List<String> needleTexts,
                          String question, String answer, List<String> values, String kind, boolean shuffle) {
        int answerTokens = tok.encode(" " + answer).length + 1; // the answer and EOS
        List<Piece> needles = new ArrayList<>();
        int needleTokens = 0;
        for (String t : needleTexts) {
            Piece p = new Piece(t, tok.encode(t).length);
            needles.add(p);
            needleTokens += p.tokens();
        }
        int fixed = tok.promptTokens(instruction, question) + answerTokens + needleTokens;
        int budget = length - fixed;
        if (budget < 0) {
            throw new TooShort("the instruction, " + needles.size() + " needle(s), question and answer take " + fixed + " tokens");
        }
        List<Piece> hay = new ArrayList<>();
        int used = 0;
        while (true) {
            Piece s = sentence(kind);
            if (used + s.tokens() > budget) {
                break;
            }
            hay.add(s);
            used += s.tokens();
        }
        while (used < budget) { // top up with single words to hit the length
            String w = word();
            hay.add(new Piece(" " + w, wordTokens(w)));
            used += wordTokens(w);
        }
        int[] depths = new int[needles.size()];
        for (int i = 0; i < depths.length; i++) {
            depths[i] = r.nextInt(hay.size() + 1);
        }
        java.util.Arrays.sort(depths);
        if (shuffle) {
            Collections.shuffle(needles, r);
        }
        // measure the real prompt and trim or top up the haystack's end until the length is exact
        String context = compose(instruction, hay, needles, depths);
        int total = tok.promptTokens(context, question) + answerTokens;
        for (int round = 0; round < 12 && total != length; round++) {
            int diff = length - total;
            if (diff > 0) {
                int added = 0;
                while (added < diff) {
                    String w = word();
                    hay.add(new Piece(" " + w, wordTokens(w)));
                    added += wordTokens(w);
                }
            } else {
                int removed = 0;
                while (removed < -diff && !hay.isEmpty()) {
                    removed += hay.removeLast().tokens();
                }
            }
            context = compose(instruction, hay, needles, depths);
            total = tok.promptTokens(context, question) + answerTokens;
        }
        if (Math.abs(total - length) > tolerance(length)) {
            throw new IllegalStateException("could not reach " + length + " tokens for " + id + " (got " + total
                    + "); the tokenizer merges across the haystack's pieces");
        }
        int prompt = total - answerTokens;
        return new Example(id, task, length, total, prompt, context, question, answer, List.copyOf(values));
    }

    private static String compose(String instruction, List<Piece> hay, List<Piece> needles, int[] depths) {
        StringBuilder b = new StringBuilder(instruction);
        int k = 0;
        for (int pos = 0; pos <= hay.size(); pos++) {
            while (k < needles.size() && Math.min(depths[k], hay.size()) == pos) {
                b.append(needles.get(k++).text());
            }
            if (pos < hay.size()) {
                b.append(hay.get(pos).text());
            }
        }
        return b.toString();
    }
}
