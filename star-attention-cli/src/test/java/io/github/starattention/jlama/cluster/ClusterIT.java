package io.github.starattention.jlama.cluster;

import static io.github.starattention.jlama.cluster.ClusterFixture.SCALE;
import static io.github.starattention.jlama.cluster.ClusterFixture.context;
import static io.github.starattention.jlama.cluster.ClusterFixture.query;
import static io.github.starattention.jlama.cluster.ClusterFixture.reference;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.Generation;
import io.github.starattention.jlama.GenerationOptions;
import io.github.starattention.jlama.PrefillListener;
import io.github.starattention.jlama.TokenListener;
import io.github.starattention.jlama.cli.LocalCluster;
import io.github.starattention.jlama.model.PassingPolicy;
import io.github.starattention.wire.WireMessage;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Distributed Star Attention with three context-host JVMs on 127.0.0.1 and this JVM as the query host: answers equal
 * the in-process star engine token for token, also with passing blocks; sessions are reused, isolated and freed; a host killed in the middle of
 * a request is recovered from (or, with failover off, fails the request clearly and in bounded time); a host joining
 * later is used; a host killed after its prefill or just before it is replaced. The tests run in order on one
 * cluster (the kills change it).
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@ExtendWith(HostLogs.class)
class ClusterIT {

    private static final long HOST_IDLE_MS = 15_000;

    private static LocalCluster hosts;
    private static ClusterEngine engine;

    @BeforeAll
    static void startCluster() {
        ClusterFixture.model();
        hosts = LocalCluster.start(3, ClusterFixture.hostSettings(HOST_IDLE_MS), null, List.of("-Xmx512m"));
        HostLogs.cluster = hosts;
        hosts.awaitReady();
        engine = ClusterEngine.start(ClusterFixture.model(), ClusterFixture.star(),
                ClusterFixture.queryHost(hosts.queryHostOptions()));
        assertThat(engine.awaitHosts(3)).hasSize(3);
    }

    @AfterAll
    static void stopCluster() {
        try {
            if (engine != null) {
                engine.close();
            }
        } finally {
            if (hosts != null) {
                hosts.close();
            }
        }
        for (int i = 0; hosts != null && i < hosts.size(); i++) {
            assertThat(hosts.process(i).isAlive()).as("host %d stopped", i).isFalse();
        }
    }

    @Test
    @Order(1)
    void answersAreTokenIdenticalToTheInProcessStarEngine() {
        for (String id : List.of("niah_single-1024-0", "vt-1024-0", "niah_multikey-2048-0")) {
            int[] want = reference(id, id, 24);
            try (ClusterContextSession s = engine.prefillSession(context(id), PrefillListener.NONE)) {
                assertThat(s.hostCount()).isEqualTo(3);
                assertThat(s.plan().blockCount()).isEqualTo(4);
                assertThat(s.placement()).hasSize(3);
                assertThat(s.hostPrefillMillis()).containsOnlyKeys(s.placement().keySet())
                        .allSatisfy((host, ms) -> assertThat(ms).isPositive());
                Generation g = s.generate(query(id), GenerationOptions.greedy(24), TokenListener.NONE);
                assertThat(g.tokens()).as("tokens of %s", id).containsExactly(want);
                ClusterContextSession.Traffic t = s.lastTraffic();
                // per token and layer: one request (query vectors) and one reply (output + lse) per host
                assertThat(t.requests()).isEqualTo(3L * 8 * (1 + g.tokens().length - (g.finishReason().name().equals("LENGTH") ? 1 : 0)));
                assertThat(t.bytesPerLayerPerToken()).isBetween(3 * 2 * 4 * 4 * 64.0, 3 * 2 * 4 * 4 * 64.0 * 1.5);
                System.out.printf("%s: %d tokens, %.0f bytes per token (%.0f per layer), equal to in-process star%n",
                        id, g.tokens().length, t.bytesPerToken(), t.bytesPerLayerPerToken());
            }
        }
    }

