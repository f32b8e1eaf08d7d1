package io.github.starattention.jlama.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionKernels;
import io.github.starattention.attention.Device;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.TestData;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.Block;
import io.github.starattention.plan.BlockPlan;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Passing blocks split the way hosts split them: two encoders on two threads, each encoding some of the blocks, take
 * the anchor and what the other's earlier blocks pass on from each other layer by layer ({@link PassingExchange}).
 * Every block's K/V must be bit for bit what one process encodes with the same policy ({@link PassingBlocksIT} checks
 * that one against an fp64 reference), and what each block passes must be what it passes in one process, also when
 * the feed fails half-way and a host encodes the earlier blocks itself. A host with several blocks encodes them side by
 * side, exchanging with itself as with the other host.
 */
class PassingExchangeIT {

    private static final int CONTEXT = 1000;
    private static final int BLOCK = 200;
    private static final long WAIT_SECONDS = 300;

    private static StarAttentionModel model;
    private static AttentionKernel kernel;
    private static ExecutorService hosts;
    private static int[] context;

    @BeforeAll
    static void setUp() {
        model = TestData.model();
        kernel = AttentionKernels.open(Device.CPU, 2);
        hosts = Executors.newFixedThreadPool(2);
        context = Arrays.copyOf(TestData.referenceContext(model, TestData.devSet().values().iterator().next()), CONTEXT);
        // warm up (as AnchorExchangeIT): cold and JIT-compiled Vector API loops of Jlama round differently
        ContextEncoder encoder = new ContextEncoder(model.decoder(), kernel, 64);
        BlockPlan plan = BlockPlan.builder(CONTEXT).blockSize(BLOCK).build();
        for (int i = 0; i < 2; i++) {
            encoder.encodeBlocks(plan, context, plan.blocks(), false, PassingPolicy.of(16, PassingPolicy.Selection.WINDOW),
                    n -> { }).forEach(KvStore::close);
        }
    }

    @AfterAll
    static void tearDown() {
        hosts.shutdownNow();
        kernel.close();
    }

    @ParameterizedTest(name = "second host: blocks {0}; anchor {1}, chunks of {2}, feed fails at layer {3}, anchor "
            + "shared {4}")
    @CsvSource({"'1,3', 200, 64, -1, true", "'2,3,4', 128, 48, -1, true", "'1,2,3,4', 0, 64, -1, true",
            "'1,3', 100, 64, 3, true", "'3,4', 200, 80, 0, true", "'2,3,4', 128, 64, -1, false"})
    void hostsExchangingWhatTheyPassEncodeWhatOneProcessEncodes(String second, int anchor, int chunk, int failAt,
                                                                 boolean shareAnchor) throws Exception {
        BlockPlan plan = BlockPlan.builder(CONTEXT).blockSize(BLOCK).anchorSize(anchor).build();
        PassingPolicy policy = PassingPolicy.of(12, PassingPolicy.Selection.WINDOW);
        ContextEncoder encoder = new ContextEncoder(model.decoder(), kernel, chunk);
        Map<Integer, int[]> expectedSelection = new ConcurrentHashMap<>();
        List<KvStore> expected = encoder.encodeBlocks(plan, context, plan.blocks(), false, AnchorExchange.NONE, policy,
                PassingExchange.NONE, expectedSelection::put, n -> { });

        Set<Integer> onSecond = Arrays.stream(second.split(",")).map(Integer::valueOf).collect(Collectors.toSet());
        List<Block> firstBlocks = plan.blocks().stream().filter(b -> !onSecond.contains(b.index())).toList();
        List<Block> secondBlocks = plan.blocks().stream().filter(b -> onSecond.contains(b.index())).toList();
        Map<Integer, CompletableFuture<AnchorExchange.Layer>> anchorLayers = new ConcurrentHashMap<>();
        Map<String, CompletableFuture<PassingExchange.Passed>> published = new ConcurrentHashMap<>();
        AnchorExchange.Feed anchorFeed = l -> anchorLayers.computeIfAbsent(l, x -> new CompletableFuture<>());
        PassingExchange.Feed feed = (b, l) -> published.computeIfAbsent(b + "/" + l, x -> new CompletableFuture<>());
        PassingExchange.Feed secondFeed = (b, l) -> failAt >= 0 && l >= failAt
                ? CompletableFuture.failedFuture(new IllegalStateException("the first host left the cluster"))
                : feed.passed(b, l);
        Map<Integer, int[]> selection = new ConcurrentHashMap<>();
        PassingExchange.Feed firstFeed = (b, l) -> feed.passed(b, l);
        java.util.function.Consumer<PassingExchange.Passed> sink = p -> {
            selection.put(p.block(), p.positions());
            feed.passed(p.block(), p.layer()).complete(p);
        };

        // both hosts at once: block 0 is on the first, which also waits for the second's blocks
        CompletableFuture<List<KvStore>> secondHost = CompletableFuture.supplyAsync(() -> encoder.encodeBlocks(plan,
                context, secondBlocks, shareAnchor ? new AnchorExchange(anchorFeed, null) : AnchorExchange.NONE, policy,
                new PassingExchange(secondFeed, sink),
                n -> { }), hosts);
        CompletableFuture<List<KvStore>> firstHost = CompletableFuture.supplyAsync(() -> encoder.encodeBlocks(plan,
                context, firstBlocks, new AnchorExchange(null, kv -> anchorFeed.layer(kv.layer()).complete(kv)), policy,
                new PassingExchange(firstFeed, sink), n -> { }), hosts);
        List<KvStore> fromFirst = firstHost.get(WAIT_SECONDS, TimeUnit.SECONDS);
        List<KvStore> fromSecond = secondHost.get(WAIT_SECONDS, TimeUnit.SECONDS);

        List<KvStore> got = new ArrayList<>();
        int f = 0;
        int s = 0;
        for (Block b : plan.blocks()) {
            got.add(onSecond.contains(b.index()) ? fromSecond.get(s++) : fromFirst.get(f++));
        }
        try {
            for (Block b : plan.blocks().subList(0, plan.blockCount() - 1)) {
                assertThat(selection.get(b.index())).as("what block %d passes on", b.index())
                        .containsExactly(expectedSelection.get(b.index()));
            }
            PassingBlocksIT.assertSameKv(expected, got);
        } finally {
            expected.forEach(KvStore::close);
            got.forEach(KvStore::close);
        }
    }
}
