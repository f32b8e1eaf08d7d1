package io.github.starattention.cuda;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionQuery;
import io.github.starattention.attention.LseMerge;
import io.github.starattention.attention.PartialAttention;
import io.github.starattention.kv.KvLayout;
import io.github.starattention.kv.KvStore;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;

/**
 * Attention on an NVIDIA GPU (compute capability 8.0+) through the JCuda driver API, over {@link CudaKvStore}s.
 *
 * <p>Each {@link #attend} uploads the fp32 queries, runs one of two PTX kernels and downloads the fp32 output and
 * natural-log LSE (same contract as the CPU kernel: a key is visible iff its position is {@code <=} the token's,
 * GQA maps query head {@code h} to KV head {@code h / (heads / kvHeads)}, a token that sees no key gets zero output
 * and {@code lse = -Infinity}):
 * <ul>
 *   <li>more than 16 query rows per KV head (prefill, query encoding): {@code attn_fwd}, flash-style tiles of
 *       {@code 16 x warps} query rows (the GQA heads of one KV head packed together) by 64 keys in shared memory,
 *       tensor-core {@code mma.sync} with fp32 accumulation, the heaviest causal tiles first; on compute capability
 *       9.x {@code attn_fwd_wg} instead, the same tiling of 128 rows on Hopper's {@code wgmma};</li>
 *   <li>at most 16 rows per KV head (decode): {@code attn_split}, the 4 warps of a block share the 64-key tiles.</li>
 * </ul>
 * When the tiles alone cannot fill the GPU (decode, or a short query over a long context), the keys are split into
 * chunks processed by separate blocks, and the partial states are merged on the GPU ({@code lse_merge_f32}, the
 * same math as {@link LseMerge}).
 *
 * <p>Dtypes: K and V live on the GPU as {@link KvDtype} (fp16 by default, bf16 optional); queries are rounded to
 * the same type for the matrix products; scores, softmax, LSE, accumulation and outputs are fp32. Head dims 64 and
 * 128 are supported. Calls are serialized by a lock per kernel (the GPU runs one attention at a time).
 */
public final class CudaAttentionKernel implements AttentionKernel {

    /** Key-tile size of the kernels. */
    static final int BN = 64;
    /** Fewest keys per split worth a separate block. */
    static final int MIN_SPLIT_KEYS = 256;
    /** fp32 staging for {@link CudaKvStore#put}: at most this many floats per copy. */
    private static final long STAGE_FLOATS = 1L << 24;
    private static final double LOG2E = 1.4426950408889634;

    private final CudaRuntime rt;
    private final KvDtype dtype;
    private final Set<CudaKvStore> stores = ConcurrentHashMap.newKeySet();
    private final Scratch qBuf = new Scratch("queries");
    private final Scratch qposBuf = new Scratch("query positions");
    private final Scratch outBuf = new Scratch("attention output");
    private final Scratch lseBuf = new Scratch("attention LSE");
    private final Scratch partOut = new Scratch("split-KV partial outputs");
    private final Scratch partLse = new Scratch("split-KV partial LSE");
    private final Scratch stage = new Scratch("fp32 staging for KV writes");
    private volatile String fwdVariant;
    private volatile double splitWaves = Double.parseDouble(System.getProperty("starattention.cuda.splitWaves", "1"));

    /** A kernel on device 0 with the KV dtype from {@link KvDtype#fromSystemProperty()}. */
    public CudaAttentionKernel() {
        this(0, KvDtype.fromSystemProperty());
    }

    /**
     * A kernel on CUDA device {@code device}.
     *
     * @throws IllegalStateException when CUDA is not usable here (see {@link CudaProbe})
     * @throws CudaAttentionException when the driver fails to set up the device or load the kernels
     */
    public CudaAttentionKernel(int device, KvDtype dtype) {
        this.rt = new CudaRuntime(device);
        this.dtype = dtype;
        this.fwdVariant = System.getProperty("starattention.cuda.fwdVariant", defaultFwdVariant());
    }

    /** The prefill variant a kernel starts with: {@code wg} on Hopper, else {@code w4m2}. */
    String defaultFwdVariant() {
        return rt.hopper ? "wg" : "w4m2";
    }

    @Override
    public String name() {
        return "cuda:" + rt.ordinal;
    }

    /** The GPU's name, e.g. {@code NVIDIA H100 80GB HBM3}. */
    public String deviceName() {
        return rt.deviceName;
    }

