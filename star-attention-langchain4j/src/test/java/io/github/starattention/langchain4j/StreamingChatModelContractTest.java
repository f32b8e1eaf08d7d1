package io.github.starattention.langchain4j;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.listener.ChatModelErrorContext;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.listener.ChatModelRequestContext;
import dev.langchain4j.model.chat.listener.ChatModelResponseContext;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.PartialResponse;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.output.FinishReason;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The StreamingChatModel contract over a scripted engine. */
class StreamingChatModelContractTest {

    private static final String CONTEXT = "One of the special magic numbers for ABC is: 7654321.";
    private static final String ANSWER = "The special magic number is 7654321.";

    private final ScriptedEngine engine = new ScriptedEngine(TestModels.model());

    private static ChatRequest request(ChatRequestParameters parameters) {
        return ChatRequest.builder().messages(SystemMessage.from(CONTEXT), UserMessage.from("What is it?"))
                .parameters(parameters).build();
    }

    /** Collects callbacks; completes on the terminal one. */
    static final class Collector implements StreamingChatResponseHandler {
        final List<String> partials = new CopyOnWriteArrayList<>();
        final CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        volatile boolean cancelAfterFirst;
        volatile int terminalCalls;

        @Override
        public void onPartialResponse(PartialResponse partial, PartialResponseContext context) {
            partials.add(partial.text());
            if (cancelAfterFirst) {
                context.streamingHandle().cancel();
            }
        }

        @Override
        public void onCompleteResponse(ChatResponse response) {
            terminalCalls++;
            done.complete(response);
        }

        @Override
        public void onError(Throwable error) {
            terminalCalls++;
            done.completeExceptionally(error);
        }

        ChatResponse await() throws Exception {
            return done.get(30, TimeUnit.SECONDS);
        }
    }

    @Test
    void streamsTokensThenCompletesWithTheSameText() throws Exception {
        List<ChatResponse> seen = new CopyOnWriteArrayList<>();
        ChatModelListener listener = new ChatModelListener() {
            @Override
            public void onResponse(ChatModelResponseContext ctx) {
                seen.add(ctx.chatResponse());
            }
        };
        try (var model = StarAttentionStreamingChatModel.builder().engine(engine).listeners(listener).build()) {
            Collector c = new Collector();
            model.chat(request(ChatRequestParameters.builder().build()), c);
            ChatResponse r = c.await();
            assertThat(r.aiMessage().text()).isEqualTo(ANSWER);
            assertThat(String.join("", c.partials)).isEqualTo(ANSWER);
            assertThat(c.partials).hasSize(TestModels.model().encode(ANSWER).length);
            assertThat(r.finishReason()).isEqualTo(FinishReason.STOP);
            assertThat(r.tokenUsage().outputTokenCount()).isEqualTo(c.partials.size());
            assertThat(seen).containsExactly(r);
        }
    }

    @Test
    void partialsNeverContainAStopSequence() throws Exception {
        try (var model = StarAttentionStreamingChatModel.builder().engine(engine).build()) {
            Collector c = new Collector();
            model.chat(request(ChatRequestParameters.builder().stopSequences("number is 7654").build()), c);
            ChatResponse r = c.await();
            assertThat(r.aiMessage().text()).isEqualTo("The special magic ");
            assertThat(String.join("", c.partials)).isEqualTo("The special magic ");
        }
    }

    @Test
    void lengthFinishReason() throws Exception {
        try (var model = StarAttentionStreamingChatModel.builder().engine(engine).maxOutputTokens(2).build()) {
            Collector c = new Collector();
            model.chat(request(ChatRequestParameters.builder().build()), c);
            ChatResponse r = c.await();
            assertThat(r.finishReason()).isEqualTo(FinishReason.LENGTH);
            assertThat(r.tokenUsage().outputTokenCount()).isEqualTo(2);
            assertThat(String.join("", c.partials)).isEqualTo(r.aiMessage().text());
        }
    }

    @Test
    void unsupportedFeaturesThrowFromChatBeforeAnythingRuns() {
        List<ChatModelErrorContext> errors = new CopyOnWriteArrayList<>();
        ChatModelListener listener = new ChatModelListener() {
            @Override
            public void onError(ChatModelErrorContext ctx) {
                errors.add(ctx);
            }
        };
        try (var model = StarAttentionStreamingChatModel.builder().engine(engine).listeners(listener).build()) {
            Collector c = new Collector();
            assertThatThrownBy(() -> model.chat(request(ChatRequestParameters.builder()
                    .toolSpecifications(ToolSpecification.builder().name("t").build()).build()), c))
                    .isExactlyInstanceOf(UnsupportedFeatureException.class)
                    .hasMessageContaining("tools are not supported");
            assertThatThrownBy(() -> model.chat(request(ChatRequestParameters.builder().modelName("other").build()), c))
                    .isExactlyInstanceOf(UnsupportedFeatureException.class)
                    .hasMessageContaining("modelName 'other' is not supported");
            assertThat(c.terminalCalls).isZero();
            assertThat(c.partials).isEmpty();
            assertThat(engine.prefills).hasValue(0);
            assertThat(errors).isEmpty();
        }
    }

