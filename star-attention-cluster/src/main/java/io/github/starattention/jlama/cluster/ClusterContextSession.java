package io.github.starattention.jlama.cluster;

import io.github.starattention.attention.AttentionQuery;
import io.github.starattention.attention.PartialAttention;
import io.github.starattention.jlama.ContextSession;
import io.github.starattention.jlama.Generation;
import io.github.starattention.jlama.GenerationOptions;
import io.github.starattention.jlama.PrefillListener;
import io.github.starattention.jlama.PromptTooLongException;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.TokenListener;
import io.github.starattention.jlama.generation.GenerationLoop;
import io.github.starattention.jlama.model.AnchorExchange;
import io.github.starattention.jlama.model.ContextEncoder;
import io.github.starattention.jlama.model.PassingExchange;
import io.github.starattention.jlama.model.PassingPolicy;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.Block;
import io.github.starattention.plan.BlockPlan;
import io.github.starattention.wire.WireCodec;
import io.github.starattention.wire.WireMessage;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A context encoded across the cluster: the context hosts hold the KV of their blocks, this (query) host holds the
 * last block(s) plus the query and answer tokens. Phase 2 runs the model here; every layer sends one request with all
 * the step's query vectors to each context host and merges the returned per-block partials with the local ones, in
 * block order, exactly as the in-process engine does.
 *
 * <p><b>Failures.</b> Every request is bounded ({@code timeouts.requestMs} per layer, {@code timeouts.prefillMs} per
 * phase 1) and fails at once when its host leaves the cluster. With {@code failover} on, the blocks of a host that
 * failed (left, timed out, unreachable, or lost the context) are encoded again on another context host (one not yet
 * in the session first, then the least loaded, then this query host itself) and the request goes on; the answer is
 * the same, because every host encodes a block the same way. With {@code failover} off the request fails with a
 * {@link HostFailureException} naming the host and the lost blocks.
 *
 * <p><b>Lifetime.</b> Closing releases the KV on every host; a session unused for {@code timeouts.sessionIdleMs} is
 * released the same way (hosts also drop it on their own after that time, or when this query host leaves).
 */
public final class ClusterContextSession implements ContextSession {

    private static final Logger log = LoggerFactory.getLogger(ClusterContextSession.class);

    /** Where some remote blocks live: a context host ({@code nodeId}) or, after a failover, this query host (null). */
    record Assignment(String nodeId, String name, int[] blocks) {
        boolean local() {
            return nodeId == null;
        }

        String label() {
            return local() ? "the query host" : "context host '" + name + "' (" + nodeId + ")";
        }
    }

    /** Phase-2 traffic of one {@link #generate} call (frame bytes, Vert.x envelope not included). */
    public record Traffic(long sentBytes, long receivedBytes, long tokens, int layers, long requests) {
        /** Bytes sent and received per phase-2 token (all layers, all hosts). */
        public double bytesPerToken() {
            return tokens == 0 ? 0 : (double) (sentBytes + receivedBytes) / tokens;
        }

        /** Bytes sent and received per phase-2 token and layer (all hosts). */
        public double bytesPerLayerPerToken() {
            return layers == 0 ? 0 : bytesPerToken() / layers;
        }
    }

