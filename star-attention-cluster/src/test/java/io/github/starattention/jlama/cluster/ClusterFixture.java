package io.github.starattention.jlama.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import io.github.starattention.jlama.ContextSession;
import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.GenerationOptions;
import io.github.starattention.jlama.LocalEngine;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.PrefillListener;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.TestData;
import io.github.starattention.jlama.TokenListener;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** Shared pieces of the cluster integration tests: dev examples, in-process references, timeouts, host logs. */
final class ClusterFixture {

    /**
     * Multiplies every timeout of the integration tests: 4 on a machine of 2 cores or fewer (CI), where four JVMs
     * warming up at once take minutes to load the model and compile the kernels, else 1; {@code -Dsa.it.timeoutScale=N}
     * overrides it.
     */
    static final long SCALE = Long.getLong("sa.it.timeoutScale", Runtime.getRuntime().availableProcessors() <= 2 ? 4 : 1);

    /** Block count of the plans: 3 context hosts + the query host, one block each. */
    static final int BLOCKS = 4;

    private static final Map<String, int[]> REFERENCES = new ConcurrentHashMap<>();
    private static volatile Map<String, JsonNode> dev;

    private ClusterFixture() {
    }

    static StarAttentionModel model() {
        return TestData.model();
    }

    static EngineOptions star() {
        return EngineOptions.builder().mode(Mode.STAR).blocks(BLOCKS).threads(1).build();
    }

    /** Settings of the spawned hosts: the bundled model, 1 thread, short idle timeout, bounded waits. */
    static ClusterOptions hostSettings(long sessionIdleMs) {
        ClusterOptions d = ClusterOptions.defaults();
        // four JVMs warming up on 2 cores miss heartbeats for many seconds: without patience Hazelcast splits the
        // cluster; a killed host is still noticed at once (its connections close, requests fail)
        return d.withFailureDetectionAtLeast((int) (15 * SCALE))
                .withHost(new ClusterOptions.Host(TestData.modelDir().toAbsolutePath(), 1, "F32", "cpu", 8))
                .withTimeouts(new ClusterOptions.Timeouts(20_000 * SCALE, 120_000 * SCALE, 60_000 * SCALE,
                        120_000 * SCALE, sessionIdleMs * SCALE));
    }

    /** The query host's settings: as {@code base}, with a long idle timeout (hosts expire contexts first). */
    static ClusterOptions queryHost(ClusterOptions base) {
        ClusterOptions.Timeouts t = base.timeouts();
        return base.withTimeouts(new ClusterOptions.Timeouts(t.requestMs(), t.prefillMs(), t.joinMs(), t.hostWaitMs(),
                600_000));
    }

    static JsonNode example(String id) {
        if (dev == null) {
            dev = TestData.devSet();
        }
        JsonNode ex = dev.get(id);
        if (ex == null) {
            throw new IllegalArgumentException("no dev example " + id);
        }
        return ex;
    }

    static int[] context(String id) {
        return TestData.referenceContext(model(), example(id));
    }

    static int[] query(String id) {
        return TestData.referenceQuery(model(), example(id));
    }

    /** Tokens of the in-process engine in star mode, {@link #BLOCKS} blocks, greedy; cached. */
    static int[] reference(String contextId, String queryId, int maxNewTokens) {
        return reference(contextId, queryId, maxNewTokens, BLOCKS);
    }

    /** Tokens of the in-process engine in star mode with {@code blocks} blocks, greedy; cached. */
    static int[] reference(String contextId, String queryId, int maxNewTokens, int blocks) {
        return reference(contextId, queryId, maxNewTokens, star().toBuilder().blocks(blocks).build());
    }

    /** Tokens of the in-process engine with {@code options}, greedy; cached. */
    static int[] reference(String contextId, String queryId, int maxNewTokens, EngineOptions options) {
        return REFERENCES.computeIfAbsent(contextId + "|" + queryId + "|" + maxNewTokens + "|" + options, k -> {
            try (LocalEngine e = LocalEngine.create(model(), options);
                 ContextSession s = e.prefill(context(contextId), PrefillListener.NONE)) {
                return s.generate(query(queryId), GenerationOptions.greedy(maxNewTokens), TokenListener.NONE).tokens();
            }
        });
    }
}
