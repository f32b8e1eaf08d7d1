package io.github.starattention.jlama.cli;

import io.github.starattention.attention.Device;
import io.github.starattention.jlama.ContextSession;
import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.StarAttentionEngine;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.cluster.ClusterContextSession;
import io.github.starattention.jlama.cluster.ClusterEngine;
import io.github.starattention.jlama.cluster.ClusterOptions;
import io.github.starattention.jlama.eval.EngineSource;
import io.github.starattention.jlama.eval.Variant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The engines of {@code eval --hosts N}: N context-host JVMs on 127.0.0.1, started once for the whole evaluation
 * ({@link LocalCluster#startServing}), and this JVM as the query host. Each distinct {@link EngineOptions} of the star
 * variants gets a query host of its own ({@link LocalCluster#join}, a node name each), kept for the next examples;
 * global runs in process (a {@link ClusterEngine} runs star mode only). {@link #close()} closes the query hosts, then
 * stops the hosts.
 *
 * <p>A star variant's block count is raised to a multiple of the N + 1 hosts, as {@link ClusterEngine#balanced} does
 * for {@code ask --hosts N} ({@link #spread}), and written as a count, not a size, so that one query host serves
 * every context length. An anchor that follows each context's block (a fraction other than 0 and 1) makes the options
 * differ per context: the query hosts kept are bounded, the least recently used one is closed.
 */
final class ClusterEngineSource implements EngineSource {

    private static final Logger log = LoggerFactory.getLogger(ClusterEngineSource.class);

    private final StarAttentionModel model;
    private final int hosts;
    private final LocalCluster cluster;
    private final EngineSource inProcess;
    private final int maxQueryHosts;
    private final LinkedHashMap<EngineOptions, ClusterEngine> queryHosts = new LinkedHashMap<>(16, 0.75f, true);
    private int joined;
    private boolean closed;

    private ClusterEngineSource(StarAttentionModel model, int hosts, LocalCluster cluster, int maxQueryHosts) {
        this.model = model;
        this.hosts = hosts;
        this.cluster = cluster;
        this.inProcess = EngineSource.inProcess(model);
        this.maxQueryHosts = maxQueryHosts;
    }

    /**
     * Spawns {@code hosts} context-host JVMs serving {@code host} and waits until they serve (bounded by
     * {@code -Dstar.attention.hostWaitMs}, default 180 s).
     *
     * @param starVariants star variants to run (the query hosts kept are twice as many, at least 2)
     */
    static ClusterEngineSource start(StarAttentionModel model, int hosts, ClusterOptions.Host host, int starVariants) {
        if (hosts < 1) {
            throw new IllegalArgumentException("--hosts must be at least 1, got " + hosts);
        }
        LocalCluster cluster = LocalCluster.startServing(hosts, Objects.requireNonNull(host, "host"));
        return new ClusterEngineSource(model, hosts, cluster, Math.max(2, 2 * starVariants));
    }

    /**
     * {@code v} as the cluster of {@code hosts} context hosts runs it: a block count raised to a multiple of
     * {@code hosts + 1} ({@link ClusterEngine#balanced}), same label; global and block sizes unchanged.
     */
    static Variant spread(Variant v, int hosts) {
        Integer n = v.blockCount();
        if (n == null) {
            return v;
        }
        int balanced = ClusterEngine.balanced(EngineOptions.builder().mode(Mode.STAR).blocks(n).build(), hosts).blocks();
        return balanced == n ? v : v.withBlocks(balanced);
    }

    @Override
    public Lease open(Variant v, int contextTokens, Device device, int threads) {
        if (v.mode() == Mode.GLOBAL) {
            return inProcess.open(v, contextTokens, device, threads);
        }
        ClusterEngine engine = queryHost(spread(v, hosts).sharedOptions(contextTokens, device, threads));
        return new Lease() {
            @Override
            public StarAttentionEngine engine() {
                return engine;
            }

            @Override
            public int contextHosts(ContextSession session) {
                return session instanceof ClusterContextSession c ? c.hostCount() : 0;
            }

            @Override
            public void close() {
                // kept for the next example
            }
        };
    }

    @Override
    public int contextHosts(Variant v) {
        return v.mode() == Mode.GLOBAL ? 0 : hosts;
    }

    /** The query host of {@code options}: a kept one, else a new one joined to the hosts. */
    private synchronized ClusterEngine queryHost(EngineOptions options) {
        if (closed) {
            throw new IllegalStateException("the cluster of the evaluation is closed");
        }
        ClusterEngine e = queryHosts.get(options);
        if (e != null) {
            return e;
        }
        if (queryHosts.size() >= maxQueryHosts) {
            Map.Entry<EngineOptions, ClusterEngine> eldest = queryHosts.entrySet().iterator().next();
            queryHosts.remove(eldest.getKey());
            log.debug("closing the query host {} (least recently used)", eldest.getValue().nodeId());
            eldest.getValue().close();
        }
        joined++;
        ClusterOptions node = joined == 1 ? cluster.queryHostOptions() : cluster.extraNodeOptions("query-host-" + joined);
        long t0 = System.nanoTime();
        e = cluster.join(model, options, node, hosts);
        log.info("query host {} joined {} context host(s) in {} ms for {}", joined, hosts,
                (System.nanoTime() - t0) / 1_000_000, options);
        queryHosts.put(options, e);
        return e;
    }

    /** Query hosts open now. */
    synchronized int queryHosts() {
        return queryHosts.size();
    }

    /** Closes every query host, then stops the context hosts (also when a query host fails to close). */
    @Override
    public void close() {
        List<ClusterEngine> engines;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            engines = new ArrayList<>(queryHosts.values());
            queryHosts.clear();
        }
        try {
            for (ClusterEngine e : engines) {
                try {
                    e.close();
                } catch (RuntimeException ex) {
                    log.warn("closing a query host failed: {}", ex.toString());
                }
            }
        } finally {
            cluster.close();
        }
    }

    @Override
    public String toString() {
        return "ClusterEngineSource[" + hosts + " hosts, " + queryHosts() + " query hosts]";
    }
}
