package io.github.starattention.jlama;

/**
 * Encodes contexts into {@link ContextSession}s. The in-process engine is {@link LocalEngine}; the distributed one
 * spreads blocks over context hosts. Engines are thread-safe.
 */
public interface StarAttentionEngine extends AutoCloseable {

    /** The model this engine runs. */
    StarAttentionModel model();

    /** The options this engine was built with. */
    EngineOptions options();

    /**
     * Phase 1: encodes {@code contextTokens} (BOS first, as from {@link StarAttentionModel#split}).
     *
     * @throws PromptTooLongException if the context alone exceeds the model's positions
     * @throws IllegalArgumentException for an empty context or a block plan that does not fit (anchor &gt; block,
     *     blocks &lt; hosts)
     */
    ContextSession prefill(int[] contextTokens, PrefillListener listener);

    @Override
    void close();
}
