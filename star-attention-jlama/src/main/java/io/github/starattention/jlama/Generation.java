package io.github.starattention.jlama;

/**
 * The result of one {@link ContextSession#generate} call.
 *
 * @param text the decoded output, without the stop string or end-of-sequence token that ended it
 * @param tokens the generated token ids (the EOS token is not included)
 * @param finishReason why generation stopped
 * @param queryTokens number of query (phase-2 prompt) tokens
 * @param ttftMillis time from the call to the first sampled token (query prefill + first sample); the context
 *     prefill is reported by {@link ContextSession#prefillMillis()}
 * @param decodeTokensPerSecond output tokens after the first, per second of decoding
 */
public record Generation(String text, int[] tokens, FinishReason finishReason, int queryTokens, double ttftMillis,
                         double decodeTokensPerSecond) {
}
