package io.github.starattention.jlama.cluster;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionKernels;
import io.github.starattention.jlama.ContextSession;
import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.PrefillListener;
import io.github.starattention.jlama.PromptTooLongException;
import io.github.starattention.jlama.StarAttentionEngine;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.model.ContextEncoder;
import io.github.starattention.plan.BlockPlan;
import io.github.starattention.wire.WireMessage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Distributed Star Attention, seen from the <em>query host</em>: this process plans the blocks, dispatches phase 1 to
 * the context hosts of the cluster (and encodes the last block itself), and in phase 2 runs the model, sending each
 * layer's query vectors to the hosts and merging their partial attention exactly, so that answers are
 * token-identical to {@link io.github.starattention.jlama.LocalEngine} in star mode with the same block plan.
 *
 * <p>With {@code n} context hosts the plan has {@code n + 1} hosts, this one last (it owns the last block and the
 * query and answer tokens). When the options give a block count (not a block size) smaller than {@code n + 1}, the
 * count is raised to {@code n + 1}. Only {@link Mode#STAR} can be distributed.
 *
 * <p>Hosts are discovered among the cluster members: each member is asked who it is, and only context hosts serving
 * the same model (same {@link ModelFingerprint}) are used. A host that joins later is used by later sessions (and
 * for failover); a host that leaves is dropped. See {@link ClusterContextSession} for sessions and failures.
 */
public final class ClusterEngine implements StarAttentionEngine {

    private static final Logger log = LoggerFactory.getLogger(ClusterEngine.class);

    private final StarAttentionModel model;
    private final EngineOptions options;
    private final ClusterOptions cluster;
    private final int maxHosts;
    private final AttentionKernel kernel;
    private final ContextEncoder encoder;
    private final String modelId;
    private final ClusterNode node;
    private final Map<String, WireMessage.HostInfo> hosts = new ConcurrentHashMap<>();
    private final Set<String> rejected = ConcurrentHashMap.newKeySet();
    private final Map<String, Long> unreachableSince = new ConcurrentHashMap<>();
    private final Set<ClusterContextSession> sessions = ConcurrentHashMap.newKeySet();
    private final ExecutorService background;
    private final ScheduledExecutorService reaper;
    private final List<AutoCloseable> owned = new ArrayList<>();
    private volatile boolean closed;

    private ClusterEngine(StarAttentionModel model, EngineOptions options, ClusterOptions cluster, int maxHosts) {
        this.model = Objects.requireNonNull(model, "model");
        this.options = Objects.requireNonNull(options, "options");
        this.cluster = Objects.requireNonNull(cluster, "cluster");
        if (options.mode() != Mode.STAR) {
            throw new IllegalArgumentException("global mode runs on one host; the distributed engine runs star mode");
        }
        if (maxHosts < 0) {
            throw new IllegalArgumentException("maxHosts must be >= 0 (0 = all), got " + maxHosts);
        }
        this.maxHosts = maxHosts;
        this.kernel = AttentionKernels.open(options.device(), options.threads(), options.kvPrecision());
        try {
            this.encoder = ContextEncoder.open(model.decoder(), kernel);
        } catch (RuntimeException | Error e) {
            kernel.close();
            throw e;
        }
        this.modelId = ModelFingerprint.of(model, cluster.host().weights(), kernel.numerics());
        AtomicInteger n = new AtomicInteger();
        this.background = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "sa-query-host-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        this.reaper = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "sa-query-host-reaper");
            t.setDaemon(true);
            return t;
        });
        try {
            this.node = ClusterNode.start(cluster);
        } catch (RuntimeException e) {
            background.shutdownNow();
            reaper.shutdownNow();
            encoder.close();
            kernel.close();
            throw e;
        }
        node.onMemberLeft(id -> {
            if (hosts.remove(id) != null) {
                log.info("context host {} left the cluster", id);
            }
        });
        long idle = cluster.timeouts().sessionIdleMs();
        long every = Math.max(200, Math.min(idle / 4, 10_000));
        reaper.scheduleWithFixedDelay(() -> {
            for (ClusterContextSession s : List.copyOf(sessions)) {
                s.expireIfIdle(idle);
            }
        }, every, every, TimeUnit.MILLISECONDS);
    }

    /** Joins the cluster of {@code cluster} as the query host and uses all context hosts found there. */
    public static ClusterEngine start(StarAttentionModel model, EngineOptions options, ClusterOptions cluster) {
        return new ClusterEngine(model, options, cluster, 0);
    }

    /** As {@link #start(StarAttentionModel, EngineOptions, ClusterOptions)}, using at most {@code maxHosts} hosts. */
    public static ClusterEngine start(StarAttentionModel model, EngineOptions options, ClusterOptions cluster, int maxHosts) {
        return new ClusterEngine(model, options, cluster, maxHosts);
    }

    /**
     * Joins the cluster configured in {@code file} as the query host and waits for {@code hosts} context hosts (at
     * least one when {@code hosts} is 0; all that are there are used then).
     *
     * @param weights the weight format {@code model} was loaded with (part of the model fingerprint)
     */
    public static ClusterEngine join(StarAttentionModel model, EngineOptions options, Path file, int hosts, String weights) {
        ClusterOptions c = ClusterOptions.load(file);
        ClusterOptions.Host h = c.host();
        c = c.withHost(new ClusterOptions.Host(h.model(), h.threads(), weights, h.device(), h.maxSessions(), h.kv()));
        ClusterEngine engine = start(model, options, c, hosts);
        try {
            engine.awaitHosts(Math.max(1, hosts));
        } catch (RuntimeException e) {
            engine.close();
            throw e;
        }
        return engine;
    }

    @Override
    public StarAttentionModel model() {
        return model;
    }

    @Override
    public EngineOptions options() {
        return options;
    }

    /** The cluster configuration of this node. */
    public ClusterOptions cluster() {
        return cluster;
    }

    /** This node's cluster id. */
    public String nodeId() {
        return node.nodeId();
    }

    /** The model fingerprint hosts must announce. */
    public String modelId() {
        return modelId;
    }

    /** Event-bus bytes written and read by this node so far (Vert.x envelope included), for reports. */
    public long[] wireBytes() {
        return new long[] {node.wireBytesWritten(), node.wireBytesRead()};
    }

    /** Closes {@code resource} (e.g. spawned host processes) when this engine closes, after the cluster node. */
    public void closeWith(AutoCloseable resource) {
        synchronized (owned) {
            owned.add(resource);
        }
    }

    /** The usable context hosts now (every member is asked again), ordered by name, with their current load. */
    public List<WireMessage.HostInfo> hosts() {
        refreshHosts();
        return hosts.values().stream().sorted(Comparator.comparing(WireMessage.HostInfo::name)
                .thenComparing(WireMessage.HostInfo::nodeId)).toList();
    }

    /**
     * Waits until at least {@code n} usable context hosts are in the cluster, bounded by {@code timeouts.hostWaitMs}.
     *
     * @throws IllegalStateException naming how many were found
     */
    public List<WireMessage.HostInfo> awaitHosts(int n) {
        long deadline = System.nanoTime() + cluster.timeouts().hostWaitMs() * 1_000_000L;
        List<WireMessage.HostInfo> found = hosts();
        while (found.size() < n) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("only " + found.size() + " of " + n + " context hosts serving model "
                        + modelId + " joined cluster '" + cluster.clusterName() + "' within "
                        + cluster.timeouts().hostWaitMs() + " ms" + (rejected.isEmpty() ? ""
                        : " (" + rejected.size() + " member(s) serve another model)"));
            }
            sleep(200);
            found = hosts();
        }
        return found;
    }

    @Override
    public ContextSession prefill(int[] contextTokens, PrefillListener listener) {
        return prefillSession(contextTokens, listener);
    }

    /** {@link #prefill}, typed. */
    public ClusterContextSession prefillSession(int[] contextTokens, PrefillListener listener) {
        Objects.requireNonNull(contextTokens, "contextTokens");
        ensureOpen();
        if (contextTokens.length > model.maxPositions()) {
            throw new PromptTooLongException(contextTokens.length, model.maxPositions());
        }
        List<WireMessage.HostInfo> use = hosts();
        if (maxHosts > 0 && use.size() > maxHosts) {
            use = use.subList(0, maxHosts);
        }
        if (use.isEmpty()) {
            throw new IllegalStateException("no context hosts serving model " + modelId + " in cluster '"
                    + cluster.clusterName() + "' (members: " + node.members().size() + "); start some with "
                    + "'./star-attention host --config FILE'");
        }
        int planHosts = use.size() + 1;
        EngineOptions eff = balanced(options, use.size());
        if (eff.blocks() != options.blocks()) {
            log.info("raising the block count from {} to {}: each of the {} hosts encodes as many blocks as the others",
                    options.blocks(), eff.blocks(), planHosts);
        }
        BlockPlan plan = eff.plan(contextTokens.length, planHosts);
        ClusterContextSession s = new ClusterContextSession(this, plan, contextTokens, use, listener);
        sessions.add(s);
        return s;
    }

    /**
     * The options a context spread over {@code contextHosts} context hosts and the query host is planned with: a block
     * count (not a block size) is raised to the next multiple of the {@code contextHosts + 1} hosts, so that every host
     * encodes as many blocks as the others (a host with one block more would set the time of phase 1).
     */
    public static EngineOptions balanced(EngineOptions options, int contextHosts) {
        int hosts = contextHosts + 1;
        if (options.blockSize() > 0 || options.blocks() % hosts == 0) {
            return options;
        }
        return options.toBuilder().blocks((options.blocks() / hosts + 1) * hosts).build();
    }

    /** Sessions open now. */
    public int openSessions() {
        return sessions.size();
    }

    // ------------------------------------------------------------------------------------------ for sessions

    ClusterNode node() {
        return node;
    }

    ContextEncoder encoder() {
        return encoder;
    }

    AttentionKernel kernel() {
        return kernel;
    }

    ExecutorService background() {
        return background;
    }

    void forget(ClusterContextSession s) {
        sessions.remove(s);
    }

    /** Usable hosts, probing new members. */
    Map<String, WireMessage.HostInfo> usableHosts() {
        refreshHosts();
        return Map.copyOf(hosts);
    }

    private void refreshHosts() {
        List<String> members = node.members();
        hosts.keySet().retainAll(members);
        List<CompletableFuture<Void>> probes = new ArrayList<>();
        long timeout = Math.min(cluster.timeouts().requestMs(), 5_000);
        long now = System.nanoTime();
        for (String id : members) {
            Long failedAt = unreachableSince.get(id);
            if (id.equals(node.nodeId()) || failedAt != null && now - failedAt < 30_000_000_000L) {
                continue;
            }
            probes.add(node.request(id, "member " + id, new WireMessage.InfoRequest(), timeout).handle((reply, err) -> {
                if (reply instanceof WireMessage.HostInfo info) {
                    unreachableSince.remove(id);
                    if (info.modelId().equals(modelId)) {
                        if (hosts.put(id, info) == null) {
                            log.info("using context host {} ({}, {} threads)", info.name(), id, info.threads());
                        }
                    } else if (rejected.add(id)) {
                        log.warn("ignoring context host {} ({}): it serves model {}, this query host {}", info.name(), id,
                                info.modelId(), modelId);
                    }
                } else if (err != null) {
                    Throwable c = err.getCause() != null && !(err instanceof HostFailureException) ? err.getCause() : err;
                    boolean timedOut = c instanceof HostFailureException h && h.kind() == HostFailureException.Kind.TIMEOUT;
                    if (timedOut && hosts.containsKey(id)) {
                        // a known host that is still a member but slow to answer (a loaded machine, a long GC) stays
                        // in use: membership is Hazelcast's call, and a host that really died fails over in requests
                        log.debug("context host {} did not answer a probe in {} ms; keeping it", id, timeout);
                        return null;
                    }
                    boolean unreachable = timedOut
                            || c instanceof HostFailureException h && h.kind() == HostFailureException.Kind.UNREACHABLE;
                    if (unreachable) {
                        unreachableSince.put(id, System.nanoTime());
                    }
                    if (hosts.remove(id) != null || unreachable) {
                        log.warn("member {} is not usable as a context host: {}", id, c.getMessage());
                    } else {
                        log.debug("member {} is not a context host: {}", id, c.getMessage());
                    }
                }
                return null;
            }));
        }
        try {
            CompletableFuture.allOf(probes.toArray(CompletableFuture[]::new)).get(timeout + 1_000, TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            log.debug("host probes did not all finish: {}", e.toString());
        }
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("the cluster engine is closed");
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (ClusterContextSession s : List.copyOf(sessions)) {
            try {
                s.close();
            } catch (RuntimeException e) {
                log.debug("closing a session failed", e);
            }
        }
        reaper.shutdownNow();
        node.close();
        background.shutdownNow();
        encoder.close();
        kernel.close();
        List<AutoCloseable> toClose;
        synchronized (owned) {
            toClose = List.copyOf(owned);
            owned.clear();
        }
        for (AutoCloseable c : toClose.reversed()) {
            try {
                c.close();
            } catch (Exception e) {
                log.warn("closing {} failed: {}", c, e.toString());
            }
        }
    }
}