    @Test
    void cancellingStopsGenerationSilently() throws Exception {
        engine.stepMillis = 30;
        ExecutorService executor = Executors.newSingleThreadExecutor();
        try (var model = StarAttentionStreamingChatModel.builder().engine(engine).executor(executor).build()) {
            Collector c = new Collector();
            c.cancelAfterFirst = true;
            model.chat(request(ChatRequestParameters.builder().build()), c);
            executor.shutdown();
            assertThat(executor.awaitTermination(30, TimeUnit.SECONDS)).isTrue();
            assertThat(c.partials).hasSize(1);
            assertThat(engine.generatedTokens.get()).isLessThanOrEqualTo(2);
            assertThat(c.terminalCalls).isZero();
        }
        // the session is free again for the next request
        try (var model = StarAttentionStreamingChatModel.builder().engine(engine).build()) {
            Collector next = new Collector();
            model.chat(request(ChatRequestParameters.builder().build()), next);
            assertThat(next.await().aiMessage().text()).isEqualTo(ANSWER);
        }
    }

    /** Counts the listener's calls. */
    static final class CountingListener implements ChatModelListener {
        final AtomicInteger requests = new AtomicInteger();
        final AtomicInteger responses = new AtomicInteger();
        final List<Throwable> errors = new CopyOnWriteArrayList<>();

        @Override
        public void onRequest(ChatModelRequestContext ctx) {
            requests.incrementAndGet();
        }

        @Override
        public void onResponse(ChatModelResponseContext ctx) {
            responses.incrementAndGet();
        }

        @Override
        public void onError(ChatModelErrorContext ctx) {
            errors.add(ctx.error());
        }
    }

    @Test
    void anExceptionFromOnPartialResponseGoesToOnErrorAndStreamingGoesOn() throws Exception {
        CountingListener listener = new CountingListener();
        RuntimeException boom = new IllegalStateException("boom");
        AtomicInteger partials = new AtomicInteger();
        List<Throwable> errors = new CopyOnWriteArrayList<>();
        CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        try (var model = StarAttentionStreamingChatModel.builder().engine(engine).listeners(listener).build()) {
            model.chat(request(ChatRequestParameters.builder().build()), new StreamingChatResponseHandler() {
                @Override
                public void onPartialResponse(String partial) {
                    partials.incrementAndGet();
                    throw boom;
                }

                @Override
                public void onCompleteResponse(ChatResponse response) {
                    done.complete(response);
                }

                @Override
                public void onError(Throwable t) {
                    errors.add(t);
                }
            });
            ChatResponse response = done.get(30, TimeUnit.SECONDS);
            assertThat(response.aiMessage().text()).isEqualTo(ANSWER);
            assertThat(partials.get()).isEqualTo(TestModels.model().encode(ANSWER).length);
            assertThat(errors).hasSize(partials.get()).allSatisfy(e -> assertThat(e).isSameAs(boom));
            assertThat(listener.requests).hasValue(1);
            assertThat(listener.responses).hasValue(1);
            assertThat(listener.errors).hasSize(partials.get());
        }
    }

    @Test
    void anExceptionFromOnCompleteResponseGoesToOnErrorAndListeners() throws Exception {
        CountingListener listener = new CountingListener();
        RuntimeException boom = new IllegalStateException("boom");
        CompletableFuture<Throwable> error = new CompletableFuture<>();
        try (var model = StarAttentionStreamingChatModel.builder().engine(engine).listeners(listener).build()) {
            model.chat(request(ChatRequestParameters.builder().build()), new StreamingChatResponseHandler() {
                @Override
                public void onPartialResponse(String partial) {
                }

                @Override
                public void onCompleteResponse(ChatResponse response) {
                    throw boom;
                }

                @Override
                public void onError(Throwable t) {
                    error.complete(t);
                }
            });
            assertThat(error.get(30, TimeUnit.SECONDS)).isSameAs(boom);
            assertThat(listener.requests).hasValue(1);
            assertThat(listener.responses).hasValue(1);
            assertThat(listener.errors).containsExactly(boom);
        }
    }

    @Test
    void closingDuringAPrefillReleasesWhenTheRequestEndsNotUnderIt() throws Exception {
        engine.prefillMillis = 2_000;
        var model = StarAttentionStreamingChatModel.builder().engine(engine).closeTimeout(Duration.ofMillis(200))
                .build();
        Collector c = new Collector();
        model.chat(request(ChatRequestParameters.builder().build()), c);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (engine.prefills.get() == 0 && System.nanoTime() < deadline) {
            Thread.onSpinWait(); // the request has entered phase 1
        }
        long t0 = System.nanoTime();
        model.close();
        assertThat((System.nanoTime() - t0) / 1e9).as("close() returns after its timeout").isLessThan(1.5);
        assertThat(engine.sessions).as("the prefill is still running").isEmpty();
        assertThatThrownBy(c::await).hasCauseInstanceOf(ChatBackend.CancelledException.class)
                .hasMessageContaining("closed");
        // the request ended and, as the last one, released the cache with the session it had encoded
        assertThat(engine.sessions).singleElement().satisfies(s -> assertThat(s.closed).isTrue());
    }

    @Test
    void anExceptionFromOnErrorIsIgnored() throws Exception {
        ExecutorService executor = Executors.newSingleThreadExecutor();
        AtomicInteger onErrorCalls = new AtomicInteger();
        try (var model = StarAttentionStreamingChatModel.builder().engine(engine).executor(executor).build()) {
            model.chat(request(ChatRequestParameters.builder().build()), new StreamingChatResponseHandler() {
                @Override
                public void onPartialResponse(String partial) {
                }

                @Override
                public void onCompleteResponse(ChatResponse response) {
                    throw new IllegalStateException("from onCompleteResponse");
                }

                @Override
                public void onError(Throwable t) {
                    onErrorCalls.incrementAndGet();
                    throw new IllegalStateException("from onError");
                }
            });
            executor.shutdown();
            assertThat(executor.awaitTermination(30, TimeUnit.SECONDS)).isTrue();
            assertThat(onErrorCalls).hasValue(1);
        }
    }
}
