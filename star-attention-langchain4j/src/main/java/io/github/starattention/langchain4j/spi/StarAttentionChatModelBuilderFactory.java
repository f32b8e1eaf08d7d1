package io.github.starattention.langchain4j.spi;

import io.github.starattention.langchain4j.StarAttentionChatModel;
import java.util.function.Supplier;

/**
 * A factory for {@link StarAttentionChatModel.Builder}, found with {@link java.util.ServiceLoader}: frameworks
 * (Quarkus, Spring Boot starters) register one to hand out preconfigured builders from
 * {@link StarAttentionChatModel#builder()}. Register it in
 * {@code META-INF/services/io.github.starattention.langchain4j.spi.StarAttentionChatModelBuilderFactory}.
 */
public interface StarAttentionChatModelBuilderFactory extends Supplier<StarAttentionChatModel.Builder> {
}
