package io.github.starattention.langchain4j;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.listener.ChatModelRequestContext;
import dev.langchain4j.model.chat.listener.ChatModelResponseContext;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.PartialResponse;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.service.AiServices;
import dev.langchain4j.service.V;
import io.github.starattention.attention.Device;
import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.LocalEngine;
import io.github.starattention.jlama.Mode;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The chat models on the bundled model with 1K-token dev-set contexts (niah_single). The blocking and streaming
 * models share one star-mode engine and context cache, so the first test encodes the eight contexts and the later
 * tests ask about them again without phase 1.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class StarAttentionChatModelIT {

    private static final int MAX_OUTPUT = 48;

    private LocalEngine engine;
    private ContextCache cache;
    private StarAttentionChatModel chat;
    private StarAttentionStreamingChatModel streaming;
    private List<JsonNode> examples;

    /** The README's example interface. */
    interface Analyst {
        @dev.langchain4j.service.SystemMessage("{{document}}")
        String ask(@V("document") String document, @dev.langchain4j.service.UserMessage String question);
    }

    @BeforeAll
    void start() {
        engine = LocalEngine.create(TestModels.model(), EngineOptions.builder().mode(Mode.STAR).blocks(4)
                .device(Device.AUTO).build());
        cache = ContextCache.withMaxBytes(1L << 30);
        chat = StarAttentionChatModel.builder().engine(engine).contextCache(cache).maxOutputTokens(MAX_OUTPUT).build();
        streaming = StarAttentionStreamingChatModel.builder().engine(engine).contextCache(cache)
                .maxOutputTokens(MAX_OUTPUT).build();
        examples = TestModels.dev("niah_single", 1024).subList(0, 8);
    }

    @AfterAll
    void stop() {
        streaming.close();
        chat.close();
        cache.close();
        engine.close();
    }

    private static ChatRequest request(JsonNode example) {
        return ChatRequest.builder().messages(SystemMessage.from(example.get("context").asText()),
                UserMessage.from(example.get("question").asText())).build();
    }

    private static String answer(JsonNode example) {
        return example.get("answers").get(0).asText();
    }

    @Test
    @Order(1)
    void eightParallelChatsOnDifferentContextsEachGetTheirOwnAnswer() throws Exception {
        long t0 = System.nanoTime();
        CountDownLatch start = new CountDownLatch(1);
        List<Future<ChatResponse>> futures = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(examples.size())) {
            for (JsonNode ex : examples) {
                futures.add(pool.submit(() -> {
                    start.await();
                    return chat.chat(request(ex));
                }));
            }
            start.countDown();
            for (int i = 0; i < examples.size(); i++) {
                String text = futures.get(i).get(10, TimeUnit.MINUTES).aiMessage().text();
                assertThat(text).as(examples.get(i).get("id").asText()).contains(answer(examples.get(i)));
                for (int j = 0; j < examples.size(); j++) {
                    if (j != i) {
                        assertThat(text).doesNotContain(answer(examples.get(j)));
                    }
                }
            }
        }
        assertThat(cache.misses()).isEqualTo(8);
        System.out.printf("8 parallel chats on 1K contexts: %.1f s%n", (System.nanoTime() - t0) / 1e9);
    }

    @Test
    @Order(2)
    void aiServicesAnswerDevSetQuestions() {
        Analyst analyst = AiServices.create(Analyst.class, chat);
        long uncached = examples.subList(0, 3).stream().filter(ex -> !cache.contains(engine, TestModels.model()
                .split(ex.get("context").asText(), ex.get("question").asText()).contextTokens())).count();
        long misses = cache.misses();
        for (JsonNode ex : examples.subList(0, 3)) {
            String text = analyst.ask(ex.get("context").asText(), ex.get("question").asText());
            assertThat(text).as(ex.get("id").asText()).contains(answer(ex)).startsWith("The special magic number for");
        }
        assertThat(cache.misses() - misses).as("AiServices renders the same context tokens as a plain request")
                .isEqualTo(uncached);
    }

    @Test
    @Order(3)
    void streamingAndBlockingGiveTheSameText() throws Exception {
        for (JsonNode ex : examples.subList(3, 5)) {
            ChatResponse blocking = chat.chat(request(ex));
            List<String> partials = new CopyOnWriteArrayList<>();
            CompletableFuture<ChatResponse> done = new CompletableFuture<>();
            streaming.chat(request(ex), new StreamingChatResponseHandler() {
                @Override
                public void onPartialResponse(PartialResponse partial, PartialResponseContext context) {
                    partials.add(partial.text());
                }

                @Override
                public void onCompleteResponse(ChatResponse response) {
                    done.complete(response);
                }

                @Override
                public void onError(Throwable error) {
                    done.completeExceptionally(error);
                }
            });
            ChatResponse streamed = done.get(5, TimeUnit.MINUTES);
            assertThat(streamed.aiMessage().text()).isEqualTo(blocking.aiMessage().text()).contains(answer(ex));
            assertThat(String.join("", partials)).isEqualTo(blocking.aiMessage().text());
            assertThat(partials).hasSize(streamed.tokenUsage().outputTokenCount());
            assertThat(streamed.tokenUsage()).isEqualTo(blocking.tokenUsage());
            assertThat(streamed.finishReason()).isEqualTo(blocking.finishReason()).isEqualTo(FinishReason.STOP);
        }
    }

    @Test
    @Order(4)
    void aListenerSeesRequestAndResponseWithTokenUsage() {
        List<ChatModelRequestContext> requests = new CopyOnWriteArrayList<>();
        List<ChatModelResponseContext> responses = new CopyOnWriteArrayList<>();
        ChatModelListener listener = new ChatModelListener() {
            @Override
            public void onRequest(ChatModelRequestContext ctx) {
                requests.add(ctx);
            }

            @Override
            public void onResponse(ChatModelResponseContext ctx) {
                responses.add(ctx);
            }
        };
        JsonNode ex = examples.get(5);
        try (StarAttentionChatModel observed = StarAttentionChatModel.builder().engine(engine).contextCache(cache)
                .maxOutputTokens(MAX_OUTPUT).listeners(listener).logRequests(true).logResponses(true).build()) {
            ChatResponse r = observed.chat(request(ex));
            assertThat(requests).singleElement().satisfies(ctx -> {
                assertThat(ctx.chatRequest().messages()).hasSize(2);
                assertThat(ctx.chatRequest().maxOutputTokens()).isEqualTo(MAX_OUTPUT);
            });
            assertThat(responses).singleElement().satisfies(ctx -> {
                assertThat(ctx.chatResponse()).isSameAs(r);
                assertThat(ctx.chatResponse().tokenUsage().inputTokenCount())
                        .isEqualTo(ex.get("n_prompt_tokens").asInt());
                assertThat(ctx.chatResponse().tokenUsage().outputTokenCount()).isBetween(10, MAX_OUTPUT);
                assertThat(ctx.chatResponse().finishReason()).isEqualTo(FinishReason.STOP);
                assertThat(ctx.chatResponse().aiMessage().text()).contains(answer(ex));
            });
        }
    }

    @Test
    @Order(5)
    void aLoneUserMessageHasOnlyTheTemplatesHeaderAsContext() {
        ChatResponse r = chat.chat(ChatRequest.builder().messages(UserMessage.from("What is the special magic number?"))
                .parameters(dev.langchain4j.model.chat.request.ChatRequestParameters.builder().maxOutputTokens(4).build())
                .build());
        // the bundled template renders "user: {question}\nassistant:": BOS and "user:" do not depend on the question
        assertThat(((StarAttentionChatResponseMetadata) r.metadata()).contextTokens())
                .isEqualTo(1 + TestModels.model().encode("user:").length);
        assertThat(r.tokenUsage().outputTokenCount()).isBetween(0, 4);
    }
}
