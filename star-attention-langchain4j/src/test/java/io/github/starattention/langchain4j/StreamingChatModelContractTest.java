package io.github.starattention.langchain4j;

import static org.assertj.core.api.Assertions.assertThat;

import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.listener.ChatModelErrorContext;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.listener.ChatModelResponseContext;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.PartialResponse;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.output.FinishReason;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
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
    void unsupportedFeaturesGoToOnErrorAndListeners() throws Exception {
        List<ChatModelErrorContext> errors = new CopyOnWriteArrayList<>();
        ChatModelListener listener = new ChatModelListener() {
            @Override
            public void onError(ChatModelErrorContext ctx) {
                errors.add(ctx);
            }
        };
        try (var model = StarAttentionStreamingChatModel.builder().engine(engine).listeners(listener).build()) {
            Collector c = new Collector();
            model.chat(request(ChatRequestParameters.builder()
                    .toolSpecifications(ToolSpecification.builder().name("t").build()).build()), c);
            assertThat(c.done).failsWithin(30, TimeUnit.SECONDS).withThrowableOfType(Exception.class)
                    .withCauseInstanceOf(UnsupportedFeatureException.class);
            assertThat(c.partials).isEmpty();
            assertThat(errors).singleElement().satisfies(e -> assertThat(e.error()).isInstanceOf(UnsupportedFeatureException.class));
        }
    }

    @Test
    void cancellingStopsGenerationSilently() throws Exception {
        engine.stepMillis = 30;
        try (var model = StarAttentionStreamingChatModel.builder().engine(engine).build()) {
            Collector c = new Collector();
            c.cancelAfterFirst = true;
            model.chat(request(ChatRequestParameters.builder().build()), c);
            Thread.sleep(1000);
            assertThat(c.partials).hasSize(1);
            assertThat(engine.generatedTokens.get()).isLessThanOrEqualTo(2);
            assertThat(c.terminalCalls).isZero();
            // the session is free again for the next request
            Collector next = new Collector();
            model.chat(request(ChatRequestParameters.builder().build()), next);
            assertThat(next.await().aiMessage().text()).isEqualTo(ANSWER);
        }
    }

    @Test
    void aThrowingHandlerStopsGenerationAndGetsOnError() throws Exception {
        engine.stepMillis = 10;
        try (var model = StarAttentionStreamingChatModel.builder().engine(engine).build()) {
            CompletableFuture<Throwable> error = new CompletableFuture<>();
            model.chat(request(ChatRequestParameters.builder().build()), new StreamingChatResponseHandler() {
                @Override
                public void onPartialResponse(String partial) {
                    throw new IllegalStateException("boom");
                }

                @Override
                public void onCompleteResponse(ChatResponse response) {
                    error.complete(null);
                }

                @Override
                public void onError(Throwable t) {
                    error.complete(t);
                }
            });
            assertThat(error.get(30, TimeUnit.SECONDS)).isInstanceOf(IllegalStateException.class).hasMessage("boom");
            assertThat(engine.generatedTokens.get()).isLessThanOrEqualTo(2);
        }
    }
}
