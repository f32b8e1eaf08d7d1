package io.github.starattention.langchain4j;

import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.PartialResponse;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.chat.response.StreamingHandle;
import dev.langchain4j.spi.ServiceHelper;
import io.github.starattention.langchain4j.spi.StarAttentionStreamingChatModelBuilderFactory;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A LangChain4j {@link StreamingChatModel} answering with Star Attention (see {@link StarAttentionChatModel} for
 * the context/question split and the context cache).
 *
 * <p>Each request runs on the model's executor: {@code onPartialResponse} receives the answer as it is generated,
 * one token at a time (text that may turn out to be a stop sequence is held back, so the pieces always concatenate
 * to the final answer), then {@code onCompleteResponse}; or {@code onError}. Unsupported features and invalid
 * parameters or messages are refused before anything runs: {@code chat(...)} throws
 * {@link dev.langchain4j.exception.UnsupportedFeatureException} or
 * {@link dev.langchain4j.exception.InvalidRequestException}, as LangChain4j's integrations do. An exception thrown
 * by the handler goes to its {@code onError} and streaming goes on. {@link StreamingHandle#cancel()} on the handle
 * passed with each partial response stops generation; no further callback follows. Thread-safe.
 */
public final class StarAttentionStreamingChatModel extends StarAttentionChatModelBase implements StreamingChatModel {

    private static final Logger log = LoggerFactory.getLogger(StarAttentionStreamingChatModel.class);

    private final Executor executor;
    private final ExecutorService ownedExecutor;

    private StarAttentionStreamingChatModel(Builder builder) {
        super(builder);
        if (builder.executor != null) {
            this.executor = builder.executor;
            this.ownedExecutor = null;
        } else {
            this.ownedExecutor = Executors.newCachedThreadPool(
                    Thread.ofPlatform().name("star-attention-chat-", 0).daemon(true).factory());
            this.executor = ownedExecutor;
        }
    }

    /**
     * A new builder: from the first {@link StarAttentionStreamingChatModelBuilderFactory} found with
     * {@link java.util.ServiceLoader} (as LangChain4j's integrations do), else a plain one.
     */
    public static Builder builder() {
        for (StarAttentionStreamingChatModelBuilderFactory factory
                : ServiceHelper.loadFactories(StarAttentionStreamingChatModelBuilderFactory.class)) {
            return factory.get();
        }
        return new Builder();
    }

    /**
     * Checks the request on the caller's thread (an unsupported feature or an invalid request throws from here),
     * then runs it on the executor.
     */
    @Override
    public void doChat(ChatRequest request, StreamingChatResponseHandler handler) {
        ChatBackend.Checked checked = backend.check(request);
        Handle handle = new Handle();
        try {
            executor.execute(() -> run(checked, handler, handle));
        } catch (RejectedExecutionException e) {
            throw new IllegalStateException("the streaming chat model is closed", e);
        }
    }

    /**
     * Runs one request. As LangChain4j's own integrations do, an exception thrown by the handler's
     * {@code onPartialResponse} or {@code onCompleteResponse} goes to its {@code onError} (and so to the
     * listeners), and streaming goes on; after a cancel, nothing more is called.
     */
    private void run(ChatBackend.Checked checked, StreamingChatResponseHandler handler, Handle handle) {
        PartialResponseContext context = new PartialResponseContext(handle);
        Consumer<String> partials = text -> {
            if (handle.isCancelled()) {
                return;
            }
            try {
                handler.onPartialResponse(new PartialResponse(text), context);
            } catch (Exception e) {
                notifyError(handler, e);
            }
        };
        ChatResponse response;
        try {
            response = backend.run(backend.prepare(checked), partials, handle::isCancelled);
        } catch (RuntimeException | Error e) {
            if (!handle.isCancelled()) {
                notifyError(handler, e);
            }
            return;
        }
        if (!handle.isCancelled()) {
            try {
                handler.onCompleteResponse(response);
            } catch (Exception e) {
                notifyError(handler, e);
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

    /** Stops running generations (silently) and frees what this chat model created (engine, model, cache, threads). */
    @Override
    public void close() {
        super.close();
        if (ownedExecutor != null) {
            ownedExecutor.shutdown();
        }
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

        /** A plain builder; {@link StarAttentionStreamingChatModel#builder()} is the usual way to get one. */
        public Builder() {
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
