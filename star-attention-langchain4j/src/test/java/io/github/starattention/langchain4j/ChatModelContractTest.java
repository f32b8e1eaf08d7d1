package io.github.starattention.langchain4j;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ImageContent;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.TextContent;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.exception.TimeoutException;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.listener.ChatModelErrorContext;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.listener.ChatModelRequestContext;
import dev.langchain4j.model.chat.listener.ChatModelResponseContext;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ResponseFormat;
import dev.langchain4j.model.chat.request.ResponseFormatType;
import dev.langchain4j.model.chat.request.ToolChoice;
import dev.langchain4j.model.chat.request.json.JsonObjectSchema;
import dev.langchain4j.model.chat.request.json.JsonSchema;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import io.github.starattention.jlama.GenerationOptions;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/** The ChatModel contract over a scripted engine: real tokenizer and generation loop, no transformer. */
class ChatModelContractTest {

    private static final String CONTEXT = "Some special magic numbers are hidden. One of the special magic numbers for "
            + "ABC is: 1234567. The grass is green.";
    private static final String ANSWER = "The special magic number is 1234567.";

    private final ScriptedEngine engine = new ScriptedEngine(TestModels.model());

    private StarAttentionChatModel.Builder builder() {
        return StarAttentionChatModel.builder().engine(engine);
    }

    private static ChatRequest request(String context, String question) {
        return ChatRequest.builder().messages(SystemMessage.from(context), UserMessage.from(question)).build();
    }

    private static ChatRequest request(ChatRequestParameters parameters) {
        return ChatRequest.builder().messages(SystemMessage.from(CONTEXT), UserMessage.from("What is it?"))
                .parameters(parameters).build();
    }

    @Test
    void answersAndReportsUsageAndStop() {
        try (StarAttentionChatModel model = builder().build()) {
            ChatResponse r = model.chat(request(CONTEXT, "What is the number?"));
            var split = TestModels.model().split(ChatBackend.turns(List.of(SystemMessage.from(CONTEXT),
                    UserMessage.from("What is the number?"))));
            assertThat(r.aiMessage().text()).isEqualTo(ANSWER);
            assertThat(r.finishReason()).isEqualTo(FinishReason.STOP);
            assertThat(r.tokenUsage().inputTokenCount())
                    .isEqualTo(split.contextTokens().length + split.queryTokens().length);
            assertThat(r.tokenUsage().outputTokenCount()).isEqualTo(TestModels.model().encode(ANSWER).length);
            assertThat(r.tokenUsage().totalTokenCount())
                    .isEqualTo(r.tokenUsage().inputTokenCount() + r.tokenUsage().outputTokenCount());
            assertThat(r.metadata().modelName()).isEqualTo("tiny-ruler-llama");
            assertThat(r.metadata().id()).isNotBlank();
            assertThat(r.metadata()).isInstanceOf(StarAttentionChatResponseMetadata.class);
        }
    }

    @Test
    void maxOutputTokensCountsOutputOnlyAndEndsWithLength() {
        try (StarAttentionChatModel model = builder().maxOutputTokens(3).build()) {
            ChatResponse r = model.chat(request(CONTEXT, "What is the number?"));
            assertThat(r.finishReason()).isEqualTo(FinishReason.LENGTH);
            assertThat(r.tokenUsage().outputTokenCount()).isEqualTo(3);
            assertThat(ANSWER).startsWith(r.aiMessage().text());
        }
    }

    @Test
    void stopSequenceEndsWithStopAndIsCut() {
        try (StarAttentionChatModel model = builder().build()) {
            ChatResponse r = model.chat(request(ChatRequestParameters.builder().stopSequences("number").build()));
            assertThat(r.finishReason()).isEqualTo(FinishReason.STOP);
            assertThat(r.aiMessage().text()).isEqualTo("The special magic ");
        }
    }