    /** The tensor-core kernels with K and V in {@link #kvDtype()}: {@code cuda-fp16} or {@code cuda-bf16}. */
    @Override
    public String numerics() {
        return "cuda-" + dtype.name().toLowerCase(java.util.Locale.ROOT);
    }

    /** Element type of K and V in the stores this kernel creates. */
    public KvDtype kvDtype() {
        return dtype;
    }

    /** Bytes of GPU memory in use on this device (by every process), from the driver: total minus free. */
    public long deviceMemoryInUse() {
        long[] free = {0};
        long[] total = {0};
        rt.enter();
        try {
            CudaRuntime.check(JCudaDriver.cuMemGetInfo(free, total), "cuMemGetInfo");
        } finally {
            rt.exit();
        }
        return total[0] - free[0];
    }

    /** Theoretical DRAM bandwidth of the GPU in GB/s (memory clock x bus width), 0 if unknown. */
    public double peakBandwidthGBps() {
        return rt.peakGBps;
    }

    /** {@inheritDoc} Head dims 64 and 128 are supported. */
    @Override
    public CudaKvStore createStore(KvLayout layout) {
        checkHeadDim(layout.headDim());
        CudaKvStore s = new CudaKvStore(this, rt, layout, dtype);
        stores.add(s);
        return s;
    }

    private static void checkHeadDim(int d) {
        if (d != 64 && d != 128) {
            throw new UnsupportedOperationException("the CUDA kernels support head dims 64 and 128, not " + d);
        }
    }

    @Override
    public PartialAttention attend(KvStore kvStore, int layer, AttentionQuery query) {
        CudaKvStore store = checkStore(kvStore);
        KvLayout layout = store.layout();
        int heads = query.heads();
        int d = query.headDim();
        int tokens = query.tokens();
        if (d != layout.headDim() || heads <= 0 || heads % layout.kvHeads() != 0) {
            throw new IllegalArgumentException("query [" + heads + " heads x " + d + "] does not fit KV " + layout);
        }
        if (layer < 0 || layer >= layout.layers()) {
            throw new IndexOutOfBoundsException("layer " + layer + " of " + layout.layers());
        }
        if ((long) tokens * heads * d > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("query too large for one call: " + tokens + " tokens x " + heads
                    + " heads x " + d);
        }
        if (tokens == 0) {
            return PartialAttention.empty(0, heads, d);
        }
        int maxPos = Integer.MIN_VALUE;
        int[] pos = query.positions();
        for (int t = 0; t < tokens; t++) {
            maxPos = Math.max(maxPos, pos[t]);
        }
        int nkeys = store.visibleKeys(maxPos);
        if (nkeys == 0) {
            return PartialAttention.empty(tokens, heads, d);
        }
        float[] o = new float[tokens * heads * d];
        float[] l = new float[tokens * heads];
        rt.enter();
        try {
            Plan plan = prepare(store, query.q(), pos, tokens, heads, d, nkeys);
            launch(plan, store, layer, query.scale(), true);
            rt.copyDtoH(Pointer.to(o), outBuf.ptr, (long) o.length * Float.BYTES, () -> plan.describe());
            rt.copyDtoH(Pointer.to(l), lseBuf.ptr, (long) l.length * Float.BYTES, () -> plan.describe());
        } finally {
            rt.exit();
        }
        return new PartialAttention(tokens, heads, d, o, l);
    }

