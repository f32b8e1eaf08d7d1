package io.github.starattention.jlama.generation;

import io.github.starattention.jlama.FinishReason;
import io.github.starattention.jlama.Generation;
import io.github.starattention.jlama.GenerationOptions;
import io.github.starattention.jlama.TokenListener;
import io.github.starattention.jlama.model.Logits;
import java.util.Arrays;
import java.util.Set;
import java.util.function.Function;

/**
 * Phase 2 as a loop, independent of where attention runs: encode the query, then sample, stream and feed back one
 * token at a time until an end-of-sequence token, a stop string, {@code maxNewTokens} or cancellation.
 */
public final class GenerationLoop {

    /**
     * One forward step: tokens at consecutive positions starting at {@code start}; returns the last token's logits,
     * as much of them as {@code want} asks.
     */
    @FunctionalInterface
    public interface Step {
        Logits forward(int[] tokens, int start, Logits.Want want);
    }

    private final Set<Integer> eos;
    private final Function<int[], String> decoder;

    /**
     * @param eos end-of-sequence token ids
     * @param decoder token ids to text
     */
    public GenerationLoop(Set<Integer> eos, Function<int[], String> decoder) {
        this.eos = Set.copyOf(eos);
        this.decoder = decoder;
    }

    /**
     * Generates after {@code query}, whose first token sits at position {@code start}.
     */
    public Generation run(int[] query, int start, GenerationOptions options, TokenListener listener, Step step) {
        long t0 = System.nanoTime();
        Sampler sampler = new Sampler(options);
        Logits logits = step.forward(query, start, sampler.needs());
        int next = sampler.sample(logits);
        long firstToken = System.nanoTime();
        int[] out = new int[options.maxNewTokens()];
        int n = 0;
        int position = start + query.length;
        String text = "";
        FinishReason reason;
        while (true) {
            if (eos.contains(next)) {
                reason = FinishReason.STOP;
                break;
            }
            out[n++] = next;
            String full = completeCharacters(decoder.apply(Arrays.copyOf(out, n)));
            listener.onToken(next, full.startsWith(text) ? full.substring(text.length()) : full);
            int cut = firstStop(full, text.length(), options);
            text = full;
            if (cut >= 0) {
                text = text.substring(0, cut);
                reason = FinishReason.STOP;
                break;
            }
            if (n == options.maxNewTokens()) {
                reason = FinishReason.LENGTH;
                break;
            }
            if (options.cancelled().getAsBoolean()) {
                reason = FinishReason.CANCELLED;
                break;
            }
            logits = step.forward(new int[] {next}, position++, sampler.needs());
            next = sampler.sample(logits);
        }
        long end = System.nanoTime();
        double ttftMs = (firstToken - t0) / 1e6;
        double decodeSeconds = (end - firstToken) / 1e9;
        double tps = n > 1 && decodeSeconds > 0 ? (n - 1) / decodeSeconds : 0;
        return new Generation(text, Arrays.copyOf(out, n), reason, query.length, ttftMs, tps);
    }

    /**
     * {@code text} without trailing U+FFFD: a character whose UTF-8 bytes are spread over byte-level tokens decodes
     * as U+FFFD until its last byte arrives, so it is streamed once it is whole, never as mojibake.
     */
    static String completeCharacters(String text) {
        int end = text.length();
        while (end > 0 && text.charAt(end - 1) == '\uFFFD') {
            end--;
        }
        return text.substring(0, end);
    }

    /** Index of the first stop string that ends after {@code previousLength}, or -1. */
    private static int firstStop(String text, int previousLength, GenerationOptions options) {
        int cut = -1;
        for (String s : options.stopStrings()) {
            int i = text.indexOf(s, Math.max(0, previousLength - s.length() + 1));
            if (i >= 0 && (cut < 0 || i < cut)) {
                cut = i;
            }
        }
        return cut;
    }
}
