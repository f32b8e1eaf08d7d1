package io.github.starattention.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.github.starattention.attention.AttentionQuery;
import io.github.starattention.attention.LseMerge;
import io.github.starattention.attention.PartialAttention;
import io.github.starattention.kv.KvLayout;
import io.github.starattention.linear.Matrix;
import io.github.starattention.linear.WeightType;
import io.github.starattention.rope.RopeScaling;
import io.github.starattention.rope.RotaryEmbedding;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * GPU vs reference agreement of the layer kernels of {@link CudaLayers} ({@code layers.cu}) and of attention on
 * GPU-resident queries. Skipped (not failed) where no usable GPU is present.
 *
 * <p>The references are independent of the GPU code: naive fp64 loops written here for the matrix products (over the
 * bf16-rounded inputs the GPU reads), RMSNorm, SwiGLU and argmax; {@link Matrix#row} for the embedding gather;
 * {@link RotaryEmbedding#apply} (the CPU RoPE) for the rotated q and k, and fp64 attention
 * ({@link GpuTestData#compare}) over the K/V the Q/K/V kernel wrote into the store; the host paths
 * {@link CudaAttentionKernel#attend(io.github.starattention.kv.KvStore, int, AttentionQuery)} and
 * {@link LseMerge#merge} for attention on GPU-resident queries and the GPU merge. Error bounds are relative to the
 * fp64 sum of |terms| (matrix products) or to |value| (element-wise kernels): fp32 rounding only.
 */
@Tag("gpu")
class CudaLayersTest {

    static CudaAttentionKernel fp16;
    static CudaAttentionKernel bf16;
    static CudaLayers layers;

    @BeforeAll
    static void open() {
        if (CudaProbe.probe().available()) {
            fp16 = new CudaAttentionKernel(0, KvDtype.FP16);
            bf16 = new CudaAttentionKernel(0, KvDtype.BF16);
            layers = new CudaLayers(fp16);
        }
    }

    @BeforeEach
    void needsGpu() {
        assumeTrue(fp16 != null, () -> "no usable GPU: " + CudaProbe.probe().detail());
    }

    @AfterAll
    static void close() {
        if (fp16 != null) {
            fp16.close();
            bf16.close();
        }
    }

    static Stream<Arguments> matmulShapes() {
        List<Arguments> a = new ArrayList<>();
        for (WeightType t : new WeightType[] {WeightType.BF16, WeightType.F32}) {
            for (int n : new int[] {64, 200, 960}) {
                for (int k : new int[] {64, 576, 2048}) {
                    a.add(Arguments.of(t, n, k));
                }
            }
            a.add(Arguments.of(t, 201, 576)); // odd N: the scalar epilogues
        }
        a.add(Arguments.of(WeightType.BF16, 300, 96)); // K not a multiple of 64: gemm_bf16 on Hopper too
        a.add(Arguments.of(WeightType.F32, 201, 100)); // K not a multiple of gemm_f32's 16
        return a.stream();
    }

    /** GEMV for 1, 3, 8 tokens, the tiled GEMM for 9, 130, 300; overwriting (out starts NaN) and accumulating. */
    @ParameterizedTest(name = "{0} N={1} K={2}")
    @MethodSource("matmulShapes")
    void multiply(WeightType type, int n, int k) {
        Random r = new Random(31L * n + k + type.ordinal());
        boolean bf = type == WeightType.BF16;
        Matrix m = Matrix.of(type, rnd(r, n * k, 1f), n, k);
        double[] w = new double[n * k];
        for (int i = 0; i < w.length; i++) {
            w[i] = m.get(i / k, i % k);
        }
        float[] x = rnd(r, 300 * k, 2f);
        for (int i = 0; bf && i < x.length; i++) {
            x[i] = bf16(x[i]);
        }
        try (GpuMatrix wd = layers.upload(m, "w");
             DeviceArray xd = layers.allocate("x");
             DeviceArray out = layers.allocate("out")) {
            if (bf) {
                xd.upload(packBf16(x));
            } else {
                xd.upload(x);
            }
            for (int tokens : new int[] {1, 3, 8, 9, 130, 300}) {
                double[] ref = new double[tokens * n], mag = new double[tokens * n];
                IntStream.range(0, tokens * n).parallel().forEach(e -> {
                    int xo = e / n * k;
                    int wo = e % n * k;
                    double s = 0, a = 0;
                    for (int c = 0; c < k; c++) {
                        double p = x[xo + c] * w[wo + c];
                        s += p;
                        a += Math.abs(p);
                    }
                    ref[e] = s;
                    mag[e] = a;
                });
                String what = type + " " + tokens + " x " + k + " times " + n + " x " + k + " ("
                        + layers.productKernel(type, tokens, k) + ")";
                out.upload(nans(tokens * n));
                layers.multiply(wd, xd, tokens, out, false);
                check(what, floats(out, 0, tokens * n), ref, mag, 1e-5);
                float[] old = rnd(r, tokens * n, 4f);
                out.upload(old);
                layers.multiply(wd, xd, tokens, out, true);
                for (int i = 0; i < ref.length; i++) {
                    ref[i] += old[i];
                    mag[i] += Math.abs(old[i]);
                }
                check(what + " accumulated", floats(out, 0, tokens * n), ref, mag, 1e-5);
            }
        }
    }

    /** On Hopper the wgmma product takes every shape it can (and so runs in {@link #multiply}); elsewhere none. */
    @Test
    void productKernelFollowsTheDevice() {
        boolean hopper = layers.attention().runtime().hopper;
        assertThat(layers.productKernel(WeightType.BF16, 8, 576)).isEqualTo("gemv_bf16");
        assertThat(layers.productKernel(WeightType.BF16, 127, 576)).isEqualTo("gemm_bf16");
        assertThat(layers.productKernel(WeightType.BF16, 130, 576)).isEqualTo(hopper ? "gemm_bf16_sm90" : "gemm_bf16");
        assertThat(layers.productKernel(WeightType.BF16, 300, 96)).isEqualTo("gemm_bf16");
        assertThat(layers.productKernel(WeightType.F32, 300, 576)).isEqualTo("gemm_f32");
    }

    @ParameterizedTest(name = "dim={0} firstRow={1}")
    @CsvSource({"576, 0", "2048, 3"})
    void rmsNorm(int dim, int firstRow) {
        Random r = new Random(dim + firstRow);
        int tokens = 5;
        float eps = 1e-5f;
        float[] x = rnd(r, (firstRow + tokens) * dim, 3f);
        float[] w = rnd(r, dim, 2f);
        double[] ref = new double[tokens * dim];
        for (int t = 0; t < tokens; t++) {
            int xo = (firstRow + t) * dim;
            double ss = 0;
            for (int i = 0; i < dim; i++) {
                ss += (double) x[xo + i] * x[xo + i];
            }
            double inv = 1 / Math.sqrt(ss / dim + eps);
            for (int i = 0; i < dim; i++) {
                ref[t * dim + i] = w[i] * (x[xo + i] * inv);
            }
        }
        try (DeviceArray xd = layers.upload(x, "x");
             DeviceArray wd = layers.upload(w, "w");
             DeviceArray out = layers.allocate("out").ensure((long) tokens * dim * Float.BYTES)) {
            layers.rmsNorm(xd, firstRow, wd, tokens, dim, eps, out, WeightType.F32);
            check("rmsnorm_f32", floats(out, 0, tokens * dim), ref, abs(ref), 1e-5);
            layers.rmsNorm(xd, firstRow, wd, tokens, dim, eps, out, WeightType.BF16);
            checkBf16("rmsnorm_bf16", bf16s(out, tokens * dim), ref);
        }
    }

    /** SwiGLU as fp32 and bf16 (an odd element count), and {@code toBf16} bit for bit against {@link Matrix#toBf16}. */
    @Test
    void swigluAndToBf16() {
        Random r = new Random(11);
        int tokens = 7, ffn = 1001;
        float[] gu = rnd(r, tokens * 2 * ffn, 8f);
        double[] ref = new double[tokens * ffn];
        for (int e = 0; e < ref.length; e++) {
            double g = gu[e / ffn * 2 * ffn + e % ffn];
            double u = gu[e / ffn * 2 * ffn + ffn + e % ffn];
            ref[e] = g / (1 + Math.exp(-g)) * u;
        }
        try (DeviceArray gd = layers.upload(gu, "gateUp");
             DeviceArray h = layers.allocate("h").ensure((long) gu.length * Float.BYTES)) {
            layers.swiglu(gd, tokens, ffn, h, WeightType.F32);
            check("swiglu_f32", floats(h, 0, ref.length), ref, abs(ref), 1e-5);
            layers.swiglu(gd, tokens, ffn, h, WeightType.BF16);
            checkBf16("swiglu_bf16", bf16s(h, ref.length), ref);
            layers.toBf16(gd, gu.length, h);
            float[] got = bf16s(h, gu.length);
            for (int i = 0; i < gu.length; i++) {
                assertThat(Float.floatToRawIntBits(got[i])).as("to_bf16 of %s", gu[i])
                        .isEqualTo(Matrix.toBf16(gu[i]) << 16);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = WeightType.class, names = {"F32", "BF16"})
    void embed(WeightType type) {
        int vocab = 1000, dim = 576;
        Matrix table = Matrix.of(type, rnd(new Random(5), vocab * dim, 1f), vocab, dim);
        int[] ids = {0, 999, 5, 5, 123, 998, 1};
        float[] want = new float[ids.length * dim];
        for (int t = 0; t < ids.length; t++) {
            table.row(ids[t], want, t * dim);
        }
        try (GpuMatrix td = layers.upload(table, "E");
             DeviceArray idd = layers.allocate("ids");
             DeviceArray x = layers.allocate("x").ensure((long) want.length * Float.BYTES)) {
            idd.upload(ids);
            layers.embed(td, idd, ids.length, x);
            assertThat(floats(x, 0, want.length)).isEqualTo(want);
        }
    }

    /** First index of the maximum (NaN never wins, as layers.cu documents), over all or a prefix of the values. */
    @Test
    void argmax() {
        int n = 128256;
        float[] x = rnd(new Random(3), n, 10f);
        try (DeviceArray xd = layers.allocate("logits"); DeviceArray s = layers.allocate("argmax")) {
            x[12] = Float.NaN;
            x[77777] = x[6024] = x[5000] = x[n - 1] = 50; // 5000 and 6024 in one thread (stride 1024)
            xd.upload(x);
            assertThat(layers.argmax(xd, n, s)).isEqualTo(5000).isEqualTo(firstMax(x, n));
            assertThat(layers.argmax(xd, 1000, s)).isEqualTo(firstMax(x, 1000));
            x[0] = x[n - 1] = 60;
            xd.upload(x);
            assertThat(layers.argmax(xd, n, s)).isEqualTo(0);
            x[0] = -60;
            xd.upload(x);
            assertThat(layers.argmax(xd, n, s)).isEqualTo(n - 1);
        }
    }

    /**
     * A step replayed as a graph computes what its direct launches compute: the first replay builds the graph, a step
     * whose argument changed (another input array) updates that node only, a step with other kernels rebuilds it, and a
     * step that copies fails (the copy would run before the graph) and leaves the plan usable.
     */
    @Test
    void replayedStepsMatchDirectLaunches() {
        Random r = new Random(21);
        int n = 1001;
        float[] a = rnd(r, n, 4f);
        float[] b = rnd(r, n, 4f);
        try (DeviceArray ad = layers.upload(a, "a");
             DeviceArray bd = layers.upload(b, "b");
             DeviceArray out = layers.allocate("out").ensure((long) n * Float.BYTES);
             DeviceArray out2 = layers.allocate("out2").ensure((long) n * Float.BYTES);
             LaunchPlan plan = layers.newLaunchPlan("a test step")) {
            layers.replay(plan, () -> layers.toBf16(ad, n, out));
            assertThat(bf16s(out, n)).isEqualTo(roundedToBf16(a));
            layers.replay(plan, () -> layers.toBf16(bd, n, out));
            assertThat(bf16s(out, n)).isEqualTo(roundedToBf16(b));
            assertThat(plan.builds()).isEqualTo(1);
            assertThat(plan.updates()).isEqualTo(1);
            layers.replay(plan, () -> layers.toBf16(bd, n, out));
            assertThat(plan.updates()).as("an unchanged step updates nothing").isEqualTo(1);

            layers.replay(plan, () -> {
                layers.toBf16(ad, n, out);
                layers.toBf16(bd, n, out2);
            });
            assertThat(bf16s(out, n)).isEqualTo(roundedToBf16(a));
            assertThat(bf16s(out2, n)).isEqualTo(roundedToBf16(b));
            assertThat(plan.builds()).isEqualTo(2);

            assertThatThrownBy(() -> layers.replay(plan, () -> {
                layers.toBf16(bd, n, out);
                ad.upload(b);
            })).isInstanceOf(IllegalStateException.class).hasMessageContaining("launch plan");
            layers.replay(plan, () -> {
                layers.toBf16(bd, n, out);
                layers.toBf16(ad, n, out2);
            });
            assertThat(bf16s(out, n)).isEqualTo(roundedToBf16(b));
            assertThat(bf16s(out2, n)).as("the refused copy did not happen").isEqualTo(roundedToBf16(a));
            assertThat(plan.replays()).isEqualTo(5);
        }
    }

    private static float[] roundedToBf16(float[] x) {
        float[] r = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            r[i] = bf16(x[i]);
        }
        return r;
    }

    static Stream<Arguments> ropeCases() {
        List<Arguments> a = new ArrayList<>();
        for (KvDtype t : KvDtype.values()) {
            for (int d : new int[] {64, 128}) {
                a.add(Arguments.of(t, d, false));
                a.add(Arguments.of(t, d, true));
            }
        }
        return a.stream();
    }

    /**
     * Q/K/V split, bias and RoPE against {@link RotaryEmbedding#apply}; K and V written at slots 2.. of layer 0 (no
     * kOut/vOut) and layer 1 (with them) after two slots written by {@code put}; attention over both layers then
     * matches fp64 attention over those keys.
     */
    @ParameterizedTest(name = "{0} d={1} bias={2}")
    @MethodSource("ropeCases")
    void qkvRope(KvDtype dtype, int d, boolean withBias) {
        CudaAttentionKernel kernel = dtype == KvDtype.FP16 ? fp16 : bf16;
        CudaLayers gl = new CudaLayers(kernel);
        int heads = 9, kvHeads = 3, tokens = 5;
        int[] pos = {3, 7, 100, 4095, 5000};
        int qDim = heads * d, kvDim = kvHeads * d, row = qDim + 2 * kvDim;
        long seed = d * 7L + (withBias ? 1 : 0) + dtype.ordinal() * 100L;
        Random r = new Random(seed);
        float[] qkv = rnd(r, tokens * row, 1f);
        float[] bias = withBias ? rnd(r, row, 0.5f) : null;
        double theta = 500000;
        RopeScaling scaling = RopeScaling.llama3(8, 1, 4, 8192);
        RotaryEmbedding rope = new RotaryEmbedding(d, theta, scaling, 8192);
        float[] invFreq = RotaryEmbedding.inverseFrequencies(d, theta, scaling);
        int half = d / 2, positions = pos[tokens - 1] + 1;
        float[] cos = new float[positions * half], sin = new float[positions * half];
        for (int p = 0; p < positions; p++) {
            for (int i = 0; i < half; i++) {
                float angle = (float) p * invFreq[i]; // as RotaryEmbedding.ensureTable
                cos[p * half + i] = (float) Math.cos(angle);
                sin[p * half + i] = (float) Math.sin(angle);
            }
        }
        float[] pre = qkv.clone();
        for (int i = 0; withBias && i < pre.length; i++) {
            pre[i] += bias[i % row];
        }
        float[] preQ = new float[tokens * qDim], preK = new float[tokens * kvDim], wantV = new float[tokens * kvDim];
        for (int t = 0; t < tokens; t++) {
            System.arraycopy(pre, t * row, preQ, t * qDim, qDim);
            System.arraycopy(pre, t * row + qDim, preK, t * kvDim, kvDim);
            System.arraycopy(pre, t * row + qDim + kvDim, wantV, t * kvDim, kvDim);
        }
        float[] wantQ = preQ.clone(), wantK = preK.clone();
        for (int t = 0; t < tokens; t++) {
            rope.apply(wantQ, t * qDim, heads, pos[t]);
            rope.apply(wantK, t * kvDim, kvHeads, pos[t]);
        }
        float[] k0 = GpuTestData.random(2L * kvDim, 1f, seed + 1, dtype), v0 = GpuTestData.random(2L * kvDim, 1f,
                seed + 2, dtype);
        try (CudaLayers.RopeTable table = gl.uploadRope(cos, sin, d);
             CudaKvStore store = kernel.createStore(new KvLayout(2, kvHeads, d, 0));
             DeviceArray qkvD = gl.upload(qkv, "qkv");
             DeviceArray biasD = withBias ? gl.upload(bias, "bias") : null;
             DeviceArray posD = gl.allocate("positions");
             DeviceArray q = gl.allocate("q").ensure((long) tokens * qDim * Float.BYTES);
             DeviceArray kOut = gl.allocate("kOut").ensure((long) tokens * kvDim * Float.BYTES);
             DeviceArray vOut = gl.allocate("vOut").ensure((long) tokens * kvDim * Float.BYTES)) {
            store.reserve(new int[] {0, 1});
            store.put(0, 0, k0, v0, 0, 2);
            store.put(1, 0, k0, v0, 0, 2);
            int first = store.reserve(pos);
            posD.upload(pos);
            gl.qkvRope(qkvD, biasD, posD, table, tokens, heads, store, 0, first, q, null, null);
            float[] q0 = floats(q, 0, tokens * qDim);
            gl.qkvRope(qkvD, biasD, posD, table, tokens, heads, store, 1, first, q, kOut, vOut);
            float[] gotQ = floats(q, 0, tokens * qDim);
            float[] gotK = floats(kOut, 0, tokens * kvDim);
            assertThat(q0).isEqualTo(gotQ);
            check("rotated q", gotQ, toDouble(wantQ), pairMagnitude(preQ, d), 1e-6);
            check("rotated k", gotK, toDouble(wantK), pairMagnitude(preK, d), 1e-6);
            assertThat(floats(vOut, 0, tokens * kvDim)).isEqualTo(wantV);

            float[] keys = new float[7 * kvDim], values = new float[7 * kvDim];
            System.arraycopy(k0, 0, keys, 0, 2 * kvDim);
            System.arraycopy(v0, 0, values, 0, 2 * kvDim);
            for (int i = 0; i < tokens * kvDim; i++) {
                keys[2 * kvDim + i] = GpuTestData.round(gotK[i], dtype);
                values[2 * kvDim + i] = GpuTestData.round(wantV[i], dtype);
            }
            int[] kpos = {0, 1, 3, 7, 100, 4095, 5000};
            int[] qpos = {2, 50, 5000};
            float[] query = GpuTestData.random(3L * qDim, 1.7f, seed + 3, dtype);
            for (int layer = 0; layer < 2; layer++) {
                AttentionQuery aq = AttentionQuery.of(query, qpos, 3, heads, d);
                PartialAttention pa = kernel.attend(store, layer, aq);
                GpuTestData.Errors e = GpuTestData.compare(query, qpos, 3, heads, d, aq.scale(), keys, values, kpos,
                        kvHeads, pa.output(), pa.lse(), GpuTestData.range(0, 3));
                assertThat(e.nonFinite()).as("non-finite attention output, layer %d", layer).isFalse();
                assertThat(e.out()).as("attention output, layer %d", layer)
                        .isLessThan(CudaAttentionKernelTest.tol(dtype));
                assertThat(e.lse()).as("attention LSE, layer %d", layer).isLessThan(CudaAttentionKernelTest.TOL_LSE);
            }
        }
    }

    /**
     * {@code prepare} + {@code attend} on GPU-resident queries (results at byte offsets) equals the host path; 4
     * tokens take the split-KV decode kernel, 40 the tiled one; a token before every key gets zeros and -inf.
     */
    @ParameterizedTest(name = "{0} query tokens")
    @ValueSource(ints = {4, 40})
    void attendResidentQueries(int tokens) {
        int d = 64, kvHeads = 2, heads = 8, n = 300, rows = tokens * heads;
        int[] kpos = GpuTestData.range(10, n);
        int[] qpos = tokens == 4 ? new int[] {110, 160, 309, 309} : GpuTestData.range(270, tokens);
        float[] q = GpuTestData.random((long) rows * d, 1.7f, 40 + tokens, KvDtype.FP16);
        float scale = (float) (1 / Math.sqrt(d));
        long outOff = 256, lseOff = 64;
        try (CudaKvStore store = fp16.createStore(new KvLayout(2, kvHeads, d, 0));
             DeviceArray qd = layers.upload(q, "q");
             DeviceArray posD = layers.allocate("positions");
             DeviceArray out = layers.allocate("out");
             DeviceArray lse = layers.allocate("lse")) {
            store.reserve(kpos);
            float[][] kv = new float[4][];
            for (int i = 0; i < 4; i++) {
                kv[i] = GpuTestData.random((long) n * kvHeads * d, 1.7f, 50 + i, KvDtype.FP16);
            }
            store.put(0, 0, kv[0], kv[1], 0, n);
            store.put(1, 0, kv[2], kv[3], 0, n);
            PartialAttention host = fp16.attend(store, 1, AttentionQuery.of(q, qpos, tokens, heads, d));
            CudaAttentionKernel.DeviceQuery dq = fp16.prepare(store, qpos, heads, posD);
            out.upload(nans((int) (outOff / 4) + rows * d));
            lse.upload(nans((int) (lseOff / 4) + rows));
            fp16.attend(dq, 1, qd, scale, out, outOff, lse, lseOff);
            float[] o = floats(out, outOff, rows * d);
            float[] l = floats(lse, lseOff, rows);
            assertNear("output vs host path", o, host.output(), 1e-6);
            assertNear("LSE vs host path", l, host.lse(), 1e-6);
            GpuTestData.Errors e = GpuTestData.compare(q, qpos, tokens, heads, d, scale, kv[2], kv[3], kpos, kvHeads,
                    o, l, GpuTestData.range(0, tokens));
            assertThat(e.out()).isLessThan(CudaAttentionKernelTest.TOL_OUT_FP16);
            assertThat(e.lse()).isLessThan(CudaAttentionKernelTest.TOL_LSE);

            CudaAttentionKernel.DeviceQuery none = fp16.prepare(store, new int[] {5}, heads, posD);
            out.upload(nans(heads * d));
            lse.upload(nans(heads));
            fp16.attend(none, 1, qd, scale, out, 0, lse, 0);
            assertThat(floats(out, 0, heads * d)).containsOnly(0f);
            assertThat(floats(lse, 0, heads)).containsOnly(Float.NEGATIVE_INFINITY);
        }
    }

    /** The GPU merge of two partials in device arrays, with rows empty in one or both, equals {@link LseMerge}. */
    @Test
    void mergeOnDevice() {
        int tokens = 3, heads = 8, d = 64, rows = tokens * heads;
        float[] o = GpuTestData.random(2L * rows * d, 1f, 70, KvDtype.FP16);
        float[] l = GpuTestData.random(2L * rows, 20f, 71, KvDtype.FP16);
        l[3] = l[rows + 5] = l[7] = l[rows + 7] = Float.NEGATIVE_INFINITY; // row 7 empty in both parts
        List<PartialAttention> parts = new ArrayList<>();
        for (int p = 0; p < 2; p++) {
            parts.add(new PartialAttention(tokens, heads, d, Arrays.copyOfRange(o, p * rows * d, (p + 1) * rows * d),
                    Arrays.copyOfRange(l, p * rows, (p + 1) * rows)));
        }
        PartialAttention want = LseMerge.merge(parts);
        try (DeviceArray po = layers.upload(o, "partial outputs");
             DeviceArray pl = layers.upload(l, "partial LSE");
             DeviceArray out = layers.upload(nans(rows * d), "out");
             DeviceArray lse = layers.upload(nans(rows), "lse")) {
            fp16.merge(po, pl, 2, rows, d, out, lse);
            assertNear("merged output", floats(out, 0, rows * d), want.output(), 1e-5);
            assertNear("merged LSE", floats(lse, 0, rows), want.lse(), 1e-5);
        }
    }

    // ------------------------------------------------------------------------------------------------------------

    /** max over i of |got - ref| / scale <= rel (NaN fails). */
    static void check(String what, float[] got, double[] ref, double[] scale, double rel) {
        double worst = 0;
        int at = 0;
        for (int i = 0; i < ref.length; i++) {
            double e = Math.abs(got[i] - ref[i]) / Math.max(scale[i], Double.MIN_NORMAL);
            if (Double.isNaN(e) || e > worst) {
                worst = Double.isNaN(e) ? Double.POSITIVE_INFINITY : e;
                at = i;
            }
        }
        System.out.printf("[gpu-check] %s: max relative error %.2e%n", what, worst);
        assertThat(worst).as("%s: worst relative error at %d: got %s, want %s", what, at, got[at], ref[at])
                .isLessThanOrEqualTo(rel);
    }

    /** Each value equals the fp64 reference rounded to bf16, within one bf16 ulp. */
    static void checkBf16(String what, float[] got, double[] ref) {
        for (int i = 0; i < ref.length; i++) {
            float want = bf16((float) ref[i]);
            double ulp = Math.ulp(want) * 65536.0;
            assertThat((double) got[i]).as("%s[%d] of %s", what, i, ref[i]).isBetween(want - ulp, want + ulp);
        }
    }

    static void assertNear(String what, float[] got, float[] want, double tol) {
        for (int i = 0; i < want.length; i++) {
            if (Float.isInfinite(want[i])) {
                assertThat(got[i]).as("%s[%d]", what, i).isEqualTo(want[i]);
            } else {
                assertThat((double) got[i]).as("%s[%d]", what, i).isBetween(want[i] - tol, want[i] + tol);
            }
        }
    }

    /** |x_i| + |x_partner(i)| for rotate-half pairs within heads of {@code d}: the scale of a rotated value. */
    static double[] pairMagnitude(float[] x, int d) {
        double[] s = new double[x.length];
        for (int j = 0; j < x.length; j++) {
            int base = j - j % d;
            s[j] = Math.abs(x[j]) + Math.abs(x[base + (j % d + d / 2) % d]);
        }
        return s;
    }

    static float[] rnd(Random r, int n, float amp) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (r.nextFloat() * 2 - 1) * amp;
        }
        return a;
    }

    static float[] nans(int n) {
        float[] a = new float[n];
        Arrays.fill(a, Float.NaN);
        return a;
    }

    static double[] abs(double[] x) {
        return Arrays.stream(x).map(Math::abs).toArray();
    }

    static double[] toDouble(float[] x) {
        return IntStream.range(0, x.length).mapToDouble(i -> x[i]).toArray();
    }

    static float bf16(float x) {
        return Float.intBitsToFloat(Matrix.toBf16(x) << 16);
    }

    /** bf16 bits of {@code x}, two per int, little-endian: element 2i in the low half. */
    static int[] packBf16(float[] x) {
        int[] p = new int[(x.length + 1) / 2];
        for (int i = 0; i < x.length; i++) {
            p[i / 2] |= (Matrix.toBf16(x[i]) & 0xFFFF) << (16 * (i % 2));
        }
        return p;
    }

    static float[] bf16s(DeviceArray a, int n) {
        int[] p = new int[(n + 1) / 2];
        a.download(0, p);
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = Float.intBitsToFloat(i % 2 == 0 ? p[i / 2] << 16 : p[i / 2] & 0xFFFF0000);
        }
        return f;
    }

    static float[] floats(DeviceArray a, long byteOffset, int n) {
        float[] f = new float[n];
        a.download(byteOffset, f);
        return f;
    }

    static int firstMax(float[] x, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (x[i] > x[best] || Float.isNaN(x[best])) {
                best = i;
            }
        }
        return best;
    }
}
