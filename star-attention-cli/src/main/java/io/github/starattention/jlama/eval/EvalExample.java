package io.github.starattention.jlama.eval;

import java.util.List;
import java.util.Objects;

/**
 * One RULER-style example: a context (the system message: instruction and haystack with the needles), a question
 * (the user message) and the strings a correct answer contains.
 *
 * @param id unique id, e.g. {@code niah_single-4096-3}
 * @param task task name, e.g. {@code niah_single} or {@code vt}
 * @param length nominal length in the model's tokens (prompt and answer, as the generator counts it)
 * @param context the system message
 * @param question the user message
 * @param answers strings a correct output contains (all of them for {@code string_match_all})
 * @param line 1-based line of the JSONL file it came from, 0 if it was not read from a file
 */
public record EvalExample(String id, String task, int length, String context, String question, List<String> answers,
                          int line) {

    public EvalExample {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(task, "task");
        Objects.requireNonNull(context, "context");
        Objects.requireNonNull(question, "question");
        answers = List.copyOf(answers);
    }
}
