package io.github.starattention.jlama.model;

import com.github.tjake.jlama.math.VectorMath;
import com.github.tjake.jlama.model.AbstractModel;
import com.github.tjake.jlama.model.CausalSelfAttention;
import com.github.tjake.jlama.safetensors.Config;
import com.github.tjake.jlama.tensor.AbstractTensor;
import com.github.tjake.jlama.tensor.KvBufferCache;
import com.github.tjake.jlama.tensor.operations.TensorOperations;
import com.github.tjake.jlama.tensor.operations.TensorOperationsProvider;
import com.github.tjake.jlama.util.BiIntConsumer;
import io.github.starattention.attention.AttentionQuery;
import io.github.starattention.attention.LseMerge;
import io.github.starattention.attention.PartialAttention;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.Consumer;

/**
 * Jlama's self-attention layer with Star Attention inside: Jlama's projections (Q/K/V with optional bias, o_proj),
 * our RoPE at explicit position ids, our KV stores and kernels, and the exact LSE merge of partial attention over
 * several partitions (local stores and remote hosts).
 *
 * <p>Per chunk of {@code T} tokens (layout of the float arrays handed to the kernels, fp32 row-major):
 * {@code q [T][heads][headDim]}, {@code k, v [T][kvHeads][headDim]}; q and k are rotated at
 * {@link AttentionCall#positions()} with the standard index {@code position * headDim/2 + i} (not Jlama's
 * per-head-offset table, see research/jlama.md §2.3), so keys in our stores never mix with keys Jlama wrote.
 * The {@code KvBuffer} Jlama passes in is ignored.
 */
public final class StarSelfAttention extends CausalSelfAttention {

    /** Steps of at most this many tokens run their projections on the caller's thread (see {@link #chunks}). */
    private static final int INLINE_TOKENS = 4;

    private final StarLlamaModel model;
    private final Config c;
    private final int layer;
    private final Optional<AbstractTensor> qBias;
    private final Optional<AbstractTensor> kBias;
    private final Optional<AbstractTensor> vBias;
    private final AbstractTensor wq;
    private final AbstractTensor wk;
    private final AbstractTensor wv;
    private final AbstractTensor wo;
    private final float scale;

    StarSelfAttention(StarLlamaModel model, int layer, Optional<AbstractTensor> qBias, Optional<AbstractTensor> kBias,
                      Optional<AbstractTensor> vBias, AbstractTensor wq, AbstractTensor wk, AbstractTensor wv,
                      AbstractTensor wo) {
        super(model, layer, qBias, kBias, vBias, wq, wk, wv, Optional.empty(), wo);
        this.model = model;
        this.c = model.getConfig();
        this.layer = layer;
        this.qBias = qBias;
        this.kBias = kBias;
        this.vBias = vBias;
        this.wq = wq;
        this.wk = wk;
        this.wv = wv;
        this.wo = wo;
        this.scale = c.attentionMultiplier != null ? c.attentionMultiplier : (float) (1.0 / StrictMath.sqrt(c.headSize));
    }

