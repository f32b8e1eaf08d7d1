package io.github.starattention.langchain4j;

import dev.langchain4j.model.ModelProvider;
import dev.langchain4j.model.chat.Capability;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.PartialResponse;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.chat.response.StreamingHandle;
import io.github.starattention.jlama.StarAttentionEngine;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A LangChain4j {@link StreamingChatModel} answering with Star Attention (see {@link StarAttentionChatModel} for
 * the context/question split and the context cache).
 *
 * <p>Each request runs on the model's executor: {@code onPartialResponse} receives the answer as it is generated,
 * one token at a time (text that may turn out to be a stop sequence is held back, so the pieces always concatenate
 * to the final answer), then {@code onCompleteResponse}; or {@code onError} (for unsupported features and invalid
 * requests too). {@link StreamingHandle#cancel()} on the handle passed with each partial response stops generation;
 * no further callback follows. Thread-safe.
 */
public final class StarAttentionStreamingChatModel implements StreamingChatModel, AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(StarAttentionStreamingChatModel.class);

    private final ChatBackend backend;
    private final Executor executor;
    private final ExecutorService ownedExecutor;

    private StarAttentionStreamingChatModel(Builder builder) {
        this.backend = new ChatBackend(builder, StarAttentionStreamingChatModel.class);
        if (builder.executor != null) {
            this.executor = builder.executor;
            this.ownedExecutor = null;
        } else {
            this.ownedExecutor = Executors.newCachedThreadPool(
                    Thread.ofPlatform().name("star-attention-chat-", 0).daemon(true).factory());
            this.executor = ownedExecutor;
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    @Override
    public void doChat(ChatRequest request, StreamingChatResponseHandler handler) {
        Handle handle = new Handle();
        try {
            executor.execute(() -> run(request, handler, handle));
        } catch (RejectedExecutionException e) {
            notifyError(handler, new IllegalStateException("the streaming chat model is closed", e));
        }
    }

    private void run(ChatRequest request, StreamingChatResponseHandler handler, Handle handle) {
        AtomicReference<Throwable> handlerError = new AtomicReference<>();
        PartialResponseContext context = new PartialResponseContext(handle);
        Consumer<String> partials = text -> {
            if (handle.isCancelled() || handlerError.get() != null) {
                return;
            }
            try {
                handler.onPartialResponse(new PartialResponse(text), context);
            } catch (Throwable t) {
                handlerError.set(t);
            }
        };
        ChatResponse response;
        try {
            ChatBackend.Prepared prepared = backend.prepare(request);
            response = backend.run(prepared, partials, () -> handle.isCancelled() || handlerError.get() != null);
        } catch (ChatBackend.CancelledException e) {
            if (handlerError.get() != null) {
                notifyError(handler, handlerError.get());
            } else if (!handle.isCancelled()) {
                notifyError(handler, e);
            }
            return;
        } catch (Throwable t) {
            if (!handle.isCancelled()) {
                notifyError(handler, t);
            }
            return;
        }
        if (handlerError.get() != null) {
            notifyError(handler, handlerError.get());
        } else if (!handle.isCancelled()) {
            try {
                handler.onCompleteResponse(response);
            } catch (Throwable t) {
                log.warn("onCompleteResponse threw; ignored", t);
            }
        }
    }

    private static void notifyError(StreamingChatResponseHandler handler, Throwable error) {
        try {
            handler.onError(error);
        } catch (Throwable t) {
            log.warn("onError threw; ignored", t);
        }
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

    /** Stops running generations (silently) and frees what this chat model created (engine, model, cache, threads). */
    @Override
    public void close() {
        backend.close();
        if (ownedExecutor != null) {
            ownedExecutor.shutdown();
        }
    }

    @Override
    public String toString() {
        return "StarAttentionStreamingChatModel{" + backend + '}';
    }

    /** Cancels one streaming request. */
    private static final class Handle implements StreamingHandle {
        private volatile boolean cancelled;

        @Override
        public void cancel() {
            cancelled = true;
        }

        @Override
        public boolean isCancelled() {
            return cancelled;
        }
    }

    /** Builder; see {@link StarAttentionModelBuilder} for the options. */
    public static final class Builder extends StarAttentionModelBuilder<StarAttentionStreamingChatModel, Builder> {

        private Executor executor;

        Builder() {
        }

        /** Where requests run (default: a cached pool of daemon threads, shut down by {@link StarAttentionStreamingChatModel#close()}). */
        public Builder executor(Executor executor) {
            this.executor = executor;
            return this;
        }

        @Override
        public StarAttentionStreamingChatModel build() {
            return new StarAttentionStreamingChatModel(this);
        }
    }
}
