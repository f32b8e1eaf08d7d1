package io.github.starattention.jlama.model;

import com.github.tjake.jlama.safetensors.Config;
import io.github.starattention.attention.AttentionQuery;
import io.github.starattention.attention.PartialAttention;
import io.github.starattention.cuda.CudaAttentionKernel;
import io.github.starattention.cuda.CudaAttentionKernel.DeviceQuery;
import io.github.starattention.cuda.CudaKvStore;
import io.github.starattention.cuda.CudaLayers;
import io.github.starattention.cuda.DeviceArray;
import io.github.starattention.cuda.GpuMatrix;
import io.github.starattention.cuda.LaunchPlan;
import io.github.starattention.kv.KvStore;
import io.github.starattention.linear.WeightType;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.IntConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link Decoder}'s forward pass with the whole model on one GPU: the weights are uploaded once, the activations and
 * the KV ({@link CudaKvStore}) stay in GPU memory, and a pass copies to the GPU only the token ids, their positions
 * and each partition's key ranges, and back only what it is asked for (one token id when greedy, see
 * {@link Logits.Want}). The layers are those of {@link Decoder}, in the same order, on the kernels of
 * {@link CudaLayers} and {@link CudaAttentionKernel}.
 *
 * <p><b>Numbers.</b> With BF16 weights the matrix products run on tensor cores with bf16 inputs (activations are
 * rounded to bf16 where a product reads them) and fp32 accumulation; with F32 weights they run in fp32 on the CUDA
 * cores, so that the GPU and the CPU agree token for token. The residual stream, norms, RoPE, softmax and every sum
 * are fp32 either way; K and V are stored as the attention kernel's {@code KvDtype} (fp16 by default).
 *
 * <p><b>State of a pass</b> ({@link Workspace}, GPU memory, row-major, {@code T} tokens of the chunk, {@code D}
 * hidden size, {@code H}/{@code KV} query/KV heads, {@code hd} head size, {@code F} MLP width, {@code P} partitions;
 * "act" is the weights' type, fp32 or bf16):
 * <pre>
 *   ids, positions  int [T]
 *   x        fp32 [T][D]               the residual stream, updated in place
 *   xb       act  [T][D]               a normed copy of x, input of a projection
 *   qkv      fp32 [T][H*hd + 2*KV*hd]  fused projection; K and V go straight into the target store
 *   q, att   fp32 [T][H][hd]           rotated queries; attention output (then act for the output projection)
 *   parts    fp32 [P][T][H][hd], partsLse fp32 [P][T][H]   one partial per partition, merged by LSE into att
 *   gateUp   fp32 [min(T, M)][2F]      the gate/up projection of M = mlpRows tokens at a time (memory: 2F x 4
 *                                      bytes a row is the largest row here), h act [T][F] their SwiGLU
 *   logits   fp32 [vocab]              last token only
 * </pre>
 * Passes run concurrently: each takes a workspace of its own from a pool, and takes the device lock only while it
 * queues kernels, never while it waits for remote partitions or an anchor.
 *
 * <p><b>Decode steps as CUDA graphs.</b> A pass of at most {@value #GRAPH_TOKENS} token over local partitions only (a
 * decode step; no remote partitions or hooks, which copy mid-pass) queues its kernels (about ten a layer) into its
 * workspace's {@link LaunchPlan} and launches them as one graph: the ids, positions and key ranges are copied before,
 * the token or logits after. Steps differ in the KV slot written and, as the context grows, the attention's key split:
 * those nodes are updated in place, so a step costs one graph launch instead of a driver call per kernel
 * ({@link Options#graphs()}).
 */
public final class CudaDecoder implements ForwardPass {

    private static final Logger log = LoggerFactory.getLogger(CudaDecoder.class);

    /** Tokens per chunk of a GPU pass: enough rows for the tensor-core tiles to fill the GPU. */
    public static final int DEFAULT_CHUNK = 4096;
    /**
     * Tokens per gate/up slice of the MLP: its fp32 output is the largest scratch buffer (256 MiB for 4,096 tokens of
     * Llama-3.2-1B), and 1,024 rows still give the product hundreds of tiles (512 for Llama-3.2-1B on Hopper).
     */
    public static final int DEFAULT_MLP_ROWS = 1024;
    /** Passes of at most this many tokens (decode steps) run as a replayed CUDA graph when {@link Options#graphs()}. */
    public static final int GRAPH_TOKENS = 1;

    /**
     * How the GPU pass runs.
     *
     * @param mlpRows tokens per gate/up slice of the MLP ({@link #DEFAULT_MLP_ROWS}; fewer: less GPU memory, and the
     *                results differ at most in summation order, where a slice takes another product kernel)
     * @param graphs  whether decode steps run as replayed CUDA graphs (default: yes; the same kernels with the same
     *                inputs, so the same logits, with fewer driver calls)
     */
    public record Options(int mlpRows, boolean graphs) {

        /** {@link #DEFAULT_MLP_ROWS}, graphs on. */
        public static final Options DEFAULTS = new Options(DEFAULT_MLP_ROWS, true);

        public Options {
            if (mlpRows < 1) {
                throw new IllegalArgumentException("mlpRows must be at least 1: " + mlpRows);
            }
        }

        public Options withMlpRows(int rows) {
            return new Options(rows, graphs);
        }

        public Options withGraphs(boolean on) {
            return new Options(mlpRows, on);
        }
    }

    private final Config c;
    private final CudaLayers gpu;
    private final CudaAttentionKernel attention;
    private final WeightType type;
    private final GpuMatrix embedding;
    private final GpuMatrix lmHead;
    private final Layer[] layers;
    private final DeviceArray finalNorm;
    private final CudaLayers.RopeTable rope;
    private final int dim;
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final int ffn;
    private final int vocab;
    private final float eps;
    private final float scale;
    private final long weightBytes;
    private final Options options;
    private final ConcurrentLinkedQueue<Workspace> idle = new ConcurrentLinkedQueue<>();
    private final List<Workspace> all = new ArrayList<>();

    private record Layer(DeviceArray attnNorm, GpuMatrix qkv, DeviceArray qkvBias, GpuMatrix o, DeviceArray mlpNorm,
                         GpuMatrix gateUp, GpuMatrix down) {
    }

    private CudaDecoder(Decoder cpu, CudaAttentionKernel attention, List<AutoCloseable> uploaded, Options options) {
        this.c = cpu.config();
        this.options = options;
        this.attention = attention;
        this.gpu = new CudaLayers(attention);
        DecoderWeights w = cpu.weights();
        this.type = w.layers[0].qkv().type();
        if (type != WeightType.F32 && type != WeightType.BF16) {
            throw new UnsupportedOperationException("the GPU decoder takes F32 or BF16 weights, not " + type);
        }
        // a product's input has the type of the weights it meets, one type for the whole pass; the kernels read
        // rows in 32-column (bf16) or 4-column (fp32) steps
        int step = type == WeightType.BF16 ? 32 : 4;
        List<io.github.starattention.linear.Matrix> products = new ArrayList<>(List.of(w.lmHead));
        for (DecoderWeights.Layer l : w.layers) {
            products.addAll(List.of(l.qkv(), l.o(), l.gateUp(), l.down()));
        }
        for (io.github.starattention.linear.Matrix m : products) {
            if (m.type() != type || m.cols() % step != 0) {
                throw new UnsupportedOperationException("the GPU decoder takes weights of one type with a multiple of "
                        + step + " columns; this model has " + m);
            }
        }
        this.dim = c.embeddingLength;
        this.heads = c.numberOfHeads;
        this.kvHeads = c.numberOfKeyValueHeads;
        this.headDim = c.headSize;
        this.ffn = c.hiddenLength;
        this.eps = c.layerNormEps;
        this.scale = cpu.attentionScale();
        this.embedding = keep(uploaded, gpu.upload(w.embedding, "embedding"));
        this.lmHead = w.lmHead == w.embedding ? embedding : keep(uploaded, gpu.upload(w.lmHead, "LM head"));
        this.vocab = lmHead.rows();
        this.layers = new Layer[w.layers.length];
        for (int i = 0; i < layers.length; i++) {
            DecoderWeights.Layer l = w.layers[i];
            String name = "layer " + i + " ";
            layers[i] = new Layer(
                    keep(uploaded, gpu.upload(l.attnNorm(), name + "attention norm")),
                    keep(uploaded, gpu.upload(l.qkv(), name + "Q/K/V")),
                    l.qkvBias() == null ? null : keep(uploaded, gpu.upload(l.qkvBias(), name + "Q/K/V bias")),
                    keep(uploaded, gpu.upload(l.o(), name + "output projection")),
                    keep(uploaded, gpu.upload(l.mlpNorm(), name + "MLP norm")),
                    keep(uploaded, gpu.upload(l.gateUp(), name + "gate/up")),
                    keep(uploaded, gpu.upload(l.down(), name + "down")));
        }
        this.finalNorm = keep(uploaded, gpu.upload(w.finalNorm, "final norm"));
        float[][] table = cpu.rope().table(cpu.rope().maxPositions());
        this.rope = keep(uploaded, gpu.uploadRope(table[0], table[1], headDim));
        this.weightBytes = w.bytes(); // the same matrices and vectors in the same types as on the host
    }

    private static <T extends AutoCloseable> T keep(List<AutoCloseable> uploaded, T t) {
        uploaded.add(t);
        return t;
    }

    /**
     * Uploads the weights of {@code cpu} (F32 or BF16) to the GPU of {@code attention}, whose KV stores the passes
     * will read and write.
     *
     * @throws UnsupportedOperationException for quantized weights (Q8, Q4), which the GPU kernels do not read
     */
    public static CudaDecoder upload(Decoder cpu, CudaAttentionKernel attention) {
        return upload(cpu, attention, Options.DEFAULTS);
    }

    /** {@link #upload(Decoder, CudaAttentionKernel)} with {@code options}. */
    public static CudaDecoder upload(Decoder cpu, CudaAttentionKernel attention, Options options) {
        List<AutoCloseable> uploaded = new ArrayList<>();
        long t0 = System.nanoTime();
        try {
            CudaDecoder d = new CudaDecoder(cpu, attention, uploaded, options);
            log.info("uploaded {} MiB of {} weights to {} ({}) in {} ms", d.weightBytes >> 20, d.type,
                    attention.name(), attention.deviceName(), (System.nanoTime() - t0) / 1_000_000);
            return d;
        } catch (RuntimeException | Error e) {
            for (AutoCloseable a : uploaded) {
                try {
                    a.close();
                } catch (Exception suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        }
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
        return weightBytes;
    }

    @Override
    public String name() {
        return attention.name();
    }

    @Override
    public Logits forward(int[] tokens, ChunkAttention attention, Logits.Want want) {
        Workspace ws = take();
        try {
            Chunk chunk = new Chunk(ws, 0, tokens, attention);
            Runnable pass = () -> {
                for (int layer = 0; layer < layers.length; layer++) {
                    layer(layer, chunk, ws);
                }
                queueLogits(chunk, ws, want);
            };
            if (replays(chunk)) {
                gpu.replay(ws.plan(), pass);
            } else {
                pass.run();
            }
            return readLogits(chunk, ws, want);
        } finally {
            idle.add(ws);
        }
    }

    /** Whether the pass of {@code ch} runs as its workspace's graph: a decode step that copies nothing mid-pass. */
    private boolean replays(Chunk ch) {
        ChunkAttention a = ch.attention;
        return options.graphs() && ch.tokens <= GRAPH_TOKENS && a.remote() == null && a.hook() == null
                && ch.local.stream().allMatch(DeviceQuery::hasKeys);
    }

    /** Decode steps launched as a graph so far, over all workspaces. */
    public long graphLaunches() {
        synchronized (all) {
            return all.stream().mapToLong(w -> w.plan == null ? 0 : w.plan.replays()).sum();
        }
    }

    @Override
    public void forwardLayerMajor(int[][] chunks, ChunkAttention[] attention, int layerCount, IntConsumer afterLayer) {
        Workspace ws = take();
        List<Chunk> open = new ArrayList<>(chunks.length);
        try {
            for (int i = 0; i < chunks.length; i++) {
                open.add(new Chunk(ws, i, chunks[i], attention[i]));
            }
            for (int layer = 0; layer < Math.min(layerCount, layers.length); layer++) {
                for (Chunk chunk : open) {
                    layer(layer, chunk, ws);
                }
                gpu.sync("layer " + layer + " of a GPU pass");
                afterLayer.accept(layer);
            }
        } finally {
            idle.add(ws);
        }
    }

    /** One decoder layer on the chunk's residual stream, in place (the same steps as {@link Decoder}'s layer). */
    private void layer(int layer, Chunk ch, Workspace ws) {
        Layer lw = layers[layer];
        int t = ch.tokens;
        CudaKvStore target = ch.target;

        // attention block: x += o_proj(attention(rope(q), rope(k), v)); K and V go into the target store
        gpu.rmsNorm(ch.x, 0, lw.attnNorm, t, dim, eps, ws.xb, type);
        gpu.multiply(lw.qkv, ws.xb, t, ws.qkv, false);
        boolean hook = ch.attention.hook() != null;
        gpu.qkvRope(ws.qkv, lw.qkvBias, ch.positions, rope, t, heads, target, layer, ch.attention.firstSlot(), ws.q,
                hook ? ws.k : null, hook ? ws.v : null);
        attend(layer, ch, ws);
        DeviceArray attended = ws.att;
        if (type == WeightType.BF16) {
            gpu.toBf16(ws.att, (long) t * heads * headDim, ws.attAct);
            attended = ws.attAct;
        }
        gpu.multiply(lw.o, attended, t, ch.x, true);

        // MLP block: x += down(silu(gate(xb)) * up(xb))
        gpu.rmsNorm(ch.x, 0, lw.mlpNorm, t, dim, eps, ws.xb, type);
        for (int r = 0; r < t; r += options.mlpRows()) {
            int n = Math.min(options.mlpRows(), t - r);
            gpu.multiply(lw.gateUp, ws.xb, r, n, ws.gateUp, false);
            gpu.swiglu(ws.gateUp, n, ffn, ws.h, r, type);
        }
        gpu.multiply(lw.down, ws.h, t, ch.x, true);
    }

    /**
     * Attends over every partition of the chunk: the remote ones (requested first, so the network works while the
     * GPU does), then the local stores, each into its slot of {@code parts}, merged exactly by their log-sum-exp in
     * context order into {@code att}. One local partition and nothing remote is written to {@code att} directly.
     */
    private void attend(int layer, Chunk ch, Workspace ws) {
        ChunkAttention a = ch.attention;
        int t = ch.tokens;
        long rows = (long) t * heads;
        if (a.hook() != null) {
            float[] k = new float[t * kvHeads * headDim];
            float[] v = new float[k.length];
            ws.k.download(0, k);
            ws.v.download(0, v);
            a.hook().stored(layer, k, v, t);
        }
        CompletableFuture<List<PartialAttention>> remote = null;
        if (a.remote() != null) {
            float[] q = new float[(int) rows * headDim];
            ws.q.download(0, q);
            remote = a.remote().attend(layer, new AttentionQuery(q, a.positions(), t, heads, headDim, scale));
        }
        if (a.hook() != null) {
            a.hook().beforeAttention(layer);
        }
        if (remote == null && ch.local.size() == 1) {
            attention.attend(ch.local.getFirst(), layer, ws.q, scale, ws.att, 0, ws.lse, 0);
            return;
        }
        List<PartialAttention> far = List.of();
        if (remote != null) {
            try {
                far = remote.join();
            } catch (CompletionException e) {
                throw e.getCause() instanceof RuntimeException re ? re : e;
            }
        }
        int parts = far.size() + ch.local.size();
        long outBytes = rows * headDim * Float.BYTES;
        long lseBytes = rows * Float.BYTES;
        ws.parts.ensure(parts * outBytes);
        ws.partsLse.ensure(parts * lseBytes);
        for (int i = 0; i < far.size(); i++) {
            ws.parts.upload(i * outBytes, far.get(i).output());
            ws.partsLse.upload(i * lseBytes, far.get(i).lse());
        }
        for (int i = 0; i < ch.local.size(); i++) {
            int slot = far.size() + i;
            attention.attend(ch.local.get(i), layer, ws.q, scale, ws.parts, slot * outBytes, ws.partsLse,
                    slot * lseBytes);
        }
        attention.merge(ws.parts, ws.partsLse, parts, (int) rows, headDim, ws.att, ws.lse);
    }

    /** Queues the final norm and the LM head of the last token, and its argmax where {@code want} needs only that. */
    private void queueLogits(Chunk ch, Workspace ws, Logits.Want want) {
        if (want == Logits.Want.NONE) {
            return;
        }
        gpu.rmsNorm(ch.x, ch.tokens - 1, finalNorm, 1, dim, eps, ws.xb, type);
        gpu.multiply(lmHead, ws.xb, 1, ws.logits, false);
        if (argmaxOnGpu(want)) {
            gpu.queueArgmax(ws.logits, vocab, ws.argmax);
        }
    }

    /** Whether the GPU's argmax is the greedy token: the logits' order is the model's (no negative multiplier). */
    private boolean argmaxOnGpu(Logits.Want want) {
        return want == Logits.Want.ARGMAX && (c.logitMultiplier == null || c.logitMultiplier > 0);
    }

    /**
     * The last token's logits as {@code want} asks, once the pass's kernels are done: the argmax or all of them. With
     * nothing asked, waits for the pass's kernels, so that a pass returns when its K/V are written and a kernel fault
     * is reported by the pass that caused it.
     */
    private Logits readLogits(Chunk ch, Workspace ws, Logits.Want want) {
        if (want == Logits.Want.NONE) {
            gpu.sync("a GPU pass of " + ch.tokens + " tokens");
            return null;
        }
        if (argmaxOnGpu(want)) {
            return Logits.argmaxOnly(gpu.readArgmax(ws.argmax));
        }
        float[] values = new float[vocab];
        ws.logits.download(0, values);
        for (int i = 0; i < vocab; i++) {
            if (Float.isNaN(values[i])) {
                throw new IllegalStateException("the GPU pass produced NaN logits (token " + i + ")");
            }
            if (c.logitMultiplier != null) {
                values[i] /= c.logitMultiplier;
            }
        }
        return Logits.of(values);
    }

    private Workspace take() {
        Workspace ws = idle.poll();
        if (ws == null) {
            ws = new Workspace();
            synchronized (all) {
                all.add(ws);
            }
        }
        return ws;
    }

    /** Frees the weights and workspaces (not the attention kernel, which the engine owns); no pass may be running. */
    @Override
    public void close() {
        synchronized (all) {
            all.forEach(Workspace::close);
            all.clear();
        }
        idle.clear();
        embedding.close();
        if (lmHead != embedding) {
            lmHead.close();
        }
        for (Layer l : layers) {
            l.attnNorm.close();
            l.qkv.close();
            if (l.qkvBias != null) {
                l.qkvBias.close();
            }
            l.o.close();
            l.mlpNorm.close();
            l.gateUp.close();
            l.down.close();
        }
        finalNorm.close();
        rope.close();
    }

    /**
     * One chunk of a pass: its tokens' residual stream, ids and positions on the GPU (in the workspace's buffers of
     * that chunk), and each local partition's key ranges, prepared once: the stores do not change size during a pass.
     */
    private final class Chunk {
        final int tokens;
        final ChunkAttention attention;
        final CudaKvStore target;
        final DeviceArray x;
        final DeviceArray positions;
        final List<DeviceQuery> local = new ArrayList<>();

        Chunk(Workspace ws, int index, int[] ids, ChunkAttention a) {
            this.tokens = ids.length;
            this.attention = a;
            if (!(a.target() instanceof CudaKvStore store)) {
                throw new IllegalArgumentException("a GPU pass writes its K/V into a CUDA KV store, got "
                        + (a.target() == null ? "none" : a.target().getClass().getSimpleName()));
            }
            this.target = store;
            for (int id : ids) {
                if (id < 0 || id >= embedding.rows()) {
                    throw new IllegalArgumentException("token id " + id + " is outside the vocabulary of "
                            + embedding.rows());
                }
            }
            for (int p : a.positions()) {
                if (p < 0 || p >= rope.positions()) {
                    throw new IllegalArgumentException("position " + p + " is outside the model's " + rope.positions()
                            + " positions");
                }
            }
            ws.ensure(tokens);
            ChunkBuffers b = ws.chunk(index);
            x = b.x.ensure((long) tokens * dim * Float.BYTES);
            b.ids.upload(ids);
            gpu.embed(embedding, b.ids, tokens, x);
            positions = b.positions;
            positions.upload(a.positions());
            for (int i = 0; i < a.local().size(); i++) {
                if (!(a.local().get(i) instanceof CudaKvStore cs)) {
                    throw new IllegalArgumentException("a GPU pass attends to CUDA KV stores, got "
                            + a.local().get(i).getClass().getSimpleName());
                }
                local.add(CudaDecoder.this.attention.prepare(cs, a.positions(), heads, b.ranges(i)));
            }
        }
    }

    /** A chunk's own buffers in a workspace (several chunks of one pass run layer by layer). */
    private final class ChunkBuffers {
        final DeviceArray x = gpu.allocate("residual stream");
        final DeviceArray ids = gpu.allocate("token ids");
        final DeviceArray positions = gpu.allocate("positions");
        final List<DeviceArray> ranges = new ArrayList<>();

        DeviceArray ranges(int partition) {
            while (ranges.size() <= partition) {
                ranges.add(gpu.allocate("key ranges"));
            }
            return ranges.get(partition);
        }

        void close() {
            x.close();
            ids.close();
            positions.close();
            ranges.forEach(DeviceArray::close);
        }
    }

    /** The scratch of one pass at a time (see the class comment); grow-only, reused across passes. */
    private final class Workspace implements AutoCloseable {
        final DeviceArray xb = gpu.allocate("normed activations");
        final DeviceArray qkv = gpu.allocate("Q/K/V projection");
        final DeviceArray q = gpu.allocate("queries");
        final DeviceArray k = gpu.allocate("keys for a hook");
        final DeviceArray v = gpu.allocate("values for a hook");
        final DeviceArray att = gpu.allocate("attention output");
        final DeviceArray attAct = gpu.allocate("attention output (bf16)");
        final DeviceArray lse = gpu.allocate("attention LSE");
        final DeviceArray parts = gpu.allocate("partial attention outputs");
        final DeviceArray partsLse = gpu.allocate("partial attention LSE");
        final DeviceArray gateUp = gpu.allocate("gate/up projection");
        final DeviceArray h = gpu.allocate("SwiGLU output");
        final DeviceArray logits = gpu.allocate("logits");
        final DeviceArray argmax = gpu.allocate("argmax");
        final List<ChunkBuffers> chunks = new ArrayList<>();
        /** The graph of this workspace's decode steps, made by the first one (its buffers are this workspace's). */
        LaunchPlan plan;

        LaunchPlan plan() {
            if (plan == null) {
                plan = gpu.newLaunchPlan("a decode step on " + attention.name());
            }
            return plan;
        }

        ChunkBuffers chunk(int i) {
            while (chunks.size() <= i) {
                chunks.add(new ChunkBuffers());
            }
            return chunks.get(i);
        }

        /** Room for a chunk of {@code t} tokens. */
        void ensure(int t) {
            long qDim = (long) heads * headDim;
            long kvDim = (long) kvHeads * headDim;
            xb.ensure((long) t * dim * Float.BYTES);
            qkv.ensure(t * (qDim + 2 * kvDim) * Float.BYTES);
            q.ensure(t * qDim * Float.BYTES);
            k.ensure(t * kvDim * Float.BYTES);
            v.ensure(t * kvDim * Float.BYTES);
            att.ensure(t * qDim * Float.BYTES);
            attAct.ensure(t * qDim * 2);
            lse.ensure((long) t * heads * Float.BYTES);
            gateUp.ensure(2L * Math.min(t, options.mlpRows()) * ffn * Float.BYTES);
            h.ensure((long) t * ffn * CudaLayers.elementBytes(type));
            logits.ensure((long) vocab * Float.BYTES);
        }

        @Override
        public void close() {
            for (DeviceArray a : List.of(xb, qkv, q, k, v, att, attAct, lse, parts, partsLse, gateUp, h, logits,
                    argmax)) {
                a.close();
            }
            chunks.forEach(ChunkBuffers::close);
            if (plan != null) {
                plan.close();
            }
        }
    }
}