    private final ClusterEngine engine;
    private final ClusterNode node;
    private final StarAttentionModel model;
    private final ContextEncoder encoder;
    private final UUID id = UUID.randomUUID();
    private final BlockPlan plan;
    private final int[] context;
    private final int contextHosts;
    private final List<KvStore> localStores;
    /** Blocks this query host encoded after a failover; guarded by {@link #recoveryLock}. */
    private final Map<Integer, KvStore> fallbackStores = new TreeMap<>();
    private final Map<String, Long> remoteKvBytes = new ConcurrentHashMap<>();
    private final Map<String, Double> hostPrefillMillis = new ConcurrentHashMap<>();
    private final Set<String> failedNodes = ConcurrentHashMap.newKeySet();
    /** Failovers in progress, by the failed node and blocks: concurrent failures of one host share one. */
    private final Map<String, CompletableFuture<Assignment>> recovering = new ConcurrentHashMap<>();
    /**
     * Guards {@link #fallbackStores} and the changes of {@link #assignments}; held only for local work, never across a
     * network wait (a failover's remote prefill runs outside it), and never taken on an event loop.
     */
    private final Object recoveryLock = new Object();
    private volatile List<Assignment> assignments;
    private final double prefillMillis;
    private final double localPrefillMillis;
    private final LongAdder sent = new LongAdder();
    private final LongAdder received = new LongAdder();
    private final LongAdder requests = new LongAdder();
    private final LongAdder prefillBytes = new LongAdder();
    private final AtomicInteger recoveries = new AtomicInteger();
    private volatile long lastUsed = System.nanoTime();
    private volatile boolean generating;
    private volatile Traffic lastTraffic = new Traffic(0, 0, 0, 0, 0);
    /** Set once, under this session's monitor; read without it by failovers and by the generation loop. */
    private volatile boolean closed;
    /** Set by {@link #close()} before it takes the monitor: a running generation stops at its next token. */
    private volatile boolean closing;
    private volatile String closedBecause = "it was closed";

    ClusterContextSession(ClusterEngine engine, BlockPlan plan, int[] context, List<WireMessage.HostInfo> hosts,
                          PrefillListener listener) {
        this.engine = engine;
        this.node = engine.node();
        this.model = engine.model();
        this.encoder = engine.encoder();
        this.plan = plan;
        this.context = context.clone();
        this.contextHosts = hosts.size();
        long t0 = System.nanoTime();
        List<Assignment> initial = new ArrayList<>();
        for (int h = 0; h < hosts.size(); h++) {
            WireMessage.HostInfo info = hosts.get(h);
            initial.add(new Assignment(info.nodeId(), info.name(), indices(plan.blocksOf(h))));
        }
        this.assignments = List.copyOf(initial);
        int total = plan.contextLength();
        AtomicInteger remoteDone = new AtomicInteger();
        AtomicInteger localDone = new AtomicInteger();
        List<CompletableFuture<Assignment>> remote = new ArrayList<>();
        for (Assignment a : initial) {
            int tokens = Arrays.stream(a.blocks()).map(b -> plan.blocks().get(b).length()).sum();
            remote.add(prefillOn(a).thenApply(done -> {
                listener.onProgress(Math.min(total, localDone.get() + remoteDone.addAndGet(tokens)), total);
                return done;
            }));
        }
        List<KvStore> local = null;
        double localMillis;
        try {
            List<Block> mine = plan.blocksOf(plan.queryHost());
            long l0 = System.nanoTime();
            local = encodeHere(mine, n -> {
                localDone.set(n);
                listener.onProgress(Math.min(total, n + remoteDone.get()), total);
            });
            localMillis = (System.nanoTime() - l0) / 1e6;
            long budget = engine.cluster().timeouts().prefillMs() * (hosts.size() + 2);
            CompletableFuture.allOf(remote.toArray(CompletableFuture[]::new)).get(budget, TimeUnit.MILLISECONDS);
        } catch (InterruptedException | ExecutionException | TimeoutException | RuntimeException e) {
            if (local != null) {
                local.forEach(KvStore::close);
            }
            releaseEverywhere();
            closeFallback();
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            throw asRuntime(e instanceof ExecutionException ? e.getCause() : e, "phase 1 of a " + total
                    + "-token context on " + hosts.size() + " context host(s)");
        }
        this.localStores = List.copyOf(local);
        this.localPrefillMillis = localMillis;
        this.prefillMillis = (System.nanoTime() - t0) / 1e6;
        log.info("session {}: {} tokens as {} blocks over {} context host(s) + this query host in {} ms", id, total,
                plan.blockCount(), hosts.size(), (long) prefillMillis);
    }

