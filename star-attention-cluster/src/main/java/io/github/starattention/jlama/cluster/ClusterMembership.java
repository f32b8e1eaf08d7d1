package io.github.starattention.jlama.cluster;

import io.vertx.core.spi.cluster.ClusterManager;
import java.util.function.BiConsumer;

/**
 * The cluster manager behind a {@link ClusterNode} ({@link ClusterOptions#membership()} picks it), and what the node
 * needs from it beyond Vert.x's SPI: which members leave, by Vert.x node id, the moment the membership layer knows.
 */
sealed interface ClusterMembership permits OpenMembership, CertifiedMembership {

    static ClusterMembership create(ClusterOptions o) {
        return switch (o.membership()) {
            case OPEN -> new OpenMembership(o);
            case CERTIFIED -> new CertifiedMembership(o);
        };
    }

    /** The manager to build the clustered Vert.x instance with. */
    ClusterManager manager();

    /**
     * Reports every member that leaves from now on to {@code left} as (Vert.x node id, transport address); called
     * once, after the node joined.
     */
    void onLeave(BiConsumer<String, String> left);

    /** This member's transport address, for logs. */
    String localAddress();

    /** Stops reporting leaves; called before Vert.x closes. */
    void stopReporting();

    /** Releases what Vert.x does not close with itself; called after Vert.x closed. */
    default void close() {
    }
}
