package io.github.starattention.jlama;

/** Why generation stopped. */
public enum FinishReason {
    /** The model produced an end-of-sequence token or a stop string. */
    STOP,
    /** {@code maxNewTokens} output tokens were generated. */
    LENGTH,
    /** The caller cancelled. */
    CANCELLED
}