    // ------------------------------------------------------------------------------------------ ContextSession

    @Override
    public BlockPlan plan() {
        return plan;
    }

    @Override
    public int contextTokens() {
        return plan.contextLength();
    }

    @Override
    public double prefillMillis() {
        return prefillMillis;
    }

    /** The session id (the same on every host). */
    public UUID id() {
        return id;
    }

    /** Context hosts the context was spread over (the query host not counted). */
    public int hostCount() {
        return contextHosts;
    }

    /** Phase-2 traffic of the last {@link #generate} call. */
    public Traffic lastTraffic() {
        return lastTraffic;
    }

    /** Bytes of the phase-1 requests (context tokens sent to the hosts, failovers included). */
    public long prefillBytes() {
        return prefillBytes.sum();
    }

    /**
     * How long each context host took to encode its blocks, as the host measured it (from its prefill reply): host
     * name, as in {@link #placement()}, to milliseconds. A host that also took over a failed host's blocks has both
     * encodings summed.
     */
    public Map<String, Double> hostPrefillMillis() {
        return Collections.unmodifiableMap(new TreeMap<>(hostPrefillMillis));
    }

    /** How long this query host took to encode its own blocks in phase 1 (while the context hosts encoded theirs). */
    public double localPrefillMillis() {
        return localPrefillMillis;
    }

    /** How many times blocks were moved off a failed host. */
    public int recoveries() {
        return recoveries.get();
    }

    /** Where the remote blocks are now: host name to block indices ("query-host" after a local failover). */
    public Map<String, List<Integer>> placement() {
        Map<String, List<Integer>> m = new TreeMap<>();
        for (Assignment a : assignments) {
            m.put(a.local() ? "query-host" : a.name(), Arrays.stream(a.blocks()).boxed().toList());
        }
        return m;
    }

    @Override
    public Generation generate(int[] queryTokens, GenerationOptions options, TokenListener listener) {
        synchronized (this) {
            checkOpen();
            if (queryTokens.length == 0) {
                throw new IllegalArgumentException("the query is empty");
            }
            int needed = plan.contextLength() + queryTokens.length + options.maxNewTokens();
            if (needed > model.maxPositions()) {
                throw new PromptTooLongException(needed, model.maxPositions());
            }
            generating = true;
            lastUsed = System.nanoTime();
            KvStore last = localStores.getLast();
            List<KvStore> prefix = localStores.subList(0, localStores.size() - 1);
            int mark = last.mark();
            long s0 = sent.sum();
            long r0 = received.sum();
            long q0 = requests.sum();
            LongAdder tokens = new LongAdder();
            GenerationOptions stoppable = options.toBuilder()
                    .cancelled(() -> closing || options.cancelled().getAsBoolean()).build();
            try {
                GenerationLoop loop = new GenerationLoop(model.eosTokens(), model::decode);
                return loop.run(queryTokens, plan.contextLength(), stoppable, listener, (step, start, want) -> {
                    tokens.add(step.length);
                    return encoder.append(step, ContextEncoder.range(start, start + step.length), last, prefix,
                            this::attend, want, n -> { });
                });
            } finally {
                last.rollback(mark);
                lastTraffic = new Traffic(sent.sum() - s0, received.sum() - r0, tokens.sum(),
                        model.decoder().config().numberOfLayers, requests.sum() - q0);
                lastUsed = System.nanoTime();
                generating = false;
            }
        }
    }

    @Override
    public long kvBytes() {
        long local = localStores.stream().mapToLong(KvStore::bytes).sum();
        synchronized (recoveryLock) {
            local += fallbackStores.values().stream().mapToLong(KvStore::bytes).sum();
        }
        for (Assignment a : assignments) {
            if (!a.local()) {
                local += remoteKvBytes.getOrDefault(a.nodeId(), 0L);
            }
        }
        return local;
    }

