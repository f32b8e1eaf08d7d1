package io.github.starattention.linear;

import io.github.starattention.concurrent.SharedTasks;
import java.util.Objects;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Matrix products on the CPU with the JDK Vector API. Accumulation is fp32 throughout; results differ from an exact
 * product only by rounding (the order of the sums), and for a given call shape they do not depend on the number of
 * threads. Two paths, chosen by the number of tokens:
 *
 * <p><b>Few tokens (decode, up to {@link #packedMinTokens} by type, 12 to 32): row dot products.</b> Memory-bound, so
 * the weights are read once, straight from the {@link Matrix} storage, and dequantized in registers: BF16 widened
 * to int lanes and shifted left by 16; Q8 bytes converted to floats; Q4 bytes sign-extended to ints, the nibbles
 * taken by arithmetic shifts. A step covers {@value #DOT_ROWS} rows with one accumulator each (independent FMA
 * chains sharing each activation load); for Q8/Q4 a block's products are summed first and scaled once per block.
 * Tokens loop inside a row group, so for 2 or more tokens the rows come from L1 again.
 *
 * <p><b>Many tokens (prefill): packed register tiles.</b> Compute-bound. A task takes one panel of
 * {@link #PANEL_ROWS} = 2 vectors of rows and a block of tokens. It dequantizes (or copies) the panel's rows into a
 * thread-local panel laid out column-major, {@code panel[c * PANEL_ROWS + i] = W[r0 + i][c]}, zero-padded past the
 * last row; then for every {@value #TILE_TOKENS} tokens an outer-product kernel keeps 2 x {@value #TILE_TOKENS}
 * accumulators (output rows in the lanes), and for each column loads 2 weight vectors and broadcasts
 * {@value #TILE_TOKENS} activations: 12 FMAs per 8 loads, no horizontal reductions, and the outputs of a token are
 * contiguous so the tile is stored with (masked) vector stores. Dequantization and the transposition cost one pass
 * over the panel per task, shared by all the task's tokens.
 *
 * <p><b>Threads.</b> Work is cut into tasks (row ranges; or (panel, token block) pairs, with enough token blocks that
 * narrow outputs still give every thread work). The calling thread and up to {@code threads - 1} pool workers claim
 * tasks from a shared counter, so a call never waits for a worker to wake up, only for tasks a worker has started.
 * Calls under {@value #INLINE_WORK} multiply-adds run on the caller alone.
 */
public final class CpuLinearKernel implements LinearKernel {

    /** Preferred species, kept within 4..16 lanes (a Q4 half block is 16 bytes; the narrowest BF16 load 64 bits). */
    static final VectorSpecies<Float> SPECIES = species();
    private static final int LANES = SPECIES.length();
    private static final VectorSpecies<Integer> INTS = VectorSpecies.of(int.class, SPECIES.vectorShape());
    private static final VectorSpecies<Short> SHORTS = VectorSpecies.of(short.class,
            VectorShape.forBitSize(LANES * Short.SIZE));
    /** Byte loads are at least 64 bits (the smallest shape); each then feeds {@link #BYTE_PARTS} float vectors. */
    private static final VectorSpecies<Byte> BYTES = VectorSpecies.of(byte.class,
            VectorShape.forBitSize(Math.max(64, LANES * Byte.SIZE)));
    private static final int BYTE_LANES = BYTES.length();
    private static final int BYTE_PARTS = BYTE_LANES / LANES;
    /** Lane rotations by 8, 4, 2 and 1 for {@link #sum}. */
    private static final int BLOCK = Matrix.BLOCK;
    private static final int HALF = BLOCK / 2;

    /**
     * Rows per dot-product step: 4 independent accumulators cover the FMA latency (4 cycles) in a loop bound by
     * loads, and leave registers for the Q4 unpacking with AVX2's 16 vector registers.
     */
    static final int DOT_ROWS = 4;
    /**
     * Rows of a packed panel, two vectors. With {@value #TILE_TOKENS} tokens that is 12 accumulators + 2 weights + 1
     * broadcast, which fits AVX2's 16 registers; measured against 4x6, 3x8 and 2x12 vectors x tokens on Zen 4:
     * 2x6 was within noise of the best with 16 lanes (about 90 GFLOP/s) and the only one without spills at 8 lanes.
     */
    static final int PANEL_ROWS = 2 * LANES;
    /** Tokens per register tile; see {@link #PANEL_ROWS}. */
    static final int TILE_TOKENS = 6;
    /**
     * From this many tokens on, the packed path for F32 and BF16 weights. Packing (a scalar transposition) costs
     * about 0.75 ns per weight, which the tile kernel repays only over many tokens, while the dot path re-reads a
     * row group from L1 for each token. Measured on [3072 x 576], one thread, Zen 4: the paths cross at about 32
     * tokens for F32 and BF16, 24 for Q8 and 12 for Q4 (whose in-register unpacking makes the dot path slowest).
     */
    static final int PACKED_MIN_TOKENS_WIDE = 32;
    /** See {@link #PACKED_MIN_TOKENS_WIDE}. */
    static final int PACKED_MIN_TOKENS_Q8 = 24;
    /** See {@link #PACKED_MIN_TOKENS_WIDE}. */
    static final int PACKED_MIN_TOKENS_Q4 = 12;
    /**
     * Calls below this many multiply-adds run on the calling thread: waking a worker (tens of microseconds on a
     * busy 2-core machine) costs more than it saves.
     */
    static final long INLINE_WORK = 1L << 16;
    /** Multiply-adds per dot-path task: a few microseconds, so a late worker still finds tasks and claims stay cheap. */
    private static final long DOT_TASK_WORK = 1L << 15;
    /** The packed path aims at this many tasks per thread, cutting tokens into blocks when panels are few. */
    private static final int TASKS_PER_THREAD = 4;

    private final int threads;
    /** {@code threads - 1} workers (the caller is the last thread), or null for one thread. */
    private final ExecutorService pool;
    private final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);

    /** A kernel running each product on up to {@code threads} threads, the caller's included. */
    public CpuLinearKernel(int threads) {
        if (threads <= 0) {
            throw new IllegalArgumentException("threads must be positive, got " + threads);
        }
        this.threads = threads;
        AtomicInteger ids = new AtomicInteger();
        this.pool = threads == 1 ? null : Executors.newFixedThreadPool(threads - 1, r -> {
            Thread t = new Thread(r, "star-attention-linear-" + ids.getAndIncrement());
            t.setDaemon(true);
            return t;
        });
    }

    @Override
    public String name() {
        return "cpu";
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException if {@code tokens < 0} or {@code x} or {@code out} is shorter than
     *     {@code tokens} rows of {@code w.cols()}, respectively {@code w.rows()}, floats
     */
    @Override
    public void multiply(Matrix w, float[] x, int tokens, float[] out) {
        Objects.requireNonNull(w, "w");
        Objects.requireNonNull(x, "x");
        Objects.requireNonNull(out, "out");
        int rows = w.rows();
        int cols = w.cols();
        if (tokens < 0) {
            throw new IllegalArgumentException("tokens must not be negative, got " + tokens);
        }
        if (x.length < (long) tokens * cols) {
            throw new IllegalArgumentException("x holds " + x.length + " floats, " + tokens + " tokens x " + cols
                    + " columns of " + w + " need " + (long) tokens * cols);
        }
        if (out.length < (long) tokens * rows) {
            throw new IllegalArgumentException("out holds " + out.length + " floats, " + tokens + " tokens x " + rows
                    + " rows of " + w + " need " + (long) tokens * rows);
        }
        if (tokens == 0) {
            return;
        }
        long work = (long) rows * cols * tokens;
        if (tokens < packedMinTokens(w.type())) {
            int perTask = Math.max(1, (int) Math.min(rows, DOT_TASK_WORK / ((long) cols * tokens) / DOT_ROWS)) * DOT_ROWS;
            run(Math.ceilDiv(rows, perTask), work, task -> dotRows(w, x, tokens, out, task * perTask,
                    Math.min(rows, (task + 1) * perTask)));
        } else {
            int panels = Math.ceilDiv(rows, PANEL_ROWS);
            int tiles = Math.ceilDiv(tokens, TILE_TOKENS);
            int blocks = threads == 1 ? 1 : Math.clamp(Math.ceilDiv(TASKS_PER_THREAD * threads, panels), 1, tiles);
            int blockTokens = Math.ceilDiv(tiles, blocks) * TILE_TOKENS;
            int tokenBlocks = Math.ceilDiv(tokens, blockTokens);
            run(panels * tokenBlocks, work, task -> {
                int t0 = task / panels * blockTokens;
                packedTile(w, x, out, task % panels * PANEL_ROWS, t0, Math.min(tokens, t0 + blockTokens));
            });
        }
    }

    /** Token count from which {@code type} takes the packed path. */
    static int packedMinTokens(WeightType type) {
        return switch (type) {
            case F32, BF16 -> PACKED_MIN_TOKENS_WIDE;
            case Q8 -> PACKED_MIN_TOKENS_Q8;
            case Q4 -> PACKED_MIN_TOKENS_Q4;
        };
    }

    @Override
    public String toString() {
        return "CpuLinearKernel[" + threads + " threads, " + LANES + " lanes]";
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdown();
        }
    }

    /**
     * Runs tasks {@code 0 .. tasks-1}: on this thread alone for small work, else on this thread and the pool workers
     * that wake up in time to claim some. The first failure is rethrown once all claimed tasks have ended.
     */
    void run(int tasks, long work, IntConsumer task) {
        if (pool == null || tasks == 1 || work < INLINE_WORK) {
            for (int i = 0; i < tasks; i++) {
                task.accept(i);
            }
            return;
        }
        SharedTasks.run(pool, threads - 1, tasks, task);
    }

    // ---- dot path -------------------------------------------------------------------------------------------

    /** Rows {@code [r0, r1)} of every token, {@value #DOT_ROWS} rows at a time. */
    private static void dotRows(Matrix w, float[] x, int tokens, float[] out, int r0, int r1) {
        int rows = w.rows();
        int cols = w.cols();
        for (int r = r0; r < r1; r += DOT_ROWS) {
            int n = Math.min(DOT_ROWS, r1 - r);
            // past the end, a step repeats its last row and does not store it
            int ra = r;
            int rb = r + Math.min(1, n - 1);
            int rc = r + Math.min(2, n - 1);
            int rd = r + Math.min(3, n - 1);
            for (int t = 0; t < tokens; t++) {
                int o = t * rows + r;
                int xo = t * cols;
                switch (w.type()) {
                    case F32 -> dotF32(w.f32, cols, ra, rb, rc, rd, x, xo, out, o, n);
                    case BF16 -> dotBf16(w.bf16, cols, ra, rb, rc, rd, x, xo, out, o, n);
                    case Q8 -> dotQ8(w, ra, rb, rc, rd, x, xo, out, o, n);
                    case Q4 -> dotQ4(w, ra, rb, rc, rd, x, xo, out, o, n);
                }
            }
        }
    }

    private static void dotF32(float[] w, int cols, int ra, int rb, int rc, int rd, float[] x, int xo, float[] out,
                               int o, int n) {
        int a = ra * cols;
        int b = rb * cols;
        int c = rc * cols;
        int d = rd * cols;
        FloatVector s0 = FloatVector.zero(SPECIES);
        FloatVector s1 = s0;
        FloatVector s2 = s0;
        FloatVector s3 = s0;
        int bound = SPECIES.loopBound(cols);
        int j = 0;
        for (; j < bound; j += LANES) {
            FloatVector v = FloatVector.fromArray(SPECIES, x, xo + j);
            s0 = FloatVector.fromArray(SPECIES, w, a + j).fma(v, s0);
            s1 = FloatVector.fromArray(SPECIES, w, b + j).fma(v, s1);
            s2 = FloatVector.fromArray(SPECIES, w, c + j).fma(v, s2);
            s3 = FloatVector.fromArray(SPECIES, w, d + j).fma(v, s3);
        }
        float t0 = Lanes.sum(s0);
        float t1 = Lanes.sum(s1);
        float t2 = Lanes.sum(s2);
        float t3 = Lanes.sum(s3);
        for (; j < cols; j++) {
            float v = x[xo + j];
            t0 += w[a + j] * v;
            t1 += w[b + j] * v;
            t2 += w[c + j] * v;
            t3 += w[d + j] * v;
        }
        store(out, o, n, t0, t1, t2, t3);
    }

    private static void dotBf16(short[] w, int cols, int ra, int rb, int rc, int rd, float[] x, int xo, float[] out,
                                int o, int n) {
        int a = ra * cols;
        int b = rb * cols;
        int c = rc * cols;
        int d = rd * cols;
        FloatVector s0 = FloatVector.zero(SPECIES);
        FloatVector s1 = s0;
        FloatVector s2 = s0;
        FloatVector s3 = s0;
        int bound = SPECIES.loopBound(cols);
        int j = 0;
        for (; j < bound; j += LANES) {
            FloatVector v = FloatVector.fromArray(SPECIES, x, xo + j);
            s0 = bf16(w, a + j).fma(v, s0);
            s1 = bf16(w, b + j).fma(v, s1);
            s2 = bf16(w, c + j).fma(v, s2);
            s3 = bf16(w, d + j).fma(v, s3);
        }
        float t0 = Lanes.sum(s0);
        float t1 = Lanes.sum(s1);
        float t2 = Lanes.sum(s2);
        float t3 = Lanes.sum(s3);
        for (; j < cols; j++) {
            float v = x[xo + j];
            t0 += Float.intBitsToFloat(w[a + j] << 16) * v;
            t1 += Float.intBitsToFloat(w[b + j] << 16) * v;
            t2 += Float.intBitsToFloat(w[c + j] << 16) * v;
            t3 += Float.intBitsToFloat(w[d + j] << 16) * v;
        }
        store(out, o, n, t0, t1, t2, t3);
    }

    /** {@link #LANES} bfloat16 values from {@code w[i]} as floats: the bits widened to int lanes, shifted up by 16. */
    private static FloatVector bf16(short[] w, int i) {
        return ((IntVector) ShortVector.fromArray(SHORTS, w, i).convertShape(VectorOperators.S2I, INTS, 0))
                .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    private static void dotQ8(Matrix w, int ra, int rb, int rc, int rd, float[] x, int xo, float[] out, int o, int n) {
        byte[] q = w.quants;
        float[] sc = w.scales;
        int cols = w.cols();
        int blocks = cols / BLOCK;
        FloatVector s0 = FloatVector.zero(SPECIES);
        FloatVector s1 = s0;
        FloatVector s2 = s0;
        FloatVector s3 = s0;
        for (int k = 0; k < blocks; k++) {
            int c = k * BLOCK;
            FloatVector b0 = FloatVector.zero(SPECIES);
            FloatVector b1 = b0;
            FloatVector b2 = b0;
            FloatVector b3 = b0;
            for (int j = 0; j < BLOCK; j += BYTE_LANES) {
                ByteVector q0 = ByteVector.fromArray(BYTES, q, ra * cols + c + j);
                ByteVector q1 = ByteVector.fromArray(BYTES, q, rb * cols + c + j);
                ByteVector q2 = ByteVector.fromArray(BYTES, q, rc * cols + c + j);
                ByteVector q3 = ByteVector.fromArray(BYTES, q, rd * cols + c + j);
                for (int p = 0; p < BYTE_PARTS; p++) {
                    FloatVector v = FloatVector.fromArray(SPECIES, x, xo + c + j + p * LANES);
                    b0 = toFloats(q0, p).fma(v, b0);
                    b1 = toFloats(q1, p).fma(v, b1);
                    b2 = toFloats(q2, p).fma(v, b2);
                    b3 = toFloats(q3, p).fma(v, b3);
                }
            }
            s0 = b0.fma(FloatVector.broadcast(SPECIES, sc[ra * blocks + k]), s0);
            s1 = b1.fma(FloatVector.broadcast(SPECIES, sc[rb * blocks + k]), s1);
            s2 = b2.fma(FloatVector.broadcast(SPECIES, sc[rc * blocks + k]), s2);
            s3 = b3.fma(FloatVector.broadcast(SPECIES, sc[rd * blocks + k]), s3);
        }
        store(out, o, n, Lanes.sum(s0), Lanes.sum(s1), Lanes.sum(s2), Lanes.sum(s3));
    }

    private static FloatVector toFloats(ByteVector q, int part) {
        return (FloatVector) q.convertShape(VectorOperators.B2F, SPECIES, part);
    }

    private static void dotQ4(Matrix w, int ra, int rb, int rc, int rd, float[] x, int xo, float[] out, int o, int n) {
        byte[] q = w.quants;
        float[] sc = w.scales;
        int cols = w.cols();
        int blocks = cols / BLOCK;
        FloatVector s0 = FloatVector.zero(SPECIES);
        FloatVector s1 = s0;
        FloatVector s2 = s0;
        FloatVector s3 = s0;
        for (int k = 0; k < blocks; k++) {
            int c = k * BLOCK;
            FloatVector b0 = FloatVector.zero(SPECIES);
            FloatVector b1 = b0;
            FloatVector b2 = b0;
            FloatVector b3 = b0;
            for (int j = 0; j < HALF; j += BYTE_LANES) {
                ByteVector q0 = ByteVector.fromArray(BYTES, q, (ra * blocks + k) * HALF + j);
                ByteVector q1 = ByteVector.fromArray(BYTES, q, (rb * blocks + k) * HALF + j);
                ByteVector q2 = ByteVector.fromArray(BYTES, q, (rc * blocks + k) * HALF + j);
                ByteVector q3 = ByteVector.fromArray(BYTES, q, (rd * blocks + k) * HALF + j);
                for (int p = 0; p < BYTE_PARTS; p++) {
                    FloatVector lo = FloatVector.fromArray(SPECIES, x, xo + c + j + p * LANES);
                    FloatVector hi = FloatVector.fromArray(SPECIES, x, xo + c + HALF + j + p * LANES);
                    b0 = nibbles(q0, p, lo, hi, b0);
                    b1 = nibbles(q1, p, lo, hi, b1);
                    b2 = nibbles(q2, p, lo, hi, b2);
                    b3 = nibbles(q3, p, lo, hi, b3);
                }
            }
            s0 = b0.fma(FloatVector.broadcast(SPECIES, sc[ra * blocks + k]), s0);
            s1 = b1.fma(FloatVector.broadcast(SPECIES, sc[rb * blocks + k]), s1);
            s2 = b2.fma(FloatVector.broadcast(SPECIES, sc[rc * blocks + k]), s2);
            s3 = b3.fma(FloatVector.broadcast(SPECIES, sc[rd * blocks + k]), s3);
        }
        store(out, o, n, Lanes.sum(s0), Lanes.sum(s1), Lanes.sum(s2), Lanes.sum(s3));
    }

    /** {@code acc + qLo * xLo + qHi * xHi} for the signed low and high nibbles of part {@code part} of {@code q}. */
    private static FloatVector nibbles(ByteVector q, int part, FloatVector xLo, FloatVector xHi, FloatVector acc) {
        IntVector i = (IntVector) q.convertShape(VectorOperators.B2I, INTS, part);
        FloatVector lo = (FloatVector) i.lanewise(VectorOperators.LSHL, 28).lanewise(VectorOperators.ASHR, 28)
                .convert(VectorOperators.I2F, 0);
        FloatVector hi = (FloatVector) i.lanewise(VectorOperators.ASHR, 4).convert(VectorOperators.I2F, 0);
        return hi.fma(xHi, lo.fma(xLo, acc));
    }

    private static void store(float[] out, int o, int n, float t0, float t1, float t2, float t3) {
        out[o] = t0;
        if (n > 1) {
            out[o + 1] = t1;
        }
        if (n > 2) {
            out[o + 2] = t2;
        }
        if (n > 3) {
            out[o + 3] = t3;
        }
    }

    // ---- packed path ----------------------------------------------------------------------------------------

    /** The panel of rows from {@code r0} for tokens {@code [t0, t1)}. */
    private void packedTile(Matrix w, float[] x, float[] out, int r0, int t0, int t1) {
        int cols = w.cols();
        int n = Math.min(PANEL_ROWS, w.rows() - r0);
        Scratch s = scratch.get();
        float[] panel = s.panel(cols);
        pack(w, r0, n, panel, s);
        int t = t0;
        for (; t + TILE_TOKENS <= t1; t += TILE_TOKENS) {
            tile(panel, cols, x, t, out, w.rows(), r0, n);
        }
        for (; t < t1; t++) {
            tile1(panel, cols, x, t, out, w.rows(), r0, n);
        }
    }

    /** Writes rows {@code [r0, r0 + n)}, dequantized, to {@code panel} column-major, zeros past row {@code n}. */
    private static void pack(Matrix w, int r0, int n, float[] panel, Scratch s) {
        int cols = w.cols();
        for (int i = 0; i < n; i++) {
            float[] src;
            int off;
            if (w.type() == WeightType.F32) {
                src = w.f32;
                off = (r0 + i) * cols;
            } else {
                src = s.row(cols);
                off = 0;
                dequantize(w, r0 + i, src);
            }
            for (int c = 0, p = i; c < cols; c++, p += PANEL_ROWS) {
                panel[p] = src[off + c];
            }
        }
        if (n < PANEL_ROWS) {
            for (int c = 0; c < cols; c++) {
                for (int i = n; i < PANEL_ROWS; i++) {
                    panel[c * PANEL_ROWS + i] = 0;
                }
            }
        }
    }

    /** Row {@code r} of a BF16, Q8 or Q4 matrix as floats in {@code dst[0 .. cols)}. */
    private static void dequantize(Matrix w, int r, float[] dst) {
        int cols = w.cols();
        switch (w.type()) {
            case BF16 -> {
                int base = r * cols;
                int bound = SPECIES.loopBound(cols);
                int c = 0;
                for (; c < bound; c += LANES) {
                    bf16(w.bf16, base + c).intoArray(dst, c);
                }
                for (; c < cols; c++) {
                    dst[c] = Float.intBitsToFloat(w.bf16[base + c] << 16);
                }
            }
            case Q8 -> {
                int blocks = cols / BLOCK;
                for (int k = 0; k < blocks; k++) {
                    float scale = w.scales[r * blocks + k];
                    for (int j = 0; j < BLOCK; j += BYTE_LANES) {
                        ByteVector q = ByteVector.fromArray(BYTES, w.quants, r * cols + k * BLOCK + j);
                        for (int p = 0; p < BYTE_PARTS; p++) {
                            toFloats(q, p).mul(scale).intoArray(dst, k * BLOCK + j + p * LANES);
                        }
                    }
                }
            }
            case Q4 -> {
                int blocks = cols / BLOCK;
                for (int k = 0; k < blocks; k++) {
                    float scale = w.scales[r * blocks + k];
                    for (int j = 0; j < HALF; j += BYTE_LANES) {
                        ByteVector q = ByteVector.fromArray(BYTES, w.quants, (r * blocks + k) * HALF + j);
                        for (int p = 0; p < BYTE_PARTS; p++) {
                            IntVector i = (IntVector) q.convertShape(VectorOperators.B2I, INTS, p);
                            int c = k * BLOCK + j + p * LANES;
                            ((FloatVector) i.lanewise(VectorOperators.LSHL, 28).lanewise(VectorOperators.ASHR, 28)
                                    .convert(VectorOperators.I2F, 0)).mul(scale).intoArray(dst, c);
                            ((FloatVector) i.lanewise(VectorOperators.ASHR, 4).convert(VectorOperators.I2F, 0))
                                    .mul(scale).intoArray(dst, c + HALF);
                        }
                    }
                }
            }
            case F32 -> System.arraycopy(w.f32, r * cols, dst, 0, cols);
        }
    }

    /** Tokens {@code [t, t + TILE_TOKENS)} of the panel's {@code n} rows: 2 vectors x 6 tokens of accumulators. */
    private static void tile(float[] panel, int cols, float[] x, int t, float[] out, int rows, int r0, int n) {
        FloatVector a0 = FloatVector.zero(SPECIES);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        FloatVector a4 = a0;
        FloatVector a5 = a0;
        FloatVector b0 = a0;
        FloatVector b1 = a0;
        FloatVector b2 = a0;
        FloatVector b3 = a0;
        FloatVector b4 = a0;
        FloatVector b5 = a0;
        int x0 = t * cols;
        for (int c = 0, p = 0; c < cols; c++, p += PANEL_ROWS) {
            FloatVector u = FloatVector.fromArray(SPECIES, panel, p);
            FloatVector v = FloatVector.fromArray(SPECIES, panel, p + LANES);
            FloatVector e = FloatVector.broadcast(SPECIES, x[x0 + c]);
            a0 = u.fma(e, a0);
            b0 = v.fma(e, b0);
            e = FloatVector.broadcast(SPECIES, x[x0 + cols + c]);
            a1 = u.fma(e, a1);
            b1 = v.fma(e, b1);
            e = FloatVector.broadcast(SPECIES, x[x0 + 2 * cols + c]);
            a2 = u.fma(e, a2);
            b2 = v.fma(e, b2);
            e = FloatVector.broadcast(SPECIES, x[x0 + 3 * cols + c]);
            a3 = u.fma(e, a3);
            b3 = v.fma(e, b3);
            e = FloatVector.broadcast(SPECIES, x[x0 + 4 * cols + c]);
            a4 = u.fma(e, a4);
            b4 = v.fma(e, b4);
            e = FloatVector.broadcast(SPECIES, x[x0 + 5 * cols + c]);
            a5 = u.fma(e, a5);
            b5 = v.fma(e, b5);
        }
        VectorMask<Float> m0 = SPECIES.indexInRange(0, n);
        VectorMask<Float> m1 = SPECIES.indexInRange(LANES, n);
        int o = t * rows + r0;
        a0.intoArray(out, o, m0);
        b0.intoArray(out, o + LANES, m1);
        o += rows;
        a1.intoArray(out, o, m0);
        b1.intoArray(out, o + LANES, m1);
        o += rows;
        a2.intoArray(out, o, m0);
        b2.intoArray(out, o + LANES, m1);
        o += rows;
        a3.intoArray(out, o, m0);
        b3.intoArray(out, o + LANES, m1);
        o += rows;
        a4.intoArray(out, o, m0);
        b4.intoArray(out, o + LANES, m1);
        o += rows;
        a5.intoArray(out, o, m0);
        b5.intoArray(out, o + LANES, m1);
    }

    /** Token {@code t} of the panel's {@code n} rows, for the tokens left over from whole tiles. */
    private static void tile1(float[] panel, int cols, float[] x, int t, float[] out, int rows, int r0, int n) {
        FloatVector a = FloatVector.zero(SPECIES);
        FloatVector b = a;
        int x0 = t * cols;
        for (int c = 0, p = 0; c < cols; c++, p += PANEL_ROWS) {
            FloatVector e = FloatVector.broadcast(SPECIES, x[x0 + c]);
            a = FloatVector.fromArray(SPECIES, panel, p).fma(e, a);
            b = FloatVector.fromArray(SPECIES, panel, p + LANES).fma(e, b);
        }
        int o = t * rows + r0;
        a.intoArray(out, o, SPECIES.indexInRange(0, n));
        b.intoArray(out, o + LANES, SPECIES.indexInRange(LANES, n));
    }

    private static VectorSpecies<Float> species() {
        VectorSpecies<Float> s = FloatVector.SPECIES_PREFERRED;
        if (s.length() < 4) {
            return FloatVector.SPECIES_128;
        }
        return s.length() > 16 ? FloatVector.SPECIES_512 : s;
    }

    /** Per-thread buffers of the packed path, grown on demand. */
    private static final class Scratch {
        private float[] panel = new float[0];
        private float[] row = new float[0];

        /** At least {@code PANEL_ROWS * cols} floats. */
        float[] panel(int cols) {
            if (panel.length < PANEL_ROWS * cols) {
                panel = new float[PANEL_ROWS * cols];
            }
            return panel;
        }

        /** At least {@code cols} floats. */
        float[] row(int cols) {
            if (row.length < cols) {
                row = new float[cols];
            }
            return row;
        }
    }
}
