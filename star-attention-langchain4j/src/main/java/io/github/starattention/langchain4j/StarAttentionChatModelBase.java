package io.github.starattention.langchain4j;

import dev.langchain4j.model.ModelProvider;
import dev.langchain4j.model.chat.Capability;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import io.github.starattention.jlama.StarAttentionEngine;
import java.util.List;
import java.util.Set;

/**
 * What {@link StarAttentionChatModel} and {@link StarAttentionStreamingChatModel} share: the backend built from
 * their builder, and the accessors LangChain4j asks of a chat model.
 */
abstract sealed class StarAttentionChatModelBase implements AutoCloseable
        permits StarAttentionChatModel, StarAttentionStreamingChatModel {

    final ChatBackend backend;

    StarAttentionChatModelBase(StarAttentionModelBuilder<?, ?> builder) {
        this.backend = new ChatBackend(builder, getClass());
    }

    /** The merged defaults: the builder's sampling options over its default request parameters, and the model name. */
    public ChatRequestParameters defaultRequestParameters() {
        return backend.defaults();
    }

    public List<ChatModelListener> listeners() {
        return backend.listeners();
    }

    public ModelProvider provider() {
        return ModelProvider.OTHER;
    }

    /** None of LangChain4j's optional capabilities (JSON schema response formats); text in, text out. */
    public Set<Capability> supportedCapabilities() {
        return Set.of();
    }

    /** The engine (to share it with another chat model: {@code .engine(model.engine())}). */
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
        return getClass().getSimpleName() + '{' + backend + '}';
    }
}
