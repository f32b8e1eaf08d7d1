package io.github.starattention.langchain4j;

import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.DefaultChatRequestParameters;
import java.util.Objects;

/**
 * Request parameters with the Star Attention specific ones: {@link #seed()} (the sampler's seed, for reproducible
 * sampling at a temperature above 0). Merging keeps them whichever side of {@code overrideWith} they come from.
 */
public class StarAttentionChatRequestParameters extends DefaultChatRequestParameters {

    public static final StarAttentionChatRequestParameters EMPTY = builder().build();

    private final Long seed;

    protected StarAttentionChatRequestParameters(Builder builder) {
        super(builder);
        this.seed = builder.seed;
    }

    /** Seed of the sampler's random generator; {@code null} for a fresh random seed per request. */
    public Long seed() {
        return seed;
    }

    @Override
    public StarAttentionChatRequestParameters overrideWith(ChatRequestParameters that) {
        return builder().overrideWith(this).overrideWith(that).build();
    }

    @Override
    public StarAttentionChatRequestParameters defaultedBy(ChatRequestParameters that) {
        return builder().overrideWith(that).overrideWith(this).build();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof StarAttentionChatRequestParameters that && super.equals(o) && Objects.equals(seed, that.seed);
    }

    @Override
    public int hashCode() {
        return Objects.hash(super.hashCode(), seed);
    }

    @Override
    public String toString() {
        return "StarAttentionChatRequestParameters{modelName=" + modelName() + ", temperature=" + temperature()
                + ", topP=" + topP() + ", topK=" + topK() + ", maxOutputTokens=" + maxOutputTokens()
                + ", stopSequences=" + stopSequences() + ", toolSpecifications=" + toolSpecifications()
                + ", toolChoice=" + toolChoice() + ", responseFormat=" + responseFormat() + ", seed=" + seed + '}';
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Builder; unset values are {@code null} and taken from the model's defaults. */
    public static class Builder extends DefaultChatRequestParameters.Builder<Builder> {

        private Long seed;

        @Override
        public Builder overrideWith(ChatRequestParameters parameters) {
            super.overrideWith(parameters);
            if (parameters instanceof StarAttentionChatRequestParameters p && p.seed() != null) {
                seed = p.seed();
            }
            return this;
        }

        public Builder seed(Long seed) {
            this.seed = seed;
            return this;
        }

        @Override
        public StarAttentionChatRequestParameters build() {
            return new StarAttentionChatRequestParameters(this);
        }
    }
}
