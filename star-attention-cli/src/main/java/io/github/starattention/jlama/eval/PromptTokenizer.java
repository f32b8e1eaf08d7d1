package io.github.starattention.jlama.eval;

import io.github.starattention.jlama.PromptSplit;
import io.github.starattention.jlama.StarAttentionModel;

/** The model's tokenizer as the generator needs it: plain text, and a chat prompt as the engine splits it. */
public interface PromptTokenizer {

    /** Token ids of {@code text}, without BOS. */
    int[] encode(String text);

    /** Tokens of the prompt the engine sees for this system message and question (context + query, BOS included). */
    int promptTokens(String context, String question);

    /** The tokenizer and chat template of {@code model} ({@link StarAttentionModel#split(String, String)}). */
    static PromptTokenizer of(StarAttentionModel model) {
        return new PromptTokenizer() {
            @Override
            public int[] encode(String text) {
                return model.encode(text);
            }

            @Override
            public int promptTokens(String context, String question) {
                PromptSplit s = model.split(context, question);
                return s.contextTokens().length + s.queryTokens().length;
            }
        };
    }
}
