package io.github.starattention.langchain4j;

import dev.langchain4j.model.ModelProvider;
import dev.langchain4j.model.chat.Capability;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.ChatResponse;
import io.github.starattention.jlama.StarAttentionEngine;
import java.util.List;
import java.util.Set;

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
 * listeners, then calls {@link #doChat}. Tools and JSON response formats are refused with
 * {@link dev.langchain4j.exception.UnsupportedFeatureException}. Thread-safe; close it to free the model and the
 * cached contexts it owns.
 */
public final class StarAttentionChatModel implements ChatModel, AutoCloseable {

    private final ChatBackend backend;

    private StarAttentionChatModel(Builder builder) {
        this.backend = new ChatBackend(builder, StarAttentionChatModel.class);
    }

    public static Builder builder() {
        return new Builder();
    }

    @Override
    public ChatResponse doChat(ChatRequest request) {
        ChatBackend.Prepared prepared = backend.prepare(request);
        return backend.run(prepared, null, () -> false);
    }

    @Override
    public ChatRequestParameters defaultRequestParameters() {
        return backend.defaults();
    }

    @Override
    public List<ChatModelListener> listeners() {
        return backend.listeners();
    }

    @Override
    public ModelProvider provider() {
        return ModelProvider.OTHER;
    }

    @Override
    public Set<Capability> supportedCapabilities() {
        return Set.of();
    }

    /** The engine (to share it with a {@link StarAttentionStreamingChatModel}: {@code .engine(model.engine())}). */
    public StarAttentionEngine engine() {
        return backend.engine();
    }

    /** The context cache (to share it: {@code .contextCache(model.contextCache())}). */
    public ContextCache contextCache() {
        return backend.cache();
    }

    /** The model name reported in responses. */
    public String modelName() {
        return backend.modelName();
    }

    /** Stops running generations and frees what this chat model created (engine, model, cache). */
    @Override
    public void close() {
        backend.close();
    }

    @Override
    public String toString() {
        return "StarAttentionChatModel{" + backend + '}';
    }

    /** Builder; see {@link StarAttentionModelBuilder} for the options. */
    public static final class Builder extends StarAttentionModelBuilder<StarAttentionChatModel, Builder> {

        Builder() {
        }

        @Override
        public StarAttentionChatModel build() {
            return new StarAttentionChatModel(this);
        }
    }
}
