package io.github.starattention.jlama.model;

import com.github.tjake.jlama.math.ActivationFunction;
import com.github.tjake.jlama.safetensors.Config;
import io.github.starattention.attention.AttentionQuery;
import io.github.starattention.attention.LseMerge;
import io.github.starattention.attention.PartialAttention;
import io.github.starattention.linear.LinearKernel;
import io.github.starattention.rope.RotaryEmbedding;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.IntConsumer;

/**
 * The forward pass of a Llama-family decoder (Llama, Mistral, Qwen2), written out: embedding; per layer RMSNorm,
 * fused Q/K/V projection (+ bias), RoPE at explicit positions, attention over an explicit list of partitions with
 * the exact LSE merge, output projection and residual, RMSNorm, SwiGLU MLP and residual; final norm and logits.
 * Phase 1 and phase 2 of Star Attention are both passes of this class; they differ only in the {@link ChunkAttention}
 * they pass (see {@link ContextEncoder}).
 *
 * <p><b>State of a pass</b> (all fp32, row-major, {@code T} = tokens of the chunk, {@code D} = hidden size,
 * {@code hd} = head size, {@code H}/{@code KV} = query/KV heads, {@code F} = MLP width):
 * <pre>
 *   x      [T][D]              the residual stream, updated in place layer by layer
 *   xb     [T][D]              a normed copy of x (the input of a projection)
 *   qkv    [T][H*hd + 2*KV*hd] fused projection output, split into
 *   q      [T][H][hd], k, v [T][KV][hd]   rotated (q, k) at the chunk's position ids
 *   gateUp [T][2F]             gate and up projections, then h [T][F] = silu(gate) * up
 * </pre>
 * Nothing of a pass lives in this object: passes run concurrently (several sessions, a failover re-encoding blocks
 * while a pass waits for remote partials) and share only the read-only weights and the thread-safe kernels.
 */
public final class Decoder implements ForwardPass {

    private final Config c;
    private final DecoderWeights w;
    private final LinearKernel linear;
    private final RotaryEmbedding rope;
    private final int dim;
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final int ffn;
    private final float eps;
    private final float scale;

    Decoder(Config c, DecoderWeights w, LinearKernel linear, RotaryEmbedding rope) {
        if (c.activationFunction != ActivationFunction.Type.SILU) {
            throw new IllegalArgumentException("hidden_act " + c.activationFunction + " is not supported (silu only)");
        }
        this.c = c;
        this.w = w;
        this.linear = linear;
        this.rope = rope;
        this.dim = c.embeddingLength;
        this.heads = c.numberOfHeads;
        this.kvHeads = c.numberOfKeyValueHeads;
        this.headDim = c.headSize;
        this.ffn = c.hiddenLength;
        this.eps = c.layerNormEps;
        this.scale = c.attentionMultiplier != null ? c.attentionMultiplier : (float) (1.0 / StrictMath.sqrt(headDim));
    }

    @Override
    public Config config() {
        return c;
    }

    @Override
    public float attentionScale() {
        return scale;
    }

    @Override
    public long weightBytes() {
        return w.bytes();
    }

    @Override
    public String name() {
        return linear.name();
    }

    /** The weights, for a {@link CudaDecoder} to upload. */
    DecoderWeights weights() {
        return w;
    }

    /** The rotary embedding, for a {@link CudaDecoder} to upload its table. */
    RotaryEmbedding rope() {
        return rope;
    }

    @Override
    public Logits forward(int[] tokens, ChunkAttention attention, Logits.Want want) {
        float[] x = embed(tokens);
        for (int layer = 0; layer < w.layers.length; layer++) {
            layer(layer, x, tokens.length, attention);
        }
        return want == Logits.Want.NONE ? null : Logits.of(logits(x, tokens.length - 1));
    }

    /**
     * {@inheritDoc} Every chunk's K/V of a layer are written before any chunk of it attends (the later chunks' positions
     * are higher, so the earlier ones do not see them): a layer's K/V are complete, and can be handed to other hosts,
     * while its attention and MLP still run.
     */
    @Override
    public void forwardLayerMajor(int[][] chunks, ChunkAttention[] attention, int layers, IntConsumer afterLayer) {
        float[][] x = new float[chunks.length][];
        for (int i = 0; i < chunks.length; i++) {
            x[i] = embed(chunks[i]);
        }
        float[][] q = new float[chunks.length][];
        for (int layer = 0; layer < Math.min(layers, w.layers.length); layer++) {
            for (int i = 0; i < chunks.length; i++) {
                q[i] = project(layer, x[i], chunks[i].length, attention[i]);
            }
            for (int i = 0; i < chunks.length; i++) {
                finish(layer, x[i], q[i], chunks[i].length, attention[i]);
            }
            afterLayer.accept(layer);
        }
    }

    /** Embedding rows of {@code tokens}: {@code x [T][D]}. */
    private float[] embed(int[] tokens) {
        float[] x = new float[tokens.length * dim];
        for (int t = 0; t < tokens.length; t++) {
            w.embedding.row(tokens[t], x, t * dim);
        }
        return x;
    }

    /** One decoder layer on the residual stream {@code x [T][D]}, in place. */
    private void layer(int layer, float[] x, int tokens, ChunkAttention attention) {
        finish(layer, x, project(layer, x, tokens, attention), tokens, attention);
    }