    /**
     * Merges partial attentions on the GPU (the same result as {@link LseMerge#merge}, up to fp32 rounding): one
     * upload of all parts, one kernel, one download.
     */
    public PartialAttention merge(List<PartialAttention> parts) {
        if (parts.isEmpty()) {
            throw new IllegalArgumentException("nothing to merge");
        }
        PartialAttention first = parts.getFirst();
        int d = first.headDim();
        int rows = first.tokens() * first.heads();
        for (PartialAttention p : parts) {
            if (p.tokens() != first.tokens() || p.heads() != first.heads() || p.headDim() != d) {
                throw new IllegalArgumentException("cannot merge " + first + " with " + p);
            }
        }
        if (d % 4 != 0 || d > 1024 || rows == 0) {
            return LseMerge.merge(parts);
        }
        int n = parts.size();
        long partBytes = (long) rows * d * Float.BYTES;
        float[] o = new float[rows * d];
        float[] l = new float[rows];
        rt.enter();
        try {
            CUdeviceptr po = partOut.get(n * partBytes);
            CUdeviceptr pl = partLse.get((long) n * rows * Float.BYTES);
            for (int i = 0; i < n; i++) {
                rt.copyHtoD(po.withByteOffset(i * partBytes), Pointer.to(parts.get(i).output()), partBytes, "merge");
                rt.copyHtoD(pl.withByteOffset((long) i * rows * Float.BYTES), Pointer.to(parts.get(i).lse()),
                        (long) rows * Float.BYTES, "merge");
            }
            CUdeviceptr out = outBuf.get(partBytes);
            CUdeviceptr lse = lseBuf.get((long) rows * Float.BYTES);
            mergeOnDevice(po, pl, n, rows, d, out, lse);
            rt.sync(() -> "kernel lse_merge_f32 (" + n + " parts, " + rows + " rows, head dim " + d + ")");
            rt.copyDtoH(Pointer.to(o), out, partBytes, () -> "lse_merge_f32");
            rt.copyDtoH(Pointer.to(l), lse, (long) rows * Float.BYTES, () -> "lse_merge_f32");
        } finally {
            rt.exit();
        }
        return new PartialAttention(first.tokens(), first.heads(), d, o, l);
    }

    /** Closes every store this kernel created, frees its buffers and releases the device. */
    @Override
    public void close() {
        if (rt.isClosed()) {
            return;
        }
        for (CudaKvStore s : new ArrayList<>(stores)) {
            s.close();
        }
        rt.enter();
        try {
            for (Scratch s : List.of(qBuf, qposBuf, outBuf, lseBuf, partOut, partLse, stage)) {
                s.free();
            }
        } finally {
            rt.exit();
        }
        rt.close();
    }

    @Override
    public String toString() {
        return "CudaAttentionKernel[" + name() + ", " + rt.deviceName + ", " + dtype + "]";
    }

    // ----------------------------------------------------------------------------------------------------------
    // internals (the benchmark in this package uses them too); callers hold rt.enter()

    CudaRuntime runtime() {
        return rt;
    }

    void forget(CudaKvStore s) {
        stores.remove(s);
    }

    /**
     * The prefill kernel variant: {@code w4} (4 warps x 16 rows), {@code w8} (8 x 16), {@code w4m2} (4 x 32), all
     * {@code mma.sync}; {@code wg} (2 warpgroups x 64 rows, {@code wgmma}) on compute capability 9.x only.
     */
    void setFwdVariant(String variant) {
        fwdRows(variant);
        if (variant.equals("wg") && !rt.hopper) {
            throw new IllegalArgumentException("prefill variant wg needs compute capability 9.x, this GPU has "
                    + rt.ccMajor + "." + rt.ccMinor);
        }
        this.fwdVariant = variant;
    }

    private static int fwdRows(String variant) {
        return switch (variant) {
            case "w4" -> 64;
            case "w8", "w4m2", "wg" -> 128;
            default -> throw new IllegalArgumentException("prefill variant " + variant
                    + ": expected w4, w8, w4m2 or wg");
        };
    }

    /** Keys per tile of {@code attn_fwd_wg} (KN of attention_sm90.cu's DEF_WG lines). */
    static int wgKeys(int d) {
        return d == 64 ? 128 : 64;
    }

    void setSplitWaves(double waves) {
        this.splitWaves = waves;
    }

    CudaKvStore checkStore(KvStore kvStore) {
        if (!(kvStore instanceof CudaKvStore store)) {
            throw new IllegalArgumentException("the CUDA kernel reads CUDA stores, got "
                    + kvStore.getClass().getSimpleName());
        }
        if (!store.ownedBy(this)) {
            throw new IllegalArgumentException("the store was created by another CUDA kernel");
        }
        store.checkOpen();
        return store;
    }

    /**
     * Uploads the queries, their positions and the per-row-tile key ranges of the launch plan for attention over the
     * first {@code nkeys} slots of {@code store} (the keys visible to the latest query token).
     */
    Plan prepare(CudaKvStore store, float[] q, int[] pos, int tokens, int heads, int d, int nkeys) {
        Plan p = plan(tokens, heads, store.layout().kvHeads(), d, nkeys);
        int[] buf = positionsAndRanges(store, p, pos);
        long qBytes = (long) tokens * heads * d * Float.BYTES;
        rt.copyHtoD(qBuf.get(qBytes), Pointer.to(q), qBytes, "queries");
        rt.copyHtoD(qposBuf.get((long) buf.length * Integer.BYTES), Pointer.to(buf), (long) buf.length * Integer.BYTES,
                "query positions");
        return p;
    }

