package io.github.starattention.jlama;

/**
 * A chat prompt split for Star Attention: everything before the last user turn is the context (phase 1), the last
 * user turn and the assistant header are the query (phase 2).
 *
 * @param contextTokens BOS followed by the context text's tokens
 * @param queryTokens the query text's tokens (no BOS)
 * @param contextText the rendered context text (without BOS)
 * @param queryText the rendered query text
 */
public record PromptSplit(int[] contextTokens, int[] queryTokens, String contextText, String queryText) {
}
