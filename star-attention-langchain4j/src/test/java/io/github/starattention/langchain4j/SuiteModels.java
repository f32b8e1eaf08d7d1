package io.github.starattention.langchain4j;

import io.github.starattention.jlama.Mode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Chat models over the bundled model for LangChain4j's shared suites: star (4 blocks) and global, plus the ones the
 * suites build with their own parameters; all closed by {@link #close()}.
 */
final class SuiteModels implements AutoCloseable {

    /** A timeout no request can meet: the "failing model" of the listener suites. */
    static final Duration IMPOSSIBLE_TIMEOUT = Duration.ofNanos(1);

    /**
     * The sampler's seed where a suite samples (temperature 0.7): the command line's default seed, so that a run is
     * repeatable.
     */
    static final long SEED = 42;

    private final List<AutoCloseable> created = new ArrayList<>();

    StarAttentionChatModel.Builder chat(Mode mode) {
        return StarAttentionChatModel.builder().model(TestModels.model()).mode(mode);
    }

    StarAttentionStreamingChatModel.Builder streaming(Mode mode) {
        return StarAttentionStreamingChatModel.builder().model(TestModels.model()).mode(mode);
    }

    /** Keeps {@code model} to close it with the others. */
    synchronized <T extends AutoCloseable> T keep(T model) {
        created.add(model);
        return model;
    }

    @Override
    public synchronized void close() throws Exception {
        for (AutoCloseable c : created) {
            c.close();
        }
        created.clear();
    }
}