    /**
     * What the kernels read besides Q, K and V: {@code [tokens rounded up to even]} query positions, then per row tile
     * the pair (keys visible to some row of the tile, keys visible to every row).
     */
    private static int[] positionsAndRanges(CudaKvStore store, Plan p, int[] pos) {
        int tokens = p.tokens();
        int group = p.heads() / p.kvHeads();
        long rows = (long) tokens * group;
        int posInts = (tokens + 1) & ~1; // the ranges (int2) start 8-byte aligned
        int[] buf = new int[posInts + 2 * p.mtiles()];
        System.arraycopy(pos, 0, buf, 0, tokens);
        int bm = p.rowsPerTile();
        for (int m = 0; m < p.mtiles(); m++) {
            long r0 = (long) m * bm;
            long r1 = Math.min(rows, r0 + bm) - 1;
            int lo = Integer.MAX_VALUE;
            int hi = Integer.MIN_VALUE;
            for (int t = (int) (r0 / group); t <= (int) (r1 / group); t++) {
                lo = Math.min(lo, pos[t]);
                hi = Math.max(hi, pos[t]);
            }
            int some = Math.min(p.nkeys(), store.visibleKeys(hi));
            buf[posInts + 2 * m] = some;
            buf[posInts + 2 * m + 1] = Math.min(some, store.visibleKeys(lo));
        }
        return buf;
    }

    /** The launch configuration of one attention call. */
    record Plan(String kernel, int threads, int smem, int rowsPerTile, int mtiles, int kvHeads, int splits,
                int chunk, int tokens, int heads, int headDim, int nkeys) {

        String describe() {
            return "kernel " + kernel + " (tokens=" + tokens + ", heads=" + heads + ", kvHeads=" + kvHeads
                    + ", headDim=" + headDim + ", keys=" + nkeys + ", splits=" + splits + ", chunk=" + chunk + ")";
        }
    }

    Plan plan(int tokens, int heads, int kvHeads, int d, int nkeys) {
        checkHeadDim(d);
        int group = heads / kvHeads;
        long rows = (long) tokens * group;
        boolean split = rows <= 16;
        String variant = fwdVariant;
        int bm = split ? 16 : fwdRows(variant);
        boolean wg = !split && variant.equals("wg");
        String name = split ? "attn_split_" + dtype.suffix() + "_d" + d
                : wg ? "attn_fwd_wg_" + dtype.suffix() + "_d" + d
                : "attn_fwd_" + dtype.suffix() + "_d" + d + "_" + variant;
        int threads = split || !(wg || variant.equals("w8")) ? 128 : 256;
        int smem = wg ? bm * d * 2 + 4 * wgKeys(d) * d * 2 + bm * Integer.BYTES + 1024  // + alignment to 1 KiB
                : bm * d * 2 + 4 * BN * d * 2 + bm * Integer.BYTES + 16;
        long mt = (rows + bm - 1) / bm;
        if (mt > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("too many query rows: " + rows);
        }
        int mtiles = (int) mt;
        long blocks = (long) mtiles * kvHeads;
        long target = (long) Math.ceil(rt.smCount * (double) rt.blocksPerSm(name, threads, smem) * splitWaves);
        int splits = 1;
        int chunk = nkeys;
        if (blocks < target && nkeys > MIN_SPLIT_KEYS) {
            long want = Math.min((target + blocks - 1) / blocks, (nkeys + MIN_SPLIT_KEYS - 1) / MIN_SPLIT_KEYS);
            if (want > 1) {
                chunk = (int) (((nkeys + want - 1) / want + BN - 1) / BN * BN);
                splits = (nkeys + chunk - 1) / chunk;
            }
        }
        if (splits == 1) {
            chunk = nkeys;
        }
        return new Plan(name, threads, smem, bm, mtiles, kvHeads, splits, chunk, tokens, heads, d, nkeys);
    }

