package io.github.starattention.langchain4j;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import io.github.starattention.attention.Device;
import io.github.starattention.cuda.CudaProbe;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * This module's class path is a ChatModel user's: the cluster (Vert.x, Hazelcast), the command line (picocli), the
 * evaluation charts (XChart) and the GPU binding (JCuda) are not on it, and a chat model works without them.
 */
class LeanClassPathTest {

    @ParameterizedTest
    @ValueSource(strings = {
            "io.vertx.core.Vertx",                                   // cluster: Vert.x
            "com.hazelcast.core.Hazelcast",                          // cluster: Hazelcast
            "picocli.CommandLine",                                   // command line
            "org.knowm.xchart.XYChart",                              // charts
            "jcuda.driver.JCudaDriver",                              // GPU
            "io.github.starattention.jlama.cluster.ClusterEngine",   // star-attention-cluster
            "io.github.starattention.jlama.cli.StarAttentionCli",    // star-attention-cli
            "io.github.starattention.jlama.eval.EvalRunner",         // star-attention-cli
            "io.github.starattention.jlama.cli.LocalCluster"})       // star-attention-cli
    void isNotOnTheClassPath(String className) {
        assertThatThrownBy(() -> Class.forName(className, false, getClass().getClassLoader()))
                .isInstanceOf(ClassNotFoundException.class);
    }

    @Test
    void theGpuProbeSaysWhatIsMissingAndAutoRunsOnTheCpu() {
        assertThat(CudaProbe.probe().available()).isFalse();
        assertThat(CudaProbe.probe().detail()).contains("JCuda is not on the class path");
        ChatRequest request = ChatRequest.builder()
                .messages(SystemMessage.from("One of the special magic numbers for ABC is: 7654321."),
                        UserMessage.from("What is the special magic number for ABC?"))
                .build();
        try (StarAttentionChatModel model = StarAttentionChatModel.builder().model(TestModels.model())
                .device(Device.AUTO).maxOutputTokens(2).build()) {
            ChatResponse response = model.chat(request);
            assertThat(response.tokenUsage().outputTokenCount()).isPositive();
        }
        assertThatThrownBy(() -> StarAttentionChatModel.builder().model(TestModels.model()).device(Device.CUDA).build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("JCuda is not on the class path");
    }
}
