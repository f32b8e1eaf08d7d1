package io.github.starattention.jlama.eval;

import java.util.Locale;

/**
 * How many new tokens a task may generate. RULER's budget ({@code ruler/synthetic_inference_config.yaml}) is 128
 * for niah and 30 for vt, whose answers there are just the variable names; the bundled model answers vt with a full
 * sentence of up to about 55 tokens, so vt gets 64 here. Generation stops earlier at the end-of-sequence token.
 */
public sealed interface TokenBudget {

    /** Tokens for {@code task}. */
    int maxNewTokens(String task);

    /** A short description for reports, e.g. {@code RULER budget (niah 128, vt 64)} or {@code 48 for every task}. */
    String describe();

    /** RULER's budget, adapted to full-sentence answers: niah 128, vt 64, anything else 128. */
    static TokenBudget ruler() {
        return new Ruler();
    }

    /** The same cap for every task. */
    static TokenBudget fixed(int tokens) {
        return new Fixed(tokens);
    }

    /** RULER's budget. */
    record Ruler() implements TokenBudget {
        public static final int NIAH = 128;
        public static final int VT = 64;
        public static final int OTHER = 128;

        @Override
        public int maxNewTokens(String task) {
            String t = task.toLowerCase(Locale.ROOT);
            if (t.startsWith("niah")) {
                return NIAH;
            }
            return t.equals("vt") ? VT : OTHER;
        }

        @Override
        public String describe() {
            return "RULER budget: niah " + NIAH + ", vt " + VT + ", other " + OTHER + " new tokens, stop at end of sequence";
        }
    }

    /** One cap for all tasks. */
    record Fixed(int tokens) implements TokenBudget {
        public Fixed {
            if (tokens < 1) {
                throw new IllegalArgumentException("max new tokens must be at least 1, got " + tokens);
            }
        }

        @Override
        public int maxNewTokens(String task) {
            return tokens;
        }

        @Override
        public String describe() {
            return "at most " + tokens + " new tokens for every task, stop at end of sequence";
        }
    }
}