    /** Frees the session here and on its hosts; a generation running meanwhile stops at its next token. */
    @Override
    public void close() {
        closing = true;
        close("it was closed");
    }

    void expireIfIdle(long idleMs) {
        if (!generating && System.nanoTime() - lastUsed > idleMs * 1_000_000L) {
            synchronized (this) {
                if (!generating && !closed && System.nanoTime() - lastUsed > idleMs * 1_000_000L) {
                    log.info("session {}: released after {} ms idle", id, idleMs);
                    close("it was released after being idle for " + idleMs + " ms");
                }
            }
        }
    }

    private synchronized void close(String because) {
        if (closed) {
            return;
        }
        closed = true;
        closedBecause = because;
        localStores.forEach(KvStore::close);
        closeFallback();
        releaseEverywhere();
        engine.forget(this);
    }

    // ------------------------------------------------------------------------------------------ phase 2

    /** The remote partitions of one layer: one request per host, partials returned in block order. */
    private CompletableFuture<List<PartialAttention>> attend(int layer, AttentionQuery query) {
        lastUsed = System.nanoTime();
        List<Assignment> snapshot = assignments;
        List<CompletableFuture<List<PartialAttention>>> parts = new ArrayList<>(snapshot.size());
        for (Assignment a : snapshot) {
            parts.add(attendOn(a, layer, query, 0));
        }
        ClusterOptions.Timeouts t = engine.cluster().timeouts();
        long backstop = t.requestMs() + (long) (snapshot.size() + 1) * (t.prefillMs() + 2 * t.requestMs());
        return CompletableFuture.allOf(parts.toArray(CompletableFuture[]::new)).thenApply(v -> {
            TreeMap<Integer, PartialAttention> byBlock = new TreeMap<>();
            for (int i = 0; i < snapshot.size(); i++) {
                List<PartialAttention> p = parts.get(i).join();
                int[] blocks = snapshot.get(i).blocks();
                for (int j = 0; j < blocks.length; j++) {
                    byBlock.put(blocks[j], p.get(j));
                }
            }
            return List.copyOf(byBlock.values());
        }).orTimeout(backstop, TimeUnit.MILLISECONDS).exceptionally(e -> {
            Throwable c = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
            if (c instanceof TimeoutException) {
                throw new HostFailureException(HostFailureException.Kind.TIMEOUT, null, "the remote attention of layer "
                        + layer + " (session " + id + ") did not finish within " + backstop + " ms");
            }
            throw c instanceof RuntimeException re ? re : new CompletionException(c);
        });
    }

    private CompletableFuture<List<PartialAttention>> attendOn(Assignment a, int layer, AttentionQuery q, int depth) {
        CompletableFuture<List<PartialAttention>> f;
        if (a.local()) {
            f = CompletableFuture.supplyAsync(() -> attendLocally(a.blocks(), layer, q), engine.background());
        } else {
            WireMessage.AttendRequest request = new WireMessage.AttendRequest(id, layer, a.blocks(), q);
            sent.add(WireCodec.encodedSize(request));
            requests.increment();
            f = node.request(a.nodeId(), a.label(), request, engine.cluster().timeouts().requestMs())
                    .thenApply(reply -> partials(a, q, reply));
        }
        return f.exceptionallyComposeAsync(e -> {
            if (depth >= 8) {
                return CompletableFuture.failedFuture(e);
            }
            Assignment moved = recover(a, e, "while serving layer " + layer);
            return attendOn(moved, layer, q, depth + 1);
        }, engine.background());
    }