    @Test
    void builderOptionsOverrideDefaultParametersAndRequestsOverrideBoth() {
        try (StarAttentionChatModel model = builder()
                .defaultRequestParameters(StarAttentionChatRequestParameters.builder()
                        .temperature(0.9).topP(0.5).maxOutputTokens(7).seed(5L).build())
                .temperature(0.2)
                .stopSequences(List.of("zzz"))
                .build()) {
            ChatRequestParameters d = model.defaultRequestParameters();
            assertThat(d.temperature()).isEqualTo(0.2);
            assertThat(d.topP()).isEqualTo(0.5);
            assertThat(d.maxOutputTokens()).isEqualTo(7);
            assertThat(d.stopSequences()).containsExactly("zzz");
            assertThat(d.modelName()).isEqualTo("tiny-ruler-llama");
            assertThat(((StarAttentionChatRequestParameters) d).seed()).isEqualTo(5L);

            model.chat(request(CONTEXT, "q"));
            GenerationOptions first = engine.options.getLast();
            assertThat(first.temperature()).isEqualTo(0.2f);
            assertThat(first.topP()).isEqualTo(0.5f);
            assertThat(first.maxNewTokens()).isEqualTo(7);
            assertThat(first.stopStrings()).containsExactly("zzz");
            assertThat(first.seed()).isEqualTo(5L);

            model.chat(request(StarAttentionChatRequestParameters.builder().temperature(0.7).topP(0.9)
                    .maxOutputTokens(40).stopSequences(List.of("magic")).seed(11L).build()));
            GenerationOptions second = engine.options.getLast();
            assertThat(second.temperature()).isEqualTo(0.7f);
            assertThat(second.topP()).isEqualTo(0.9f);
            assertThat(second.maxNewTokens()).isEqualTo(40);
            assertThat(second.stopStrings()).containsExactly("magic");
            assertThat(second.seed()).isEqualTo(11L);

            // plain LangChain4j parameters keep the seed of the defaults
            model.chat(request(ChatRequestParameters.builder().maxOutputTokens(9).build()));
            assertThat(engine.options.getLast().seed()).isEqualTo(5L);
            assertThat(engine.options.getLast().maxNewTokens()).isEqualTo(9);
            assertThat(engine.options.getLast().temperature()).isEqualTo(0.2f);
        }
    }

    @Test
    void defaultsAreGreedyWithRandomSeedAndCappedOutput() {
        try (StarAttentionChatModel model = builder().build()) {
            model.chat(request(CONTEXT, "q"));
            model.chat(request(CONTEXT, "q"));
            GenerationOptions a = engine.options.get(0);
            assertThat(a.temperature()).isZero();
            assertThat(a.topP()).isEqualTo(1f);
            assertThat(a.maxNewTokens()).isEqualTo(ChatBackend.DEFAULT_MAX_OUTPUT_TOKENS);
            assertThat(a.stopStrings()).isEmpty();
            assertThat(engine.options.get(1).seed()).isNotEqualTo(a.seed());
        }
    }

