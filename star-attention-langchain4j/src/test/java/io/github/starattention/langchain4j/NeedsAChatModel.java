package io.github.starattention.langchain4j;

import java.lang.reflect.Method;
import java.util.Map;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Skips the tests of LangChain4j's shared suites whose assertions are about what the model knows (the answer
 * contains "Berlin", "liebe", "green"; the model says "Hello" before a stop sequence; a story long enough to cancel).
 * The bundled model is a 14M-parameter retrieval model trained on RULER-style tasks: it cannot chat, and no model
 * that can is available offline. Each skipped test reports its reason; the contract part of each is covered by our
 * own tests (named in the reasons).
 */
final class NeedsAChatModel implements ExecutionCondition {

    private static final String MODEL = "needs a model that can chat (the bundled tiny-ruler-llama answers "
            + "retrieval questions only): ";

    /** Test method name -> why it cannot pass on the bundled model, and where its contract part is tested. */
    static final Map<String, String> REASONS = Map.ofEntries(
            Map.entry("should_respect_user_message", MODEL + "asserts the answer contains 'Berlin'; metadata, "
                    + "token usage, finish reason and streaming callbacks: ChatModelContractTest, "
                    + "StreamingChatModelContractTest"),
            Map.entry("should_respect_system_message", MODEL + "asserts a German translation ('liebe')"),
            Map.entry("should_respect_multiple_messages", MODEL + "asserts it recalls 'green' from the conversation; "
                    + "multi-turn prompts: StarAttentionChatModelIT"),
            Map.entry("should_respect_stopSequences_in_chat_request", MODEL + "asserts it says 'Hello' before the "
                    + "stop sequence; stop sequences: ChatModelContractTest.stopSequenceEndsWithStopAndIsCut"),
            Map.entry("should_respect_stopSequences_in_default_model_parameters", MODEL + "asserts it says 'Hello' "
                    + "before the stop sequence; stop sequences: ChatModelContractTest"),
            Map.entry("should_cancel_streaming", MODEL + "needs a story of more than 5 tokens; cancellation: "
                    + "StreamingChatModelContractTest.cancellingStopsGenerationSilently"),
            Map.entry("should_propagate_user_exceptions_thrown_from_onPartialResponse", MODEL + "asserts 'Berlin'; "
                    + "the same callbacks and listener calls: StreamingChatModelContractTest"
                    + ".anExceptionFromOnPartialResponseGoesToOnErrorAndStreamingGoesOn"),
            Map.entry("should_propagate_user_exceptions_thrown_from_onCompleteResponse", MODEL + "asserts 'Berlin'; "
                    + "the same callbacks and listener calls: StreamingChatModelContractTest"
                    + ".anExceptionFromOnCompleteResponseGoesToOnErrorAndListeners"),
            Map.entry("should_ignore_user_exceptions_thrown_from_onError", MODEL + "asserts 'Berlin'; the same "
                    + "callbacks: StreamingChatModelContractTest.anExceptionFromOnErrorIsIgnored"));

    @Override
    public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
        String reason = context.getTestMethod().map(Method::getName).map(REASONS::get).orElse(null);
        return reason == null ? ConditionEvaluationResult.enabled("a contract test")
                : ConditionEvaluationResult.disabled(reason);
    }
}
