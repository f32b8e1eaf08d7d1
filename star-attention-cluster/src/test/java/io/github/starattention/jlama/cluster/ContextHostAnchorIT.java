package io.github.starattention.jlama.cluster;

import static io.github.starattention.jlama.cluster.ClusterFixture.SCALE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionKernels;
import io.github.starattention.attention.Device;
import io.github.starattention.jlama.model.AnchorExchange;
import io.github.starattention.jlama.model.ContextEncoder;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.BlockPlan;
import io.github.starattention.wire.WireMessage;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The anchor service of a context host, over the event bus: requests that arrive before the prefill of block 0 are
 * answered once it encodes the anchor, with the anchor's KV; a request no prefill claims fails after the grace
 * period instead of waiting for the prefill timeout; a bad layer is refused.
 */
class ContextHostAnchorIT {

    private static final int CONTEXT = 600;
    private static final int BLOCK = 150;
    private static final int ANCHOR = 100;

    private static ClusterOptions base;
    private static ContextHost host;
    private static ClusterNode client;

    @BeforeAll
    static void start() {
        base = ClusterFixture.hostSettings(60_000).withClusterName("anchor-it-" + UUID.randomUUID());
        host = ContextHost.start(ClusterFixture.model(), base.withNodeName("host-a"));
        client = ClusterNode.start(base.withNodeName("query-host"));
    }

    @AfterAll
    static void stop() {
        if (client != null) {
            client.close();
        }
        if (host != null) {
            host.close();
        }
    }

    private static BlockPlan plan(int anchor) {
        return BlockPlan.builder(CONTEXT).blockSize(BLOCK).anchorSize(anchor).hosts(2).build();
    }

    @Test
    void anchorRequestsBeforeThePrefillAreAnsweredWithBlockZerosAnchor() throws Exception {
        int[] tokens = Arrays.copyOf(ClusterFixture.context("niah_single-1024-0"), CONTEXT);
        UUID session = UUID.randomUUID();
        int layers = ClusterFixture.model().decoder().config().numberOfLayers;
        List<CompletableFuture<WireMessage>> asked = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            asked.add(client.request(host.nodeId(), "host-a", new WireMessage.AnchorRequest(session, l), 60_000 * SCALE));
        }
        WireMessage prefilled = client.request(host.nodeId(), "host-a", WireMessage.PrefillRequest.of(session,
                client.nodeId(), plan(ANCHOR), tokens, new int[] {0}, ""), 120_000 * SCALE)
                .get(150 * SCALE, TimeUnit.SECONDS);
        assertThat(prefilled).isInstanceOf(WireMessage.PrefillReply.class);

