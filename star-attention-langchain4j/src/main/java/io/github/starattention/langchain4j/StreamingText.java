package io.github.starattention.langchain4j;

import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * Turns generated tokens into text deltas for streaming such that the deltas concatenate to exactly the final
 * answer: text that could still become a stop sequence is held back (the final answer is cut before a stop
 * sequence), as are trailing replacement characters of a UTF-8 sequence still being decoded. Each step decodes the
 * whole output, so a tokenizer whose decoding of a prefix changes later cannot duplicate text.
 */
final class StreamingText {

    private final Function<int[], String> decoder;
    private final List<String> stops;
    private final Consumer<String> sink;
    private int[] tokens = new int[16];
    private int count;
    private String emitted = "";

    StreamingText(Function<int[], String> decoder, List<String> stops, Consumer<String> sink) {
        this.decoder = decoder;
        this.stops = List.copyOf(stops);
        this.sink = sink;
    }

    /** A token was generated. */
    void onToken(int token) {
        if (count == tokens.length) {
            tokens = Arrays.copyOf(tokens, count * 2);
        }
        tokens[count++] = token;
        String text = decoder.apply(Arrays.copyOf(tokens, count));
        emitUpTo(text, safeLength(text, stops));
    }

    /** Generation ended with {@code finalText}: emits what was held back. */
    void finish(String finalText) {
        emitUpTo(finalText, finalText.length());
    }

    /** The text emitted so far. */
    String emitted() {
        return emitted;
    }

    private void emitUpTo(String text, int end) {
        if (end > emitted.length() && text.startsWith(emitted)) {
            String delta = text.substring(emitted.length(), end);
            emitted = text.substring(0, end);
            sink.accept(delta);
        }
    }

    /** Length of the prefix of {@code text} that can no longer change or be cut by a stop sequence. */
    static int safeLength(String text, List<String> stops) {
        int limit = text.length();
        while (limit > 0 && text.charAt(limit - 1) == '\uFFFD') {
            limit--;
        }
        for (String s : stops) {
            int i = text.indexOf(s);
            if (i >= 0) {
                limit = Math.min(limit, i);
            }
        }
        int longest = stops.stream().mapToInt(String::length).max().orElse(0);
        for (int j = Math.max(0, text.length() - longest + 1); j < Math.min(limit, text.length()); j++) {
            String tail = text.substring(j);
            for (String s : stops) {
                if (s.length() > tail.length() && s.startsWith(tail)) {
                    return j;
                }
            }
        }
        return limit;
    }
}