    @Test
    @Order(2)
    void passingBlocksAcrossHostsAreTokenIdenticalToTheInProcessEngine() {
        // a second query host on the same hosts, passing 64 tokens per block: each host takes what the blocks before
        // its own pass on from their hosts, layer by layer, while all encode at once
        EngineOptions passing = ClusterFixture.star().toBuilder()
                .passing(PassingPolicy.of(64, PassingPolicy.Selection.WINDOW)).build();
        try (ClusterEngine withPassing = ClusterEngine.start(ClusterFixture.model(), passing,
                ClusterFixture.queryHost(hosts.extraNodeOptions("query-host-passing")))) {
            assertThat(withPassing.awaitHosts(3)).hasSize(3);
            boolean changed = false;
            // variable tracking that plain star gets wrong in the development set's runs and passing gets right
            for (String id : List.of("vt-1024-6", "vt-2048-5")) {
                int[] want = reference(id, id, 48, passing);
                changed |= !java.util.Arrays.equals(want, reference(id, id, 48));
                try (ClusterContextSession s = withPassing.prefillSession(context(id), PrefillListener.NONE)) {
                    assertThat(s.placement()).hasSize(3);
                    Generation g = s.generate(query(id), GenerationOptions.greedy(48), TokenListener.NONE);
                    assertThat(g.tokens()).as("tokens of %s", id).containsExactly(want);
                    System.out.printf("%s with passing blocks: %d tokens equal to in-process, prefill %.0f ms%n", id,
                            g.tokens().length, s.prefillMillis());
                }
            }
            assertThat(changed).as("passing changes an answer, so plain star from the hosts would be seen").isTrue();
        }
        awaitHostSessions(0, 20_000 * SCALE);
    }

    @Test
    @Order(3)
    void aContextAnswersManyQuestionsAndConcurrentSessionsDoNotMix() throws Exception {
        String a = "niah_single-1024-1";
        String b = "niah_multikey-1024-1";
        try (ClusterContextSession sa = engine.prefillSession(context(a), PrefillListener.NONE);
             ClusterContextSession sb = engine.prefillSession(context(b), PrefillListener.NONE)) {
            assertThat(sa.id()).isNotEqualTo(sb.id());
            assertThat(sa.generate(query(a), GenerationOptions.greedy(16), TokenListener.NONE).tokens())
                    .containsExactly(reference(a, a, 16));
            assertThat(sa.generate(query(b), GenerationOptions.greedy(16), TokenListener.NONE).tokens())
                    .as("a second question on the same context").containsExactly(reference(a, b, 16));
            CompletableFuture<int[]> fa = CompletableFuture.supplyAsync(
                    () -> sa.generate(query(a), GenerationOptions.greedy(16), TokenListener.NONE).tokens());
            CompletableFuture<int[]> fb = CompletableFuture.supplyAsync(
                    () -> sb.generate(query(b), GenerationOptions.greedy(16), TokenListener.NONE).tokens());
            assertThat(fa.get(120 * SCALE, TimeUnit.SECONDS)).containsExactly(reference(a, a, 16));
            assertThat(fb.get(120 * SCALE, TimeUnit.SECONDS)).containsExactly(reference(b, b, 16));
            awaitHostSessions(2, 20_000 * SCALE);
        }
        awaitHostSessions(0, 20_000 * SCALE);
        assertThat(engine.openSessions()).isZero();
    }

    @Test
    @Order(4)
    void hostsFreeIdleContextsAndTheQueryHostEncodesThemAgain() {
        String id = "niah_single-1024-2";
        try (ClusterContextSession s = engine.prefillSession(context(id), PrefillListener.NONE)) {
            assertThat(engine.hosts()).allSatisfy(h -> assertThat(h.kvBytes()).isPositive());
            awaitHostSessions(0, 4 * HOST_IDLE_MS * SCALE);
            assertThat(engine.hosts()).allSatisfy(h -> assertThat(h.kvBytes()).isZero());
            Generation g = s.generate(query(id), GenerationOptions.greedy(16), TokenListener.NONE);
            assertThat(g.tokens()).containsExactly(reference(id, id, 16));
            assertThat(s.recoveries()).isGreaterThanOrEqualTo(3);
        }
    }