        Map<Integer, AnchorExchange.Layer> expected = new ConcurrentHashMap<>();
        var model = ClusterFixture.model();
        try (AttentionKernel kernel = AttentionKernels.open(Device.CPU, 1)) {
            ContextEncoder encoder = new ContextEncoder(model.decoder(), kernel, ContextEncoder.DEFAULT_CHUNK);
            BlockPlan plan = BlockPlan.builder(CONTEXT).blockSize(BLOCK).anchorSize(ANCHOR).hosts(2).build();
            encoder.encodeBlocks(plan, tokens, plan.blocks().subList(0, 1), false,
                    new AnchorExchange(null, kv -> expected.put(kv.layer(), kv)), n -> { }).forEach(KvStore::close);
        }
        var c = model.decoder().config();
        for (int l = 0; l < layers; l++) {
            WireMessage.AnchorReply r = (WireMessage.AnchorReply) asked.get(l).get(30 * SCALE, TimeUnit.SECONDS);
            assertThat(r.layer()).isEqualTo(l);
            assertThat(r.tokens()).isEqualTo(ANCHOR);
            assertThat(r.kvHeads()).isEqualTo(c.numberOfKeyValueHeads);
            assertThat(r.headDim()).isEqualTo(c.headSize);
            // the same computation in this JVM; equal up to the last bits a warmer JIT may round differently
            assertThat(r.k()).as("K of layer %d", l).containsExactly(expected.get(l).k(), within(1e-4f));
            assertThat(r.v()).as("V of layer %d", l).containsExactly(expected.get(l).v(), within(1e-4f));
        }
        client.request(host.nodeId(), "host-a", new WireMessage.ReleaseRequest(session), 30_000 * SCALE)
                .get(60 * SCALE, TimeUnit.SECONDS);
    }

    @Test
    void anAnchorNoPrefillClaimsFailsAfterTheGracePeriod() {
        long t0 = System.nanoTime();
        CompletableFuture<WireMessage> f = client.request(host.nodeId(), "host-a",
                new WireMessage.AnchorRequest(UUID.randomUUID(), 0), 120_000 * SCALE);
        assertThatThrownBy(() -> f.get(60 * SCALE, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
                .cause().isInstanceOf(HostFailureException.class).hasMessageContaining("no prefill of block 0");
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertThat(seconds).isBetween(ContextHost.ANCHOR_GRACE_MS / 1000.0 - 0.5, ContextHost.ANCHOR_GRACE_MS / 1000.0 + 10);
    }

    @Test
    void aRefusedPrefillOfBlockZeroFailsTheAnchorRequestsWaitingForIt() {
        UUID session = UUID.randomUUID();
        CompletableFuture<WireMessage> asked = client.request(host.nodeId(), "host-a",
                new WireMessage.AnchorRequest(session, 0), 600_000 * SCALE);
        int[] tokens = Arrays.copyOf(ClusterFixture.context("niah_single-1024-0"), CONTEXT);
        tokens[BLOCK - 1] = Integer.MAX_VALUE; // in block 0, outside the vocabulary: the host refuses the prefill
        CompletableFuture<WireMessage> prefill = client.request(host.nodeId(), "host-a",
                WireMessage.PrefillRequest.of(session, client.nodeId(), plan(ANCHOR), tokens, new int[] {0}, ""),
                120_000 * SCALE);
        assertThatThrownBy(() -> prefill.get(60 * SCALE, TimeUnit.SECONDS)).cause()
                .isInstanceOf(HostFailureException.class).hasMessageContaining("outside the vocabulary");
        // the claim made on arrival is given up: the waiting request fails now, not at the request timeout
        assertThatThrownBy(() -> asked.get(60 * SCALE, TimeUnit.SECONDS)).cause()
                .isInstanceOf(HostFailureException.class)
                .hasMessageContaining("the prefill of block 0 was refused")
                .hasMessageContaining("outside the vocabulary");
    }

    @Test
    void theSessionsOfAQueryHostThatLeavesAreReleasedAtOnce() throws Exception {
        int before = host.sessions();
        try (ClusterNode owner = ClusterNode.start(base.withNodeName("query-host-2"))) {
            int[] tokens = Arrays.copyOf(ClusterFixture.context("niah_single-1024-0"), CONTEXT);
            WireMessage reply = owner.request(host.nodeId(), "host-a", WireMessage.PrefillRequest.of(UUID.randomUUID(),
                    owner.nodeId(), plan(0), tokens, new int[] {1}, ""), 120_000 * SCALE)
                    .get(150 * SCALE, TimeUnit.SECONDS);
            assertThat(reply).isInstanceOf(WireMessage.PrefillReply.class);
            assertThat(host.sessions()).isEqualTo(before + 1);
        } // leaves the cluster without releasing its session
        long t0 = System.nanoTime();
        long deadline = t0 + 30_000_000_000L * SCALE; // the host's idle timeout is 60 s x SCALE: this is not the reaper
        while (host.sessions() > before && System.nanoTime() < deadline) {
            LockSupport.parkNanos(20_000_000); // polls the host's state; no event is published for a release
        }
        assertThat(host.sessions()).as("sessions after the owner left").isEqualTo(before);
    }

    @Test
    void aLayerTheModelDoesNotHaveIsRefused() {
        int layers = ClusterFixture.model().decoder().config().numberOfLayers;
        CompletableFuture<WireMessage> f = client.request(host.nodeId(), "host-a",
                new WireMessage.AnchorRequest(UUID.randomUUID(), layers), 30_000 * SCALE);
        assertThatThrownBy(() -> f.get(60 * SCALE, TimeUnit.SECONDS)).cause().isInstanceOf(HostFailureException.class)
                .hasMessageContaining("does not exist")
                .satisfies(e -> assertThat(((HostFailureException) e).kind()).isEqualTo(HostFailureException.Kind.REJECTED));
    }
}
