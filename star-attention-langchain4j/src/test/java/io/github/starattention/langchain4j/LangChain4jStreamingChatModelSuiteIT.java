package io.github.starattention.langchain4j;

import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.common.AbstractStreamingChatModelIT;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.ChatResponseMetadata;
import io.github.starattention.jlama.Mode;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * LangChain4j's shared {@link StreamingChatModel} suite (langchain4j-core's test jar), with the capabilities
 * declared as they are: max output tokens, stop sequences and default parameters supported; tools, tool choice,
 * JSON formats, images and other model names refused with {@link dev.langchain4j.exception.UnsupportedFeatureException}. Tests
 * that need a model able to chat are skipped with their reason ({@link NeedsAChatModel}).
 */
@ExtendWith(NeedsAChatModel.class)
class LangChain4jStreamingChatModelSuiteIT extends AbstractStreamingChatModelIT {

    private final SuiteModels suite = new SuiteModels();

    @AfterAll
    void close() throws Exception {
        suite.close();
    }

    /**
     * Star (4 blocks) and global; new ones for each test, since JUnit closes the arguments of a parameterized test
     * after it.
     */
    @Override
    protected List<StreamingChatModel> models() {
        return List.of(suite.keep(suite.streaming(Mode.STAR).blocks(4).build()),
                suite.keep(suite.streaming(Mode.GLOBAL).build()));
    }

    @Override
    protected StreamingChatModel createModelWith(ChatRequestParameters parameters) {
        return suite.keep(suite.streaming(Mode.STAR).defaultRequestParameters(parameters).build());
    }

    @Override
    public StreamingChatModel createModelWith(ChatModelListener listener) {
        return suite.keep(suite.streaming(Mode.STAR).listeners(listener).build());
    }

    @Override
    protected ChatRequestParameters createIntegrationSpecificParameters(int maxOutputTokens) {
        return StarAttentionChatRequestParameters.builder().maxOutputTokens(maxOutputTokens).seed(7L).build();
    }

    @Override
    protected Class<? extends ChatResponseMetadata> chatResponseMetadataType(StreamingChatModel model) {
        return StarAttentionChatResponseMetadata.class;
    }

    @Override
    protected boolean supportsModelNameParameter() {
        return false;
    }

    @Override
    protected boolean supportsTools() {
        return false;
    }

    @Override
    protected boolean supportsToolChoiceRequired() {
        return false;
    }

    @Override
    protected boolean supportsJsonResponseFormat() {
        return false;
    }

    @Override
    protected boolean supportsJsonResponseFormatWithSchema() {
        return false;
    }

    @Override
    protected boolean supportsJsonResponseFormatWithRawSchema() {
        return false;
    }

    @Override
    protected boolean supportsSingleImageInputAsBase64EncodedString() {
        return false;
    }

    @Override
    protected boolean supportsSingleImageInputAsPublicURL() {
        return false;
    }
}
