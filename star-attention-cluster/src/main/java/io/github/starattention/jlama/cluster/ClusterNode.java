package io.github.starattention.jlama.cluster;

import io.github.starattention.wire.WireMessage;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.EventBusOptions;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.metrics.MetricsOptions;
import io.vertx.core.net.JksOptions;
import io.vertx.core.net.KeyStoreOptionsBase;
import io.vertx.core.net.PfxOptions;
import io.vertx.core.spi.cluster.ClusterManager;
import io.vertx.core.spi.cluster.RegistrationInfo;
import io.vertx.core.spi.metrics.EventBusMetrics;
import io.vertx.core.spi.metrics.VertxMetrics;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One member of the cluster: a clustered Vert.x instance whose event bus carries the messages, with a cluster manager
 * keeping membership ({@link ClusterMembership}: Hazelcast, or JGroups over mutual TLS). Both roles (context host,
 * query host) run on one.
 *
 * <p>Requests are bounded twice: by the event-bus send timeout, and by membership: when a member leaves (or is
 * declared dead after {@code failureDetectionSeconds} without heartbeat) every request pending on it fails at once
 * with {@link HostFailureException.Kind#LOST}, instead of waiting for the full timeout.
 */
final class ClusterNode implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(ClusterNode.class);

    /** Event-bus address prefix of the context hosts; a host listens on the prefix + its node id. */
    static final String HOST_ADDRESS_PREFIX = "star-attention.host.";

    private final ClusterOptions options;
    private final Vertx vertx;
    private final ClusterMembership membership;
    private final ClusterManager manager;
    private final String nodeId;
    private final Map<String, Set<CompletableFuture<WireMessage>>> pending = new ConcurrentHashMap<>();
    private final List<Consumer<String>> leaveListeners = new CopyOnWriteArrayList<>();
    private final WireMeter meter;
    private final AtomicBoolean closed = new AtomicBoolean();

    private ClusterNode(ClusterOptions options, Vertx vertx, ClusterMembership membership, WireMeter meter) {
        this.options = options;
        this.vertx = vertx;
        this.membership = membership;
        this.manager = membership.manager();
        this.meter = meter;
        this.nodeId = manager.getNodeId();
        vertx.eventBus().registerCodec(new WireMessageCodec());
        membership.onLeave(this::memberLeft);
    }

    /**
     * Joins the cluster described by {@code options} (bounded by {@code timeouts.joinMs}).
     *
     * @throws IllegalArgumentException when a TLS store, its password or a port is wrong ({@link StartupChecks})
     * @throws IllegalStateException when the node cannot start or join in time
     */
    static ClusterNode start(ClusterOptions options) {
        StartupChecks.check(options);
        ClusterMembership membership = ClusterMembership.create(options);
        WireMeter meter = new WireMeter();
        VertxOptions vo = new VertxOptions()
                .setEventBusOptions(eventBusOptions(options))
                .setMetricsOptions(new MetricsOptions().setEnabled(true))
                .setEventLoopPoolSize(Math.min(4, 2 * Runtime.getRuntime().availableProcessors()))
                .setWorkerPoolSize(4)
                .setInternalBlockingPoolSize(4);
        AtomicBoolean abandoned = new AtomicBoolean();
        Future<Vertx> started = Vertx.builder().with(vo).withClusterManager(membership.manager())
                .withMetrics(o -> meter).buildClustered();
        started.onSuccess(v -> {
            if (abandoned.get()) {
                v.close();
            }
        });
        long t0 = System.nanoTime();
        try {
            Vertx vertx = started.toCompletionStage().toCompletableFuture().get(options.timeouts().joinMs(), TimeUnit.MILLISECONDS);
            ClusterNode node = new ClusterNode(options, vertx, membership, meter);
            log.info("{} joined cluster '{}' as node {} ({}, event bus {}{}) in {} ms", options.nodeName(),
                    options.clusterName(), node.nodeId, membership.localAddress(), node.eventBusAddress(),
                    options.tls().enabled() ? " with mutual TLS" : "", (System.nanoTime() - t0) / 1_000_000);
            return node;
        } catch (TimeoutException e) {
            abandoned.set(true);
            started.onComplete(ar -> membership.close());
            throw new IllegalStateException("could not join cluster '" + options.clusterName() + "' within "
                    + options.timeouts().joinMs() + " ms (members " + options.hazelcast().members() + ")");
        } catch (ExecutionException e) {
            membership.close();
            throw new IllegalStateException("could not join cluster '" + options.clusterName() + "': "
                    + e.getCause().getMessage(), e.getCause());
        } catch (InterruptedException e) {
            abandoned.set(true);
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while joining the cluster", e);
        }
    }

    /** The event bus: bound host and port, and mutual TLS (trustAll off) when configured. */
    static EventBusOptions eventBusOptions(ClusterOptions o) {
        EventBusOptions eb = new EventBusOptions()
                .setHost(o.eventBus().host())
                .setPort(o.eventBus().port())
                .setConnectTimeout((int) Math.min(10_000, o.timeouts().requestMs()))
                .setTcpNoDelay(true);
        if (o.eventBus().publicHost() != null) {
            eb.setClusterPublicHost(o.eventBus().publicHost());
        }
        ClusterOptions.Tls tls = o.tls();
        if (tls.enabled()) {
            eb.setSsl(true)
                    .setTrustAll(false)
                    .setClientAuth(ClientAuth.REQUIRED)
                    .setSslHandshakeTimeout(Math.min(10_000, o.timeouts().requestMs()))
                    .setSslHandshakeTimeoutUnit(TimeUnit.MILLISECONDS)
                    .setKeyCertOptions(store(tls.keyStore(), tls.resolvedKeyStorePassword()))
                    .setTrustOptions(store(tls.trustStore(), tls.resolvedTrustStorePassword()));
        }
        return eb;
    }

    private static KeyStoreOptionsBase store(Path path, String password) {
        String name = path.getFileName().toString().toLowerCase(Locale.ROOT);
        KeyStoreOptionsBase s = name.endsWith(".jks") ? new JksOptions() : new PfxOptions();
        return s.setPath(path.toString()).setPassword(password);
    }

    /** The event-bus address of the context host on node {@code nodeId}. */
    static String hostAddress(String nodeId) {
        return HOST_ADDRESS_PREFIX + nodeId;
    }

    String nodeId() {
        return nodeId;
    }

    /** {@code host:port} of this node's event-bus server. */
    String eventBusAddress() {
        var info = manager.getNodeInfo();
        return info == null ? options.eventBus().host() + ":?" : info.host() + ":" + info.port();
    }

    Vertx vertx() {
        return vertx;
    }

    ClusterOptions options() {
        return options;
    }

    /** Node ids of the current members, this one included. */
    List<String> members() {
        return manager.getNodes();
    }

    /**
     * The node ids that the cluster's shared subscription state ({@code __vertx.subs}) lists for {@code address}, as
     * this node's cluster manager sees it.
     */
    CompletableFuture<List<String>> subscribers(String address) {
        Promise<List<RegistrationInfo>> p = Promise.promise();
        manager.getRegistrations(address, p);
        return p.future().map(list -> list.stream().map(RegistrationInfo::nodeId).toList())
                .toCompletionStage().toCompletableFuture();
    }

    boolean isMember(String id) {
        return manager.getNodes().contains(id);
    }

    /** Calls {@code listener} with the node id of every member that leaves. */
    void onMemberLeft(Consumer<String> listener) {
        leaveListeners.add(listener);
    }

    /** Event-bus bytes this node wrote (all messages, Vert.x envelope included). */
    long wireBytesWritten() {
        return meter.written.sum();
    }

    /** Event-bus bytes this node read. */
    long wireBytesRead() {
        return meter.read.sum();
    }

    /**
     * Sends {@code message} to the context host on {@code target} and completes with its reply, or exceptionally
     * with a {@link HostFailureException} naming {@code label}: after {@code timeoutMs} without a reply, at once when
     * the member leaves, or with the host's error.
     */
    CompletableFuture<WireMessage> request(String target, String label, WireMessage message, long timeoutMs) {
        CompletableFuture<WireMessage> f = new CompletableFuture<>();
        if (closed.get()) {
            f.completeExceptionally(new IllegalStateException("this cluster node is closed"));
            return f;
        }
        Set<CompletableFuture<WireMessage>> set = pending.computeIfAbsent(target, k -> ConcurrentHashMap.newKeySet());
        set.add(f);
        f.whenComplete((r, e) -> set.remove(f));
        if (!isMember(target)) {
            f.completeExceptionally(new HostFailureException(HostFailureException.Kind.LOST, target,
                    label + " is not a member of the cluster any more"));
            return f;
        }
        DeliveryOptions d = new DeliveryOptions().setCodecName(WireMessageCodec.NAME).setSendTimeout(timeoutMs);
        vertx.eventBus().<Object>request(hostAddress(target), message, d).onComplete(ar -> {
            if (ar.succeeded()) {
                Object body = ar.result().body();
                if (body instanceof WireMessage w) {
                    f.complete(w);
                } else {
                    f.completeExceptionally(new HostFailureException(HostFailureException.Kind.REMOTE_ERROR, target,
                            label + " sent a malformed reply: " + body));
                }
            } else {
                f.completeExceptionally(translate(target, label, ar.cause(), timeoutMs));
            }
        });
        return f;
    }

    static HostFailureException translate(String target, String label, Throwable cause, long timeoutMs) {
        if (cause instanceof HostFailureException h) {
            return h;
        }
        if (cause instanceof ReplyException r) {
            return switch (r.failureType()) {
                case TIMEOUT -> new HostFailureException(HostFailureException.Kind.TIMEOUT, target,
                        "no reply from " + label + " within " + timeoutMs + " ms", r);
                case NO_HANDLERS -> new HostFailureException(HostFailureException.Kind.LOST, target,
                        label + " is gone (nothing serves its address any more: it left the cluster or stopped)", r);
                case RECIPIENT_FAILURE -> switch (r.failureCode()) {
                    case ContextHost.UNKNOWN_SESSION -> new HostFailureException(HostFailureException.Kind.SESSION_UNKNOWN,
                            target, label + ": " + r.getMessage(), r);
                    case ContextHost.BAD_REQUEST, ContextHost.FULL -> new HostFailureException(
                            HostFailureException.Kind.REJECTED, target, label + " refused the request: " + r.getMessage(), r);
                    default -> new HostFailureException(HostFailureException.Kind.REMOTE_ERROR, target,
                            label + " failed: " + r.getMessage(), r);
                };
                case ERROR -> new HostFailureException(HostFailureException.Kind.UNREACHABLE, target,
                        "cannot reach " + label + ": " + r.getMessage(), r);
            };
        }
        return new HostFailureException(HostFailureException.Kind.UNREACHABLE, target,
                "cannot reach " + label + ": " + cause, cause);
    }

    private void memberLeft(String id, String address) {
        Set<CompletableFuture<WireMessage>> set = pending.remove(id);
        int failed = 0;
        if (set != null) {
            for (CompletableFuture<WireMessage> f : set) {
                if (f.completeExceptionally(new HostFailureException(HostFailureException.Kind.LOST, id,
                        "host " + id + " (" + address + ") left the cluster while a request was pending"))) {
                    failed++;
                }
            }
        }
        log.info("{}: member {} ({}) left the cluster{}", options.nodeName(), id, address,
                failed > 0 ? "; failed " + failed + " pending request(s)" : "");
        for (Consumer<String> l : leaveListeners) {
            try {
                l.accept(id);
            } catch (RuntimeException e) {
                log.warn("member-left listener failed", e);
            }
        }
    }

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        try {
            membership.stopReporting();
        } catch (RuntimeException e) {
            log.debug("could not remove the membership listener", e);
        }
        for (Set<CompletableFuture<WireMessage>> set : pending.values()) {
            set.forEach(f -> f.completeExceptionally(new IllegalStateException("the cluster node is closing")));
        }
        try {
            vertx.close().toCompletionStage().toCompletableFuture().get(options.timeouts().joinMs(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            log.warn("{}: leaving the cluster took more than {} ms; giving up", options.nodeName(), options.timeouts().joinMs());
        } catch (ExecutionException e) {
            log.warn("{}: error while leaving the cluster: {}", options.nodeName(), e.getCause().toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            membership.close();
        }
    }

    /** Counts event-bus bytes through Vert.x's metrics SPI. */
    private static final class WireMeter implements VertxMetrics {
        final LongAdder written = new LongAdder();
        final LongAdder read = new LongAdder();

        @Override
        public EventBusMetrics<?> createEventBusMetrics() {
            return new EventBusMetrics<Void>() {
                @Override
                public void messageWritten(String address, int numberOfBytes) {
                    written.add(numberOfBytes);
                }

                @Override
                public void messageRead(String address, int numberOfBytes) {
                    read.add(numberOfBytes);
                }
            };
        }
    }
}