    @Test
    @Order(5)
    @Timeout(value = 15, unit = TimeUnit.MINUTES) // a hang guard; every wait inside is bounded
    void aHostKilledMidRequestIsReplacedAndTheAnswerIsUnchanged() {
        String id = "niah_multivalue-1024-0";
        int[] want = reference(id, id, 40);
        try (ClusterContextSession s = engine.prefillSession(context(id), PrefillListener.NONE)) {
            AtomicInteger seen = new AtomicInteger();
            AtomicBoolean killed = new AtomicBoolean();
            long t0 = System.nanoTime();
            Generation g = s.generate(query(id), GenerationOptions.greedy(40), (tok, text) -> {
                if (seen.incrementAndGet() == 2 && killed.compareAndSet(false, true)) {
                    // kill while the next token's layer requests are in flight
                    CompletableFuture.runAsync(() -> hosts.kill(0));
                }
            });
            double seconds = (System.nanoTime() - t0) / 1e9;
            assertThat(killed).isTrue();
            assertThat(g.tokens()).containsExactly(want);
            assertThat(s.recoveries()).isGreaterThanOrEqualTo(1);
            assertThat(s.placement()).doesNotContainKey("host-0");
            assertThat(hosts.process(0).isAlive()).isFalse();
            System.out.printf("host-0 killed mid-generation: recovered in a %.1f s generation, blocks now %s%n",
                    seconds, s.placement());
        }
    }

    @Test
    @Order(6)
    @Timeout(value = 15, unit = TimeUnit.MINUTES) // a hang guard; every wait inside is bounded
    void withoutFailoverAKilledHostFailsTheRequestClearlyWithinTheTimeout() {
        String id = "niah_single-1024-3";
        ClusterOptions o = ClusterFixture.queryHost(hosts.extraNodeOptions("query-host-2")).withFailover(false);
        try (ClusterEngine strict = ClusterEngine.start(ClusterFixture.model(), ClusterFixture.star(), o)) {
            assertThat(strict.awaitHosts(2)).extracting(WireMessage.HostInfo::name).containsExactly("host-1", "host-2");
            try (ClusterContextSession s = strict.prefillSession(context(id), PrefillListener.NONE)) {
                AtomicInteger seen = new AtomicInteger();
                long t0 = System.nanoTime();
                assertThatThrownBy(() -> s.generate(query(id), GenerationOptions.greedy(40), (tok, text) -> {
                    if (seen.incrementAndGet() == 2) {
                        CompletableFuture.runAsync(() -> hosts.kill(1));
                    }
                })).isInstanceOf(HostFailureException.class)
                        .hasMessageContaining("host-1")
                        .hasMessageContaining("are lost (failover is off");
                double seconds = (System.nanoTime() - t0) / 1e9;
                assertThat(seconds).isLessThan(o.timeouts().requestMs() / 1000.0 + 30 * SCALE);
                System.out.printf("failover off: the request failed %.1f s after it started%n", seconds);
            }
        }
    }

    @Test
    @Order(7)
    @Timeout(value = 15, unit = TimeUnit.MINUTES) // a hang guard; every wait inside is bounded
    void aHostThatJoinsBetweenRequestsIsUsed() {
        int added = hosts.addHost();
        hosts.awaitReady();
        List<WireMessage.HostInfo> live = engine.awaitHosts(2);
        assertThat(live).extracting(WireMessage.HostInfo::name).containsExactly("host-2", "host-" + added);
        String id = "vt-1024-1";
        try (ClusterContextSession s = engine.prefillSession(context(id), PrefillListener.NONE)) {
            assertThat(s.hostCount()).isEqualTo(2);
            assertThat(s.placement()).containsOnlyKeys("host-2", "host-" + added);
            assertThat(s.plan().blockCount()).as("4 blocks raised to a multiple of 3 hosts").isEqualTo(6);
            assertThat(s.generate(query(id), GenerationOptions.greedy(24), TokenListener.NONE).tokens())
                    .containsExactly(reference(id, id, 24, 6));
        }
    }

