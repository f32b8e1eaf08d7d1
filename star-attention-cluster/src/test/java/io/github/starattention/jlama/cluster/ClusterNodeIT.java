package io.github.starattention.jlama.cluster;

import static io.github.starattention.jlama.cluster.ClusterFixture.SCALE;
import static org.assertj.core.api.Assertions.assertThat;

import io.github.starattention.wire.WireMessage;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Membership over a real Hazelcast cluster of two nodes in this JVM: a member that leaves is reported by its Vert.x
 * node id (the id that requests, host lists and session owners use), and the requests pending on it fail at once
 * instead of running to their timeout.
 */
class ClusterNodeIT {

    /** Far longer than the test waits: a request that ends must have been failed by the leave, not timed out. */
    private static final long REQUEST_MS = 600_000;

    @Test
    void aMemberThatLeavesIsReportedByItsNodeIdAndFailsItsPendingRequests() throws Exception {
        ClusterOptions base = ClusterFixture.hostSettings(60_000).withClusterName("leave-it-" + UUID.randomUUID());
        try (ClusterNode a = ClusterNode.start(base.withNodeName("node-a"))) {
            ClusterNode b = ClusterNode.start(base.withNodeName("node-b"));
            String bId = b.nodeId();
            // b serves its host address but never answers: a's request stays pending
            CompletableFuture<Void> registered = new CompletableFuture<>();
            b.vertx().eventBus().consumer(ClusterNode.hostAddress(bId), message -> { })
                    .completion().onComplete(ar -> registered.complete(null));
            registered.get(30 * SCALE, TimeUnit.SECONDS);
            CompletableFuture<String> left = new CompletableFuture<>();
            a.onMemberLeft(left::complete);
            CompletableFuture<WireMessage> pending = a.request(bId, "node-b", new WireMessage.InfoRequest(),
                    REQUEST_MS);
            assertThat(a.isMember(bId)).isTrue();

            b.close();

            assertThat(left.get(60 * SCALE, TimeUnit.SECONDS)).isEqualTo(bId);
            assertThat(pending).failsWithin(60 * SCALE, TimeUnit.SECONDS)
                    .withThrowableOfType(ExecutionException.class)
                    .havingCause()
                    .isInstanceOfSatisfying(HostFailureException.class,
                            e -> assertThat(e.kind()).isEqualTo(HostFailureException.Kind.LOST));
            assertThat(a.isMember(bId)).isFalse();
        }
    }
}