    private List<PartialAttention> partials(Assignment a, AttentionQuery q, WireMessage reply) {
        if (!(reply instanceof WireMessage.AttendReply r)) {
            throw new HostFailureException(HostFailureException.Kind.REMOTE_ERROR, a.nodeId(),
                    a.label() + " answered an attention request with " + reply.getClass().getSimpleName());
        }
        received.add(WireCodec.encodedSize(r));
        if (r.partials().size() != a.blocks().length) {
            throw new HostFailureException(HostFailureException.Kind.REMOTE_ERROR, a.nodeId(), a.label() + " returned "
                    + r.partials().size() + " partials for " + a.blocks().length + " blocks");
        }
        for (PartialAttention p : r.partials()) {
            if (p.tokens() != q.tokens() || p.heads() != q.heads() || p.headDim() != q.headDim()) {
                throw new HostFailureException(HostFailureException.Kind.REMOTE_ERROR, a.nodeId(), a.label()
                        + " returned a partial of the wrong shape: " + p);
            }
        }
        return r.partials();
    }

    private List<PartialAttention> attendLocally(int[] blocks, int layer, AttentionQuery q) {
        List<KvStore> stores = new ArrayList<>(blocks.length);
        synchronized (recoveryLock) {
            for (int b : blocks) {
                KvStore s = fallbackStores.get(b);
                if (s == null) {
                    throw new IllegalStateException("block " + b + " is not held by the query host");
                }
                stores.add(s);
            }
            return engine.kernel().attendAll(stores, layer, q);
        }
    }

    // ------------------------------------------------------------------------------------------ phase 1, failover

    private CompletableFuture<Assignment> prefillOn(Assignment a) {
        WireMessage.PrefillRequest request = WireMessage.PrefillRequest.of(id, node.nodeId(), plan, context, a.blocks(),
                anchorHost(a.blocks()), passing());
        prefillBytes.add(WireCodec.encodedSize(request));
        return node.request(a.nodeId(), a.label(), request, engine.cluster().timeouts().prefillMs())
                .thenApply(reply -> {
                    notePrefill(a, reply);
                    return a;
                })
                .exceptionallyAsync(e -> recover(a, e, "during phase 1"), engine.background());
    }

    /**
     * Moves the blocks of {@code failed} somewhere else after {@code cause} and returns where they are now. Blocking
     * (runs on the engine's background threads, never on an event loop).
     */
    private Assignment recover(Assignment failed, Throwable cause, String during) {
        Throwable c = cause instanceof CompletionException && cause.getCause() != null ? cause.getCause() : cause;
        if (!(c instanceof HostFailureException hf)) {
            throw c instanceof RuntimeException re ? re : new CompletionException(c);
        }
        boolean failover = engine.cluster().failover();
        if (!failover || !hf.kind().recoverable() || failed.local()) {
            throw new HostFailureException(hf.kind(), failed.nodeId(), failed.label() + " failed " + during + " of session "
                    + id + ": " + hf.getMessage() + "; its context blocks " + Arrays.toString(failed.blocks())
                    + " are lost" + (failover ? "" : " (failover is off: prefill the context again)"), hf);
        }
        String key = (failed.local() ? "query-host" : failed.nodeId()) + Arrays.toString(failed.blocks());
        CompletableFuture<Assignment> mine = new CompletableFuture<>();
        CompletableFuture<Assignment> running = recovering.putIfAbsent(key, mine);
        if (running != null) {
            return awaitRecovery(running, failed);
        }
        try {
            Assignment moved = moveBlocks(failed, hf, during);
            mine.complete(moved);
            return moved;
        } catch (RuntimeException e) {
            mine.completeExceptionally(e);
            throw e;
        } finally {
            recovering.remove(key, mine);
        }
    }

