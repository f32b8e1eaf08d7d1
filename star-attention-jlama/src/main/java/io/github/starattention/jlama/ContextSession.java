package io.github.starattention.jlama;

import io.github.starattention.plan.BlockPlan;

/**
 * A context encoded once (phase 1) that answers any number of questions (phase 2).
 *
 * <p>Each {@link #generate} appends the query and answer KV after the context and rolls it back when done, so
 * questions do not see each other. Calls on one session are serialised; different sessions run in parallel.
 * Closing releases the KV memory (on every host).
 */
public interface ContextSession extends AutoCloseable {

    /** The block plan the context was encoded with (one block in global mode). */
    BlockPlan plan();

    /** Number of context tokens (BOS included). */
    int contextTokens();

    /** Wall time of phase 1 in milliseconds. */
    double prefillMillis();

    /**
     * Encodes {@code queryTokens} after the context and generates an answer.
     *
     * @param queryTokens phase-2 prompt tokens (no BOS), e.g. from {@link StarAttentionModel#split}
     * @throws PromptTooLongException if context + query + maxNewTokens exceeds the model's positions
     */
    Generation generate(int[] queryTokens, GenerationOptions options, TokenListener listener);

    /** Bytes of KV held for this context (all hosts). */
    long kvBytes();

    @Override
    void close();
}
