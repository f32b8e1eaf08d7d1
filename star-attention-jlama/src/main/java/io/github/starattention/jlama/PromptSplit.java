package io.github.starattention.jlama;

/**
 * A chat prompt split for Star Attention: everything before the last user turn is the context (phase 1), the last
 * user turn and the assistant header are the query (phase 2).
 *
 * @param contextTokens the context's tokens (with BOS where the tokenizer adds one)
 * @param queryTokens the rest of the prompt's tokens
 * @param contextText the rendered text the context tokens cover
 * @param queryText the rendered text the query tokens cover
 */
public record PromptSplit(int[] contextTokens, int[] queryTokens, String contextText, String queryText) {
}