    /** Waits for the failover another thread runs for the same blocks, bounded by the budget of a whole prefill. */
    private Assignment awaitRecovery(CompletableFuture<Assignment> running, Assignment failed) {
        ClusterOptions.Timeouts t = engine.cluster().timeouts();
        long bound = (long) (assignments.size() + 2) * (t.prefillMs() + 5_000);
        try {
            return running.get(bound, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw asRuntime(e.getCause(), "the failover of " + failed.label());
        } catch (TimeoutException e) {
            throw new HostFailureException(HostFailureException.Kind.TIMEOUT, failed.nodeId(), "the failover of "
                    + failed.label() + " did not finish within " + bound + " ms");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted during failover", e);
        }
    }

    /**
     * Encodes {@code failed}'s blocks on the first candidate that can take them. The choice and the reassignment
     * are made under {@link #recoveryLock}; the remote prefill (and a local re-encode) run outside it.
     */
    private Assignment moveBlocks(Assignment failed, HostFailureException hf, String during) {
        boolean hostAlive = hf.kind() == HostFailureException.Kind.SESSION_UNKNOWN;
        Map<String, WireMessage.HostInfo> usable = engine.usableHosts(); // probes the members: not under the lock
        List<Assignment> targets;
        synchronized (recoveryLock) {
            checkOpen();
            Assignment holder = holderOf(failed.blocks());
            if (holder != null && !sameNode(holder, failed)) {
                return new Assignment(holder.nodeId(), holder.name(), failed.blocks()); // moved meanwhile
            }
            if (!hostAlive) {
                failedNodes.add(failed.nodeId());
            }
            targets = candidates(failed, hostAlive, usable);
        }
        for (Assignment target : targets) {
            long t0 = System.nanoTime();
            try {
                if (target.local()) {
                    encodeLocally(failed.blocks());
                } else {
                    WireMessage.PrefillRequest request = WireMessage.PrefillRequest.of(id, node.nodeId(), plan,
                            context, failed.blocks(), anchorHost(failed.blocks()), passing());
                    prefillBytes.add(WireCodec.encodedSize(request));
                    long timeout = engine.cluster().timeouts().prefillMs();
                    WireMessage reply = node.request(target.nodeId(), target.label(), request, timeout)
                            .get(timeout + 5_000, TimeUnit.MILLISECONDS);
                    notePrefill(target, reply);
                }
            } catch (ExecutionException | TimeoutException | RuntimeException e) {
                if (closed) {
                    throw closedError(e);
                }
                Throwable why = e instanceof ExecutionException ? e.getCause() : e;
                log.warn("session {}: {} could not take over blocks {}: {}", id, target.label(),
                        Arrays.toString(failed.blocks()), why.getMessage());
                if (!target.local()) {
                    failedNodes.add(target.nodeId());
                }
                continue;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted during failover", e);
            }
            Assignment moved = new Assignment(target.nodeId(), target.name(), failed.blocks());
            synchronized (recoveryLock) {
                if (!closed) {
                    reassign(failed, moved);
                }
            }
            if (closed) { // closed while the blocks were encoded elsewhere: free them there too
                if (!target.local()) {
                    releaseOn(target.nodeId());
                }
                checkOpen();
            }
            recoveries.incrementAndGet();
            log.warn("session {}: {} failed {} ({}); blocks {} encoded again on {} in {} ms", id, failed.label(),
                    during, hf.getMessage(), Arrays.toString(failed.blocks()), target.label(),
                    (System.nanoTime() - t0) / 1_000_000);
            if (!hostAlive && !sameNode(target, failed)) {
                releaseOn(failed.nodeId()); // a host that timed out may still hold the blocks
            }
            return moved;
        }
        throw new HostFailureException(hf.kind(), failed.nodeId(), failed.label() + " failed " + during
                + " of session " + id + " (" + hf.getMessage() + ") and no host could take over its blocks "
                + Arrays.toString(failed.blocks()), hf);
    }

    private void checkOpen() {
        if (closed) {
            throw closedError(null);
        }
    }

    private IllegalStateException closedError(Throwable cause) {
        return new IllegalStateException("context session " + id + " is closed: " + closedBecause, cause);
    }

    /** Where failed blocks may go: hosts outside the session first, then the least loaded, then the query host. */
    private List<Assignment> candidates(Assignment failed, boolean includeFailed,
                                        Map<String, WireMessage.HostInfo> usable) {
        Map<String, Integer> load = new HashMap<>();
        for (Assignment a : assignments) {
            if (!a.local()) {
                load.merge(a.nodeId(), a.blocks().length, Integer::sum);
            }
        }
        List<Assignment> out = new ArrayList<>();
        if (includeFailed) {
            out.add(new Assignment(failed.nodeId(), failed.name(), new int[0]));
        }
        usable.values().stream()
                .filter(h -> !failedNodes.contains(h.nodeId()) && !h.nodeId().equals(failed.nodeId()))
                .sorted(Comparator.comparingInt((WireMessage.HostInfo h) -> load.getOrDefault(h.nodeId(), 0))
                        .thenComparing(WireMessage.HostInfo::name))
                .forEach(h -> out.add(new Assignment(h.nodeId(), h.name(), new int[0])));
        out.add(new Assignment(null, "query-host", new int[0]));
        return out;
    }

    private void encodeLocally(int[] blocks) {
        List<Block> list = IntStream.of(blocks).mapToObj(b -> plan.blocks().get(b)).toList();
        List<KvStore> stores = encodeHere(list, n -> { });
        synchronized (recoveryLock) {
            if (closed) {
                stores.forEach(KvStore::close);
                checkOpen();
            }
            for (int i = 0; i < blocks.length; i++) {
                KvStore old = fallbackStores.put(blocks[i], stores.get(i));
                if (old != null) {
                    old.close();
                }
            }
        }
    }

    /** Moves {@code moved.blocks} from the failed holder to {@code moved}'s node (merged into its assignment). */
    private void reassign(Assignment failed, Assignment moved) {
        Set<Integer> blocks = new HashSet<>();
        for (int b : moved.blocks()) {
            blocks.add(b);
        }
        List<Assignment> next = new ArrayList<>();
        Assignment into = null;
        for (Assignment a : assignments) {
            int[] keep = IntStream.of(a.blocks()).filter(b -> !blocks.contains(b)).toArray();
            if (sameNode(a, moved)) {
                int[] merged = IntStream.concat(IntStream.of(keep), IntStream.of(moved.blocks())).sorted().toArray();
                into = new Assignment(a.nodeId(), a.name(), merged);
                next.add(into);
            } else if (keep.length > 0) {
                next.add(new Assignment(a.nodeId(), a.name(), keep));
            }
        }
        if (into == null) {
            next.add(moved);
        }
        next.sort(Comparator.comparingInt(a -> a.blocks()[0]));
        assignments = List.copyOf(next);
    }

    /**
     * The context host that serves the anchor: the holder of block 0 while it is a healthy context host and
     * {@link ClusterOptions#shareAnchor} is on (and the plan has an anchor); else {@code null} (encode it where needed).
     */
    private Assignment anchorServer() {
        if (!engine.cluster().shareAnchor() || plan.blockCount() < 2 || plan.effectiveAnchor() == 0) {
            return null;
        }
        Assignment holder = holderOf(new int[] {0});
        return holder == null || holder.local() || failedNodes.contains(holder.nodeId()) ? null : holder;
    }

    /** {@link WireMessage.PrefillRequest#anchorFrom()} for a host encoding {@code blocks}. */
    private String anchorHost(int[] blocks) {
        Assignment server = anchorServer();
        return server == null || IntStream.of(blocks).anyMatch(b -> b == 0) ? "" : server.nodeId();
    }

    /** For encoding blocks on this query host: the anchor from its serving host, if there is one. */
    private AnchorExchange anchorExchange() {
        Assignment server = anchorServer();
        return server == null ? AnchorExchange.NONE : new AnchorExchange(new RemoteAnchorFeed(node, server.nodeId(),
                server.label(), id, engine.cluster().timeouts().prefillMs()), null);
    }

    /**
     * Phase 1 of {@code blocks} on this query host: with passing blocks, what the earlier blocks pass on comes from
     * their context hosts.
     */
    private List<KvStore> encodeHere(List<Block> blocks, IntConsumer progress) {
        PassingPolicy policy = engine.options().passing();
        if (!policy.enabled()) {
            return encoder.encodeBlocks(plan, context, blocks, false, anchorExchange(), progress);
        }
        PassingExchange exchange = new PassingExchange(new RemotePassedFeed(node, passing().holders(), id,
                engine.cluster().timeouts().prefillMs(), null), null);
        return encoder.encodeBlocks(plan, context, blocks, anchorExchange(), policy, exchange, progress);
    }

    /**
     * The passing fields of a prefill request: the engine's policy and, per block, the context host encoding it now
     * (empty for this query host and for hosts that failed).
     */
    private WireMessage.PrefillRequest.Passing passing() {
        PassingPolicy policy = engine.options().passing();
        if (!policy.enabled()) {
            return WireMessage.PrefillRequest.Passing.NONE;
        }
        String[] holders = new String[plan.blockCount()];
        Arrays.fill(holders, "");
        for (Assignment a : assignments) {
            if (!a.local() && !failedNodes.contains(a.nodeId())) {
                for (int b : a.blocks()) {
                    holders[b] = a.nodeId();
                }
            }
        }
        return new WireMessage.PrefillRequest.Passing(policy.tokensPerBlock(), policy.selection().label(),
                policy.scoredLayers(), List.of(holders));
    }

    private Assignment holderOf(int[] blocks) {
        for (Assignment a : assignments) {
            if (IntStream.of(a.blocks()).anyMatch(b -> b == blocks[0])) {
                return a;
            }
        }
        return null;
    }

    private static boolean sameNode(Assignment a, Assignment b) {
        return a.local() ? b.local() : a.nodeId().equals(b.nodeId());
    }

    /** Runs on the event loop that completed the request: no lock. */
    private void notePrefill(Assignment target, WireMessage reply) {
        if (reply instanceof WireMessage.PrefillReply r) {
            remoteKvBytes.put(target.nodeId(), r.kvBytes());
            hostPrefillMillis.merge(target.name(), r.nanos() / 1e6, Double::sum);
        }
    }

    /** Asks every host of the session to free it, and waits (at most 2 s) for their answers. */
    private void releaseEverywhere() {
        Set<String> nodes = new HashSet<>();
        for (Assignment a : assignments) {
            if (!a.local()) {
                nodes.add(a.nodeId());
            }
        }
        List<CompletableFuture<WireMessage>> acks = nodes.stream().map(this::releaseOn).toList();
        try {
            CompletableFuture.allOf(acks.toArray(CompletableFuture[]::new))
                    .get(Math.min(2_000, engine.cluster().timeouts().requestMs()), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            log.debug("session {}: not every host confirmed the release ({}); they drop it when idle", id, e.toString());
        }
    }

    private CompletableFuture<WireMessage> releaseOn(String nodeId) {
        if (!node.isMember(nodeId)) {
            return CompletableFuture.completedFuture(null);
        }
        return node.request(nodeId, "host " + nodeId, new WireMessage.ReleaseRequest(id),
                engine.cluster().timeouts().requestMs()).exceptionally(e -> {
                    log.debug("session {}: release on {} failed: {}", id, nodeId, e.getMessage());
                    return null;
                });
    }

    private void closeFallback() {
        synchronized (recoveryLock) {
            fallbackStores.values().forEach(KvStore::close);
            fallbackStores.clear();
        }
    }

    private static int[] indices(List<Block> blocks) {
        return blocks.stream().mapToInt(Block::index).toArray();
    }

    private static RuntimeException asRuntime(Throwable e, String what) {
        Throwable c = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
        if (c instanceof RuntimeException re) {
            return re;
        }
        if (c instanceof TimeoutException) {
            return new IllegalStateException(what + " did not finish in time", c);
        }
        return new IllegalStateException(what + " failed: " + c, c);
    }
}