    @Test
    @Order(8)
    @Timeout(value = 15, unit = TimeUnit.MINUTES) // a hang guard; every wait inside is bounded
    void theAnchorHostKilledDuringPrefillIsReplacedWellWithinThePrefillTimeout() throws Exception {
        String id = "niah_single-4096-0";
        int[] want = reference(id, id, 16, 6);
        String victim = engine.hosts().getFirst().name(); // the first host encodes block 0 and serves the anchor
        KilledRun run = answerWhileKilling(engine, victim, id);
        assertThat(run.tokens()).containsExactly(want);
        // a leave is seen at once: nothing waits for the prefill timeout (or even a request timeout)
        long prefillMs = engine.cluster().timeouts().prefillMs();
        assertThat(run.seconds()).isLessThan(engine.cluster().timeouts().requestMs() / 1000.0 + 30 * SCALE)
                .isLessThan(prefillMs / 1000.0);
        System.out.printf("%s (block 0, the anchor) killed during prefill: answered in %.1f s (prefill timeout "
                + "%d s), blocks now %s%n", victim, run.seconds(), prefillMs / 1000, run.placement());
        // and nothing is left behind on the survivor: no session, no claimed anchor
        awaitHostSessions(0, 20_000 * SCALE);
        assertThat(engine.hosts()).allSatisfy(h -> assertThat(h.kvBytes()).isZero());
    }

    @Test
    @Order(9)
    @Timeout(value = 15, unit = TimeUnit.MINUTES) // a hang guard; every wait inside is bounded
    void aHostKilledAfterItsPrefillIsReplacedWhenTheQuestionComes() {
        int added = hosts.addHost();
        hosts.awaitReady();
        assertThat(engine.awaitHosts(2)).extracting(WireMessage.HostInfo::name).contains("host-" + added);
        String id = "niah_multikey-1024-1";
        int[] want = reference(id, id, 16);
        try (ClusterContextSession s = engine.prefillSession(context(id), PrefillListener.NONE)) {
            assertThat(s.placement()).containsKey("host-" + added);
            hosts.kill(added);
            long t0 = System.nanoTime();
            Generation g = s.generate(query(id), GenerationOptions.greedy(16), TokenListener.NONE);
            double seconds = (System.nanoTime() - t0) / 1e9;
            assertThat(g.tokens()).containsExactly(want);
            assertThat(s.placement()).doesNotContainKey("host-" + added);
            assertThat(seconds).isLessThan(engine.cluster().timeouts().requestMs() / 1000.0 + 30 * SCALE);
            System.out.printf("host-%d killed after its prefill: answered in %.1f s, blocks now %s%n", added, seconds,
                    s.placement());
        }
        awaitHostSessions(0, 20_000 * SCALE);
    }

    @Test
    @Order(10)
    @Timeout(value = 15, unit = TimeUnit.MINUTES) // a hang guard; every wait inside is bounded
    void aHostKilledJustBeforeThePrefillIsNeverWaitedFor() {
        int added = hosts.addHost();
        hosts.awaitReady();
        assertThat(engine.awaitHosts(2)).extracting(WireMessage.HostInfo::name).contains("host-" + added);
        String id = "vt-1024-0";
        int[] want = reference(id, id, 16);
        hosts.kill(added); // the query host may or may not have seen it leave when the prefill starts
        long t0 = System.nanoTime();
        try (ClusterContextSession s = engine.prefillSession(context(id), PrefillListener.NONE)) {
            Generation g = s.generate(query(id), GenerationOptions.greedy(16), TokenListener.NONE);
            double seconds = (System.nanoTime() - t0) / 1e9;
            assertThat(g.tokens()).containsExactly(want);
            assertThat(s.placement()).doesNotContainKey("host-" + added);
            assertThat(seconds).isLessThan(engine.cluster().timeouts().requestMs() / 1000.0 + 30 * SCALE)
                    .isLessThan(engine.cluster().timeouts().prefillMs() / 1000.0);
            System.out.printf("host-%d killed before the prefill: answered in %.1f s, blocks now %s%n", added, seconds,
                    s.placement());
        }
        awaitHostSessions(0, 20_000 * SCALE);
    }