    @Test
    void refusesToolsAndJsonFormatsWithUnsupportedFeature() {
        ToolSpecification tool = ToolSpecification.builder().name("weather").description("the weather").build();
        JsonSchema schema = JsonSchema.builder().name("Answer")
                .rootElement(JsonObjectSchema.builder().addStringProperty("number").build()).build();
        List<ChatModelErrorContext> errors = new CopyOnWriteArrayList<>();
        ChatModelListener listener = new ChatModelListener() {
            @Override
            public void onError(ChatModelErrorContext ctx) {
                errors.add(ctx);
            }
        };
        try (StarAttentionChatModel model = builder().listeners(listener).build()) {
            assertThatThrownBy(() -> model.chat(request(ChatRequestParameters.builder().toolSpecifications(tool).build())))
                    .isInstanceOf(UnsupportedFeatureException.class).hasMessageContaining("tools are not supported");
            assertThatThrownBy(() -> model.chat(request(ChatRequestParameters.builder().toolChoice(ToolChoice.REQUIRED).build())))
                    .isInstanceOf(UnsupportedFeatureException.class).hasMessageContaining("ToolChoice.REQUIRED is not supported");
            // tool choice REQUIRED with tools: the tool choice is what is named (LangChain4j's order)
            assertThatThrownBy(() -> model.chat(request(ChatRequestParameters.builder().toolSpecifications(tool)
                    .toolChoice(ToolChoice.REQUIRED).build())))
                    .isInstanceOf(UnsupportedFeatureException.class).hasMessageContaining("ToolChoice.REQUIRED is not supported");
            assertThatThrownBy(() -> model.chat(request(ChatRequestParameters.builder()
                    .responseFormat(ResponseFormat.builder().type(ResponseFormatType.JSON).jsonSchema(schema).build()).build())))
                    .isInstanceOf(UnsupportedFeatureException.class).hasMessageContaining("JSON schema 'Answer'");
            assertThatThrownBy(() -> model.chat(request(ChatRequestParameters.builder().responseFormat(ResponseFormat.JSON).build())))
                    .isInstanceOf(UnsupportedFeatureException.class).hasMessageContaining("JSON response formats");
            assertThatThrownBy(() -> model.chat(request(ChatRequestParameters.builder().topK(5).build())))
                    .isInstanceOf(UnsupportedFeatureException.class).hasMessageContaining("topK");
            assertThatThrownBy(() -> model.chat(request(ChatRequestParameters.builder().modelName("other/model").build())))
                    .isInstanceOf(UnsupportedFeatureException.class).hasMessageContaining("modelName 'other/model' is not supported")
                    .hasMessageContaining("serves 'tiny-ruler-llama' only");
            // the model's own name is accepted
            assertThat(model.chat(request(ChatRequestParameters.builder().modelName("tiny-ruler-llama").build()))
                    .aiMessage().text()).isEqualTo(ANSWER);
            assertThatThrownBy(() -> model.chat(UserMessage.from(TextContent.from("look"),
                    ImageContent.from("https://example.com/cat.png"))))
                    .isInstanceOf(UnsupportedFeatureException.class).hasMessageContaining("image content is not supported");
            ToolExecutionRequest call = ToolExecutionRequest.builder().id("1").name("weather").arguments("{}").build();
            assertThatThrownBy(() -> model.chat(UserMessage.from("hi"), AiMessage.from(call),
                    ToolExecutionResultMessage.from(call, "sunny"), UserMessage.from("and?")))
                    .isInstanceOf(UnsupportedFeatureException.class).hasMessageContaining("tool execution requests");
            // plain text format is fine
            assertThat(model.chat(request(ChatRequestParameters.builder().responseFormat(ResponseFormat.TEXT).build()))
                    .aiMessage().text()).isEqualTo(ANSWER);
        }
        assertThat(errors).hasSize(9).allSatisfy(e -> assertThat(e.error()).isInstanceOf(UnsupportedFeatureException.class));
        assertThat(engine.prefills).hasValue(1);
    }

    @Test
    void refusesInvalidRequests() {
        try (StarAttentionChatModel model = builder().build()) {
            assertThatThrownBy(() -> model.chat(UserMessage.from("q"), AiMessage.from("a")))
                    .isInstanceOf(InvalidRequestException.class).hasMessageContaining("last message must be a user message");
            assertThatThrownBy(() -> model.chat(request(ChatRequestParameters.builder().temperature(-1.0).build())))
                    .isInstanceOf(InvalidRequestException.class).hasMessageContaining("temperature");
            assertThatThrownBy(() -> model.chat(request(ChatRequestParameters.builder().topP(1.5).build())))
                    .isInstanceOf(InvalidRequestException.class).hasMessageContaining("topP");
            assertThatThrownBy(() -> model.chat(request(ChatRequestParameters.builder().maxOutputTokens(0).build())))
                    .isInstanceOf(InvalidRequestException.class).hasMessageContaining("maxOutputTokens");
        }
        assertThatThrownBy(() -> builder().topP(0.0).build())
                .isInstanceOf(InvalidRequestException.class).hasMessageContaining("topP");
        assertThatThrownBy(() -> builder().blocks(4).build())
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("configure mode, blocks");
        assertThatThrownBy(() -> StarAttentionChatModel.builder().build())
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("no model");
    }

    @Test
    void aDefaultModelNameIsCheckedLikeARequestOne() {
        assertThatThrownBy(() -> builder().defaultRequestParameters(ChatRequestParameters.builder().modelName("dummy")
                .build()).build())
                .isExactlyInstanceOf(UnsupportedFeatureException.class)
                .hasMessageContaining("modelName 'dummy' is not supported");
        try (StarAttentionChatModel model = builder().defaultRequestParameters(ChatRequestParameters.builder()
                .modelName("tiny-ruler-llama").build()).build()) {
            assertThat(model.chat(request(CONTEXT, "q")).metadata().modelName()).isEqualTo("tiny-ruler-llama");
        }
        // modelName(...) on the builder names the model; the defaults may then repeat that name
        try (StarAttentionChatModel model = builder().modelName("my-model").defaultRequestParameters(
                ChatRequestParameters.builder().modelName("my-model").build()).build()) {
            assertThat(model.chat(request(CONTEXT, "q")).metadata().modelName()).isEqualTo("my-model");
        }
    }

