package io.github.starattention.jlama.cluster;

import com.hazelcast.cluster.MembershipEvent;
import com.hazelcast.cluster.MembershipListener;
import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import com.hazelcast.config.MultiMapConfig;
import com.hazelcast.config.NetworkConfig;
import io.vertx.core.spi.cluster.ClusterManager;
import io.vertx.spi.cluster.hazelcast.HazelcastClusterManager;
import java.util.List;
import java.util.UUID;
import java.util.function.BiConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** {@link ClusterOptions.Membership#OPEN}: Hazelcast with explicit TCP-IP members. */
final class OpenMembership implements ClusterMembership {

    private static final Logger log = LoggerFactory.getLogger(OpenMembership.class);

    /** The Hazelcast member attribute in which vertx-hazelcast publishes a member's Vert.x node id. */
    static final String VERTX_NODE_ID_ATTRIBUTE = "__vertx.nodeId";

    private final ClusterOptions options;
    private final HazelcastClusterManager manager;
    private volatile UUID registration;

    OpenMembership(ClusterOptions options) {
        this.options = options;
        if (System.getProperty("hazelcast.phone.home.enabled") == null) {
            System.setProperty("hazelcast.phone.home.enabled", "false");
        }
        if (System.getProperty("hazelcast.logging.type") == null) {
            System.setProperty("hazelcast.logging.type", "slf4j");
        }
        this.manager = new HazelcastClusterManager(hazelcastConfig(options));
    }

    @Override
    public ClusterManager manager() {
        return manager;
    }

    @Override
    public void onLeave(BiConsumer<String, String> left) {
        registration = manager.getHazelcastInstance().getCluster().addMembershipListener(new MembershipListener() {
            @Override
            public void memberAdded(MembershipEvent event) {
                log.debug("{}: member {} joined", options.nodeName(), event.getMember());
            }

            @Override
            public void memberRemoved(MembershipEvent event) {
                // pending requests, host lists and session owners are keyed by the Vert.x node id, which
                // vertx-hazelcast draws at random and publishes as a member attribute; the Hazelcast member UUID
                // matches none of them
                String nodeId = event.getMember().getAttribute(VERTX_NODE_ID_ATTRIBUTE);
                if (nodeId == null) {
                    log.warn("{}: a Hazelcast member without a Vert.x node id left ({}); ignored",
                            options.nodeName(), event.getMember().getAddress());
                    return;
                }
                left.accept(nodeId, event.getMember().getAddress().toString());
            }
        });
    }

    @Override
    public String localAddress() {
        return "hazelcast " + manager.getHazelcastInstance().getCluster().getLocalMember().getAddress();
    }

    @Override
    public void stopReporting() {
        UUID r = registration;
        if (r != null) {
            manager.getHazelcastInstance().getCluster().removeMembershipListener(r);
        }
    }

    /** Hazelcast membership: explicit TCP-IP members, bound interface, no multicast, no auto-detection, no phone-home. */
    static Config hazelcastConfig(ClusterOptions o) {
        ClusterOptions.Hazelcast h = o.hazelcast();
        Config c = new Config();
        c.setClusterName(o.clusterName());
        c.setInstanceName("star-attention-" + o.nodeName() + "-" + UUID.randomUUID());
        c.setProperty("hazelcast.phone.home.enabled", "false");
        c.setProperty("hazelcast.logging.type", "slf4j");
        c.setProperty("hazelcast.wait.seconds.before.join", "0");
        c.setProperty("hazelcast.max.wait.seconds.before.join", "0");
        c.setProperty("hazelcast.heartbeat.interval.seconds", "1");
        c.setProperty("hazelcast.max.no.heartbeat.seconds", Integer.toString(h.failureDetectionSeconds()));
        c.setProperty("hazelcast.socket.bind.any", "false");
        c.setProperty("hazelcast.tcp.join.port.try.count", "10");
        c.setProperty("hazelcast.shutdownhook.enabled", "false");
        c.setProperty("hazelcast.graceful.shutdown.max.wait", "10");
        c.setProperty("hazelcast.health.monitoring.level", "OFF");
        c.getMetricsConfig().setEnabled(false);
        c.getJetConfig().setEnabled(false);
        NetworkConfig n = c.getNetworkConfig();
        n.setPort(h.port()).setPortAutoIncrement(h.portAutoIncrement()).setPortCount(10);
        n.getInterfaces().setEnabled(true).setInterfaces(List.of(h.host()));
        JoinConfig j = n.getJoin();
        j.getMulticastConfig().setEnabled(false);
        j.getAutoDetectionConfig().setEnabled(false);
        j.getTcpIpConfig().setEnabled(true).setMembers(h.members()).setConnectionTimeoutSeconds(5);
        // the maps Vert.x keeps in Hazelcast (as in vertx-hazelcast's default-cluster.xml)
        c.getMultiMapConfig("__vertx.subs").setBackupCount(1)
                .setValueCollectionType(MultiMapConfig.ValueCollectionType.SET);
        c.getMapConfig("__vertx.haInfo").setBackupCount(1);
        c.getMapConfig("__vertx.nodeInfo").setBackupCount(1);
        return c;
    }
}
