package io.github.starattention.jlama.cluster;

import io.vertx.core.spi.cluster.ClusterManager;
import io.vertx.ext.cluster.infinispan.InfinispanClusterManager;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BiConsumer;
import javax.sql.DataSource;
import org.infinispan.configuration.cache.CacheMode;
import org.infinispan.configuration.cache.ConfigurationBuilder;
import org.infinispan.configuration.global.GlobalConfigurationBuilder;
import org.infinispan.manager.DefaultCacheManager;
import org.infinispan.notifications.Listener;
import org.infinispan.notifications.cachemanagerlistener.annotation.ViewChanged;
import org.infinispan.notifications.cachemanagerlistener.event.ViewChangedEvent;
import org.infinispan.remoting.transport.Address;
import org.infinispan.remoting.transport.jgroups.JGroupsChannelConfigurator;
import org.infinispan.remoting.transport.jgroups.JGroupsTransport;
import org.jgroups.JChannel;
import org.jgroups.conf.ProtocolConfiguration;
import org.jgroups.protocols.FD_ALL3;
import org.jgroups.protocols.FRAG4;
import org.jgroups.protocols.MERGE3;
import org.jgroups.protocols.MFC;
import org.jgroups.protocols.TCP;
import org.jgroups.protocols.TCPPING;
import org.jgroups.protocols.UFC;
import org.jgroups.protocols.UNICAST3;
import org.jgroups.protocols.VERIFY_SUSPECT2;
import org.jgroups.protocols.pbcast.GMS;
import org.jgroups.protocols.pbcast.NAKACK2;
import org.jgroups.protocols.pbcast.STABLE;
import org.jgroups.util.SocketFactory;
import org.jgroups.util.TLS;
import org.jgroups.util.TLSClientAuth;

/**
 * {@link ClusterOptions.Membership#CERTIFIED}: the Vert.x Infinispan cluster manager on a JGroups stack whose only
 * transport is TCP over TLS with mutual authentication ({@code client_auth NEED}), keyed by the node's
 * {@code tls.keyStore} and trusting the CAs of {@code tls.trustStore}.
 *
 * <p>Every JGroups message (discovery, joins, views, heartbeats, the replicated caches that hold Vert.x's
 * subscriptions and node list) travels on those connections, so a process without a certificate signed by a trusted
 * CA fails the handshake and never exchanges a byte of cluster state: it cannot join, read or change
 * {@code __vertx.subs}, or send a view. There are no other listening sockets: discovery is TCPPING over the same
 * transport (the {@code hazelcast.members} list), failure detection is FD_ALL3 heartbeats over it (no FD_SOCK2
 * ports), diagnostics are off.
 *
 * <p>A member that stops without leaving is removed after {@code hazelcast.failureDetectionSeconds} without
 * heartbeat (Hazelcast also notices closed connections sooner).
 */
final class CertifiedMembership implements ClusterMembership {

    /** Members without a port in {@code hazelcast.members} are tried on {@code port .. port + PORT_RANGE}. */
    static final int PORT_RANGE = 9;
    /** How long a starting node looks for a coordinator before it founds the cluster itself. */
    static final long JOIN_TIMEOUT_MS = 2_000;

    private final ClusterOptions options;
    private final DefaultCacheManager cacheManager;
    private final Infinispan15ClusterManager manager;
    private volatile ViewListener listener;