    /**
     * Runs attention of the queries uploaded by {@link #prepare} over layer {@code layer}; the result lands in
     * {@link #outBuf} / {@link #lseBuf}.
     */
    void launch(Plan p, CudaKvStore store, int layer, float scale, boolean sync) {
        long rows = (long) p.tokens() * p.heads();
        launch(p, store, layer, scale, qBuf.ptr, qposBuf.ptr, outBuf.get(rows * p.headDim() * Float.BYTES),
                lseBuf.get(rows * Float.BYTES));
        if (sync) {
            rt.sync(p::describe);
        }
    }

    /** Launches attention of the queries {@code q} (positions and ranges at {@code qpos}) into {@code out}/{@code lse}. */
    private void launch(Plan p, CudaKvStore store, int layer, float scale, CUdeviceptr q, CUdeviceptr qpos,
                        CUdeviceptr out, CUdeviceptr lse) {
        int kvHeads = p.kvHeads();
        int tokens = p.tokens();
        int heads = p.heads();
        int d = p.headDim();
        long rows = (long) tokens * heads;
        CUdeviceptr o = out;
        CUdeviceptr l = lse;
        if (p.splits() > 1) {
            o = partOut.get(p.splits() * rows * d * Float.BYTES);
            l = partLse.get(p.splits() * rows * Float.BYTES);
        }
        CUdeviceptr ranges = qpos.withByteOffset((long) ((tokens + 1) & ~1) * Integer.BYTES);
        rt.launch(p.kernel(), p.mtiles() * kvHeads, 1, p.splits(), p.threads(), p.smem(), p::describe, q, qpos,
                store.keys(layer), store.values(layer), store.positionsPtr(), ranges, o, l, tokens, heads, kvHeads,
                (long) store.capacity() * d, p.chunk(), (float) (scale * LOG2E));
        if (p.splits() > 1) {
            mergeOnDevice(o, l, p.splits(), (int) rows, d, out, lse);
        }
    }

    // ----------------------------------------------------------------------------------------------------------
    // attention on GPU-resident queries, for the layer kernels (CudaLayers): nothing is copied to or from the host
    // but the positions, once per query and store

    /**
     * A query of {@code positions.length} tokens over {@code store} whose positions and key ranges are on the GPU (in
     * {@code into}), for {@link #attend(DeviceQuery, int, DeviceArray, float, DeviceArray, long, DeviceArray, long)}
     * at every layer. The store must not change size while the query is used.
     */
    public DeviceQuery prepare(CudaKvStore store, int[] positions, int heads, DeviceArray into) {
        CudaKvStore s = checkStore(store);
        int tokens = positions.length;
        int maxPos = Integer.MIN_VALUE;
        for (int p : positions) {
            maxPos = Math.max(maxPos, p);
        }
        int nkeys = tokens == 0 ? 0 : s.visibleKeys(maxPos);
        if (nkeys == 0) {
            return new DeviceQuery(s, null, tokens, heads, null);
        }
        Plan plan = plan(tokens, heads, s.layout().kvHeads(), s.layout().headDim(), nkeys);
        into.upload(positionsAndRanges(s, plan, positions));
        return new DeviceQuery(s, plan, tokens, heads, into);
    }

    /**
     * Attention of the GPU-resident queries {@code q} ({@code fp32 [tokens][heads][headDim]}) prepared as {@code query}
     * over layer {@code layer}: output {@code fp32 [tokens][heads][headDim]} into {@code out} at byte offset
     * {@code outOffset}, natural-log LSE {@code fp32 [tokens][heads]} into {@code lse} at {@code lseOffset}. Queued on
     * the GPU; nothing waits for it.
     */
    public void attend(DeviceQuery query, int layer, DeviceArray q, float scale, DeviceArray out, long outOffset,
                       DeviceArray lse, long lseOffset) {
        CudaKvStore store = query.store;
        store.checkOpen();
        if (layer < 0 || layer >= store.layout().layers()) {
            throw new IndexOutOfBoundsException("layer " + layer + " of " + store.layout().layers());
        }
        long rows = (long) query.tokens * query.heads;
        rt.enter();
        try {
            if (query.plan == null) {
                rt.refuseWhileRecording("attention over no keys (a memset)");
                check(JCudaDriver.cuMemsetD32(lse.at(lseOffset), Float.floatToRawIntBits(Float.NEGATIVE_INFINITY),
                        rows), "no visible keys: LSE");
                check(JCudaDriver.cuMemsetD8(out.at(outOffset), (byte) 0, rows * store.layout().headDim() * Float.BYTES),
                        "no visible keys: output");
                return;
            }
            launch(query.plan, store, layer, scale, q.ptr(), query.positions.ptr(), out.at(outOffset),
                    lse.at(lseOffset));
        } finally {
            rt.exit();
        }
    }