    @Test
    @Order(11)
    @Timeout(value = 15, unit = TimeUnit.MINUTES) // a hang guard; every wait inside is bounded
    void aHostKilledDuringAPrefillWithPassingBlocksChangesNothingInTheAnswer() throws Exception {
        hosts.addHost();
        hosts.awaitReady();
        EngineOptions passing = ClusterFixture.star().toBuilder()
                .passing(PassingPolicy.of(16, PassingPolicy.Selection.WINDOW)).build();
        try (ClusterEngine withPassing = ClusterEngine.start(ClusterFixture.model(), passing,
                ClusterFixture.queryHost(hosts.extraNodeOptions("query-host-passing-2")))) {
            List<WireMessage.HostInfo> up = withPassing.awaitHosts(2);
            String id = "vt-4096-0";
            int[] want = reference(id, id, 16, ClusterEngine.balanced(passing, up.size()));
            // the second host (hosts are taken in name order) encodes blocks that the query host's wait for, layer
            // by layer: killed mid-prefill, the query host encodes the earlier blocks itself and its blocks move
            String victim = up.get(1).name();
            KilledRun run = answerWhileKilling(withPassing, victim, id);
            assertThat(run.tokens()).containsExactly(want);
            assertThat(run.seconds()).isLessThan(withPassing.cluster().timeouts().prefillMs() / 1000.0);
            System.out.printf("%s killed during a prefill with passing blocks: answered in %.1f s, blocks now %s%n",
                    victim, run.seconds(), run.placement());
        }
        awaitHostSessions(0, 20_000 * SCALE);
    }

    /** A 16-token answer to example {@code id}, its prefill and answer time, and the blocks' hosts after it. */
    private record KilledRun(int[] tokens, double seconds, Map<String, List<Integer>> placement) {
    }

    /**
     * Prefills example {@code id} through {@code engine} and answers with 16 greedy tokens while host {@code victim} is
     * killed mid-prefill ({@link #killOnceItHoldsASession}); checks that the kill landed during the prefill and that
     * the victim holds no block after it.
     */
    private static KilledRun answerWhileKilling(ClusterEngine engine, String victim, String id) throws Exception {
        int index = Integer.parseInt(victim.substring("host-".length()));
        AtomicBoolean prefillDone = new AtomicBoolean();
        CompletableFuture<Boolean> killedDuringPrefill = killOnceItHoldsASession(engine, victim, index, prefillDone);
        long t0 = System.nanoTime();
        try (ClusterContextSession s = engine.prefillSession(context(id), PrefillListener.NONE)) {
            prefillDone.set(true);
            Generation g = s.generate(query(id), GenerationOptions.greedy(16), TokenListener.NONE);
            double seconds = (System.nanoTime() - t0) / 1e9;
            assertThat(killedDuringPrefill.get(60 * SCALE, TimeUnit.SECONDS)).as("killed during the prefill").isTrue();
            assertThat(hosts.process(index).isAlive()).isFalse();
            assertThat(s.placement()).doesNotContainKey(victim);
            return new KilledRun(g.tokens(), seconds, s.placement());
        }
    }

    /**
     * Kills host {@code index} ({@code victim}) as soon as {@code seenBy} sees it hold a session: it registers the
     * session when its prefill starts and replies when the prefill ends, so the kill lands in between. Completes with
     * whether the prefill was still running then.
     */
    private static CompletableFuture<Boolean> killOnceItHoldsASession(ClusterEngine seenBy, String victim, int index,
                                                                      AtomicBoolean prefillDone) {
        return CompletableFuture.supplyAsync(() -> {
            long deadline = System.nanoTime() + 120_000_000_000L * SCALE;
            while (System.nanoTime() < deadline) {
                if (seenBy.hosts().stream().anyMatch(h -> h.name().equals(victim) && h.sessions() > 0)) {
                    boolean during = !prefillDone.get();
                    hosts.kill(index);
                    return during;
                }
                LockSupport.parkNanos(1_000_000); // poll each millisecond rather than spin a core the hosts need
            }
            return false;
        });
    }

    private static void awaitHostSessions(int n, long timeoutMs) {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        while (!engine.hosts().stream().allMatch(h -> h.sessions() == n)) {
            assertThat(System.nanoTime()).as("hosts hold %d sessions within %d ms: %s", n, timeoutMs, engine.hosts())
                    .isLessThan(deadline);
            try {
                Thread.sleep(250);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
    }
}