    CertifiedMembership(ClusterOptions options) {
        this.options = options;
        if (System.getProperty("org.jboss.logging.provider") == null) {
            System.setProperty("org.jboss.logging.provider", "slf4j"); // Infinispan logs through SLF4J too
        }
        // the Vert.x node id is the JGroups logical name: unique per process, recognisable in logs
        String name = options.nodeName() + "-" + UUID.randomUUID().toString().substring(0, 8);
        GlobalConfigurationBuilder g = GlobalConfigurationBuilder.defaultClusteredBuilder();
        g.transport().clusterName(options.clusterName()).nodeName(name)
                .addProperty(JGroupsTransport.CHANNEL_CONFIGURATOR, new PrebuiltChannel(channel(options, name)));
        g.jmx().disable();
        DefaultCacheManager cm = new DefaultCacheManager(g.build(), false);
        // the caches vertx-infinispan expects (as in its default-infinispan.xml)
        ConfigurationBuilder replicated = new ConfigurationBuilder();
        replicated.clustering().cacheMode(CacheMode.REPL_SYNC);
        for (String cache : List.of("__vertx.subs", "__vertx.haInfo", "__vertx.nodeInfo")) {
            cm.defineConfiguration(cache, replicated.build());
        }
        ConfigurationBuilder distributed = new ConfigurationBuilder();
        distributed.clustering().cacheMode(CacheMode.DIST_SYNC);
        cm.defineConfiguration("__vertx.distributed.cache.configuration", distributed.build());
        // started here, before Vert.x registers its view listener (it expects a running cache manager), and
        // bounded like the rest of joining
        CompletableFuture<Void> started = CompletableFuture.runAsync(cm::start);
        try {
            started.get(options.timeouts().joinMs(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            started.whenComplete((v, t) -> cm.stop());
            throw new IllegalStateException("could not start certified membership within " + options.timeouts().joinMs()
                    + " ms (members " + options.hazelcast().members() + ")");
        } catch (ExecutionException e) {
            cm.stop();
            Throwable cause = e.getCause();
            throw new IllegalStateException("could not start certified membership: " + cause.getMessage(), cause);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            cm.stop();
            throw new IllegalStateException("interrupted while starting certified membership", e);
        }
        this.cacheManager = cm;
        this.manager = new Infinispan15ClusterManager(cm, options.eventBus());
    }

    /** The JGroups stack: mutual-TLS TCP, TCPPING of the configured members, heartbeats, reliable delivery. */
    static JChannel channel(ClusterOptions o, String name) {
        ClusterOptions.Hazelcast h = o.hazelcast();
        ClusterOptions.Tls t = o.tls();
        try {
            TCP tcp = new TCP();
            tcp.setBindAddr(InetAddress.getByName(h.host()));
            tcp.setBindPort(h.port());
            tcp.setPortRange(h.portAutoIncrement() ? PORT_RANGE : 0);
            tcp.tls(new TLS().enabled(true)
                    .setProtocols(new String[] {"TLSv1.3", "TLSv1.2"})
                    .setKeystorePath(t.keyStore().toString()).setKeystoreType(storeType(t.keyStore()))
                    .setKeystorePassword(t.resolvedKeyStorePassword())
                    .setTruststorePath(t.trustStore().toString()).setTruststoreType(storeType(t.trustStore()))
                    .setTruststorePassword(t.resolvedTrustStorePassword())
                    .setClientAuth(TLSClientAuth.NEED));
            TCPPING ping = new TCPPING();
            ping.setInitialHosts(initialHosts(h));
            ping.setPortRange(0);
            long failureMs = h.failureDetectionSeconds() * 1000L;
            JChannel ch = new JChannel(tcp, ping,
                    new MERGE3().setMinInterval(2_000).setMaxInterval(5_000),
                    new FD_ALL3().setTimeout(failureMs).setInterval(Math.min(1_000, failureMs / 4)),
                    new VERIFY_SUSPECT2().setTimeout(1_000),
                    new NAKACK2(), new UNICAST3(), new STABLE(),
                    new GMS().setJoinTimeout(JOIN_TIMEOUT_MS),
                    new UFC(), new MFC(), new FRAG4());
            if (tcp.getDiagnosticsHandler() != null) {
                tcp.getDiagnosticsHandler().setEnabled(false); // no probe sockets: nothing listens but TLS
            }
            ch.name(name);
            return ch;
        } catch (Exception e) {
            throw new IllegalStateException("could not set up the certified membership transport: " + e.getMessage(), e);
        }
    }

    /** {@code hazelcast.members} as TCPPING hosts: {@code host:port} as given, a bare host on every port of the range. */
    static List<InetSocketAddress> initialHosts(ClusterOptions.Hazelcast h) throws UnknownHostException {
        List<InetSocketAddress> hosts = new ArrayList<>();
        for (String m : h.members()) {
            int colon = m.lastIndexOf(':');
            boolean hasPort = colon > 0 && (m.indexOf(':') == colon || m.lastIndexOf(']') == colon - 1);
            if (hasPort) {
                String host = m.substring(0, colon).replace("[", "").replace("]", "");
                hosts.add(new InetSocketAddress(InetAddress.getByName(host), Integer.parseInt(m.substring(colon + 1))));
            } else {
                InetAddress a = InetAddress.getByName(m.replace("[", "").replace("]", ""));
                for (int p = h.port(); p <= h.port() + PORT_RANGE; p++) {
                    hosts.add(new InetSocketAddress(a, p));
                }
            }
        }
        return hosts;
    }

    private static String storeType(Path store) {
        return store.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".jks") ? "JKS" : "PKCS12";
    }

    @Override
    public ClusterManager manager() {
        return manager;
    }

    @Override
    public void onLeave(BiConsumer<String, String> left) {
        ViewListener l = new ViewListener(left);
        listener = l;
        cacheManager.addListener(l);
    }

    @Override
    public String localAddress() {
        return "jgroups " + cacheManager.getPhysicalAddresses() + " over mutual TLS";
    }

    @Override
    public void stopReporting() {
        ViewListener l = listener;
        if (l != null) {
            cacheManager.removeListener(l);
        }
    }

    @Override
    public void close() {
        // vertx-infinispan leaves a cache manager it was given running
        cacheManager.stop();
    }

    /**
     * vertx-infinispan 5.0 on Infinispan 15: it was compiled against Infinispan 14, where
     * {@code DefaultCacheManager.getTransport()} was public, and calls it for the member list and the event-bus
     * host. On 15 (which certified membership needs on Java 24+, see the POM) that method is private, so these
     * three answer from public API and the configuration instead. {@code CertifiedMembershipTest}
     * verifies every other Infinispan method vertx-infinispan calls still links.
     */
    static final class Infinispan15ClusterManager extends InfinispanClusterManager {
        private final DefaultCacheManager cacheManager;
        private final ClusterOptions.EventBus eventBus;

        Infinispan15ClusterManager(DefaultCacheManager cacheManager, ClusterOptions.EventBus eventBus) {
            super(cacheManager);
            this.cacheManager = cacheManager;
            this.eventBus = eventBus;
        }

        @Override
        public List<String> getNodes() {
            List<Address> members = cacheManager.getMembers();
            return members == null ? List.of() : members.stream().map(Address::toString).toList();
        }

        @Override
        public String clusterHost() {
            return eventBus.host();
        }

        @Override
        public String clusterPublicHost() {
            return eventBus.publicHost();
        }
    }

    /** Hands Infinispan the channel built by {@link #channel} (its XML and socket-factory hooks are not used). */
    private record PrebuiltChannel(JChannel channel) implements JGroupsChannelConfigurator {
        @Override
        public String getName() {
            return "star-attention-certified";
        }

        @Override
        public JChannel createChannel(String clusterName) {
            return channel;
        }

        @Override
        public void setSocketFactory(SocketFactory socketFactory) {
            // the TLS socket factory comes from the TCP protocol's own TLS settings
        }

        @Override
        public void setDataSource(DataSource dataSource) {
            // no JDBC discovery
        }

        @Override
        public String getProtocolStackString() {
            return channel.getProtocolStack().printProtocolSpec(false);
        }

        @Override
        public List<ProtocolConfiguration> getProtocolStack() {
            return List.of();
        }
    }

    /** Turns view changes into leaves; the Vert.x node id of a member is its JGroups logical name. */
    @Listener(sync = false)
    public static final class ViewListener {
        private final BiConsumer<String, String> left;

        ViewListener(BiConsumer<String, String> left) {
            this.left = left;
        }

        @ViewChanged
        public void viewChanged(ViewChangedEvent e) {
            Set<Address> gone = new HashSet<>(e.getOldMembers());
            gone.removeAll(e.getNewMembers());
            for (Address a : gone) {
                left.accept(a.toString(), "jgroups member " + a);
            }
        }
    }
}
