package io.github.starattention.jlama.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionKernels;
import io.github.starattention.attention.AttentionQuery;
import io.github.starattention.attention.Device;
import io.github.starattention.attention.PartialAttention;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.TestData;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.BlockPlan;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Phase 1 split the way hosts split it: one encoder encodes block 0 and publishes the anchor layer by layer, another
 * encodes later blocks with that anchor arriving late from another thread. The blocks' KV must be bit for bit what one
 * process encodes on its own, one chunk after another (checked through every layer's attention output): with the
 * anchor in one chunk or several, ending on a chunk boundary or not, and when the feed fails half-way and the anchor is
 * encoded locally instead.
 */
class AnchorExchangeIT {

    private static final int CONTEXT = 1000;
    private static final int BLOCK = 250;

    private static StarAttentionModel model;
    private static AttentionKernel kernel;
    private static ExecutorService network;
    private static int[] context;

    @BeforeAll
    static void setUp() {
        model = TestData.model();
        kernel = AttentionKernels.open(Device.CPU, 2);
        network = Executors.newFixedThreadPool(2);
        int[] tokens = TestData.referenceContext(model, TestData.devSet().values().iterator().next());
        context = java.util.Arrays.copyOf(tokens, CONTEXT);
        // warm up: until the JIT compiles them, Jlama's Vector API loops run their scalar fallbacks, which round
        // differently, so the same pass can differ in the last bit between a cold and a warm JVM
        ContextEncoder encoder = new ContextEncoder(model.decoder(), kernel, 64);
        BlockPlan plan = BlockPlan.builder(CONTEXT).blockSize(BLOCK).build();
        for (int i = 0; i < 2; i++) {
            encoder.encodeBlocks(plan, context, plan.blocks(), false, n -> { }).forEach(KvStore::close);
        }
    }

    @AfterAll
    static void tearDown() {
        network.shutdownNow();
        kernel.close();
    }

    @ParameterizedTest(name = "anchor {0}, chunks of {1}, feed fails at layer {2}")
    @CsvSource({"250, 64, -1", "128, 64, -1", "180, 100, 3", "250, 300, -1", "180, 64, 0"})
    void blocksEncodedWithTheAnchorOfAnotherHostEqualTheInProcessOnes(int anchor, int chunk, int failAt)
            throws Exception {
        BlockPlan plan = BlockPlan.builder(CONTEXT).blockSize(BLOCK).anchorSize(anchor).build();
        ContextEncoder encoder = new ContextEncoder(model.decoder(), kernel, chunk);
        List<KvStore> expected = encoder.encodeBlocks(plan, context, plan.blocks(), false, n -> { });

        Map<Integer, CompletableFuture<AnchorExchange.Layer>> published = new ConcurrentHashMap<>();
        AnchorExchange.Feed feed = layer -> published.computeIfAbsent(layer, l -> new CompletableFuture<>());
        // the later blocks start first and wait for each layer, as they do on other hosts
        CompletableFuture<List<KvStore>> later = CompletableFuture.supplyAsync(() -> encoder.encodeBlocks(plan, context,
                plan.blocks().subList(1, 4), false, new AnchorExchange(delayed(feed, failAt), null), n -> { }), network);
        List<KvStore> first = encoder.encodeBlocks(plan, context, plan.blocks().subList(0, 1), false,
                new AnchorExchange(null, kv -> feed.layer(kv.layer()).complete(kv)), n -> { });
        List<KvStore> rest = later.get(300, TimeUnit.SECONDS);

        int layers = model.decoder().config().numberOfLayers;
        assertThat(published).hasSize(layers);
        for (int l = 0; l < layers; l++) {
            AnchorExchange.Layer kv = published.get(l).join();
            assertThat(kv.layer()).isEqualTo(l);
            assertThat(kv.tokens()).isEqualTo(anchor);
        }
        assertSameKv(expected.get(0), first.getFirst(), layers, "block 0");
        for (int b = 1; b < 4; b++) {
            assertSameKv(expected.get(b), rest.get(b - 1), layers, "block " + b);
        }
        expected.forEach(KvStore::close);
        first.forEach(KvStore::close);
        rest.forEach(KvStore::close);
    }

    /** The feed as another host serves it: every layer a little later, and failing from {@code failAt} on. */
    private static AnchorExchange.Feed delayed(AnchorExchange.Feed feed, int failAt) {
        return layer -> {
            if (failAt >= 0 && layer >= failAt) {
                return CompletableFuture.failedFuture(new IllegalStateException("host of block 0 left the cluster"));
            }
            return feed.layer(layer).thenApplyAsync(kv -> {
                sleep(20);
                return kv;
            }, network);
        };
    }

    private static void assertSameKv(KvStore expected, KvStore actual, int layers, String what) {
        assertThat(actual.size()).isEqualTo(expected.size());
        int c = expected.size();
        var config = model.decoder().config();
        Random random = new Random(c);
        float[] q = new float[2 * config.numberOfHeads * config.headSize];
        for (int i = 0; i < q.length; i++) {
            q[i] = (float) random.nextGaussian();
        }
        AttentionQuery query = new AttentionQuery(q, new int[] {CONTEXT, CONTEXT + 1}, 2, config.numberOfHeads,
                config.headSize, (float) (1 / Math.sqrt(config.headSize)));
        for (int l = 0; l < layers; l++) {
            PartialAttention want = kernel.attend(expected, l, query);
            PartialAttention got = kernel.attend(actual, l, query);
            assertThat(got.output()).as("%s, layer %d output", what, l).containsExactly(want.output());
            assertThat(got.lse()).as("%s, layer %d lse", what, l).containsExactly(want.lse());
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
