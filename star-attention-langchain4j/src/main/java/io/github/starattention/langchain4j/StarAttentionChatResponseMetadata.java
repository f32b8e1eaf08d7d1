package io.github.starattention.langchain4j;

import dev.langchain4j.model.chat.response.ChatResponseMetadata;
import java.util.Objects;

/**
 * Response metadata with Star Attention timings: whether the context came from the {@link ContextCache}, the
 * phase-1 and time-to-first-token wall times, and the decode speed.
 */
public class StarAttentionChatResponseMetadata extends ChatResponseMetadata {

    private final int contextTokens;
    private final int queryTokens;
    private final boolean contextCached;
    private final double prefillMillis;
    private final double timeToFirstTokenMillis;
    private final double decodeTokensPerSecond;

    protected StarAttentionChatResponseMetadata(Builder builder) {
        super(builder);
        this.contextTokens = builder.contextTokens;
        this.queryTokens = builder.queryTokens;
        this.contextCached = builder.contextCached;
        this.prefillMillis = builder.prefillMillis;
        this.timeToFirstTokenMillis = builder.timeToFirstTokenMillis;
        this.decodeTokensPerSecond = builder.decodeTokensPerSecond;
    }

    /** Phase-1 tokens (BOS included): everything before the last user message. */
    public int contextTokens() {
        return contextTokens;
    }

    /** Phase-2 prompt tokens: the last user message and the assistant header. */
    public int queryTokens() {
        return queryTokens;
    }

    /** True if this request reused an encoded context instead of running phase 1. */
    public boolean contextCached() {
        return contextCached;
    }

    /** Wall time this request spent obtaining the encoded context (prefill, or waiting for one; ~0 on a hit). */
    public double prefillMillis() {
        return prefillMillis;
    }

    /** Wall time from the start of the request to the first output token. */
    public double timeToFirstTokenMillis() {
        return timeToFirstTokenMillis;
    }

    /** Output tokens after the first, per second. */
    public double decodeTokensPerSecond() {
        return decodeTokensPerSecond;
    }

    @Override
    public Builder toBuilder() {
        return ((Builder) super.toBuilder(builder())).contextTokens(contextTokens).queryTokens(queryTokens)
                .contextCached(contextCached).prefillMillis(prefillMillis)
                .timeToFirstTokenMillis(timeToFirstTokenMillis).decodeTokensPerSecond(decodeTokensPerSecond);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof StarAttentionChatResponseMetadata that && super.equals(o)
                && contextTokens == that.contextTokens && queryTokens == that.queryTokens
                && contextCached == that.contextCached && prefillMillis == that.prefillMillis
                && timeToFirstTokenMillis == that.timeToFirstTokenMillis
                && decodeTokensPerSecond == that.decodeTokensPerSecond;
    }

    @Override
    public int hashCode() {
        return Objects.hash(super.hashCode(), contextTokens, queryTokens, contextCached, prefillMillis,
                timeToFirstTokenMillis, decodeTokensPerSecond);
    }

    @Override
    public String toString() {
        return "StarAttentionChatResponseMetadata{id='" + id() + "', modelName='" + modelName() + "', tokenUsage="
                + tokenUsage() + ", finishReason=" + finishReason() + ", contextTokens=" + contextTokens
                + ", queryTokens=" + queryTokens + ", contextCached=" + contextCached + ", prefillMillis="
                + Math.round(prefillMillis) + ", timeToFirstTokenMillis=" + Math.round(timeToFirstTokenMillis)
                + ", decodeTokensPerSecond=" + Math.round(decodeTokensPerSecond) + '}';
    }

    public static Builder builder() {
        return new Builder();
    }

    public static class Builder extends ChatResponseMetadata.Builder<Builder> {
        private int contextTokens;
        private int queryTokens;
        private boolean contextCached;
        private double prefillMillis;
        private double timeToFirstTokenMillis;
        private double decodeTokensPerSecond;

        public Builder contextTokens(int contextTokens) {
            this.contextTokens = contextTokens;
            return this;
        }

        public Builder queryTokens(int queryTokens) {
            this.queryTokens = queryTokens;
            return this;
        }

        public Builder contextCached(boolean contextCached) {
            this.contextCached = contextCached;
            return this;
        }

        public Builder prefillMillis(double prefillMillis) {
            this.prefillMillis = prefillMillis;
            return this;
        }

        public Builder timeToFirstTokenMillis(double timeToFirstTokenMillis) {
            this.timeToFirstTokenMillis = timeToFirstTokenMillis;
            return this;
        }

        public Builder decodeTokensPerSecond(double decodeTokensPerSecond) {
            this.decodeTokensPerSecond = decodeTokensPerSecond;
            return this;
        }

        @Override
        public StarAttentionChatResponseMetadata build() {
            return new StarAttentionChatResponseMetadata(this);
        }
    }
}
