package io.github.starattention.langchain4j;

import dev.langchain4j.exception.TimeoutException;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.common.AbstractStreamingChatModelListenerIT;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import io.github.starattention.jlama.Mode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.TestInstance;

/**
 * LangChain4j's shared listener suite for {@link StreamingChatModel}: listeners see the merged request parameters, the
 * response and errors. The failing model is one whose timeout no request can meet.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LangChain4jStreamingChatModelListenerSuiteIT extends AbstractStreamingChatModelListenerIT {

    private final SuiteModels suite = new SuiteModels();

    @AfterAll
    void close() throws Exception {
        suite.close();
    }

    @Override
    protected StreamingChatModel createModel(ChatModelListener listener) {
        return suite.keep(suite.streaming(Mode.STAR)
                .temperature(temperature())
                .topP(topP())
                .maxOutputTokens(maxTokens())
                .seed(SuiteModels.SEED)
                .listeners(listener)
                .build());
    }

    @Override
    protected String modelName() {
        return TestModels.modelDir().getFileName().toString();
    }

    @Override
    protected StreamingChatModel createFailingModel(ChatModelListener listener) {
        return suite.keep(suite.streaming(Mode.STAR).timeout(SuiteModels.IMPOSSIBLE_TIMEOUT).listeners(listener)
                .build());
    }

    @Override
    protected Class<? extends Exception> expectedExceptionClass() {
        return TimeoutException.class;
    }

    @Override
    protected boolean supportsTools() {
        return false;
    }
}
