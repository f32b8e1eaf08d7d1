package io.github.starattention.langchain4j;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.starattention.jlama.ContextSession;
import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.Generation;
import io.github.starattention.jlama.GenerationOptions;
import io.github.starattention.jlama.PrefillListener;
import io.github.starattention.jlama.StarAttentionEngine;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.TokenListener;
import io.github.starattention.plan.BlockPlan;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class ContextCacheTest {

    /** Sessions of 100 bytes per context token; prefill can be held by a latch or made to fail. */
    static final class FakeEngine implements StarAttentionEngine {
        final AtomicInteger prefills = new AtomicInteger();
        final List<FakeSession> sessions = new ArrayList<>();
        volatile CountDownLatch gate;
        volatile RuntimeException failure;

        @Override
        public StarAttentionModel model() {
            return null;
        }

        @Override
        public EngineOptions options() {
            return EngineOptions.defaults();
        }

        @Override
        public ContextSession prefill(int[] contextTokens, PrefillListener listener) {
            prefills.incrementAndGet();
            if (gate != null) {
                try {
                    gate.await();
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            }
            if (failure != null) {
                throw failure;
            }
            FakeSession s = new FakeSession(contextTokens.length);
            synchronized (sessions) {
                sessions.add(s);
            }
            return s;
        }

        @Override
        public void close() {
        }
    }

    static final class FakeSession implements ContextSession {
        final int tokens;
        volatile boolean closed;

        FakeSession(int tokens) {
            this.tokens = tokens;
        }

        @Override
        public BlockPlan plan() {
            return BlockPlan.global(tokens);
        }

        @Override
        public int contextTokens() {
            return tokens;
        }

        @Override
        public double prefillMillis() {
            return 0;
        }

        @Override
        public Generation generate(int[] queryTokens, GenerationOptions options, TokenListener listener) {
            throw new UnsupportedOperationException();
        }

        @Override
        public long kvBytes() {
            return tokens * 100L;
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    private static int[] tokens(int n, int seed) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = seed + i;
        }
        return t;
    }

    private static ContextCache.Lease get(ContextCache cache, StarAttentionEngine engine, int[] tokens) throws Exception {
        return cache.acquire(engine, tokens, PrefillListener.NONE, -1);
    }

    @Test
    void reusesEqualTokensOnly() throws Exception {
        FakeEngine engine = new FakeEngine();
        try (ContextCache cache = ContextCache.withMaxBytes(1_000_000)) {
            ContextCache.Lease a;
            try (var l = get(cache, engine, tokens(10, 1))) {
                a = l;
                assertThat(l.hit()).isFalse();
            }
            try (var l = get(cache, engine, tokens(10, 1))) {
                assertThat(l.hit()).isTrue();
                assertThat(l.session()).isSameAs(a.session());
            }
            try (var l = get(cache, engine, tokens(10, 2))) {
                assertThat(l.hit()).isFalse();
            }
            assertThat(engine.prefills).hasValue(2);
            assertThat(cache.hits()).isEqualTo(1);
            assertThat(cache.misses()).isEqualTo(2);
            assertThat(cache.bytes()).isEqualTo(2000);
            // another engine never shares
            FakeEngine other = new FakeEngine();
            try (var l = get(cache, other, tokens(10, 1))) {
                assertThat(l.hit()).isFalse();
            }
        }
    }

    @Test
    void evictsLeastRecentlyUsedByBytesAndClosesEvicted() throws Exception {
        FakeEngine engine = new FakeEngine();
        try (ContextCache cache = ContextCache.withMaxBytes(3000)) {
            get(cache, engine, tokens(10, 1)).close(); // 1000 bytes
            get(cache, engine, tokens(10, 2)).close(); // 2000
            get(cache, engine, tokens(10, 1)).close(); // touch 1: LRU is now 2
            get(cache, engine, tokens(15, 3)).close(); // 3500 > 3000: evicts 2
            assertThat(cache.bytes()).isEqualTo(2500);
            assertThat(cache.contains(engine, tokens(10, 2))).isFalse();
            assertThat(cache.contains(engine, tokens(10, 1))).isTrue();
            assertThat(cache.contains(engine, tokens(15, 3))).isTrue();
            assertThat(engine.sessions.get(1).closed).isTrue();
            assertThat(engine.sessions.get(0).closed).isFalse();
            assertThat(cache.evictions()).isEqualTo(1);
        }
        assertThat(engine.sessions).allSatisfy(s -> assertThat(s.closed).isTrue());
    }

    @Test
    void anEvictedContextInUseIsClosedOnRelease() throws Exception {
        FakeEngine engine = new FakeEngine();
        try (ContextCache cache = ContextCache.withMaxBytes(1500)) {
            ContextCache.Lease inUse = get(cache, engine, tokens(10, 1));
            get(cache, engine, tokens(10, 2)).close(); // over budget: evicts 1 (LRU), which is in use
            FakeSession first = engine.sessions.get(0);
            assertThat(cache.contains(engine, tokens(10, 1))).isFalse();
            assertThat(first.closed).isFalse();
            inUse.close();
            assertThat(first.closed).isTrue();
            inUse.close(); // idempotent
        }
    }

    @Test
    void aContextLargerThanTheBudgetIsUsedThenClosed() throws Exception {
        FakeEngine engine = new FakeEngine();
        try (ContextCache cache = ContextCache.withMaxBytes(500)) {
            ContextCache.Lease l = get(cache, engine, tokens(10, 1));
            assertThat(l.session().kvBytes()).isEqualTo(1000);
            assertThat(cache.size()).isZero();
            assertThat(cache.bytes()).isZero();
            l.close();
            assertThat(engine.sessions.getFirst().closed).isTrue();
        }
    }

    @Test
    void zeroBytesDisablesReuse() throws Exception {
        FakeEngine engine = new FakeEngine();
        try (ContextCache cache = ContextCache.withMaxBytes(0)) {
            get(cache, engine, tokens(3, 1)).close();
            get(cache, engine, tokens(3, 1)).close();
            assertThat(engine.prefills).hasValue(2);
            assertThat(engine.sessions).allSatisfy(s -> assertThat(s.closed).isTrue());
        }
    }

    @Test
    void concurrentRequestsShareOnePrefill() throws Exception {
        FakeEngine engine = new FakeEngine();
        engine.gate = new CountDownLatch(1);
        try (ContextCache cache = ContextCache.withMaxBytes(0);
             ExecutorService pool = Executors.newFixedThreadPool(4)) {
            List<Future<ContextCache.Lease>> leases = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                leases.add(pool.submit(() -> get(cache, engine, tokens(10, 1))));
            }
            Thread.sleep(200);
            engine.gate.countDown();
            List<ContextCache.Lease> got = new ArrayList<>();
            for (var f : leases) {
                got.add(f.get(10, TimeUnit.SECONDS));
            }
            assertThat(engine.prefills).hasValue(1);
            assertThat(got).extracting(ContextCache.Lease::session).containsOnly(got.getFirst().session());
            assertThat(got).filteredOn(ContextCache.Lease::hit).hasSize(3);
            FakeSession s = engine.sessions.getFirst();
            for (int i = 0; i < 3; i++) {
                got.get(i).close();
                assertThat(s.closed).isFalse();
            }
            got.get(3).close();
            assertThat(s.closed).isTrue(); // budget 0: closed with its last user
        }
    }

    @Test
    void aFailedPrefillReachesEveryWaiterAndIsNotCached() throws Exception {
        FakeEngine engine = new FakeEngine();
        engine.gate = new CountDownLatch(1);
        engine.failure = new IllegalArgumentException("too long");
        try (ContextCache cache = ContextCache.withMaxBytes(10_000);
             ExecutorService pool = Executors.newFixedThreadPool(2)) {
            Future<ContextCache.Lease> a = pool.submit(() -> get(cache, engine, tokens(10, 1)));
            Thread.sleep(100);
            Future<ContextCache.Lease> b = pool.submit(() -> get(cache, engine, tokens(10, 1)));
            Thread.sleep(100);
            engine.gate.countDown();
            assertThatThrownBy(a::get).hasCauseInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(b::get).hasCauseInstanceOf(IllegalArgumentException.class);
            assertThat(cache.size()).isZero();
            engine.failure = null;
            engine.gate = null;
            try (var l = get(cache, engine, tokens(10, 1))) {
                assertThat(l.hit()).isFalse();
            }
        }
    }

    @Test
    void waitingForAnotherPrefillTimesOut() throws Exception {
        FakeEngine engine = new FakeEngine();
        engine.gate = new CountDownLatch(1);
        try (ContextCache cache = ContextCache.withMaxBytes(10_000);
             ExecutorService pool = Executors.newFixedThreadPool(1)) {
            Future<ContextCache.Lease> owner = pool.submit(() -> get(cache, engine, tokens(10, 1)));
            Thread.sleep(100);
            assertThatThrownBy(() -> cache.acquire(engine, tokens(10, 1), PrefillListener.NONE,
                    TimeUnit.MILLISECONDS.toNanos(100))).isInstanceOf(TimeoutException.class);
            engine.gate.countDown();
            owner.get().close();
            assertThat(cache.size()).isEqualTo(1);
        }
    }

    @Test
    void closeRefusesFurtherRequests() {
        ContextCache cache = ContextCache.withMaxBytes(10);
        cache.close();
        assertThatThrownBy(() -> get(cache, new FakeEngine(), tokens(1, 1))).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> ContextCache.withMaxBytes(-1)).isInstanceOf(IllegalArgumentException.class);
    }
}