    @Test
    void listenersSeeMergedRequestAndResponseWithUsage() {
        List<Object> events = new CopyOnWriteArrayList<>();
        ChatModelListener listener = new ChatModelListener() {
            @Override
            public void onRequest(ChatModelRequestContext ctx) {
                ctx.attributes().put("k", "v");
                events.add(ctx.chatRequest());
            }

            @Override
            public void onResponse(ChatModelResponseContext ctx) {
                assertThat(ctx.attributes()).containsEntry("k", "v");
                events.add(ctx.chatResponse());
            }
        };
        try (StarAttentionChatModel model = builder().listeners(listener).maxOutputTokens(30).build()) {
            model.chat(request(CONTEXT, "q"));
        }
        assertThat(events).hasSize(2);
        assertThat(((ChatRequest) events.get(0)).maxOutputTokens()).isEqualTo(30);
        ChatResponse r = (ChatResponse) events.get(1);
        assertThat(r.tokenUsage().inputTokenCount()).isPositive();
        assertThat(r.tokenUsage().outputTokenCount()).isPositive();
    }

    @Test
    void reusesTheEncodedContextForTheNextQuestion() {
        try (StarAttentionChatModel model = builder().build()) {
            ChatResponse a = model.chat(request(CONTEXT, "first question"));
            ChatResponse b = model.chat(request(CONTEXT, "second question"));
            model.chat(request(CONTEXT + " Other.", "first question"));
            assertThat(engine.prefills).hasValue(2);
            assertThat(((StarAttentionChatResponseMetadata) a.metadata()).contextCached()).isFalse();
            assertThat(((StarAttentionChatResponseMetadata) b.metadata()).contextCached()).isTrue();
            assertThat(model.contextCache().size()).isEqualTo(2);
        }
    }

    @Test
    void timeoutStopsGenerationAndKeepsTheContext() {
        engine.stepMillis = 50;
        try (StarAttentionChatModel model = builder().timeout(Duration.ofMillis(200)).build()) {
            assertThatThrownBy(() -> model.chat(request(CONTEXT, "q")))
                    .isInstanceOf(TimeoutException.class).hasMessageContaining("timeout");
            assertThat(engine.generatedTokens.get()).isLessThan(TestModels.model().encode(ANSWER).length);
            assertThat(model.contextCache().size()).isEqualTo(1);
        }
    }

    @Test
    void interruptCancelsABlockingChat() throws Exception {
        engine.stepMillis = 20;
        try (StarAttentionChatModel model = builder().build();
             ExecutorService pool = Executors.newSingleThreadExecutor()) {
            Future<ChatResponse> f = pool.submit(() -> model.chat(request(CONTEXT, "q")));
            Thread.sleep(100);
            f.cancel(true);
            pool.shutdown();
            assertThat(pool.awaitTermination(5, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
            assertThat(engine.generatedTokens.get()).isLessThan(TestModels.model().encode(ANSWER).length);
        }
    }

    @Test
    void parallelChatsOnDifferentContextsNeverMix() throws Exception {
        try (StarAttentionChatModel model = builder().build();
             ExecutorService pool = Executors.newFixedThreadPool(8)) {
            List<Future<String>> answers = new java.util.ArrayList<>();
            for (int i = 0; i < 8; i++) {
                String number = String.valueOf(1000000 + 111111 * i);
                answers.add(pool.submit(() -> model.chat(request("The magic number is: " + number + ".",
                        "What is the number?")).aiMessage().text()));
            }
            for (int i = 0; i < 8; i++) {
                assertThat(answers.get(i).get()).isEqualTo("The special magic number is " + (1000000 + 111111 * i) + ".");
            }
            assertThat(engine.prefills).hasValue(8);
        }
    }
}