    /**
     * The first half of a layer: normed {@code x} projected to Q/K/V (+ bias), rotated at the chunk's positions; K/V
     * go into the target store. Returns the rotated queries {@code q [T][H][hd]}.
     */
    private float[] project(int layer, float[] x, int tokens, ChunkAttention attention) {
        DecoderWeights.Layer lw = w.layers[layer];
        int qDim = heads * headDim;
        int kvDim = kvHeads * headDim;
        float[] xb = rmsNorm(x, tokens, lw.attnNorm());
        float[] qkv = new float[tokens * (qDim + 2 * kvDim)];
        linear.multiply(lw.qkv(), xb, tokens, qkv);
        float[] q = new float[tokens * qDim];
        float[] k = new float[tokens * kvDim];
        float[] v = new float[tokens * kvDim];
        split(qkv, lw.qkvBias(), tokens, q, k, v);
        int[] positions = attention.positions();
        for (int t = 0; t < tokens; t++) {
            rope.apply(q, t * qDim, heads, positions[t]);
            rope.apply(k, t * kvDim, kvHeads, positions[t]);
        }
        store(layer, k, v, tokens, attention);
        return q;
    }

    /**
     * The second half of a layer on {@code x}, in place: {@code x += o_proj(attention(q))}, then
     * {@code x += down(silu(gate(xb)) * up(xb))}.
     */
    private void finish(int layer, float[] x, float[] q, int tokens, ChunkAttention attention) {
        DecoderWeights.Layer lw = w.layers[layer];
        PartialAttention attended = attend(layer, q, tokens, attention);
        float[] out = new float[tokens * dim];
        linear.multiply(lw.o(), attended.output(), tokens, out);
        Elementwise.add(x, out, tokens * dim);

        float[] xb = rmsNorm(x, tokens, lw.mlpNorm());
        float[] gateUp = new float[tokens * 2 * ffn];
        linear.multiply(lw.gateUp(), xb, tokens, gateUp);
        float[] h = new float[tokens * ffn];
        Elementwise.swiglu(gateUp, tokens, ffn, h);
        linear.multiply(lw.down(), h, tokens, out);
        Elementwise.add(x, out, tokens * dim);
    }

    /** Puts the chunk's K/V of {@code layer} into its target store and tells the hook. */
    private static void store(int layer, float[] k, float[] v, int tokens, ChunkAttention a) {
        if (a.target() != null) {
            a.target().put(layer, a.firstSlot(), k, v, 0, tokens);
        }
        if (a.hook() != null) {
            a.hook().stored(layer, k, v, tokens);
        }
    }

    /**
     * Attends over every partition (the chunk's own K/V already stored): the remote ones (started first, so the
     * network works while the local kernel does) and the local ones, merged exactly by their log-sum-exp in context
     * order.
     */
    private PartialAttention attend(int layer, float[] q, int tokens, ChunkAttention a) {
        AttentionQuery query = new AttentionQuery(q, a.positions(), tokens, heads, headDim, scale);
        CompletableFuture<List<PartialAttention>> remote = a.remote() == null ? null : a.remote().attend(layer, query);
        if (a.hook() != null) {
            a.hook().beforeAttention(layer);
        }
        PartialAttention extra = a.hook() == null ? null : a.hook().attendExtra(layer, query);
        List<PartialAttention> local = a.kernel().attendAll(a.local(), layer, query);
        List<PartialAttention> parts = new ArrayList<>(local.size() + 4);
        if (remote != null) {
            try {
                parts.addAll(remote.join());
            } catch (CompletionException e) {
                throw e.getCause() instanceof RuntimeException re ? re : e;
            }
        }
        parts.addAll(local);
        if (extra != null) {
            // passed-on K/V of earlier blocks: before the chunk's own block (the last local partition) in context order
            parts.add(parts.size() - 1, extra);
        }
        return parts.size() == 1 ? parts.getFirst() : LseMerge.merge(parts);
    }

    /** Logits (before any softmax) of row {@code row} of the residual stream {@code x}. */
    private float[] logits(float[] x, int row) {
        float[] last = new float[dim];
        System.arraycopy(x, row * dim, last, 0, dim);
        float[] normed = rmsNorm(last, 1, w.finalNorm);
        float[] logits = new float[w.lmHead.rows()];
        linear.multiply(w.lmHead, normed, 1, logits);
        if (c.logitMultiplier != null) {
            for (int i = 0; i < logits.length; i++) {
                logits[i] /= c.logitMultiplier;
            }
        }
        return logits;
    }

    /** {@code weight * (x / sqrt(mean(x^2) + eps))} per token. */
    private float[] rmsNorm(float[] x, int tokens, float[] weight) {
        float[] out = new float[tokens * dim];
        Elementwise.rmsNorm(x, weight, eps, tokens, dim, out);
        return out;
    }

    /** Splits the fused projection {@code [T][q | k | v]}, adding the bias if there is one. */
    private void split(float[] qkv, float[] bias, int tokens, float[] q, float[] k, float[] v) {
        int qDim = heads * headDim;
        int kvDim = kvHeads * headDim;
        int row = qDim + 2 * kvDim;
        for (int t = 0; t < tokens; t++) {
            System.arraycopy(qkv, t * row, q, t * qDim, qDim);
            System.arraycopy(qkv, t * row + qDim, k, t * kvDim, kvDim);
            System.arraycopy(qkv, t * row + qDim + kvDim, v, t * kvDim, kvDim);
            if (bias != null) {
                for (int i = 0; i < qDim; i++) {
                    q[t * qDim + i] += bias[i];
                }
                for (int i = 0; i < kvDim; i++) {
                    k[t * kvDim + i] += bias[qDim + i];
                    v[t * kvDim + i] += bias[qDim + kvDim + i];
                }
            }
        }
    }

    /** Stops the matrix-product workers; passes must not run afterwards. */
    @Override
    public void close() {
        linear.close();
    }
}
