package io.github.starattention.jlama.model;

import com.github.tjake.jlama.tensor.AbstractTensor;
import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.kv.KvLayout;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.Block;
import io.github.starattention.plan.BlockPlan;
import io.github.starattention.rope.RotaryEmbedding;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Forward passes of a {@link StarLlamaModel} over our KV stores: phase 1 (anchored blockwise context encoding) and
 * the steps of phase 2. Thread-safe: every call works on the stores it is given, and passes over the shared model
 * take turns chunk by chunk (see {@link StarLlamaModel}).
 *
 * <p>Long inputs are cut into chunks of {@link #chunkSize()} tokens; each chunk runs through all layers before the
 * next, attending to the chunks before it (their KV is already in the store) and causally to itself.
 */
public final class ContextEncoder {

    private static final Logger log = LoggerFactory.getLogger(ContextEncoder.class);

    /** Default chunk: large enough for efficient matrix products, small enough to bound activation memory. */
    public static final int DEFAULT_CHUNK = 512;

    /** Slots reserved beyond the last block for query and answer tokens, so a first question does not regrow it. */
    static final int QUERY_SLACK = 512;

    private final StarLlamaModel model;
    private final AttentionKernel kernel;
    private final RotaryEmbedding rope;
    private final KvLayout layout;
    private final int chunkSize;

    public ContextEncoder(StarLlamaModel model, AttentionKernel kernel, RotaryEmbedding rope, int chunkSize) {
        this.model = model;
        this.kernel = kernel;
        this.rope = rope;
        var c = model.getConfig();
        this.layout = new KvLayout(c.numberOfLayers, c.numberOfKeyValueHeads, c.headSize, 0);
        this.chunkSize = chunkSize;
    }

    public int chunkSize() {
        return chunkSize;
    }

    public AttentionKernel kernel() {
        return kernel;
    }

    /** A new empty store sized for {@code tokens} slots. */
    public KvStore newStore(int tokens) {
        return kernel.createStore(new KvLayout(layout.layers(), layout.kvHeads(), layout.headDim(), tokens));
    }

    /**
     * Appends {@code tokens} at {@code positions} to {@code target}, attending to {@code prefix} (earlier
     * partitions, e.g. the anchor) and to {@code target}. Calls {@code progress} with the number of tokens done after
     * each chunk. Returns the logits of the last token when {@code wantLogits}, else {@code null}.
     */
    public float[] append(int[] tokens, int[] positions, KvStore target, List<KvStore> prefix,
                          AttentionCall.RemotePartitions remote, boolean wantLogits, IntConsumer progress) {
        List<KvStore> sources = new ArrayList<>(prefix);
        sources.add(target);
        float[] logits = null;
        for (int from = 0; from < tokens.length; from += chunkSize) {
            int to = Math.min(tokens.length, from + chunkSize);
            int[] pos = Arrays.copyOfRange(positions, from, to);
            int first = target.reserve(pos);
            AttentionCall call = new AttentionCall(kernel, rope, pos, target, first, sources, remote);
            int[] chunk = Arrays.copyOfRange(tokens, from, to);
            boolean last = wantLogits && to == tokens.length;
            logits = forward(chunk, call, last);
            progress.accept(to);
        }
        return logits;
    }

    private float[] forward(int[] chunk, AttentionCall call, boolean wantLogits) {
        try (AbstractTensor hidden = model.forward(chunk, call)) {
            return wantLogits ? model.logits(hidden, chunk.length - 1) : null;
        }
    }

    /**
     * Phase 1 for {@code blocks} of {@code plan} (in context order): block 0 is encoded alone; every other block with
     * the anchor's KV as a prefix, the anchor (context tokens {@code 0..a-1} at positions {@code 0..a-1}) being
     * encoded once and reused, and dropped at the end. Returns one store per block, holding only that block's tokens.
     *
     * @param context all context tokens (BOS first)
     * @param recomputeAnchor encode the anchor on its own even when block 0 is among {@code blocks} (what a host that
     *     does not own block 0 must do; in one process it equals reusing block 0's first {@code a} slots)
     * @param progress receives the number of context tokens of {@code blocks} encoded so far
     */
    public List<KvStore> encodeBlocks(BlockPlan plan, int[] context, List<Block> blocks, boolean recomputeAnchor,
                                      IntConsumer progress) {
        List<KvStore> stores = new ArrayList<>(blocks.size());
        KvStore anchor = null;
        int done = 0;
        try {
            int a = plan.effectiveAnchor();
            for (Block block : blocks) {
                long t0 = System.nanoTime();
                boolean last = block.index() == plan.blockCount() - 1;
                KvStore store = newStore(block.length() + (last ? QUERY_SLACK : 0));
                stores.add(store);
                List<KvStore> prefix = List.of();
                if (block.index() > 0 && a > 0) {
                    if (anchor == null) {
                        anchor = !recomputeAnchor && blocks.getFirst().index() == 0
                                ? prefixCopy(stores.getFirst(), a)
                                : encodeAnchor(context, a);
                    }
                    prefix = List.of(anchor);
                }
                int base = done;
                int[] tokens = Arrays.copyOfRange(context, block.start(), block.end());
                append(tokens, range(block.start(), block.end()), store, prefix, null, false,
                        n -> progress.accept(base + n));
                done += block.length();
                log.debug("block {} [{}, {}) encoded in {} ms (anchor {})", block.index(), block.start(), block.end(),
                        (System.nanoTime() - t0) / 1_000_000, prefix.isEmpty() ? 0 : a);
            }
        } catch (RuntimeException e) {
            stores.forEach(KvStore::close);
            throw e;
        } finally {
            if (anchor != null) {
                anchor.close();
            }
        }
        return stores;
    }

    private KvStore encodeAnchor(int[] context, int a) {
        KvStore anchor = newStore(a);
        append(Arrays.copyOf(context, a), range(0, a), anchor, List.of(), null, false, n -> { });
        return anchor;
    }

    /** Position ids {@code from..to-1}. */
    public static int[] range(int from, int to) {
        int[] r = new int[to - from];
        Arrays.setAll(r, i -> from + i);
        return r;
    }

    private KvStore prefixCopy(KvStore block0, int a) {
        KvStore anchor = newStore(a);
        anchor.appendFrom(block0, 0, a);
        return anchor;
    }
}
