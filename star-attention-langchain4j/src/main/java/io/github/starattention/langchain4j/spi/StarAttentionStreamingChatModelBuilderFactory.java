package io.github.starattention.langchain4j.spi;

import io.github.starattention.langchain4j.StarAttentionStreamingChatModel;
import java.util.function.Supplier;

/**
 * A factory for {@link StarAttentionStreamingChatModel.Builder}, found with {@link java.util.ServiceLoader}: frameworks
 * (Quarkus, Spring Boot starters) register one to hand out preconfigured builders from
 * {@link StarAttentionStreamingChatModel#builder()}. Register it in
 * {@code META-INF/services/io.github.starattention.langchain4j.spi.StarAttentionStreamingChatModelBuilderFactory}.
 */
public interface StarAttentionStreamingChatModelBuilderFactory
        extends Supplier<StarAttentionStreamingChatModel.Builder> {
}
