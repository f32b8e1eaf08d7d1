package io.github.starattention.jlama.eval;

import java.util.List;
import java.util.Locale;

/**
 * RULER's string-match metrics ({@code ruler/eval/synthetic/constants.py}): case-insensitive substring matches of
 * the reference strings in the model output.
 */
public final class Scorer {

    private Scorer() {
    }

    /**
     * {@code string_match_all}: the fraction of {@code answers} contained in {@code output}, ignoring case. Used for
     * niah, vt, cwe and fwe in RULER and for every task here.
     */
    public static double stringMatchAll(String output, List<String> answers) {
        if (answers.isEmpty()) {
            throw new IllegalArgumentException("no reference answers to score against");
        }
        String out = lower(output);
        int hit = 0;
        for (String a : answers) {
            if (out.contains(lower(a))) {
                hit++;
            }
        }
        return (double) hit / answers.size();
    }

    /** {@code string_match_part}: 1 if any of {@code answers} is contained in {@code output} (ignoring case), else 0. */
    public static double stringMatchPart(String output, List<String> answers) {
        String out = lower(output);
        return answers.stream().anyMatch(a -> out.contains(lower(a))) ? 1 : 0;
    }

    private static String lower(String s) {
        return s == null ? "" : s.toLowerCase(Locale.ROOT);
    }
}
