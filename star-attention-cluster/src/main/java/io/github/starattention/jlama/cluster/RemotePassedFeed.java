package io.github.starattention.jlama.cluster;

import io.github.starattention.jlama.model.PassingExchange;
import io.github.starattention.wire.WireMessage;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;

/**
 * Takes what earlier blocks of a session pass on from the context hosts that encode them, one
 * {@link WireMessage.PassedRequest} per block and layer. A layer fails (and the caller encodes the earlier blocks
 * itself) when no context host holds the block, or its host leaves, errs, or does not answer within {@code timeoutMs}.
 * A block held on this host since an earlier request comes from {@code own}.
 */
final class RemotePassedFeed implements PassingExchange.Feed {

    private final ClusterNode node;
    private final List<String> holders;
    private final UUID session;
    private final long timeoutMs;
    private final PassedSource own;

    /**
     * @param holders node id of the context host of each block of the plan, empty for none
     * @param own this host's source of the session, or {@code null} on the query host
     */
    RemotePassedFeed(ClusterNode node, List<String> holders, UUID session, long timeoutMs, PassedSource own) {
        this.node = node;
        this.holders = List.copyOf(holders);
        this.session = session;
        this.timeoutMs = timeoutMs;
        this.own = own;
    }

    @Override
    public CompletableFuture<PassingExchange.Passed> passed(int block, int layer) {
        String holder = block < holders.size() ? holders.get(block) : "";
        if (holder.equals(node.nodeId())) {
            return own != null && own.claimed(block) ? own.layer(block, layer) : CompletableFuture.failedFuture(
                    new IllegalStateException("block " + block + " is not encoded on this host"));
        }
        if (holder.isEmpty()) {
            return CompletableFuture.failedFuture(new IllegalStateException("no context host encodes block " + block));
        }
        String label = "the host of block " + block + " (" + holder + ")";
        return node.request(holder, label, new WireMessage.PassedRequest(session, block, layer), timeoutMs)
                .thenApply(reply -> {
                    if (reply instanceof WireMessage.PassedReply r) {
                        return new PassingExchange.Passed(r.block(), r.layer(), r.positions(), r.k(), r.v());
                    }
                    throw new HostFailureException(HostFailureException.Kind.REMOTE_ERROR, holder,
                            label + " answered a passed-blocks request with a " + reply.getClass().getSimpleName());
                });
    }
}
