package io.github.starattention.jlama;

/** A prompt (context + query + requested output) does not fit the model's positions. */
public final class PromptTooLongException extends IllegalArgumentException {

    private final int requested;
    private final int limit;

    public PromptTooLongException(int requested, int limit) {
        super("prompt needs " + requested + " positions but the model has " + limit
                + " (max_position_embeddings); shorten the context or lower max new tokens");
        this.requested = requested;
        this.limit = limit;
    }

    public int requested() {
        return requested;
    }

    public int limit() {
        return limit;
    }
}
