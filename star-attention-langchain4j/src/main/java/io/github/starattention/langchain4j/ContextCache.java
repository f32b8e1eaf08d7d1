package io.github.starattention.langchain4j;

import io.github.starattention.jlama.ContextSession;
import io.github.starattention.jlama.PrefillListener;
import io.github.starattention.jlama.StarAttentionEngine;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Encoded contexts (phase-1 KV) kept for reuse: a request whose context tokens equal a cached context's skips
 * phase 1 and goes straight to the question.
 *
 * <p>Least recently used entries are evicted when the KV bytes of the cached contexts ({@link ContextSession#kvBytes()}
 * measured after prefill) exceed {@link #maxBytes()}. An evicted context is closed as soon as no request uses it any
 * more; a context larger than the whole budget is used by the requests that asked for it and then closed. Concurrent
 * requests for the same context share one prefill. A budget of 0 disables reuse across requests (only concurrent
 * requests share).
 *
 * <p>Entries are keyed by the engine and the exact token array, so one cache can serve several engines. Thread-safe.
 */
public final class ContextCache implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(ContextCache.class);

    /** Default budget: a quarter of the maximum Java heap (the CPU backend keeps KV on the heap). */
    public static long defaultMaxBytes() {
        return Runtime.getRuntime().maxMemory() / 4;
    }

    private final long maxBytes;
    /** Access-ordered: iteration starts at the least recently used entry. */
    private final LinkedHashMap<Key, Entry> entries = new LinkedHashMap<>(16, 0.75f, true);
    private long bytes;
    private long hits;
    private long misses;
    private long evictions;
    private boolean closed;

    private ContextCache(long maxBytes) {
        if (maxBytes < 0) {
            throw new IllegalArgumentException("maxBytes must not be negative, got " + maxBytes);
        }
        this.maxBytes = maxBytes;
    }

    /** A cache that keeps at most {@code maxBytes} of encoded contexts (0 disables reuse). */
    public static ContextCache withMaxBytes(long maxBytes) {
        return new ContextCache(maxBytes);
    }

    /** A cache with {@link #defaultMaxBytes()}. */
    public static ContextCache withDefaultSize() {
        return new ContextCache(defaultMaxBytes());
    }

    /** The byte budget. */
    public long maxBytes() {
        return maxBytes;
    }

    /**
     * Returns the encoded context for {@code contextTokens}, prefilling it on the calling thread if no request has
     * (waiting for a concurrent prefill of the same tokens otherwise). Close the lease when done with the session.
     *
     * @param timeoutNanos how long to wait for another request's prefill of the same context; negative waits forever
     * @throws TimeoutException if another request's prefill did not finish within {@code timeoutNanos}
     * @throws InterruptedException if interrupted while waiting for another request's prefill
     * @throws RuntimeException what {@link StarAttentionEngine#prefill} threw (also to the requests that waited)
     */
    public Lease acquire(StarAttentionEngine engine, int[] contextTokens, PrefillListener listener, long timeoutNanos)
            throws InterruptedException, TimeoutException {
        Objects.requireNonNull(engine, "engine");
        Objects.requireNonNull(listener, "listener");
        Key key = new Key(engine, contextTokens.clone());
        Entry entry;
        boolean owner = false;
        synchronized (this) {
            if (closed) {
                throw new IllegalStateException("the context cache is closed");
            }
            entry = entries.get(key);
            if (entry == null) {
                entry = new Entry(key);
                entries.put(key, entry);
                owner = true;
                misses++;
            } else {
                hits++;
            }
            entry.refs++;
        }
        if (owner) {
            return prefill(entry, listener);
        }
        return await(entry, timeoutNanos);
    }

    private Lease prefill(Entry entry, PrefillListener listener) {
        ContextSession session;
        try {
            session = entry.key.engine.prefill(entry.key.tokens, listener);
        } catch (RuntimeException | Error e) {
            synchronized (this) {
                entries.remove(entry.key, entry);
                entry.refs--;
                entry.evicted = true;
            }
            entry.future.completeExceptionally(e);
            throw e;
        }
        List<ContextSession> toClose = new ArrayList<>();
        synchronized (this) {
            entry.session = session;
            entry.bytes = session.kvBytes();
            if (entries.get(entry.key) == entry) {
                bytes += entry.bytes;
                entry.counted = true;
                if (closed) {
                    entries.remove(entry.key);
                    evict(entry, toClose);
                } else {
                    evictOverBudget(toClose);
                }
            }
        }
        entry.future.complete(session);
        closeAll(toClose);
        return new Lease(this, entry, session, false);
    }

    private Lease await(Entry entry, long timeoutNanos) throws InterruptedException, TimeoutException {
        try {
            ContextSession session = timeoutNanos < 0 ? entry.future.get()
                    : entry.future.get(timeoutNanos, TimeUnit.NANOSECONDS);
            return new Lease(this, entry, session, true);
        } catch (ExecutionException e) {
            release(entry);
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException re) {
                throw re;
            }
            if (cause instanceof Error err) {
                throw err;
            }
            throw new IllegalStateException(cause);
        } catch (InterruptedException | TimeoutException | CancellationException e) {
            release(entry);
            throw e;
        }
    }

    /** Evicts least recently used, already encoded entries until the budget holds. Called with the lock held. */
    private void evictOverBudget(List<ContextSession> toClose) {
        Iterator<Entry> it = entries.values().iterator();
        while (bytes > maxBytes && it.hasNext()) {
            Entry e = it.next();
            if (e.session == null) {
                continue; // still being encoded: it has no size yet
            }
            it.remove();
            evict(e, toClose);
        }
    }

    private void evict(Entry e, List<ContextSession> toClose) {
        if (e.counted) {
            bytes -= e.bytes;
            e.counted = false;
        }
        e.evicted = true;
        evictions++;
        log.debug("evicted a context of {} tokens ({} bytes)", e.key.tokens.length, e.bytes);
        if (e.refs == 0 && e.session != null && !e.closed) {
            e.closed = true;
            toClose.add(e.session);
        }
    }

    void release(Entry entry) {
        ContextSession close = null;
        synchronized (this) {
            entry.refs--;
            if (entry.refs == 0 && entry.evicted && entry.session != null && !entry.closed) {
                entry.closed = true;
                close = entry.session;
            }
        }
        if (close != null) {
            close.close();
        }
    }

    private static void closeAll(List<ContextSession> sessions) {
        for (ContextSession s : sessions) {
            try {
                s.close();
            } catch (RuntimeException e) {
                log.warn("closing an evicted context failed", e);
            }
        }
    }

    /** Evicts every entry (entries in use are closed when released). */
    public void clear() {
        List<ContextSession> toClose = new ArrayList<>();
        synchronized (this) {
            Iterator<Entry> it = entries.values().iterator();
            while (it.hasNext()) {
                Entry e = it.next();
                if (e.session == null) {
                    continue; // its prefill is running; it is evicted by the budget check when it finishes
                }
                it.remove();
                evict(e, toClose);
            }
        }
        closeAll(toClose);
    }

    /** Evicts every entry of {@code engine} (e.g. before closing the engine). */
    public void clear(StarAttentionEngine engine) {
        List<ContextSession> toClose = new ArrayList<>();
        synchronized (this) {
            Iterator<Map.Entry<Key, Entry>> it = entries.entrySet().iterator();
            while (it.hasNext()) {
                Entry e = it.next().getValue();
                if (e.key.engine == engine && e.session != null) {
                    it.remove();
                    evict(e, toClose);
                }
            }
        }
        closeAll(toClose);
    }

    /** Number of encoded contexts held (being encoded ones included). */
    public synchronized int size() {
        return entries.size();
    }

    /** KV bytes of the encoded contexts held. */
    public synchronized long bytes() {
        return bytes;
    }

    /** Requests served from the cache (including those that waited for a concurrent prefill). */
    public synchronized long hits() {
        return hits;
    }

    /** Requests that prefilled. */
    public synchronized long misses() {
        return misses;
    }

    /** Entries evicted so far. */
    public synchronized long evictions() {
        return evictions;
    }

    /** Whether a context with exactly these tokens is held for {@code engine}. */
    public synchronized boolean contains(StarAttentionEngine engine, int[] contextTokens) {
        return entries.containsKey(new Key(engine, contextTokens));
    }

    /** Evicts everything and refuses further requests. */
    @Override
    public void close() {
        synchronized (this) {
            closed = true;
        }
        clear();
    }

    @Override
    public synchronized String toString() {
        return "ContextCache{entries=" + entries.size() + ", bytes=" + bytes + ", maxBytes=" + maxBytes + ", hits="
                + hits + ", misses=" + misses + ", evictions=" + evictions + '}';
    }

    /** A context in use; {@link #close()} it when the request is done (once). */
    public static final class Lease implements AutoCloseable {
        private final ContextCache cache;
        private final Entry entry;
        private final ContextSession session;
        private final boolean hit;
        private boolean released;

        Lease(ContextCache cache, Entry entry, ContextSession session, boolean hit) {
            this.cache = cache;
            this.entry = entry;
            this.session = session;
            this.hit = hit;
        }

        /** The encoded context. Valid until this lease is closed. */
        public ContextSession session() {
            return session;
        }

        /** True if this request did not run phase 1 (the context was cached or encoded by a concurrent request). */
        public boolean hit() {
            return hit;
        }

        @Override
        public synchronized void close() {
            if (!released) {
                released = true;
                cache.release(entry);
            }
        }
    }

    static final class Entry {
        final Key key;
        final CompletableFuture<ContextSession> future = new CompletableFuture<>();
        ContextSession session;
        long bytes;
        int refs;
        boolean counted;
        boolean evicted;
        boolean closed;

        Entry(Key key) {
            this.key = key;
        }
    }

    /** The engine (by identity) and the exact context tokens. */
    static final class Key {
        final StarAttentionEngine engine;
        final int[] tokens;
        private final int hash;

        Key(StarAttentionEngine engine, int[] tokens) {
            this.engine = engine;
            this.tokens = tokens;
            this.hash = 31 * System.identityHashCode(engine) + Arrays.hashCode(tokens);
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Key k && k.engine == engine && k.hash == hash && Arrays.equals(k.tokens, tokens);
        }

        @Override
        public int hashCode() {
            return hash;
        }
    }
}