    @Override
    public AbstractTensor forward(AbstractTensor input, int ignoredStart, KvBufferCache.KvBuffer ignoredKv,
                                  Optional<Consumer<List<AbstractTensor>>> tensorReducer) {
        AttentionCall call = AttentionCall.current();
        int tokens = input.shape().first();
        int heads = c.numberOfHeads;
        int kvHeads = c.numberOfKeyValueHeads;
        int d = c.headSize;
        float[] q = new float[tokens * heads * d];
        float[] k = new float[tokens * kvHeads * d];
        float[] v = new float[tokens * kvHeads * d];
        project(input, tokens, q, k, v);
        for (int t = 0; t < tokens; t++) {
            call.rope().apply(q, t * heads * d, heads, call.positions()[t]);
            call.rope().apply(k, t * kvHeads * d, kvHeads, call.positions()[t]);
        }
        if (call.target() != null) {
            call.target().put(layer, call.firstSlot(), k, v, 0, tokens);
        }
        if (call.hook() != null) {
            call.hook().stored(layer, k, v, tokens);
        }
        AttentionQuery query = new AttentionQuery(q, call.positions(), tokens, heads, d, scale);
        CompletableFuture<List<PartialAttention>> remote = call.remote() == null ? null : call.remote().attend(layer, query);
        if (call.hook() != null) {
            call.hook().beforeAttention(layer);
        }
        List<PartialAttention> local = call.kernel().attendAll(call.sources(), layer, query);
        // remote partitions precede the local ones in context order (the query host owns the last blocks): merging
        // them first keeps the merge order, and so every bit of the result, equal to the in-process engine's
        List<PartialAttention> parts = new ArrayList<>(local.size() + 4);
        if (remote != null) {
            try {
                parts.addAll(model.awaitRemote(remote));
            } catch (CompletionException e) {
                throw e.getCause() instanceof RuntimeException re ? re : e;
            }
        }
        parts.addAll(local);
        PartialAttention merged = parts.size() == 1 ? parts.getFirst() : LseMerge.merge(parts);
        return outputProjection(merged.output(), tokens, tensorReducer);
    }

    private void project(AbstractTensor input, int tokens, float[] q, float[] k, float[] v) {
        TensorOperations ops = TensorOperationsProvider.get();
        int e = c.embeddingLength;
        try (AbstractTensor qt = model.makeDenseTensor(tokens, c.attentionLength);
             AbstractTensor kt = model.makeDenseTensor(tokens, c.kvLength);
             AbstractTensor vt = model.makeDenseTensor(tokens, c.kvLength)) {
            chunks(tokens, c.attentionLength, (start, len) -> ops.dotProductChunk(qt, input, wq, 0, e, start, len));
            chunks(tokens, c.kvLength, (start, len) -> {
                ops.dotProductChunk(kt, input, wk, 0, e, start, len);
                ops.dotProductChunk(vt, input, wv, 0, e, start, len);
            });
            qBias.ifPresent(b -> ops.accumulate(qt, b, 0, c.attentionLength));
            kBias.ifPresent(b -> ops.accumulate(kt, b, 0, c.kvLength));
            vBias.ifPresent(b -> ops.accumulate(vt, b, 0, c.kvLength));
            copyOut(qt, q);
            copyOut(kt, k);
            copyOut(vt, v);
        }
    }

    private AbstractTensor outputProjection(float[] attended, int tokens, Optional<Consumer<List<AbstractTensor>>> reducer) {
        TensorOperations ops = TensorOperationsProvider.get();
        AbstractTensor result = model.makeDenseTensor(tokens, c.embeddingLength);
        try (AbstractTensor values = model.makeDenseTensor(tokens, c.attentionLength)) {
            MemorySegment.copy(attended, 0, values.getMemorySegment(), ValueLayout.JAVA_FLOAT, 0, attended.length);
            try (AbstractTensor vq = model.quantizeActivations(values)) {
                chunks(tokens, c.embeddingLength,
                        (start, len) -> ops.dotProductChunk(result, vq, wo, 0, c.attentionLength, start, len));
            }
        }
        reducer.ifPresent(f -> f.accept(List.of(result)));
        return result;
    }

    /**
     * Output rows {@code [0, rows)} of a projection: split over Jlama's threads for a chunk of tokens, on the
     * caller's thread for a decode step (a few small matrix-vector products, cheaper than waking the workers).
     */
    private static void chunks(int tokens, int rows, BiIntConsumer f) {
        if (tokens <= INLINE_TOKENS) {
            f.accept(0, rows);
        } else {
            VectorMath.pchunk(0, rows, f);
        }
    }

    private static void copyOut(AbstractTensor t, float[] dst) {
        MemorySegment.copy(t.getMemorySegment(), ValueLayout.JAVA_FLOAT, 0, dst, 0, dst.length);
    }
}
