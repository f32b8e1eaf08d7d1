package io.github.starattention.jlama.cluster;

import io.github.starattention.jlama.model.AnchorExchange;
import io.github.starattention.wire.WireMessage;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;

/**
 * Takes the anchor's KV of a session from the context host that encodes its block 0, one
 * {@link WireMessage.AnchorRequest} per layer. A layer fails (and the caller encodes the anchor itself) when that host
 * leaves, errs, or does not answer within {@code timeoutMs}.
 */
final class RemoteAnchorFeed implements AnchorExchange.Feed {

    private final ClusterNode node;
    private final String nodeId;
    private final String label;
    private final UUID session;
    private final long timeoutMs;

    RemoteAnchorFeed(ClusterNode node, String nodeId, String label, UUID session, long timeoutMs) {
        this.node = node;
        this.nodeId = nodeId;
        this.label = label;
        this.session = session;
        this.timeoutMs = timeoutMs;
    }

    @Override
    public CompletableFuture<AnchorExchange.Layer> layer(int layer) {
        return node.request(nodeId, label, new WireMessage.AnchorRequest(session, layer), timeoutMs).thenApply(reply -> {
            if (reply instanceof WireMessage.AnchorReply r) {
                return new AnchorExchange.Layer(r.layer(), r.tokens(), r.k(), r.v());
            }
            throw new HostFailureException(HostFailureException.Kind.REMOTE_ERROR, nodeId,
                    label + " answered an anchor request with a " + reply.getClass().getSimpleName());
        });
    }
}
