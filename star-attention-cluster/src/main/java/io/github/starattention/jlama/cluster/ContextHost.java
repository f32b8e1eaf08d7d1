package io.github.starattention.jlama.cluster;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionKernels;
import io.github.starattention.attention.AttentionQuery;
import io.github.starattention.attention.Device;
import io.github.starattention.attention.PartialAttention;
import io.github.starattention.cuda.CudaProbe;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.model.AnchorExchange;
import io.github.starattention.jlama.model.ContextEncoder;
import io.github.starattention.jlama.model.PassingExchange;
import io.github.starattention.jlama.model.PassingPolicy;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.Block;
import io.github.starattention.plan.BlockPlan;
import io.github.starattention.wire.WireMessage;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A context host: holds a model replica and, per context session, the KV of the blocks it owns. It runs phase 1 for
 * those blocks ({@link WireMessage.PrefillRequest}) and answers phase-2 layer steps ({@link WireMessage.AttendRequest})
 * with one {@link PartialAttention} per block, computed by {@link AttentionKernel#attend}. The host that encodes a
 * session's block 0 also serves its anchor's KV layer by layer ({@link WireMessage.AnchorRequest}, see
 * {@link AnchorSource}); the others take it from there ({@link WireMessage.PrefillRequest#anchorFrom()}) instead of
 * encoding the anchor again, and encode it themselves if that fails. With passing blocks, each host likewise serves
 * what its blocks pass on layer by layer ({@link WireMessage.PassedRequest}, see {@link PassedSource}) and takes
 * what earlier blocks pass from their hosts ({@link WireMessage.PrefillRequest.Passing#holders()}).
 *
 * <p>Sessions are independent (several query hosts or contexts at once never mix) and are freed on
 * {@link WireMessage.ReleaseRequest}, after {@code timeouts.sessionIdleMs} without use, or when the query host that
 * created them leaves the cluster. Phase 1 runs on one thread at a time (it uses all the host's threads anyway);
 * phase-2 requests run on a small pool, so a long prefill does not stall other sessions' decoding.
 *
 * <p>Failures are answered with a code: {@value #BAD_REQUEST} bad request, {@value #UNKNOWN_SESSION} unknown
 * session or block, {@value #FULL} too many sessions, {@value #INTERNAL} error while computing.
 */
public final class ContextHost implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(ContextHost.class);

    static final int BAD_REQUEST = 400;
    static final int UNKNOWN_SESSION = 404;
    static final int INTERNAL = 500;
    static final int FULL = 503;

    /** How long an anchor request waits for a prefill request with block 0 of its session to arrive here. */
    static final long ANCHOR_GRACE_MS = 5_000;

    private final ClusterNode node;
    private final StarAttentionModel model;
    private final AttentionKernel kernel;
    private final ContextEncoder encoder;
    private final String modelId;
    private final int threads;
    private final Map<UUID, HostSession> sessions = new ConcurrentHashMap<>();
    private final Map<UUID, AnchorSource> anchors = new ConcurrentHashMap<>();
    private final Map<UUID, PassedSource> passed = new ConcurrentHashMap<>();
    private final ExecutorService prefillPool;
    private final ExecutorService attendPool;
    private final ScheduledExecutorService reaper;
    private final DeliveryOptions replyOptions = new DeliveryOptions().setCodecName(WireMessageCodec.NAME);
    private final MessageConsumer<Object> consumer;
    private volatile boolean closed;

    private ContextHost(StarAttentionModel model, ClusterOptions options) {
        this.model = model;
        ClusterOptions.Host h = options.host();
        this.threads = h.threads() > 0 ? h.threads() : Runtime.getRuntime().availableProcessors();
        Device device = Device.valueOf(h.device().toUpperCase(java.util.Locale.ROOT));
        if (device == Device.CUDA) {
            CudaProbe.requireAvailable("host.device cuda", "\"auto\" or \"cpu\"");
        }
        this.kernel = AttentionKernels.open(device, threads, h.kvPrecision());
        try {
            this.encoder = ContextEncoder.open(model.decoder(), kernel);
        } catch (RuntimeException | Error e) {
            kernel.close();
            throw e;
        }
        this.modelId = ModelFingerprint.of(model, h.weights(), kernel.numerics());
        this.prefillPool = new ThreadPoolExecutor(1, 1, 0, TimeUnit.SECONDS, new ArrayBlockingQueue<>(64),
                daemon("sa-host-prefill"));
        this.attendPool = new ThreadPoolExecutor(4, 4, 0, TimeUnit.SECONDS, new ArrayBlockingQueue<>(4096),
                daemon("sa-host-attend"));
        this.reaper = Executors.newSingleThreadScheduledExecutor(daemon("sa-host-reaper"));
        ClusterNode n = null;
        try {
            n = ClusterNode.start(options);
            this.node = n;
            // called on Hazelcast's event thread: the releases (which wait for session locks) run on a worker
            node.onMemberLeft(left -> node.vertx().executeBlocking(() -> {
                ownerLeft(left);
                return null;
            }, false));
            this.consumer = node.vertx().eventBus().consumer(ClusterNode.hostAddress(node.nodeId()), this::handle);
            consumer.completion().toCompletionStage().toCompletableFuture()
                    .get(options.timeouts().joinMs(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException | ExecutionException | TimeoutException | RuntimeException e) {
            if (n != null) {
                n.close();
            }
            shutdownPools();
            encoder.close();
            kernel.close();
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            throw e instanceof RuntimeException re ? re : new IllegalStateException("cannot start the context host: " + e, e);
        }
        long idle = options.timeouts().sessionIdleMs();
        long every = Math.max(200, Math.min(idle / 4, 10_000));
        reaper.scheduleWithFixedDelay(() -> reapIdle(idle), every, every, TimeUnit.MILLISECONDS);
        log.info("context host {} serves model {} ({} threads, {} kernel) at {}", options.nodeName(), modelId, threads,
                kernel.name(), ClusterNode.hostAddress(node.nodeId()));
    }

    /**
     * Starts a context host serving {@code model} (loaded with {@code options.host()}'s weights and threads) in the
     * cluster of {@code options}; returns once it can be reached.
     */
    public static ContextHost start(StarAttentionModel model, ClusterOptions options) {
        return new ContextHost(model, options);
    }

    /** The cluster node this host runs on. */
    ClusterNode node() {
        return node;
    }

    /** The cluster node id of this host. */
    public String nodeId() {
        return node.nodeId();
    }

    /** {@code host:port} of the event-bus server. */
    public String eventBusAddress() {
        return node.eventBusAddress();
    }

    /** The model fingerprint this host announces. */
    public String modelId() {
        return modelId;
    }

    /** Context sessions held now. */
    public int sessions() {
        return sessions.size();
    }

    /** Bytes of KV held now (the blocks, and the anchors this host serves). */
    public long kvBytes() {
        return sessions.values().stream().mapToLong(HostSession::bytes).sum()
                + anchors.values().stream().mapToLong(AnchorSource::bytes).sum()
                + passed.values().stream().mapToLong(PassedSource::bytes).sum();
    }

    // ------------------------------------------------------------------------------------------ requests

    private void handle(Message<Object> msg) {
        Object body = msg.body();
        try {
            switch (body) {
                case WireMessageCodec.BadFrame b -> msg.fail(BAD_REQUEST, "bad frame: " + b.reason());
                case WireMessage.InfoRequest r -> msg.reply(info(), replyOptions);
                case WireMessage.PrefillRequest p -> {
                    claimAnchor(p);
                    claimPassed(p);
                    prefillPool.execute(() -> prefill(msg, p));
                }
                case WireMessage.AttendRequest a -> attendPool.execute(() -> attend(msg, a));
                // a release waits for the session's write lock, which an attention call holds for a whole kernel
                // call: never on the event loop
                case WireMessage.ReleaseRequest r -> node.vertx()
                        .executeBlocking(() -> release(r.session(), "released by the query host"), false)
                        .onComplete(ar -> {
                            if (ar.succeeded()) {
                                msg.reply(ar.result(), replyOptions);
                            } else {
                                msg.fail(INTERNAL, "release failed on " + node.options().nodeName() + ": " + ar.cause());
                            }
                        });
                case WireMessage.AnchorRequest r -> serveAnchor(msg, r);
                case WireMessage.PassedRequest r -> servePassed(msg, r);
                default -> msg.fail(BAD_REQUEST, "a context host does not take " + body.getClass().getSimpleName());
            }
        } catch (RejectedExecutionException e) {
            String why = "host " + node.options().nodeName() + " is overloaded (request queue full)";
            if (body instanceof WireMessage.PrefillRequest p) {
                refusePrefill(msg, p, FULL, why);
            } else {
                msg.fail(FULL, why);
            }
        }
    }

    private WireMessage.HostInfo info() {
        return new WireMessage.HostInfo(node.nodeId(), node.options().nodeName(), modelId, kernel.name(), threads,
                sessions.size(), kvBytes());
    }

    private void prefill(Message<Object> msg, WireMessage.PrefillRequest p) {
        if (closed) {
            refusePrefill(msg, p, FULL, "host is shutting down");
            return;
        }
        long t0 = System.nanoTime();
        BlockPlan plan;
        List<Block> blocks = new ArrayList<>();
        try {
            if (p.contextLength() > model.maxPositions()) {
                throw new IllegalArgumentException("a context of " + p.contextLength() + " tokens does not fit the "
                        + "model's " + model.maxPositions() + " positions");
            }
            plan = BlockPlan.builder(p.contextLength()).blockSize(p.blockSize()).anchorSize(p.anchorSize())
                    .hosts(p.hosts()).build();
            int prev = -1;
            for (int b : p.blocks()) {
                if (b <= prev || b >= plan.blockCount()) {
                    throw new IllegalArgumentException("block indices must be increasing and below " + plan.blockCount()
                            + ", got " + Arrays.toString(p.blocks()));
                }
                prev = b;
                Block block = plan.blocks().get(b);
                if (!p.covers(block.start(), block.end())
                        || b > 0 && plan.blockCount() > 1 && !p.covers(0, plan.effectiveAnchor())) {
                    throw new IllegalArgumentException("the request lacks tokens of block " + b
                            + (b > 0 ? " or of the anchor" : "") + " (sent ranges " + Arrays.toString(p.ranges()) + ")");
                }
                blocks.add(block);
            }
            if (blocks.isEmpty()) {
                throw new IllegalArgumentException("no blocks to encode");
            }
            if (p.passing().enabled()) {
                passingPolicy(p); // a bad selection or size fails here
                int last = blocks.getLast().end();
                if (!p.covers(0, last)) {
                    throw new IllegalArgumentException("a prefill with passing blocks needs every token before its "
                            + "last block's end " + last + " (sent ranges " + Arrays.toString(p.ranges()) + ")");
                }
                if (p.passing().holders().size() != plan.blockCount()) {
                    throw new IllegalArgumentException("passing blocks name " + p.passing().holders().size()
                            + " block holders for " + plan.blockCount() + " blocks");
                }
                if (!encoder.canPassBlocks()) {
                    throw new IllegalArgumentException("passing blocks need the CPU attention kernels; host "
                            + node.options().nodeName() + " runs " + kernel.name());
                }
            }
            int vocab = model.decoder().config().vocabularySize;
            for (int t : p.tokens()) {
                if (t < 0 || t >= vocab) {
                    throw new IllegalArgumentException("token id " + t + " is outside the vocabulary [0, " + vocab + ")");
                }
            }
        } catch (IllegalArgumentException e) {
            refusePrefill(msg, p, BAD_REQUEST, e.getMessage());
            return;
        }
        long fingerprint = p.contextDigest();
        HostSession s;
        synchronized (sessions) {
            s = sessions.get(p.session());
            if (s == null) {
                if (sessions.size() >= node.options().host().maxSessions()) {
                    refusePrefill(msg, p, FULL, "host " + node.options().nodeName() + " already holds "
                            + node.options().host().maxSessions() + " contexts (host.maxSessions)");
                    return;
                }
                s = new HostSession(p.session(), p.owner(), plan, fingerprint);
                sessions.put(p.session(), s);
            }
            s.busy.incrementAndGet(); // a prefill longer than the idle timeout must not be reaped half-way
        }
        try {
            if (!s.sameContext(plan, fingerprint)) {
                refusePrefill(msg, p, BAD_REQUEST, "session " + p.session() + " already holds a different context");
                return;
            }
            encode(msg, p, s, blocks, t0);
        } finally {
            s.touch();
            s.busy.decrementAndGet();
        }
    }

    private void encode(Message<Object> msg, WireMessage.PrefillRequest p, HostSession s, List<Block> blocks, long t0) {
        BlockPlan plan = s.plan;
        List<Block> missing = blocks.stream().filter(b -> !s.has(b.index())).toList();
        boolean anchored = plan.blockCount() > 1 && plan.effectiveAnchor() > 0;
        AnchorSource source = anchored && !missing.isEmpty() && missing.getFirst().index() == 0
                ? claimAnchor(p.session()) : null;
        PassedSource passing = p.passing().enabled() ? passedSource(p.session()) : null;
        try {
            if (!missing.isEmpty()) {
                List<KvStore> stores = passing == null
                        ? encoder.encodeBlocks(plan, p.scatter(), missing, false, anchorExchange(p, anchored, source),
                                n -> { })
                        : encoder.encodeBlocks(plan, p.scatter(), missing, anchorExchange(p, anchored, source),
                                passingPolicy(p), new PassingExchange(new RemotePassedFeed(node, p.passing().holders(),
                                        p.session(), node.options().timeouts().prefillMs(), passing), passing::publish),
                                n -> { });
                if (!s.add(missing, stores)) {
                    stores.forEach(KvStore::close);
                    msg.fail(UNKNOWN_SESSION, "session " + p.session() + " was released during its prefill");
                    return;
                }
            }
            long nanos = System.nanoTime() - t0;
            log.info("session {}: encoded blocks {} ({} tokens{}) in {} ms; {} session(s), {} MiB KV", p.session(),
                    missing.stream().map(Block::index).toList(), missing.stream().mapToInt(Block::length).sum(),
                    source != null ? ", serving the anchor" : anchored && !p.anchorFrom().isEmpty()
                            ? ", anchor from " + p.anchorFrom() : "", nanos / 1_000_000, sessions.size(), kvBytes() >> 20);
            msg.reply(new WireMessage.PrefillReply(p.session(), p.blocks(), s.bytes(), nanos), replyOptions);
        } catch (RuntimeException | OutOfMemoryError e) {
            log.warn("session {}: prefill failed", p.session(), e);
            if (source != null) {
                anchors.remove(p.session(), source);
                source.fail("block 0 could not be encoded on " + node.options().nodeName() + ": " + e);
            }
            if (passing != null) {
                missing.forEach(b -> passing.fail(b.index(), "block " + b.index() + " could not be encoded on "
                        + node.options().nodeName() + ": " + e));
            }
            if (s.isEmpty()) {
                release(p.session(), "prefill failed");
            }
            msg.fail(INTERNAL, "prefill failed on " + node.options().nodeName() + ": " + e);
        }
    }

    /** Block 0 here: publish its anchor. Otherwise take the anchor from the host the request names, if any. */
    private AnchorExchange anchorExchange(WireMessage.PrefillRequest p, boolean anchored, AnchorSource source) {
        if (source != null) {
            return new AnchorExchange(null, source::publish);
        }
        if (!anchored || p.anchorFrom().isEmpty() || p.anchorFrom().equals(node.nodeId())) {
            return AnchorExchange.NONE; // named itself (block 0 is here from an earlier request): encode it again
        }
        return new AnchorExchange(new RemoteAnchorFeed(node, p.anchorFrom(), "the host of block 0 (" + p.anchorFrom()
                + ")", p.session(), node.options().timeouts().prefillMs()), null);
    }

    /**
     * Refuses a prefill. One with block 0 had claimed the session's anchor on arrival: unless a session here already
     * holds block 0 (and so serves the anchor), the claim is given up and the hosts waiting for the anchor are told
     * at once, so that they encode it themselves instead of waiting for their prefill timeout.
     */
    private void refusePrefill(Message<Object> msg, WireMessage.PrefillRequest p, int code, String reason) {
        msg.fail(code, reason);
        PassedSource passing = p.passing().enabled() ? passed.get(p.session()) : null;
        HostSession held = sessions.get(p.session());
        if (passing != null) {
            for (int b : p.blocks()) {
                if (held == null || !held.has(b)) {
                    passing.fail(b, "the prefill of block " + b + " was refused on " + node.options().nodeName() + ": "
                            + reason);
                }
            }
        }
        if (claimsAnchor(p)) {
            HostSession s = sessions.get(p.session());
            AnchorSource source = anchors.get(p.session());
            if ((s == null || !s.has(0)) && source != null && anchors.remove(p.session(), source)) {
                source.fail("the prefill of block 0 was refused on " + node.options().nodeName() + ": " + reason);
            }
        }
    }

    /** The request's passing policy; an unknown selection or a bad size throws IllegalArgumentException. */
    private static PassingPolicy passingPolicy(WireMessage.PrefillRequest p) {
        WireMessage.PrefillRequest.Passing w = p.passing();
        return new PassingPolicy(w.tokensPerBlock(), PassingPolicy.Selection.parse(w.selection()), w.scoredLayers());
    }

    /** A prefill with passing blocks: this host serves what its blocks pass on (answering requests that came first). */
    private void claimPassed(WireMessage.PrefillRequest p) {
        if (p.passing().enabled()) {
            passedSource(p.session()).claim(p.blocks());
        }
    }

    private PassedSource passedSource(UUID session) {
        return passed.computeIfAbsent(session, id -> new PassedSource());
    }

    private void servePassed(Message<Object> msg, WireMessage.PassedRequest r) {
        if (refusesLayer(msg, "layer", r.layer())) {
            return;
        }
        PassedSource source = passedSource(r.session());
        if (!source.claimed(r.block())) {
            reaper.schedule(() -> {
                if (!source.claimed(r.block())) {
                    source.fail(r.block(), "no prefill of block " + r.block() + " of context " + r.session()
                            + " arrived here within " + ANCHOR_GRACE_MS + " ms");
                }
            }, ANCHOR_GRACE_MS, TimeUnit.MILLISECONDS);
        }
        var c = model.decoder().config();
        source.layer(r.block(), r.layer()).whenComplete((p, e) -> {
            if (e != null) {
                msg.fail(UNKNOWN_SESSION, "what block " + r.block() + " of context " + r.session() + " passes on is "
                        + "not available on " + node.options().nodeName() + ": " + e.getMessage());
            } else {
                msg.reply(new WireMessage.PassedReply(p.block(), p.layer(), c.numberOfKeyValueHeads, c.headSize,
                        p.positions(), p.k(), p.v()), replyOptions);
            }
        });
    }

    private static boolean claimsAnchor(WireMessage.PrefillRequest p) {
        return p.anchorSize() > 0 && p.blocks().length > 0 && p.blocks()[0] == 0;
    }

    /** A prefill with block 0: this host serves the session's anchor (answering requests that came first, too). */
    private void claimAnchor(WireMessage.PrefillRequest p) {
        if (claimsAnchor(p)) {
            claimAnchor(p.session());
        }
    }

    private AnchorSource claimAnchor(UUID session) {
        AnchorSource source = anchors.computeIfAbsent(session, id -> new AnchorSource(layers()));
        source.claim();
        return source;
    }

    private void serveAnchor(Message<Object> msg, WireMessage.AnchorRequest r) {
        if (refusesLayer(msg, "anchor layer", r.layer())) {
            return;
        }
        var c = model.decoder().config();
        AnchorSource created = new AnchorSource(layers());
        AnchorSource source = anchors.putIfAbsent(r.session(), created);
        if (source == null) {
            source = created;
            reaper.schedule(() -> {
                if (!created.claimed() && anchors.remove(r.session(), created)) {
                    created.fail("no prefill of block 0 of context " + r.session() + " arrived here within "
                            + ANCHOR_GRACE_MS + " ms");
                }
            }, ANCHOR_GRACE_MS, TimeUnit.MILLISECONDS);
        }
        source.layer(r.layer()).whenComplete((kv, e) -> {
            if (e != null) {
                msg.fail(UNKNOWN_SESSION, "the anchor of context " + r.session() + " is not available on "
                        + node.options().nodeName() + ": " + e.getMessage());
            } else {
                msg.reply(new WireMessage.AnchorReply(kv.layer(), kv.tokens(), c.numberOfKeyValueHeads, c.headSize,
                        kv.k(), kv.v()), replyOptions);
            }
        });
    }

    /**
     * Fails a request for one layer's K/V ({@code what} names it) that this host cannot serve: a layer the model does
     * not have, or a host shutting down.
     */
    private boolean refusesLayer(Message<Object> msg, String what, int layer) {
        if (layer >= layers()) {
            msg.fail(BAD_REQUEST, what + " " + layer + " does not exist (the model has " + layers() + ")");
            return true;
        }
        if (closed) {
            msg.fail(FULL, "host is shutting down");
            return true;
        }
        return false;
    }

    private int layers() {
        return model.decoder().config().numberOfLayers;
    }

    private void attend(Message<Object> msg, WireMessage.AttendRequest a) {
        long t0 = System.nanoTime();
        HostSession s = sessions.get(a.session());
        if (s == null) {
            msg.fail(UNKNOWN_SESSION, "host " + node.options().nodeName() + " holds no context " + a.session()
                    + " (released after being idle, or never prefilled here)");
            return;
        }
        var c = model.decoder().config();
        AttentionQuery q = a.query();
        if (a.layer() >= c.numberOfLayers || q.heads() != c.numberOfHeads || q.headDim() != c.headSize) {
            msg.fail(BAD_REQUEST, "query for layer " + a.layer() + " with " + q.heads() + " heads x " + q.headDim()
                    + " does not fit the model (" + c.numberOfLayers + " layers, " + c.numberOfHeads + " x " + c.headSize + ")");
            return;
        }
        if (q.tokens() > model.maxPositions() || Arrays.stream(q.positions()).anyMatch(p -> p >= model.maxPositions())) {
            msg.fail(BAD_REQUEST, "query of " + q.tokens() + " tokens at positions beyond the model's "
                    + model.maxPositions());
            return;
        }
        List<PartialAttention> parts = new ArrayList<>(a.blocks().length);
        s.lock.readLock().lock();
        try {
            if (s.closed) {
                msg.fail(UNKNOWN_SESSION, "context " + a.session() + " was released");
                return;
            }
            List<KvStore> stores = new ArrayList<>(a.blocks().length);
            for (int b : a.blocks()) {
                KvStore store = s.stores.get(b);
                if (store == null) {
                    msg.fail(UNKNOWN_SESSION, "host " + node.options().nodeName() + " holds no block " + b + " of context "
                            + a.session());
                    return;
                }
                stores.add(store);
            }
            parts.addAll(kernel.attendAll(stores, a.layer(), q));
        } catch (RuntimeException e) {
            log.warn("session {}: attention failed", a.session(), e);
            msg.fail(INTERNAL, "attention failed on " + node.options().nodeName() + ": " + e);
            return;
        } finally {
            s.lock.readLock().unlock();
        }
        s.touch();
        msg.reply(new WireMessage.AttendReply(System.nanoTime() - t0, parts), replyOptions);
    }

    private WireMessage.ReleaseReply release(UUID id, String why) {
        AnchorSource anchor = anchors.remove(id);
        if (anchor != null) {
            anchor.fail("context " + id + " was released (" + why + ")");
        }
        PassedSource passing = passed.remove(id);
        if (passing != null) {
            passing.failAll("context " + id + " was released (" + why + ")");
        }
        HostSession s = sessions.remove(id);
        long freed = s == null ? 0 : s.close();
        if (s != null) {
            log.info("session {}: {}; freed {} KiB, {} session(s) left", id, why, freed >> 10, sessions.size());
        }
        return new WireMessage.ReleaseReply(freed, sessions.size());
    }

    private void reapIdle(long idleMs) {
        long now = System.nanoTime();
        for (HostSession s : List.copyOf(sessions.values())) {
            synchronized (sessions) { // a prefill marks its session busy under this lock
                if (s.busy.get() == 0 && now - s.lastUsed > idleMs * 1_000_000L) {
                    release(s.id, "idle for more than " + idleMs + " ms");
                }
            }
        }
        for (Map.Entry<UUID, AnchorSource> e : List.copyOf(anchors.entrySet())) {
            // asked for by another host, but this host never got (or kept) the session
            if (!sessions.containsKey(e.getKey()) && e.getValue().ageNanos() > idleMs * 1_000_000L
                    && anchors.remove(e.getKey(), e.getValue())) {
                e.getValue().fail("no prefill of context " + e.getKey() + " arrived here");
            }
        }
        for (Map.Entry<UUID, PassedSource> e : List.copyOf(passed.entrySet())) {
            if (!sessions.containsKey(e.getKey()) && e.getValue().ageNanos() > idleMs * 1_000_000L
                    && passed.remove(e.getKey(), e.getValue())) {
                e.getValue().failAll("no prefill of context " + e.getKey() + " arrived here");
            }
        }
    }

    private void ownerLeft(String nodeId) {
        for (HostSession s : List.copyOf(sessions.values())) {
            if (s.owner.equals(nodeId)) {
                release(s.id, "its query host left the cluster");
            }
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            consumer.unregister().toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
        } catch (Exception e) {
            log.debug("unregistering the host consumer failed", e);
        }
        node.close();
        shutdownPools();
        for (UUID id : List.copyOf(sessions.keySet())) {
            release(id, "host closing");
        }
        anchors.values().forEach(a -> a.fail("host closing"));
        anchors.clear();
        passed.values().forEach(p -> p.failAll("host closing"));
        passed.clear();
        encoder.close();
        kernel.close();
    }

    private void shutdownPools() {
        reaper.shutdownNow();
        prefillPool.shutdownNow();
        attendPool.shutdownNow();
        try {
            attendPool.awaitTermination(5, TimeUnit.SECONDS);
            prefillPool.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static java.util.concurrent.ThreadFactory daemon(String name) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, name + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }

    /** The blocks one host holds for one context. */
    private static final class HostSession {
        final UUID id;
        final String owner;
        final BlockPlan plan;
        final long fingerprint;
        final TreeMap<Integer, KvStore> stores = new TreeMap<>();
        final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
        volatile long lastUsed = System.nanoTime();
        /** Prefill requests running on this session now: the idle reaper leaves it alone meanwhile. */
        final AtomicInteger busy = new AtomicInteger();
        boolean closed;

        HostSession(UUID id, String owner, BlockPlan plan, long fingerprint) {
            this.id = id;
            this.owner = owner;
            this.plan = plan;
            this.fingerprint = fingerprint;
        }

        boolean sameContext(BlockPlan p, long fp) {
            return fp == fingerprint && p.contextLength() == plan.contextLength() && p.blockSize() == plan.blockSize()
                    && p.anchorSize() == plan.anchorSize();
        }

        void touch() {
            lastUsed = System.nanoTime();
        }

        boolean has(int block) {
            lock.readLock().lock();
            try {
                return stores.containsKey(block);
            } finally {
                lock.readLock().unlock();
            }
        }

        boolean isEmpty() {
            lock.readLock().lock();
            try {
                return stores.isEmpty();
            } finally {
                lock.readLock().unlock();
            }
        }

        boolean add(List<Block> blocks, List<KvStore> encoded) {
            lock.writeLock().lock();
            try {
                if (closed) {
                    return false;
                }
                for (int i = 0; i < blocks.size(); i++) {
                    stores.put(blocks.get(i).index(), encoded.get(i));
                }
                return true;
            } finally {
                lock.writeLock().unlock();
            }
        }

        long bytes() {
            lock.readLock().lock();
            try {
                return stores.values().stream().mapToLong(KvStore::bytes).sum();
            } finally {
                lock.readLock().unlock();
            }
        }

        long close() {
            lock.writeLock().lock();
            try {
                if (closed) {
                    return 0;
                }
                closed = true;
                long freed = stores.values().stream().mapToLong(KvStore::bytes).sum();
                stores.values().forEach(KvStore::close);
                stores.clear();
                return freed;
            } finally {
                lock.writeLock().unlock();
            }
        }
    }
}
