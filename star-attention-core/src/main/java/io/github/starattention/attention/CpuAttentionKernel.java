package io.github.starattention.attention;

import io.github.starattention.concurrent.SharedTasks;
import io.github.starattention.linear.Lanes;
import io.github.starattention.kv.HeapKvStore;
import io.github.starattention.kv.KvLayout;
import io.github.starattention.kv.KvPrecision;
import io.github.starattention.kv.KvStore;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinWorkerThread;
import java.util.concurrent.RecursiveAction;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * CPU attention over a {@link HeapKvStore} with the JDK Vector API: tiled online softmax (flash-style), grouped-query
 * attention, causality decided by position ids. Accumulation is fp32; the LSE is the natural log of the scaled
 * scores; a token that sees no key gets {@code lse = -Infinity} and a zero output.
 *
 * <p><b>Work split.</b> The query rows of one KV head are its group's query heads at every token; a task is
 * (KV head, query tile of up to {@value #TILE_ROWS} rows, key split). Rows are ordered {@code (token - t0) * group +
 * g}, so all heads of a group share every K/V tile load (and bf16 widening) and the rows of a tile see similar key
 * counts; a decode step's task is one KV head's {@code group} query heads over one key split. Keys are split only
 * when there are fewer than {@value #MIN_TASKS} (KV head, query tile) tasks, as in decode; the splits' partial
 * results are combined with the LSE merge. The split depends on the query and the store only, never on the thread
 * count, so a partial is the same bit for bit whatever the number of threads. Prefill chunks run on the kernel's own
 * {@link ForkJoinPool}. For a
 * decode step the calling thread and up to {@code threads - 1} pool workers claim tasks from a shared counter: the
 * caller never waits for a worker to wake up (on a busy or virtualized machine that can take longer than the whole
 * call), only for tasks a worker has started.
 *
 * <p><b>Data layout</b> read (see {@link HeapKvStore}): per layer and KV head, K in transposed panels of 16 keys
 * ({@code [headDim][16]}, so one vector load reads one dimension of 16 keys) and V row-major ({@code [key][headDim]}),
 * fp32 or bf16 bits; a tile's K panels and V rows start at the same offset. Queries and outputs are
 * {@code [token][head][headDim]}, the LSE {@code [token][head]}.
 *
 * <p><b>Per task</b>, with thread-local scratch (layout below), for every key tile of {@code TILE = 4 * lanes} keys
 * (64 with AVX-512) and every block of 4 rows (the FMAs of padding rows in the last block are skipped, so a group of 3
 * heads costs 3 rows, not 4):
 * <ol>
 *   <li>scores: for each dimension {@code i} four vector loads read {@code k[i]} of the tile's keys and four
 *       broadcasts of {@code q[r][i]} feed 16 FMAs into 16 accumulators (4 rows x 4 vectors of keys);</li>
 *   <li>online softmax per row: keys at or after the row's visible count (a prefix, since positions in a store
 *       increase) are set to {@code -Infinity}; new max, {@code alpha = exp(mOld - mNew)}, {@code p = exp(s - mNew)}
 *       with the vector {@code EXP}, {@code l = alpha * l + sum(p)};</li>
 *   <li>{@code O = alpha * O + P V}: V is row-major, so per key four vector loads of the value row and four
 *       broadcasts of {@code p[r][j]} feed 16 FMAs (4 rows x 4 vectors of {@code headDim}, in chunks).</li>
 * </ol>
 * bf16 K and V are widened where they are loaded, once per block of rows (all of a decode step's group): a bf16 value
 * is the high half of its fp32 value. A K vector is {@code LANES} shorts sign-extended to ints and shifted left by
 * 16. A V load takes {@code 2 * LANES} shorts as {@code LANES} ints, each holding dimensions {@code 2i} (low half)
 * and {@code 2i + 1} (high half): a shift left by 16 gives the even dimensions, masking the low half the odd ones,
 * two cheap lane-wise operations per 32 values. The accumulators then hold each chunk of {@code 2 * LANES}
 * dimensions evens first, reordered once per task ({@link #unpairDims}). Head dims that are not a multiple of
 * {@code 4 * LANES} widen whole tiles into scratch instead.
 *
 * <p><b>Scratch layout</b> (per worker thread, fp32, rows padded to a multiple of 4):
 * {@code q[rows][headDim]} query times scale; {@code o[rows][headDim]} unnormalised output;
 * {@code s[rows][TILE]} scores, then probabilities, of the current key tile; {@code m}, {@code l}, {@code alpha}
 * {@code [rows]} running max, running sum and the current tile's rescale factor; {@code visible[rows]} keys each
 * row sees in the task's key range; {@code row[headDim]} for reordering; {@code kTile}, {@code vTile[TILE * headDim]}
 * a widened bf16 tile, only for head dims the blocks do not widen themselves.
 */
public final class CpuAttentionKernel implements AttentionKernel {

    private static final Logger LOG = LoggerFactory.getLogger(CpuAttentionKernel.class);

    /** At most 16 lanes: a transposed K panel row is 16 floats. */
    static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED.length() <= HeapKvStore.KEY_PANEL
            ? FloatVector.SPECIES_PREFERRED : FloatVector.SPECIES_512;
    private static final int LANES = SPECIES.length();
    /** {@code LANES} bf16 values (half a vector), sign-extended to {@link #INTS} to widen one vector of K. */
    private static final VectorSpecies<Short> HALF = VectorSpecies.of(short.class,
            VectorShape.forBitSize(SPECIES.vectorBitSize() / 2));
    private static final VectorSpecies<Integer> INTS = VectorSpecies.of(int.class, SPECIES.vectorShape());
    /** {@code 2 * LANES} bf16 values (a whole vector), read as {@code LANES} ints of two values each to widen V. */
    private static final VectorSpecies<Short> PAIRS = VectorSpecies.of(short.class, SPECIES.vectorShape());
    /** Keeps the odd (high) bf16 value of a pair in place: its bits already are the fp32 value. */
    private static final int HIGH_HALF = 0xFFFF0000;
    /** Keys per tile: 4 vectors, so the score block is 4 rows x 4 vectors. */
    static final int TILE = 4 * LANES;
    /** Query rows per task before any key split. */
    static final int TILE_ROWS = 64;
    /** Rows per register block; blocks with fewer real rows skip the FMAs of the rest. */
    private static final int BLOCK = 4;
    /**
     * Fewer (KV head, query tile) tasks than this trigger key splits. A constant, not a multiple of the thread count,
     * so that a partial does not depend on the number of threads (nor on the host). 32 gives a decode step over 3 KV
     * heads 24 tasks at 4K keys: 2 threads end within a task of each other, and a worker that wakes late (up to a
     * millisecond on a busy 2-core machine) still finds some; the splits' merge costs under 1% of the call.
     */
    private static final int MIN_TASKS = 32;
    /**
     * Below this many multiply-adds ({@code tokens x visible keys x heads x headDim}, e.g. one decode token over
     * 1K keys) a call runs on the caller's thread: waking pool workers costs more than the work, up to a millisecond
     * on a busy or virtualized 2-core machine, and a decode step makes one call per layer and partition.
     */
    private static final long INLINE_WORK = 1L << 21;
    /**
     * Calls with at most this many query tokens (decode steps, short queries) are shared between the caller and the
     * pool; longer ones (prefill chunks) go to the pool whole, where they keep its work stealing.
     */
    private static final int SHARED_MAX_TOKENS = 16;
    /**
     * A key split is never shorter than this many keys: a split task re-reads the query rows, writes a partial and
     * its merge reads it back, about as much as 10 keys of work, 2% of 512.
     */
    private static final int MIN_SPLIT_KEYS = 512;
    private static final float[] IOTA = new float[TILE];
    private static final float EXP_MIN = -87.3f;
    private static final float LOG2E = 1.44269504088896341f;
    private static final float ROUND = 12582912f;
    private static final FloatVector MINUS_LN2_HI = FloatVector.broadcast(SPECIES, -0.693359375f);
    private static final FloatVector MINUS_LN2_LO = FloatVector.broadcast(SPECIES, 2.12194440e-4f);
    private static final float EXP_C5 = 1.9875691500e-4f;
    private static final float EXP_C4 = 1.3981999507e-3f;
    private static final FloatVector EXP_C3 = FloatVector.broadcast(SPECIES, 8.3334519073e-3f);
    private static final FloatVector EXP_C2 = FloatVector.broadcast(SPECIES, 4.1665795894e-2f);
    private static final FloatVector EXP_C1 = FloatVector.broadcast(SPECIES, 1.6666665459e-1f);
    private static final FloatVector EXP_C0 = FloatVector.broadcast(SPECIES, 5.0000001201e-1f);

    static {
        for (int i = 0; i < TILE; i++) {
            IOTA[i] = i;
        }
    }

    private final int threads;
    private final KvPrecision precision;
    private final ForkJoinPool pool;
    private final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);

    /** A kernel running on {@code threads} worker threads with fp32 KV. */
    public CpuAttentionKernel(int threads) {
        this(threads, KvPrecision.F32);
    }

    /** A kernel running on {@code threads} worker threads whose stores hold K and V in {@code precision}. */
    public CpuAttentionKernel(int threads, KvPrecision precision) {
        if (threads <= 0) {
            throw new IllegalArgumentException("threads must be positive, got " + threads);
        }
        this.threads = threads;
        this.precision = Objects.requireNonNull(precision, "precision");
        this.pool = new ForkJoinPool(threads, p -> {
            ForkJoinWorkerThread t = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(p);
            t.setName("star-attention-cpu-" + t.getPoolIndex());
            return t;
        }, null, false);
        LOG.debug("CPU attention kernel: {} threads, {} fp32 lanes, key tile {}", threads, LANES, TILE);
    }

    @Override
    public int heapBytesPerKvElement() {
        return precision.bytes();
    }

    @Override
    public String name() {
        return "cpu";
    }

    /** fp32 accumulation; K and V in fp32 or bf16. */
    @Override
    public String numerics() {
        return precision == KvPrecision.F32 ? "cpu-fp32" : "cpu-fp32-kv-bf16";
    }

    @Override
    public KvStore createStore(KvLayout layout) {
        return new HeapKvStore(layout, precision);
    }

    @Override
    public PartialAttention attend(KvStore kvStore, int layer, AttentionQuery query) {
        return attendAll(List.of(kvStore), layer, query).getFirst();
    }

    /**
     * All stores' tasks go to the workers as one batch: a decode step over 4 blocks wakes the pool once, not 4 times.
     * Each store's job splits its keys as it would alone, so every partial equals {@link #attend}'s bit for bit.
     */
    @Override
    public List<PartialAttention> attendAll(List<? extends KvStore> stores, int layer, AttentionQuery query) {
        List<PartialAttention> outs = new ArrayList<>(stores.size());
        Batch batch = new Batch(stores.size());
        for (KvStore kvStore : stores) {
            PartialAttention out = PartialAttention.empty(query.tokens(), query.heads(), query.headDim());
            outs.add(out);
            batch.add(new Job(heapStore(kvStore, query), layer, query, out));
        }
        int tasks = batch.tasks();
        if (tasks == 0) {
            return outs;
        }
        if (tasks == 1 || threads == 1 || batch.work() < INLINE_WORK) {
            Scratch s = scratch.get();
            for (int i = 0; i < tasks; i++) {
                batch.run(i, s);
            }
        } else if (query.tokens() <= SHARED_MAX_TOKENS) {
            SharedTasks.run(pool, threads - 1, tasks, i -> batch.run(i, scratch.get()));
        } else {
            pool.invoke(new Tasks(batch, 0, tasks));
        }
        batch.mergeSplits();
        return outs;
    }

    @Override
    public void close() {
        pool.shutdown();
    }

    /** Checks that {@code kvStore} is a heap store {@code query} fits. */
    static HeapKvStore heapStore(KvStore kvStore, AttentionQuery query) {
        if (!(kvStore instanceof HeapKvStore store)) {
            throw new IllegalArgumentException("the CPU kernels read heap stores, got " + kvStore.getClass().getSimpleName());
        }
        KvLayout layout = store.layout();
        if (query.headDim() != layout.headDim() || query.heads() % layout.kvHeads() != 0) {
            throw new IllegalArgumentException("query [" + query.heads() + " heads x " + query.headDim()
                    + "] does not fit KV " + layout);
        }
        return store;
    }

    /** Number of leading slots whose position is {@code <= p} (positions are strictly increasing). */
    static int visibleKeys(int[] kpos, int size, int p) {
        int lo = 0;
        int hi = size;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (kpos[mid] <= p) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    /** One {@link #attend} call: its inputs, the task decomposition and the key-split partials. */
    private static final class Job {
        /** fp32 K and V, or null when the store holds bf16 ({@link #keys16}, widened per tile). */
        private final float[] keys;
        private final float[] values;
        private final short[] keys16;
        private final short[] values16;
        private final int capacity;
        private final int d;
        private final int heads;
        private final int group;
        private final int tokens;
        private final float scale;
        private final float[] q;
        private final int[] visible;
        private final int tokensPerTile;
        private final int queryTiles;
        private final int kvHeads;
        private final int splits;
        private final int splitKeys;
        private final int maxVisible;
        private final float[] output;
        private final float[] lse;
        /** Per split: running max {@code [splits][tokens*heads]}, sum, and unnormalised output {@code [..][headDim]}. */
        private final float[] splitMax;
        private final float[] splitSum;
        private final float[] splitOut;

        Job(HeapKvStore store, int layer, AttentionQuery query, PartialAttention out) {
            boolean bf16 = store.precision() == KvPrecision.BF16;
            this.keys = bf16 ? null : store.keys(layer);
            this.values = bf16 ? null : store.values(layer);
            this.keys16 = bf16 ? store.keysBf16(layer) : null;
            this.values16 = bf16 ? store.valuesBf16(layer) : null;
            this.capacity = store.capacity();
            this.d = query.headDim();
            this.heads = query.heads();
            this.kvHeads = store.layout().kvHeads();
            this.group = heads / kvHeads;
            this.tokens = query.tokens();
            this.scale = query.scale();
            this.q = query.q();
            this.output = out.output();
            this.lse = out.lse();
            int[] kpos = store.positions();
            int size = store.size();
            this.visible = new int[tokens];
            int max = 0;
            for (int t = 0; t < tokens; t++) {
                visible[t] = visibleKeys(kpos, size, query.positions()[t]);
                max = Math.max(max, visible[t]);
            }
            this.maxVisible = max;
            this.tokensPerTile = Math.max(1, TILE_ROWS / group);
            this.queryTiles = ceilDiv(tokens, tokensPerTile);
            int keyTiles = ceilDiv(max, TILE);
            int base = kvHeads * queryTiles;
            int want = ceilDiv(MIN_TASKS, Math.max(1, base));
            int most = Math.max(1, keyTiles * TILE / MIN_SPLIT_KEYS);
            int tilesPerSplit = ceilDiv(keyTiles, Math.max(1, Math.min(want, most)));
            this.splitKeys = tilesPerSplit * TILE;
            this.splits = keyTiles == 0 ? 0 : ceilDiv(keyTiles, tilesPerSplit);
            int rows = tokens * heads;
            this.splitMax = splits > 1 ? new float[splits * rows] : null;
            this.splitSum = splits > 1 ? new float[splits * rows] : null;
            this.splitOut = splits > 1 ? new float[splits * rows * d] : null;
        }

        int tasks() {
            return kvHeads * queryTiles * splits;
        }

        long work() {
            return (long) tokens * maxVisible * heads * d;
        }

        void run(int task, Scratch sc) {
            int split = task % splits;
            int qt = task / splits % queryTiles;
            int kvh = task / splits / queryTiles;
            int t0 = qt * tokensPerTile;
            int rows = (Math.min(tokens, t0 + tokensPerTile) - t0) * group;
            int padded = (rows + BLOCK - 1) & -BLOCK;
            int k0 = split * splitKeys;
            int k1 = Math.min(maxVisible, k0 + splitKeys);
            sc.ensure(padded, d);
            float[] qs = sc.q;
            float[] o = sc.o;
            float[] s = sc.s;
            float[] m = sc.m;
            float[] l = sc.l;
            float[] alpha = sc.alpha;
            int[] rv = sc.visible;
            int end = k0;
            for (int r = 0; r < padded; r++) {
                if (r < rows) {
                    int t = t0 + r / group;
                    int src = (t * heads + kvh * group + r % group) * d;
                    for (int i = 0; i < d; i++) {
                        qs[r * d + i] = q[src + i] * scale;
                    }
                    rv[r] = Math.min(visible[t], k1);
                    end = Math.max(end, rv[r]);
                } else {
                    Arrays.fill(qs, r * d, r * d + d, 0f);
                    rv[r] = 0;
                }
                m[r] = Float.NEGATIVE_INFINITY;
                l[r] = 0;
                Arrays.fill(o, r * d, r * d + d, 0f);
            }
            float[] kk = keys;
            float[] vv = values;
            // bf16 is widened in the register blocks, where each loaded vector serves up to 4 rows: even a prefill
            // tile's 16 blocks were no slower so than widening the tile once into scratch, which stores and reloads
            // it. Head dims the blocked V code does not cover (not a multiple of 4 vectors) use the scratch tile.
            boolean inBlocks = keys16 != null && d % (4 * LANES) == 0;
            for (int kt = k0; kt < end; kt += TILE) {
                // panels are TILE-aligned, so the K panel and the V rows of slot kt start at the same offset
                int base = (kvh * capacity + kt) * d;
                if (keys16 != null && !inBlocks) {
                    // a bf16 tile is TILE * d contiguous elements of K (its panels) and of V: widen both once
                    sc.ensureTile(TILE * d);
                    widen(keys16, base, sc.kTile, TILE * d);
                    widen(values16, base, sc.vTile, TILE * d);
                    kk = sc.kTile;
                    vv = sc.vTile;
                    base = 0;
                }
                for (int r0 = 0; r0 < padded; r0 += BLOCK) {
                    int hi = Math.max(Math.max(rv[r0], rv[r0 + 1]), Math.max(rv[r0 + 2], rv[r0 + 3]));
                    if (hi <= kt) {
                        continue;
                    }
                    if (inBlocks) {
                        scoresBf16(qs, r0 * d, d, keys16, base, s, r0 * TILE, rows - r0);
                    } else {
                        scores(qs, r0 * d, d, kk, base, s, r0 * TILE, rows - r0);
                    }
                    for (int r = r0; r < r0 + BLOCK; r++) {
                        softmax(s, r * TILE, kt, rv[r], m, l, alpha, r);
                    }
                    if (inBlocks) {
                        accumulateBf16(values16, base, d, Math.min(TILE, hi - kt), s, r0, o, alpha, rows - r0);
                    } else {
                        accumulate(vv, base, d, Math.min(TILE, hi - kt), s, r0, o, alpha, rows - r0);
                    }
                }
            }
            if (inBlocks) {
                unpairDims(o, rows, d, sc.row);
            }
            for (int r = 0; r < rows; r++) {
                int row = (t0 + r / group) * heads + kvh * group + r % group;
                if (splits == 1) {
                    if (l[r] > 0) {
                        float inv = 1f / l[r];
                        for (int i = 0; i < d; i++) {
                            output[row * d + i] = o[r * d + i] * inv;
                        }
                        lse[row] = (float) (m[r] + Math.log(l[r]));
                    }
                } else {
                    int at = split * tokens * heads + row;
                    splitMax[at] = m[r];
                    splitSum[at] = l[r];
                    System.arraycopy(o, r * d, splitOut, at * d, d);
                }
            }
        }

        /** Combines the key splits (unnormalised outputs with their max and sum) into the output. */
        void mergeSplits() {
            if (splits <= 1) {
                return;
            }
            int rows = tokens * heads;
            for (int row = 0; row < rows; row++) {
                float mx = Float.NEGATIVE_INFINITY;
                for (int sp = 0; sp < splits; sp++) {
                    mx = Math.max(mx, splitMax[sp * rows + row]);
                }
                if (mx == Float.NEGATIVE_INFINITY) {
                    continue;
                }
                double sum = 0;
                for (int sp = 0; sp < splits; sp++) {
                    sum += splitSum[sp * rows + row] * Math.exp(splitMax[sp * rows + row] - mx);
                }
                for (int sp = 0; sp < splits; sp++) {
                    int at = sp * rows + row;
                    if (splitSum[at] == 0) {
                        continue;
                    }
                    float w = (float) (Math.exp(splitMax[at] - mx) / sum);
                    for (int i = 0; i < d; i++) {
                        output[row * d + i] += w * splitOut[at * d + i];
                    }
                }
                lse[row] = (float) (mx + Math.log(sum));
            }
        }
    }

    /**
     * Undoes the dimension order {@link #accumulateBf16} leaves in {@code o}: in each chunk of {@code 2 * LANES}
     * dimensions the even ones come first, then the odd ones. {@code tmp} holds {@code d} floats.
     */
    static void unpairDims(float[] o, int rows, int d, float[] tmp) {
        for (int r = 0; r < rows; r++) {
            int at = r * d;
            for (int c = 0; c < d; c += 2 * LANES) {
                for (int i = 0; i < LANES; i++) {
                    tmp[c + 2 * i] = o[at + c + i];
                    tmp[c + 2 * i + 1] = o[at + c + LANES + i];
                }
            }
            System.arraycopy(tmp, 0, o, at, d);
        }
    }

    /** {@code dst[0..n) = src[from..from+n)} widened from bfloat16 bits to fp32 (exact). */
    static void widen(short[] src, int from, float[] dst, int n) {
        int i = 0;
        for (; i + LANES <= n; i += LANES) {
            ((IntVector) ShortVector.fromArray(HALF, src, from + i).convertShape(VectorOperators.S2I, INTS, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, i);
        }
        for (; i < n; i++) {
            dst[i] = Float.intBitsToFloat(src[from + i] << 16);
        }
    }

    /**
     * Scores of 4 rows against one key tile: {@code s[r][j] = q[r] . k[j]} (q already scaled); only the first
     * {@code n} rows are computed (the branches are loop-invariant and predicted).
     */
    static void scores(float[] qs, int q0, int d, float[] k, int base, float[] s, int s0, int n) {
        int k0 = base + panelOffset(0, d);
        int k1 = base + panelOffset(1, d);
        int k2 = base + panelOffset(2, d);
        int k3 = base + panelOffset(3, d);
        FloatVector s00 = FloatVector.zero(SPECIES);
        FloatVector s01 = s00;
        FloatVector s02 = s00;
        FloatVector s03 = s00;
        FloatVector s10 = s00;
        FloatVector s11 = s00;
        FloatVector s12 = s00;
        FloatVector s13 = s00;
        FloatVector s20 = s00;
        FloatVector s21 = s00;
        FloatVector s22 = s00;
        FloatVector s23 = s00;
        FloatVector s30 = s00;
        FloatVector s31 = s00;
        FloatVector s32 = s00;
        FloatVector s33 = s00;
        for (int i = 0; i < d; i++) {
            int ki = i * HeapKvStore.KEY_PANEL;
            FloatVector v0 = FloatVector.fromArray(SPECIES, k, k0 + ki);
            FloatVector v1 = FloatVector.fromArray(SPECIES, k, k1 + ki);
            FloatVector v2 = FloatVector.fromArray(SPECIES, k, k2 + ki);
            FloatVector v3 = FloatVector.fromArray(SPECIES, k, k3 + ki);
            FloatVector q = FloatVector.broadcast(SPECIES, qs[q0 + i]);
            s00 = v0.fma(q, s00);
            s01 = v1.fma(q, s01);
            s02 = v2.fma(q, s02);
            s03 = v3.fma(q, s03);
            if (n > 1) {
                q = FloatVector.broadcast(SPECIES, qs[q0 + d + i]);
                s10 = v0.fma(q, s10);
                s11 = v1.fma(q, s11);
                s12 = v2.fma(q, s12);
                s13 = v3.fma(q, s13);
            }
            if (n > 2) {
                q = FloatVector.broadcast(SPECIES, qs[q0 + 2 * d + i]);
                s20 = v0.fma(q, s20);
                s21 = v1.fma(q, s21);
                s22 = v2.fma(q, s22);
                s23 = v3.fma(q, s23);
            }
            if (n > 3) {
                q = FloatVector.broadcast(SPECIES, qs[q0 + 3 * d + i]);
                s30 = v0.fma(q, s30);
                s31 = v1.fma(q, s31);
                s32 = v2.fma(q, s32);
                s33 = v3.fma(q, s33);
            }
        }
        s00.intoArray(s, s0);
        s01.intoArray(s, s0 + LANES);
        s02.intoArray(s, s0 + 2 * LANES);
        s03.intoArray(s, s0 + 3 * LANES);
        s10.intoArray(s, s0 + TILE);
        s11.intoArray(s, s0 + TILE + LANES);
        s12.intoArray(s, s0 + TILE + 2 * LANES);
        s13.intoArray(s, s0 + TILE + 3 * LANES);
        s20.intoArray(s, s0 + 2 * TILE);
        s21.intoArray(s, s0 + 2 * TILE + LANES);
        s22.intoArray(s, s0 + 2 * TILE + 2 * LANES);
        s23.intoArray(s, s0 + 2 * TILE + 3 * LANES);
        s30.intoArray(s, s0 + 3 * TILE);
        s31.intoArray(s, s0 + 3 * TILE + LANES);
        s32.intoArray(s, s0 + 3 * TILE + 2 * LANES);
        s33.intoArray(s, s0 + 3 * TILE + 3 * LANES);
    }

    /** {@link #scores} over bf16 K, each vector of keys widened (class comment) once for the block's rows. */
    static void scoresBf16(float[] qs, int q0, int d, short[] k, int base, float[] s, int s0, int n) {
        int k0 = base + panelOffset(0, d);
        int k1 = base + panelOffset(1, d);
        int k2 = base + panelOffset(2, d);
        int k3 = base + panelOffset(3, d);
        FloatVector s00 = FloatVector.zero(SPECIES);
        FloatVector s01 = s00;
        FloatVector s02 = s00;
        FloatVector s03 = s00;
        FloatVector s10 = s00;
        FloatVector s11 = s00;
        FloatVector s12 = s00;
        FloatVector s13 = s00;
        FloatVector s20 = s00;
        FloatVector s21 = s00;
        FloatVector s22 = s00;
        FloatVector s23 = s00;
        FloatVector s30 = s00;
        FloatVector s31 = s00;
        FloatVector s32 = s00;
        FloatVector s33 = s00;
        for (int i = 0; i < d; i++) {
            int ki = i * HeapKvStore.KEY_PANEL;
            FloatVector v0 = ((IntVector) ShortVector.fromArray(HALF, k, k0 + ki)
                    .convertShape(VectorOperators.S2I, INTS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            FloatVector v1 = ((IntVector) ShortVector.fromArray(HALF, k, k1 + ki)
                    .convertShape(VectorOperators.S2I, INTS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            FloatVector v2 = ((IntVector) ShortVector.fromArray(HALF, k, k2 + ki)
                    .convertShape(VectorOperators.S2I, INTS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            FloatVector v3 = ((IntVector) ShortVector.fromArray(HALF, k, k3 + ki)
                    .convertShape(VectorOperators.S2I, INTS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            FloatVector q = FloatVector.broadcast(SPECIES, qs[q0 + i]);
            s00 = v0.fma(q, s00);
            s01 = v1.fma(q, s01);
            s02 = v2.fma(q, s02);
            s03 = v3.fma(q, s03);
            if (n > 1) {
                q = FloatVector.broadcast(SPECIES, qs[q0 + d + i]);
                s10 = v0.fma(q, s10);
                s11 = v1.fma(q, s11);
                s12 = v2.fma(q, s12);
                s13 = v3.fma(q, s13);
            }
            if (n > 2) {
                q = FloatVector.broadcast(SPECIES, qs[q0 + 2 * d + i]);
                s20 = v0.fma(q, s20);
                s21 = v1.fma(q, s21);
                s22 = v2.fma(q, s22);
                s23 = v3.fma(q, s23);
            }
            if (n > 3) {
                q = FloatVector.broadcast(SPECIES, qs[q0 + 3 * d + i]);
                s30 = v0.fma(q, s30);
                s31 = v1.fma(q, s31);
                s32 = v2.fma(q, s32);
                s33 = v3.fma(q, s33);
            }
        }
        s00.intoArray(s, s0);
        s01.intoArray(s, s0 + LANES);
        s02.intoArray(s, s0 + 2 * LANES);
        s03.intoArray(s, s0 + 3 * LANES);
        s10.intoArray(s, s0 + TILE);
        s11.intoArray(s, s0 + TILE + LANES);
        s12.intoArray(s, s0 + TILE + 2 * LANES);
        s13.intoArray(s, s0 + TILE + 3 * LANES);
        s20.intoArray(s, s0 + 2 * TILE);
        s21.intoArray(s, s0 + 2 * TILE + LANES);
        s22.intoArray(s, s0 + 2 * TILE + 2 * LANES);
        s23.intoArray(s, s0 + 2 * TILE + 3 * LANES);
        s30.intoArray(s, s0 + 3 * TILE);
        s31.intoArray(s, s0 + 3 * TILE + LANES);
        s32.intoArray(s, s0 + 3 * TILE + 2 * LANES);
        s33.intoArray(s, s0 + 3 * TILE + 3 * LANES);
    }

    /** Offset of the {@code v}-th vector of keys of a tile, relative to the tile's first panel. */
    private static int panelOffset(int v, int d) {
        int key = v * LANES;
        return (key & -HeapKvStore.KEY_PANEL) * d + (key & (HeapKvStore.KEY_PANEL - 1));
    }

    /**
     * Online-softmax step of row {@code r} over the scores at {@code s[off..off+TILE)} of keys {@code kt..}: masks
     * the keys at or after {@code visible}, updates {@code m[r]}, {@code l[r]}, sets {@code alpha[r]} and leaves the
     * probabilities in {@code s}.
     *
     * <p>{@code exp(x)} for {@code x <= 0} is inline and branch-free (relative error below 1e-7; the vector
     * {@code EXP} is an out-of-line call that costs about twice as much here, and C2 does not inline a helper this
     * large, hence the code in the loop): {@code x = n ln2 + f} with {@code |f| <= ln2/2}, {@code exp(f)} by the
     * Cephes {@code expf} polynomial, {@code 2^n} added to the exponent bits. {@code n} comes from the
     * round-to-nearest trick {@code x log2e + 1.5 * 2^23}, whose low mantissa bits are {@code n}. Inputs below
     * {@code -87.3} (masked keys are {@code -Infinity}) give about {@code 1e-38}: nothing next to the row's
     * largest term, 1.
     */
    static void softmax(float[] s, int off, int kt, int visible, float[] m, float[] l, float[] alpha, int r) {
        if (visible <= kt) {
            Arrays.fill(s, off, off + TILE, 0f);
            alpha[r] = 1;
            return;
        }
        float limit = visible - kt;
        FloatVector max = FloatVector.broadcast(SPECIES, Float.NEGATIVE_INFINITY);
        for (int v = 0; v < TILE; v += LANES) {
            FloatVector x = FloatVector.fromArray(SPECIES, s, off + v);
            if (limit < TILE) {
                x = x.blend(Float.NEGATIVE_INFINITY, FloatVector.fromArray(SPECIES, IOTA, v).compare(VectorOperators.GE, limit));
                x.intoArray(s, off + v);
            }
            max = max.max(x);
        }
        float old = m[r];
        float mx = Math.max(old, max.reduceLanes(VectorOperators.MAX));
        FloatVector sum = FloatVector.zero(SPECIES);
        for (int v = 0; v < TILE; v += LANES) {
            FloatVector x = FloatVector.fromArray(SPECIES, s, off + v).sub(mx);
            x = x.blend(EXP_MIN, x.compare(VectorOperators.LT, EXP_MIN));
            FloatVector k = x.fma(LOG2E, ROUND);
            FloatVector n = k.sub(ROUND);
            FloatVector f = n.fma(MINUS_LN2_HI, x);
            f = n.fma(MINUS_LN2_LO, f);
            FloatVector p = f.fma(EXP_C5, EXP_C4).fma(f, EXP_C3).fma(f, EXP_C2).fma(f, EXP_C1).fma(f, EXP_C0);
            p = p.fma(f.mul(f), f).add(1f);
            p = p.reinterpretAsInts().add(k.reinterpretAsInts().lanewise(VectorOperators.LSHL, 23)).reinterpretAsFloats();
            p.intoArray(s, off + v);
            sum = sum.add(p);
        }
        float a = old == mx ? 1f : (float) Math.exp(old - mx);
        l[r] = l[r] * a + Lanes.sum(sum);
        m[r] = mx;
        alpha[r] = a;
    }

    /**
     * {@code o[r] = alpha[r] * o[r] + sum_j p[r][j] * v[j]} for the 4 rows from {@code r0} and the first {@code nk}
     * keys of the tile whose values start at {@code base}. The main loop skips the rows from {@code r0 + n} (padding,
     * whose probabilities are 0); the head-dim tails, a few dimensions at most, do not.
     */
    static void accumulate(float[] v, int base, int d, int nk, float[] p, int r0, float[] o, float[] alpha, int n) {
        float a0 = alpha[r0];
        float a1 = alpha[r0 + 1];
        float a2 = alpha[r0 + 2];
        float a3 = alpha[r0 + 3];
        int p0 = r0 * TILE;
        int p1 = p0 + TILE;
        int p2 = p1 + TILE;
        int p3 = p2 + TILE;
        int o0 = r0 * d;
        int o1 = o0 + d;
        int o2 = o1 + d;
        int o3 = o2 + d;
        int c = 0;
        for (; c + 4 * LANES <= d; c += 4 * LANES) {
            FloatVector x00 = FloatVector.fromArray(SPECIES, o, o0 + c).mul(a0);
            FloatVector x01 = FloatVector.fromArray(SPECIES, o, o0 + c + LANES).mul(a0);
            FloatVector x02 = FloatVector.fromArray(SPECIES, o, o0 + c + 2 * LANES).mul(a0);
            FloatVector x03 = FloatVector.fromArray(SPECIES, o, o0 + c + 3 * LANES).mul(a0);
            FloatVector x10 = FloatVector.fromArray(SPECIES, o, o1 + c).mul(a1);
            FloatVector x11 = FloatVector.fromArray(SPECIES, o, o1 + c + LANES).mul(a1);
            FloatVector x12 = FloatVector.fromArray(SPECIES, o, o1 + c + 2 * LANES).mul(a1);
            FloatVector x13 = FloatVector.fromArray(SPECIES, o, o1 + c + 3 * LANES).mul(a1);
            FloatVector x20 = FloatVector.fromArray(SPECIES, o, o2 + c).mul(a2);
            FloatVector x21 = FloatVector.fromArray(SPECIES, o, o2 + c + LANES).mul(a2);
            FloatVector x22 = FloatVector.fromArray(SPECIES, o, o2 + c + 2 * LANES).mul(a2);
            FloatVector x23 = FloatVector.fromArray(SPECIES, o, o2 + c + 3 * LANES).mul(a2);
            FloatVector x30 = FloatVector.fromArray(SPECIES, o, o3 + c).mul(a3);
            FloatVector x31 = FloatVector.fromArray(SPECIES, o, o3 + c + LANES).mul(a3);
            FloatVector x32 = FloatVector.fromArray(SPECIES, o, o3 + c + 2 * LANES).mul(a3);
            FloatVector x33 = FloatVector.fromArray(SPECIES, o, o3 + c + 3 * LANES).mul(a3);
            for (int j = 0, vo = base + c; j < nk; j++, vo += d) {
                FloatVector v0 = FloatVector.fromArray(SPECIES, v, vo);
                FloatVector v1 = FloatVector.fromArray(SPECIES, v, vo + LANES);
                FloatVector v2 = FloatVector.fromArray(SPECIES, v, vo + 2 * LANES);
                FloatVector v3 = FloatVector.fromArray(SPECIES, v, vo + 3 * LANES);
                FloatVector w = FloatVector.broadcast(SPECIES, p[p0 + j]);
                x00 = v0.fma(w, x00);
                x01 = v1.fma(w, x01);
                x02 = v2.fma(w, x02);
                x03 = v3.fma(w, x03);
                if (n > 1) {
                    w = FloatVector.broadcast(SPECIES, p[p1 + j]);
                    x10 = v0.fma(w, x10);
                    x11 = v1.fma(w, x11);
                    x12 = v2.fma(w, x12);
                    x13 = v3.fma(w, x13);
                }
                if (n > 2) {
                    w = FloatVector.broadcast(SPECIES, p[p2 + j]);
                    x20 = v0.fma(w, x20);
                    x21 = v1.fma(w, x21);
                    x22 = v2.fma(w, x22);
                    x23 = v3.fma(w, x23);
                }
                if (n > 3) {
                    w = FloatVector.broadcast(SPECIES, p[p3 + j]);
                    x30 = v0.fma(w, x30);
                    x31 = v1.fma(w, x31);
                    x32 = v2.fma(w, x32);
                    x33 = v3.fma(w, x33);
                }
            }
            x00.intoArray(o, o0 + c);
            x01.intoArray(o, o0 + c + LANES);
            x02.intoArray(o, o0 + c + 2 * LANES);
            x03.intoArray(o, o0 + c + 3 * LANES);
            x10.intoArray(o, o1 + c);
            x11.intoArray(o, o1 + c + LANES);
            x12.intoArray(o, o1 + c + 2 * LANES);
            x13.intoArray(o, o1 + c + 3 * LANES);
            x20.intoArray(o, o2 + c);
            x21.intoArray(o, o2 + c + LANES);
            x22.intoArray(o, o2 + c + 2 * LANES);
            x23.intoArray(o, o2 + c + 3 * LANES);
            x30.intoArray(o, o3 + c);
            x31.intoArray(o, o3 + c + LANES);
            x32.intoArray(o, o3 + c + 2 * LANES);
            x33.intoArray(o, o3 + c + 3 * LANES);
        }
        for (; c + LANES <= d; c += LANES) {
            FloatVector x0 = FloatVector.fromArray(SPECIES, o, o0 + c).mul(a0);
            FloatVector x1 = FloatVector.fromArray(SPECIES, o, o1 + c).mul(a1);
            FloatVector x2 = FloatVector.fromArray(SPECIES, o, o2 + c).mul(a2);
            FloatVector x3 = FloatVector.fromArray(SPECIES, o, o3 + c).mul(a3);
            for (int j = 0, vo = base + c; j < nk; j++, vo += d) {
                FloatVector vj = FloatVector.fromArray(SPECIES, v, vo);
                x0 = vj.fma(FloatVector.broadcast(SPECIES, p[p0 + j]), x0);
                x1 = vj.fma(FloatVector.broadcast(SPECIES, p[p1 + j]), x1);
                x2 = vj.fma(FloatVector.broadcast(SPECIES, p[p2 + j]), x2);
                x3 = vj.fma(FloatVector.broadcast(SPECIES, p[p3 + j]), x3);
            }
            x0.intoArray(o, o0 + c);
            x1.intoArray(o, o1 + c);
            x2.intoArray(o, o2 + c);
            x3.intoArray(o, o3 + c);
        }
        for (; c < d; c++) {
            float x0 = o[o0 + c] * a0;
            float x1 = o[o1 + c] * a1;
            float x2 = o[o2 + c] * a2;
            float x3 = o[o3 + c] * a3;
            for (int j = 0, vo = base + c; j < nk; j++, vo += d) {
                x0 += p[p0 + j] * v[vo];
                x1 += p[p1 + j] * v[vo];
                x2 += p[p2 + j] * v[vo];
                x3 += p[p3 + j] * v[vo];
            }
            o[o0 + c] = x0;
            o[o1 + c] = x1;
            o[o2 + c] = x2;
            o[o3 + c] = x3;
        }
    }

    /**
     * {@link #accumulate} over bf16 V, each value row widened (class comment) once for the block's rows;
     * {@code d % (4 * LANES) == 0}. Leaves each chunk of {@code 2 * LANES} dimensions of {@code o} in the order
     * {@code 0, 2, .., 1, 3, ..}.
     */
    static void accumulateBf16(short[] v, int base, int d, int nk, float[] p, int r0, float[] o, float[] alpha, int n) {
        float a0 = alpha[r0];
        float a1 = alpha[r0 + 1];
        float a2 = alpha[r0 + 2];
        float a3 = alpha[r0 + 3];
        int p0 = r0 * TILE;
        int p1 = p0 + TILE;
        int p2 = p1 + TILE;
        int p3 = p2 + TILE;
        int o0 = r0 * d;
        int o1 = o0 + d;
        int o2 = o1 + d;
        int o3 = o2 + d;
        for (int c = 0; c < d; c += 4 * LANES) {
            FloatVector x00 = FloatVector.fromArray(SPECIES, o, o0 + c).mul(a0);
            FloatVector x01 = FloatVector.fromArray(SPECIES, o, o0 + c + LANES).mul(a0);
            FloatVector x02 = FloatVector.fromArray(SPECIES, o, o0 + c + 2 * LANES).mul(a0);
            FloatVector x03 = FloatVector.fromArray(SPECIES, o, o0 + c + 3 * LANES).mul(a0);
            FloatVector x10 = FloatVector.fromArray(SPECIES, o, o1 + c).mul(a1);
            FloatVector x11 = FloatVector.fromArray(SPECIES, o, o1 + c + LANES).mul(a1);
            FloatVector x12 = FloatVector.fromArray(SPECIES, o, o1 + c + 2 * LANES).mul(a1);
            FloatVector x13 = FloatVector.fromArray(SPECIES, o, o1 + c + 3 * LANES).mul(a1);
            FloatVector x20 = FloatVector.fromArray(SPECIES, o, o2 + c).mul(a2);
            FloatVector x21 = FloatVector.fromArray(SPECIES, o, o2 + c + LANES).mul(a2);
            FloatVector x22 = FloatVector.fromArray(SPECIES, o, o2 + c + 2 * LANES).mul(a2);
            FloatVector x23 = FloatVector.fromArray(SPECIES, o, o2 + c + 3 * LANES).mul(a2);
            FloatVector x30 = FloatVector.fromArray(SPECIES, o, o3 + c).mul(a3);
            FloatVector x31 = FloatVector.fromArray(SPECIES, o, o3 + c + LANES).mul(a3);
            FloatVector x32 = FloatVector.fromArray(SPECIES, o, o3 + c + 2 * LANES).mul(a3);
            FloatVector x33 = FloatVector.fromArray(SPECIES, o, o3 + c + 3 * LANES).mul(a3);
            for (int j = 0, vo = base + c; j < nk; j++, vo += d) {
                IntVector lo = ShortVector.fromArray(PAIRS, v, vo).reinterpretAsInts();
                IntVector hi = ShortVector.fromArray(PAIRS, v, vo + 2 * LANES).reinterpretAsInts();
                FloatVector v0 = lo.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                FloatVector v1 = lo.and(HIGH_HALF).reinterpretAsFloats();
                FloatVector v2 = hi.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                FloatVector v3 = hi.and(HIGH_HALF).reinterpretAsFloats();
                FloatVector w = FloatVector.broadcast(SPECIES, p[p0 + j]);
                x00 = v0.fma(w, x00);
                x01 = v1.fma(w, x01);
                x02 = v2.fma(w, x02);
                x03 = v3.fma(w, x03);
                if (n > 1) {
                    w = FloatVector.broadcast(SPECIES, p[p1 + j]);
                    x10 = v0.fma(w, x10);
                    x11 = v1.fma(w, x11);
                    x12 = v2.fma(w, x12);
                    x13 = v3.fma(w, x13);
                }
                if (n > 2) {
                    w = FloatVector.broadcast(SPECIES, p[p2 + j]);
                    x20 = v0.fma(w, x20);
                    x21 = v1.fma(w, x21);
                    x22 = v2.fma(w, x22);
                    x23 = v3.fma(w, x23);
                }
                if (n > 3) {
                    w = FloatVector.broadcast(SPECIES, p[p3 + j]);
                    x30 = v0.fma(w, x30);
                    x31 = v1.fma(w, x31);
                    x32 = v2.fma(w, x32);
                    x33 = v3.fma(w, x33);
                }
            }
            x00.intoArray(o, o0 + c);
            x01.intoArray(o, o0 + c + LANES);
            x02.intoArray(o, o0 + c + 2 * LANES);
            x03.intoArray(o, o0 + c + 3 * LANES);
            x10.intoArray(o, o1 + c);
            x11.intoArray(o, o1 + c + LANES);
            x12.intoArray(o, o1 + c + 2 * LANES);
            x13.intoArray(o, o1 + c + 3 * LANES);
            x20.intoArray(o, o2 + c);
            x21.intoArray(o, o2 + c + LANES);
            x22.intoArray(o, o2 + c + 2 * LANES);
            x23.intoArray(o, o2 + c + 3 * LANES);
            x30.intoArray(o, o3 + c);
            x31.intoArray(o, o3 + c + LANES);
            x32.intoArray(o, o3 + c + 2 * LANES);
            x33.intoArray(o, o3 + c + 3 * LANES);
        }
    }

    private static int ceilDiv(int x, int y) {
        return (x + y - 1) / y;
    }

    /** Per-thread working memory, layout in the class comment; grows on demand and is reused across calls. */
    private static final class Scratch {
        float[] q = new float[0];
        float[] o = new float[0];
        float[] s = new float[0];
        float[] m = new float[0];
        float[] l = new float[0];
        float[] alpha = new float[0];
        int[] visible = new int[0];
        /** One row of {@code headDim}, for {@link #unpairDims}. */
        float[] row = new float[0];
        /** One key tile of K and of V widened from bf16. */
        float[] kTile = new float[0];
        float[] vTile = new float[0];

        void ensureTile(int n) {
            if (kTile.length < n) {
                kTile = new float[n];
                vTile = new float[n];
            }
        }

        void ensure(int rows, int d) {
            if (m.length < rows || q.length < rows * d) {
                int r = Math.max(rows, m.length);
                int n = Math.max(rows * d, q.length);
                q = new float[n];
                o = new float[n];
                s = new float[r * TILE];
                m = new float[r];
                l = new float[r];
                alpha = new float[r];
                visible = new int[r];
            }
            if (row.length < d) {
                row = new float[d];
            }
        }
    }

    /** The jobs of one {@link #attendAll} call, their tasks numbered one after another. */
    private static final class Batch {
        private final List<Job> jobs;
        /** {@code firstTask[j]}: the batch number of job {@code j}'s task 0; one more entry holds the total. */
        private int[] firstTask;

        Batch(int capacity) {
            this.jobs = new ArrayList<>(capacity);
            this.firstTask = new int[] {0};
        }

        void add(Job job) {
            jobs.add(job);
            firstTask = Arrays.copyOf(firstTask, jobs.size() + 1);
            firstTask[jobs.size()] = firstTask[jobs.size() - 1] + job.tasks();
        }

        int tasks() {
            return firstTask[jobs.size()];
        }

        long work() {
            long w = 0;
            for (Job j : jobs) {
                w += j.work();
            }
            return w;
        }

        void run(int task, Scratch sc) {
            int j = 0;
            while (firstTask[j + 1] <= task) {
                j++;
            }
            jobs.get(j).run(task - firstTask[j], sc);
        }

        void mergeSplits() {
            for (Job j : jobs) {
                j.mergeSplits();
            }
        }
    }

    /** Runs tasks {@code [from, to)} of a batch, splitting in halves for work stealing. */
    private final class Tasks extends RecursiveAction {
        private final Batch job;
        private final int from;
        private final int to;

        Tasks(Batch job, int from, int to) {
            this.job = job;
            this.from = from;
            this.to = to;
        }

        @Override
        protected void compute() {
            if (to - from == 1) {
                job.run(from, scratch.get());
                return;
            }
            int mid = (from + to) >>> 1;
            invokeAll(new Tasks(job, from, mid), new Tasks(job, mid, to));
        }
    }
}
