package io.github.starattention.jlama.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionKernels;
import io.github.starattention.attention.Device;
import io.github.starattention.attention.PartialAttention;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.TestData;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.BlockPlan;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Forward passes of several sessions on one model at once, the way a query host runs them: each pass waits for
 * remote partial attention at every layer (here computed on another thread after a short delay, as a network would).
 * Jlama's MLP keeps scratch state per layer, so unguarded concurrent passes mix their results; the model must make
 * them take turns without deadlocking a pass that waits for remote partials on one that runs here.
 */
class ConcurrentPassesIT {

    private static final int CONTEXT = 384;
    private static final int BLOCK = 128;
    private static final int QUERY = 128;
    private static final int RUNS = 12;

    private static StarAttentionModel model;
    private static AttentionKernel kernel;
    private static ContextEncoder encoder;
    private static ExecutorService network;

    @BeforeAll
    static void setUp() {
        model = TestData.model();
        kernel = AttentionKernels.open(Device.CPU, 2);
        encoder = new ContextEncoder(model.decoder(), kernel, 64);
        network = Executors.newFixedThreadPool(4);
    }

    @AfterAll
    static void tearDown() {
        network.shutdownNow();
        kernel.close();
    }

    /** A context of three blocks: the first two play remote hosts, the last one is the query host's. */
    private record Session(int[] query, List<KvStore> remote, KvStore last) {

        float[] ask(RemotePartitions partitions) {
            int mark = last.mark();
            try {
                return encoder.append(query, ContextEncoder.range(CONTEXT, CONTEXT + query.length), last, List.of(),
                        partitions, Logits.Want.ALL, n -> { }).values();
            } finally {
                last.rollback(mark);
            }
        }

        RemotePartitions overTheNetwork() {
            return (layer, q) -> CompletableFuture.supplyAsync(() -> {
                pause();
                List<PartialAttention> parts = new ArrayList<>();
                for (KvStore s : remote) {
                    parts.add(kernel.attend(s, layer, q));
                }
                return parts;
            }, network);
        }
    }

    private static Session session(int offset) {
        int[] tokens = TestData.referenceContext(model, TestData.devSet().values().iterator().next());
        int[] context = new int[CONTEXT];
        context[0] = model.bosToken();
        System.arraycopy(tokens, 1 + offset, context, 1, CONTEXT - 1);
        BlockPlan plan = BlockPlan.builder(CONTEXT).blockSize(BLOCK).build();
        List<KvStore> stores = encoder.encodeBlocks(plan, context, plan.blocks(), true, n -> { });
        int[] query = Arrays.copyOfRange(tokens, 1 + offset + CONTEXT, 1 + offset + CONTEXT + QUERY);
        return new Session(query, stores.subList(0, 2), stores.get(2));
    }

    @Test
    void concurrentSessionsGiveTheLogitsEachGetsAlone() throws Exception {
        Session a = session(0);
        Session b = session(400);
        float[] aloneA = a.ask(a.overTheNetwork());
        float[] aloneB = b.ask(b.overTheNetwork());
        assertThat(aloneA).isNotEqualTo(aloneB);

        ExecutorService sessions = Executors.newFixedThreadPool(2);
        try {
            Future<List<float[]>> runsA = sessions.submit(() -> askRepeatedly(a));
            Future<List<float[]>> runsB = sessions.submit(() -> askRepeatedly(b));
            for (int i = 0; i < RUNS; i++) {
                assertThat(runsA.get().get(i)).as("session A, run %d", i).containsExactly(aloneA);
                assertThat(runsB.get().get(i)).as("session B, run %d", i).containsExactly(aloneB);
            }
        } finally {
            sessions.shutdownNow();
        }
    }

    /** One session asks {@link #RUNS} times in a row (a session is used by one thread at a time). */
    private static List<float[]> askRepeatedly(Session s) {
        List<float[]> out = new ArrayList<>();
        for (int i = 0; i < RUNS; i++) {
            out.add(s.ask(s.overTheNetwork()));
        }
        return out;
    }

    @Test
    void aPassWaitingForRemotePartialsLetsAPassHereRun() {
        Session a = session(0);
        Session b = session(400);
        float[] aloneB = b.ask(null);
        // what a failover does: while a pass waits for a failed host's partials, its blocks are encoded again here
        RemotePartitions failingOver = (layer, q) -> CompletableFuture.supplyAsync(() -> {
            float[] meanwhile = b.ask(null);
            assertThat(meanwhile).containsExactly(aloneB);
            List<PartialAttention> parts = new ArrayList<>();
            for (KvStore s : a.remote()) {
                parts.add(kernel.attend(s, layer, q));
            }
            return parts;
        }, network);
        float[] expected = a.ask(a.overTheNetwork());
        float[] got = assertTimeoutPreemptively(Duration.ofSeconds(120), () -> a.ask(failingOver));
        assertThat(got).containsExactly(expected);
    }

    private static void pause() {
        try {
            Thread.sleep(1);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