    /**
     * Merges {@code parts} partial attentions of {@code rows} rows of head dim {@code d} lying one after another in
     * {@code partOut} ({@code [parts][rows][d]}) and {@code partLse} ({@code [parts][rows]}) into {@code out} and
     * {@code lse} (as {@link LseMerge#merge}). Queued on the GPU.
     */
    public void merge(DeviceArray partOut, DeviceArray partLse, int parts, int rows, int d, DeviceArray out,
                      DeviceArray lse) {
        rt.enter();
        try {
            mergeOnDevice(partOut.ptr(), partLse.ptr(), parts, rows, d, out.ptr(), lse.ptr());
        } finally {
            rt.exit();
        }
    }

    /** A query prepared on the GPU by {@link #prepare(CudaKvStore, int[], int, DeviceArray)}. */
    public static final class DeviceQuery {
        private final CudaKvStore store;
        private final Plan plan;
        private final int tokens;
        private final int heads;
        private final DeviceArray positions;

        private DeviceQuery(CudaKvStore store, Plan plan, int tokens, int heads, DeviceArray positions) {
            this.store = store;
            this.plan = plan;
            this.tokens = tokens;
            this.heads = heads;
            this.positions = positions;
        }

        /** Whether the query sees any key (else {@code attend} writes an empty result with memsets, not a kernel). */
        public boolean hasKeys() {
            return plan != null;
        }
    }

    private static void check(int rc, String what) {
        CudaRuntime.check(rc, what);
    }

    private void mergeOnDevice(CUdeviceptr po, CUdeviceptr pl, int parts, int rows, int d, CUdeviceptr out,
                               CUdeviceptr lse) {
        rt.launch("lse_merge_f32", rows, 1, 1, 256, 0, () -> parts + " parts, " + rows + " rows, head dim " + d, po, pl,
                parts, rows, d, out, lse);
    }

    /**
     * Writes {@code tokens} fp32 rows {@code [tokens][kvHeads][headDim]} of {@code src} (from {@code srcOffset}) into
     * the head-major {@code type} buffer {@code dst} of {@code capacity} slots at slot {@code firstSlot}.
     */
    void writeKv(CUdeviceptr dst, int capacity, int firstSlot, KvLayout layout, KvDtype type, float[] src,
                 int srcOffset, int tokens) {
        String fn = "convert_kv_" + type.suffix();
        int row = layout.rowLength();
        int perChunk = (int) Math.max(1, Math.min(tokens, STAGE_FLOATS / row));
        CUdeviceptr st = stage.get((long) perChunk * row * Float.BYTES);
        for (int done = 0; done < tokens; done += perChunk) {
            int cnt = Math.min(perChunk, tokens - done);
            rt.copyHtoD(st, Pointer.to(src).withByteOffset((srcOffset + (long) done * row) * Float.BYTES),
                    (long) cnt * row * Float.BYTES, "KV write");
            long n4 = (long) cnt * row / 4;
            int grid = (int) Math.max(1, Math.min((n4 + 255) / 256, rt.smCount * 16L));
            rt.launch(fn, grid, 1, 1, 256, 0, () -> cnt + " tokens of " + layout, st, dst, cnt, layout.kvHeads(),
                    layout.headDim() / 4, (long) capacity, firstSlot + done);
        }
        rt.sync(() -> "kernel " + fn + " (" + tokens + " tokens of " + layout + ")");
    }

    /** A grow-only device buffer. */
    private final class Scratch {
        private final String what;
        private CUdeviceptr ptr;
        private long bytes;

        Scratch(String what) {
            this.what = what;
        }

        CUdeviceptr get(long need) {
            if (need > bytes || ptr == null) {
                rt.free(ptr);
                ptr = null;
                bytes = 0;
                long n = Math.max(need, 1L << 16);
                n = (n + (1L << 20) - 1) >>> 20 << 20;
                ptr = rt.alloc(n, what);
                bytes = n;
            }
            return ptr;
        }

        void free() {
            rt.free(ptr);
            ptr = null;
            bytes = 0;
        }
    }
}
