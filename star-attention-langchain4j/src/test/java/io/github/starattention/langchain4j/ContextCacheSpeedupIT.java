package io.github.starattention.langchain4j;

import static org.assertj.core.api.Assertions.assertThat;

import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.PartialResponse;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import io.github.starattention.jlama.Mode;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Two questions on the same 16K-token document (the demo haystack, seven needles): the second reuses the encoded
 * context, so its time to first token (measured by the caller, from the call to the first streamed token) is at
 * least 10x lower.
 */
class ContextCacheSpeedupIT {

    /** Time to first token and the response of one streamed question. */
    record Timed(double ttftMillis, ChatResponse response) {
    }

    private static Timed ask(StarAttentionStreamingChatModel model, String context, String question) throws Exception {
        long t0 = System.nanoTime();
        CompletableFuture<Double> first = new CompletableFuture<>();
        CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        model.chat(ChatRequest.builder().messages(SystemMessage.from(context), UserMessage.from(question)).build(),
                new StreamingChatResponseHandler() {
                    @Override
                    public void onPartialResponse(PartialResponse partial, PartialResponseContext ctx) {
                        first.complete((System.nanoTime() - t0) / 1e6);
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
        ChatResponse r = done.get(60, TimeUnit.MINUTES);
        return new Timed(first.getNow(Double.NaN), r);
    }

    @Test
    void secondQuestionOnThe16kDocumentHasAtLeast10xLowerTimeToFirstToken() throws Exception {
        String document = TestModels.haystack16k();
        try (StarAttentionStreamingChatModel model = StarAttentionStreamingChatModel.builder()
                .model(TestModels.model())
                .mode(Mode.STAR)
                .blocks(4)
                .maxOutputTokens(48)
                .build()) {
            Timed first = ask(model, document, TestModels.question("aster-befog"));
            Timed second = ask(model, document, TestModels.question("sundial-ruse"));
            var m1 = (StarAttentionChatResponseMetadata) first.response().metadata();
            var m2 = (StarAttentionChatResponseMetadata) second.response().metadata();
            double ratio = first.ttftMillis() / second.ttftMillis();
            System.out.printf("16K context (%d tokens): TTFT first %.0f ms (phase 1 %.0f ms), second %.0f ms "
                            + "(cached=%s): ratio %.1fx; decode %.1f tok/s%n", m1.contextTokens(), first.ttftMillis(),
                    m1.prefillMillis(), second.ttftMillis(), m2.contextCached(), ratio, m2.decodeTokensPerSecond());
            System.out.println("answers: " + first.response().aiMessage().text() + " | "
                    + second.response().aiMessage().text());
            assertThat(m1.contextTokens()).isGreaterThan(16_000);
            assertThat(m1.contextCached()).isFalse();
            assertThat(m2.contextCached()).isTrue();
            assertThat(first.response().aiMessage().text()).contains("3185182");
            assertThat(second.response().aiMessage().text()).contains("9614279");
            assertThat(ratio).isGreaterThanOrEqualTo(10);
        }
    }
}
