package io.github.starattention.langchain4j;

import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.spi.ServiceHelper;
import io.github.starattention.langchain4j.spi.StarAttentionChatModelBuilderFactory;

/**
 * A LangChain4j {@link ChatModel} answering with Star Attention: everything before the last user message is the
 * context, encoded once in blocks (phase 1) and kept in a {@link ContextCache}; the last user message is the
 * question (phase 2). A conversation that repeats a context (the same document, several questions) skips phase 1.
 *
 * <pre>{@code
 * ChatModel model = StarAttentionChatModel.builder()
 *         .modelPath(Path.of("models/Llama-3.2-1B-Instruct"))
 *         .blocks(4)
 *         .maxOutputTokens(256)
 *         .build();
 * }</pre>
 *
 * <p>{@link #chat(ChatRequest)} (from {@link ChatModel}) merges the default request parameters and notifies the
 * listeners, then calls {@link #doChat}. Tools, JSON response formats, images and other model names are refused
 * with {@link dev.langchain4j.exception.UnsupportedFeatureException}. Thread-safe; close it to free the model and the
 * cached contexts it owns.
 */
public final class StarAttentionChatModel extends StarAttentionChatModelBase implements ChatModel {

    private StarAttentionChatModel(Builder builder) {
        super(builder);
    }

    /**
     * A new builder: from the first {@link StarAttentionChatModelBuilderFactory} found with
     * {@link java.util.ServiceLoader} (as LangChain4j's integrations do, for frameworks that preconfigure builders),
     * else a plain one.
     */
    public static Builder builder() {
        for (StarAttentionChatModelBuilderFactory factory
                : ServiceHelper.loadFactories(StarAttentionChatModelBuilderFactory.class)) {
            return factory.get();
        }
        return new Builder();
    }

    @Override
    public ChatResponse doChat(ChatRequest request) {
        return backend.run(backend.prepare(backend.check(request)), null, () -> false);
    }

    /** Builder; see {@link StarAttentionModelBuilder} for the options. */
    public static final class Builder extends StarAttentionModelBuilder<StarAttentionChatModel, Builder> {

        /** A plain builder; {@link StarAttentionChatModel#builder()} is the usual way to get one. */
        public Builder() {
        }

        @Override
        public StarAttentionChatModel build() {
            return new StarAttentionChatModel(this);
        }
    }
}
