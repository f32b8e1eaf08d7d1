package io.github.starattention.jlama.cluster;

import io.github.starattention.jlama.model.PassingExchange;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What the blocks of one context session encoded on this host pass on (passing blocks), block by block and layer by
 * layer, for the hosts that encode later blocks ({@link io.github.starattention.wire.WireMessage.PassedRequest}). As
 * with {@link AnchorSource}, a request may arrive before the layer is encoded or before this host's own prefill
 * request: it is answered as soon as the layer is there. A block is {@linkplain #claim claimed} when a prefill request
 * with it arrives; a request for a block never claimed is failed after a short grace, so that the asking host encodes
 * the earlier blocks itself. Kept while the host holds the session, so that blocks taken over after a failover get it
 * too; it holds {@code tokensPerBlock x layers x 2 x kvHeads x headDim x 4} bytes per block.
 */
final class PassedSource {

    private final Map<Long, CompletableFuture<PassingExchange.Passed>> layers = new ConcurrentHashMap<>();
    private final Map<Integer, String> failed = new ConcurrentHashMap<>();
    private final Map<Integer, Boolean> claimed = new ConcurrentHashMap<>();
    private final long created = System.nanoTime();

    /** Marks {@code blocks} as encoded here: a prefill request with them arrived. */
    void claim(int[] blocks) {
        for (int b : blocks) {
            failed.remove(b);
            claimed.put(b, true);
        }
    }

    boolean claimed(int block) {
        return claimed.containsKey(block);
    }

    /** Completes with what {@code block} passes on at {@code layer} once it is encoded here. */
    CompletableFuture<PassingExchange.Passed> layer(int block, int layer) {
        String why = failed.get(block);
        if (why != null) {
            return CompletableFuture.failedFuture(new IllegalStateException(why));
        }
        return layers.computeIfAbsent(key(block, layer), k -> new CompletableFuture<>());
    }

    /** Called by a block's encoding as each layer of what it passes on is complete. */
    void publish(PassingExchange.Passed p) {
        layer(p.block(), p.layer()).complete(p);
    }

    /** Fails what {@code block} has not published yet: whoever waits for it encodes the earlier blocks itself. */
    void fail(int block, String why) {
        claimed.remove(block);
        failed.put(block, why);
        layers.forEach((k, f) -> {
            if ((int) (k >>> 32) == block) {
                f.completeExceptionally(new IllegalStateException(why));
            }
        });
    }

    /** Fails everything not published yet. */
    void failAll(String why) {
        layers.keySet().stream().map(k -> (int) (k >>> 32)).distinct().toList().forEach(b -> fail(b, why));
    }

    /** Nanoseconds since this source was created. */
    long ageNanos() {
        return System.nanoTime() - created;
    }

    /** Bytes of K/V held. */
    long bytes() {
        long n = 0;
        for (CompletableFuture<PassingExchange.Passed> f : layers.values()) {
            PassingExchange.Passed p = f.isDone() && !f.isCompletedExceptionally() ? f.join() : null;
            if (p != null) {
                n += 8L * p.k().length;
            }
        }
        return n;
    }

    private static long key(int block, int layer) {
        return (long) block << 32 | layer;
    }
}
