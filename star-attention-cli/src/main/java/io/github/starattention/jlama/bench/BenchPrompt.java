package io.github.starattention.jlama.bench;

import io.github.starattention.jlama.PromptSplit;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.eval.RulerTaskGenerator;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Deterministic benchmark prompts of an exact token count: a system turn of filler words (the bundled haystack word
 * list, in seeded random order, in sentences) and a fixed question, through the model's chat template
 * ({@link StarAttentionModel#split(String, String)}).
 */
public final class BenchPrompt {

    /** The user turn of every benchmark prompt. */
    public static final String QUESTION = "Which three words appear most often in the text above?";

    private final StarAttentionModel model;
    private final List<String> pieces = new ArrayList<>();
    private final List<String> words;
    private final SplittableRandom random;
    private int sentence;

    /**
     * @param seed the order of the filler words
     */
    public BenchPrompt(StarAttentionModel model, long seed) {
        this.model = model;
        List<String> all = RulerTaskGenerator.usable(RulerTaskGenerator.bundledWords());
        // words that are one token after a space make the length additive (one word, one token)
        List<String> single = all.stream().filter(w -> model.encode(" " + w).length == 1).toList();
        this.words = single.size() >= 50 ? single : all;
        this.random = new SplittableRandom(seed);
    }

    /** The filler text of the first {@code n} pieces (words and full stops). */
    private String text(int n) {
        while (pieces.size() < n) {
            if (sentence >= 6 && random.nextInt(8) == 0 || sentence >= 14) {
                pieces.add(".");
                sentence = 0;
            } else {
                pieces.add(" " + words.get(random.nextInt(words.size())));
                sentence++;
            }
        }
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < n; i++) {
            b.append(pieces.get(i));
        }
        return b.toString().strip();
    }

    private PromptSplit split(int n) {
        return model.split(text(n), QUESTION);
    }

    private static int tokens(PromptSplit s) {
        return s.contextTokens().length + s.queryTokens().length;
    }

    /**
     * A prompt of {@code length} tokens in all (context + query), or, where the tokenizer merges across words so that
     * no word count gives exactly {@code length}, the longest one below it.
     *
     * @throws IllegalArgumentException if even one word with the template and question is longer than {@code length}
     */
    public PromptSplit ofLength(int length) {
        PromptSplit one = split(1);
        if (tokens(one) > length) {
            throw new IllegalArgumentException("--lengths " + length + " is shorter than the chat template with the "
                    + "question (" + tokens(one) + " tokens)");
        }
        int n = Math.max(1, length - tokens(one) + 1);
        for (int i = 0; i < 20; i++) {
            PromptSplit s = split(n);
            int diff = length - tokens(s);
            if (diff == 0) {
                return s;
            }
            n = Math.max(1, n + diff);
        }
        int lo = 1;
        int hi = n + 1;
        while (tokens(split(hi)) <= length) {
            hi *= 2;
        }
        while (hi - lo > 1) { // tokens(split(lo)) <= length < tokens(split(hi))
            int mid = (lo + hi) >>> 1;
            if (tokens(split(mid)) <= length) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        return split(lo);
    }

    /** Context and query ids in one array, as fed to llama.cpp. */
    public static int[] ids(PromptSplit s) {
        int[] all = new int[s.contextTokens().length + s.queryTokens().length];
        System.arraycopy(s.contextTokens(), 0, all, 0, s.contextTokens().length);
        System.arraycopy(s.queryTokens(), 0, all, s.contextTokens().length, s.queryTokens().length);
        return all;
    }
}
