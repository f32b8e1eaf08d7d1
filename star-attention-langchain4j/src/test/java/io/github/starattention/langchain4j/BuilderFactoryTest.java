package io.github.starattention.langchain4j;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.starattention.langchain4j.spi.StarAttentionChatModelBuilderFactory;
import io.github.starattention.langchain4j.spi.StarAttentionStreamingChatModelBuilderFactory;
import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code builder()} takes its builder from a registered factory (the SPI), else makes a plain one. */
class BuilderFactoryTest {

    /** Registered only under {@link #withFactories}: hands out builders preset to 3 output tokens. */
    public static final class PresetChatFactory implements StarAttentionChatModelBuilderFactory {
        @Override
        public StarAttentionChatModel.Builder get() {
            return new StarAttentionChatModel.Builder().maxOutputTokens(3);
        }
    }

    /** As {@link PresetChatFactory}, for the streaming model. */
    public static final class PresetStreamingFactory implements StarAttentionStreamingChatModelBuilderFactory {
        @Override
        public StarAttentionStreamingChatModel.Builder get() {
            return new StarAttentionStreamingChatModel.Builder().maxOutputTokens(3);
        }
    }

    @TempDir
    Path services;

    @Test
    void builderComesFromTheRegisteredFactory() throws Exception {
        ScriptedEngine engine = new ScriptedEngine(TestModels.model());
        Integer chat = withFactories(() -> {
            try (StarAttentionChatModel m = StarAttentionChatModel.builder().engine(engine).build()) {
                return m.defaultRequestParameters().maxOutputTokens();
            }
        });
        Integer streaming = withFactories(() -> {
            try (StarAttentionStreamingChatModel m = StarAttentionStreamingChatModel.builder().engine(engine).build()) {
                return m.defaultRequestParameters().maxOutputTokens();
            }
        });
        assertThat(chat).isEqualTo(3);
        assertThat(streaming).isEqualTo(3);
    }

    @Test
    void withoutAFactoryTheBuilderIsPlain() {
        try (StarAttentionChatModel m = StarAttentionChatModel.builder().engine(new ScriptedEngine(TestModels.model()))
                .build()) {
            assertThat(m.defaultRequestParameters().maxOutputTokens()).isNull();
        }
    }

    /** Runs {@code body} with a context class loader that registers the two preset factories. */
    private <T> T withFactories(Callable<T> body) throws Exception {
        register(StarAttentionChatModelBuilderFactory.class, PresetChatFactory.class);
        register(StarAttentionStreamingChatModelBuilderFactory.class, PresetStreamingFactory.class);
        Thread thread = Thread.currentThread();
        ClassLoader previous = thread.getContextClassLoader();
        try (URLClassLoader loader = new URLClassLoader(new URL[] {services.toUri().toURL()}, previous)) {
            thread.setContextClassLoader(loader);
            return body.call();
        } finally {
            thread.setContextClassLoader(previous);
        }
    }

    private void register(Class<?> service, Class<?> provider) throws IOException {
        Path file = services.resolve("META-INF/services/" + service.getName());
        Files.createDirectories(file.getParent());
        Files.writeString(file, provider.getName() + "\n");
    }
}
