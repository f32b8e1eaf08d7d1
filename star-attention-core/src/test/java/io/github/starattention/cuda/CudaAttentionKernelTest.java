package io.github.starattention.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionQuery;
import io.github.starattention.attention.CpuAttentionKernel;
import io.github.starattention.attention.LseMerge;
import io.github.starattention.attention.PartialAttention;
import io.github.starattention.kv.HeapKvStore;
import io.github.starattention.kv.KvLayout;
import io.github.starattention.kv.KvStore;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * GPU vs reference agreement of the CUDA kernels. Skipped (not failed) where no usable GPU is present.
 *
 * <p>Inputs are random and already rounded to the KV dtype, so the reference (fp64 naive attention, or the CPU
 * kernel for small shapes) sees exactly what the GPU sees; what remains is the GPU's rounding of the softmax
 * weights to fp16/bf16 for the P.V product and fp32 accumulation.
 */
@Tag("gpu")
class CudaAttentionKernelTest {

    static final double TOL_OUT_FP16 = 2e-3;
    static final double TOL_OUT_BF16 = 1.2e-2;
    static final double TOL_LSE = 2e-3;

    static CudaAttentionKernel fp16;
    static CudaAttentionKernel bf16;

    @BeforeAll
    static void open() {
        CudaProbe.Result probe = CudaProbe.probe();
        if (!probe.available()) {
            return;
        }
        fp16 = new CudaAttentionKernel(0, KvDtype.FP16);
        bf16 = new CudaAttentionKernel(0, KvDtype.BF16);
        System.out.println("[gpu] " + probe.detail() + "; peak DRAM " + Math.round(fp16.peakBandwidthGBps()) + " GB/s");
    }

    @BeforeEach
    void needsGpu() {
        assumeTrue(fp16 != null, () -> "no usable GPU: " + CudaProbe.probe().detail());
    }

    @AfterAll
    static void close() {
        if (fp16 != null) {
            fp16.close();
        }
        if (bf16 != null) {
            bf16.close();
        }
    }

    static double tol(KvDtype t) {
        return t == KvDtype.FP16 ? TOL_OUT_FP16 : TOL_OUT_BF16;
    }

    /** (headDim, group, query tokens, context keys before the query, kind). */
    static Stream<Arguments> shapes() {
        List<Arguments> a = new ArrayList<>();
        for (int d : new int[] {64, 128}) {
            for (int g : new int[] {1, 4, 8}) {
                a.add(Arguments.of(d, g, 1, 0, "prefill"));
                a.add(Arguments.of(d, g, 333, 0, "prefill"));
                a.add(Arguments.of(d, g, 4096, 0, "prefill"));
                a.add(Arguments.of(d, g, 1, 65535, "decode"));
                a.add(Arguments.of(d, g, 100, 16384, "query"));
            }
        }
        a.add(Arguments.of(128, 4, 16384, 0, "prefill"));
        a.add(Arguments.of(64, 8, 16384, 0, "prefill"));
        a.add(Arguments.of(128, 1, 16384, 0, "prefill"));
        a.add(Arguments.of(128, 4, 65536, 0, "prefill"));
        a.add(Arguments.of(64, 8, 65536, 0, "prefill"));
        a.add(Arguments.of(128, 8, 65536, 0, "prefill"));
        a.add(Arguments.of(128, 4, 4, 131068, "decode"));
        return a.stream();
    }

    /**
     * Causal attention over {@code context + tokens} keys at positions {@code 0..}; the query tokens are the last
     * {@code tokens} positions (prefill: context 0; decode/query: a long context before them). 32 query heads.
     */
    @ParameterizedTest(name = "d={0} group={1} tokens={2} context={3} {4}")
    @MethodSource("shapes")
    void matchesFp64Reference(int d, int group, int tokens, int context, String kind) {
        runShape(fp16, d, group, tokens, context, kind, 1f);
        if (tokens <= 4096) {
            runShape(bf16, d, group, tokens, context, kind, 1f);
        }
    }

    /** Sharp softmax (scores of tens of units): exercises the running-max rescaling. */
    @ParameterizedTest(name = "peaky d={0} group={1}")
    @MethodSource("peakyShapes")
    void sharpSoftmax(int d, int group) {
        runShape(fp16, d, group, 777, 0, "prefill", 8f);
        runShape(fp16, d, group, 2, 5000, "decode", 8f);
    }

    /** Every prefill variant, not just the device's default (wg on Hopper, where it is the only one compiled for it). */
    @ParameterizedTest(name = "{0} d={1}")
    @MethodSource("variants")
    void everyPrefillVariantMatchesFp64Reference(String variant, int d) {
        assumeTrue(!variant.equals("wg") || fp16.runtime().hopper, "wg needs compute capability 9.x");
        for (CudaAttentionKernel kernel : List.of(fp16, bf16)) {
            kernel.setFwdVariant(variant);
            try {
                runShape(kernel, d, 4, 333, 0, "prefill", 1f);
                runShape(kernel, d, 8, 777, 0, "prefill", 8f);
                runShape(kernel, d, 1, 100, 16384, "query", 1f);
            } finally {
                kernel.setFwdVariant(kernel.defaultFwdVariant());
            }
        }
    }

    static Stream<Arguments> variants() {
        List<Arguments> a = new ArrayList<>();
        for (String v : new String[] {"w4", "w8", "w4m2", "wg"}) {
            a.add(Arguments.of(v, 64));
            a.add(Arguments.of(v, 128));
        }
        return a.stream();
    }

    @Test
    void hopperDefaultsToTheWgmmaPrefill() {
        CudaAttentionKernel.Plan p = fp16.plan(4096, 32, 8, 128, 4096);
        assertThat(p.kernel()).isEqualTo(fp16.runtime().hopper ? "attn_fwd_wg_f16_d128" : "attn_fwd_f16_d128_w4m2");
        assertThat(fp16.plan(1, 32, 8, 128, 4096).kernel()).isEqualTo("attn_split_f16_d128");
    }

    static Stream<Arguments> peakyShapes() {
        return Stream.of(Arguments.of(64, 4), Arguments.of(128, 8), Arguments.of(128, 1));
    }

    private void runShape(CudaAttentionKernel kernel, int d, int group, int tokens, int context, String kind,
                          float qAmp) {
        KvDtype type = kernel.kvDtype();
        int heads = 32;
        int kvHeads = heads / group;
        int n = context + tokens;
        long seed = 31L * d + 7L * group + tokens + context;
        float[] k = GpuTestData.random((long) n * kvHeads * d, 1.7f, seed, type);
        float[] v = GpuTestData.random((long) n * kvHeads * d, 1.7f, seed + 1, type);
        float[] q = GpuTestData.random((long) tokens * heads * d, 1.7f * qAmp, seed + 2, type);
        int[] kpos = GpuTestData.range(0, n);
        int[] qpos = GpuTestData.range(context, tokens);
        long t0 = System.nanoTime();
        PartialAttention pa;
        try (CudaKvStore store = kernel.createStore(new KvLayout(1, kvHeads, d, 0))) {
            int first = store.reserve(kpos);
            store.put(0, first, k, v, 0, n);
            pa = kernel.attend(store, 0, AttentionQuery.of(q, qpos, tokens, heads, d));
        }
        long t1 = System.nanoTime();
        GpuTestData.Errors e = GpuTestData.compare(q, qpos, tokens, heads, d, (float) (1 / Math.sqrt(d)), k, v, kpos,
                kvHeads, pa.output(), pa.lse(), GpuTestData.sample(tokens, 24));
        System.out.printf("[gpu-check] %-7s %s d=%d group=%d heads=%d tokens=%d keys=%d qAmp=%.0f (%s): max|dO|=%.2e"
                        + " max|dLSE|=%.2e (%d rows checked, GPU call %.1f ms)%n", kind, type, d, group, heads, tokens,
                n, qAmp, kernel.plan(tokens, heads, kvHeads, d, n).kernel(), e.out(), e.lse(), e.checkedRows(),
                (t1 - t0) / 1e6);
        assertThat(e.nonFinite()).as("NaN/inf in output").isFalse();
        assertThat(e.out()).as("output error").isLessThanOrEqualTo(tol(type));
        assertThat(e.lse()).as("LSE error").isLessThanOrEqualTo(TOL_LSE * Math.max(1, qAmp));
    }

    /** Star Attention position layouts on small shapes, against the CPU kernel, both dtypes, several layers. */
    @ParameterizedTest(name = "d={0} group={1}")
    @MethodSource("smallShapes")
    void matchesCpuKernelWithPositionGaps(int d, int group) {
        for (CudaAttentionKernel kernel : List.of(fp16, bf16)) {
            KvDtype type = kernel.kvDtype();
            int heads = 8 * Math.max(1, group / 2);
            heads = heads - heads % group;
            int kvHeads = heads / group;
            int layers = 3;
            // anchor block (positions 0..49) then a context block at 500..699, then query tokens at 900..
            int[] kpos = new int[250];
            for (int i = 0; i < 50; i++) {
                kpos[i] = i;
            }
            for (int i = 0; i < 200; i++) {
                kpos[50 + i] = 500 + i;
            }
            KvLayout layout = new KvLayout(layers, kvHeads, d, 0);
            try (CpuAttentionKernel cpu = new CpuAttentionKernel(2);
                 CudaKvStore gs = kernel.createStore(layout);
                 KvStore hs = cpu.createStore(layout)) {
                gs.reserve(kpos);
                hs.reserve(kpos);
                List<float[][]> kv = new ArrayList<>();
                for (int l = 0; l < layers; l++) {
                    float[] k = GpuTestData.random(250L * kvHeads * d, 1.7f, 100 + l, type);
                    float[] v = GpuTestData.random(250L * kvHeads * d, 1.7f, 200 + l, type);
                    kv.add(new float[][] {k, v});
                    // two puts per layer, the second one from an offset
                    gs.put(l, 0, k, v, 0, 120);
                    gs.put(l, 120, k, v, 120 * kvHeads * d, 130);
                    hs.put(l, 0, k, v, 0, 250);
                }
                // queries: before every key (sees none), inside the anchor, in the gap, inside and after the block;
                // unsorted on purpose
                int[] qpos = {-5, 3, 49, 300, 650, 499, 500, 10_000, 0, 699, 700, 42};
                int tokens = qpos.length;
                float[] q = GpuTestData.random((long) tokens * heads * d, 1.7f, 7, type);
                for (int l = 0; l < layers; l++) {
                    AttentionQuery query = AttentionQuery.of(q, qpos, tokens, heads, d);
                    PartialAttention g = kernel.attend(gs, l, query);
                    PartialAttention c = cpu.attend(hs, l, query);
                    double eo = maxDiff(g.output(), c.output());
                    double el = maxLseDiff(g.lse(), c.lse());
                    System.out.printf("[gpu-check] gaps    %s d=%d group=%d layer=%d: max|dO|=%.2e max|dLSE|=%.2e vs CPU%n",
                            type, d, group, l, eo, el);
                    assertThat(eo).isLessThanOrEqualTo(tol(type));
                    assertThat(el).isLessThanOrEqualTo(TOL_LSE);
                    assertThat(g.lse()[0]).isEqualTo(Float.NEGATIVE_INFINITY);
                    for (int i = 0; i < d; i++) {
                        assertThat(g.output()[i]).isZero();
                    }
                    // the same again against the fp64 reference
                    GpuTestData.Errors e = GpuTestData.compare(q, qpos, tokens, heads, d, query.scale(), kv.get(l)[0],
                            kv.get(l)[1], kpos, kvHeads, g.output(), g.lse(), GpuTestData.range(0, tokens));
                    assertThat(e.out()).isLessThanOrEqualTo(tol(type));
                    assertThat(e.lse()).isLessThanOrEqualTo(TOL_LSE);
                }
            }
        }
    }

    static Stream<Arguments> smallShapes() {
        return Stream.of(Arguments.of(64, 1), Arguments.of(64, 4), Arguments.of(128, 1), Arguments.of(128, 4),
                Arguments.of(128, 8), Arguments.of(64, 8));
    }

    @Test
    void gpuMergeMatchesLseMerge() {
        int tokens = 7;
        int heads = 4;
        int d = 128;
        List<PartialAttention> parts = new ArrayList<>();
        for (int p = 0; p < 5; p++) {
            float[] o = GpuTestData.random((long) tokens * heads * d, 1f, 50 + p, KvDtype.FP16);
            float[] l = GpuTestData.random((long) tokens * heads, 20f, 60 + p, KvDtype.FP16);
            if (p % 2 == 0) {
                l[3] = Float.NEGATIVE_INFINITY; // row 3 empty in some parts
            }
            if (p > 0) {
                l[5] = Float.NEGATIVE_INFINITY; // row 5 only in part 0
            }
            parts.add(new PartialAttention(tokens, heads, d, o, l));
        }
        float[] zero = new float[tokens * heads * d];
        float[] none = new float[tokens * heads];
        Arrays.fill(none, Float.NEGATIVE_INFINITY);
        parts.add(new PartialAttention(tokens, heads, d, zero, none));
        PartialAttention gpu = fp16.merge(parts);
        PartialAttention cpu = LseMerge.merge(parts);
        double eo = maxDiff(gpu.output(), cpu.output());
        double el = maxLseDiff(gpu.lse(), cpu.lse());
        System.out.printf("[gpu-check] merge   %d parts: max|dO|=%.2e max|dLSE|=%.2e vs LseMerge%n", parts.size(), eo, el);
        assertThat(eo).isLessThan(1e-5);
        assertThat(el).isLessThan(1e-5);
        // all-empty rows stay empty
        PartialAttention empty = fp16.merge(List.of(parts.getLast(), parts.getLast()));
        assertThat(empty.lse()).containsOnly(Float.NEGATIVE_INFINITY);
        assertThat(empty.output()).containsOnly(0f);
    }

    @Test
    void storeOperations() {
        int d = 64;
        int kvHeads = 2;
        int heads = 4;
        KvLayout layout = new KvLayout(2, kvHeads, d, 0);
        try (CpuAttentionKernel cpu = new CpuAttentionKernel(2);
             CudaKvStore a = fp16.createStore(layout);
             CudaKvStore b = fp16.createStore(layout);
             HeapKvStore h = (HeapKvStore) cpu.createStore(layout);
             HeapKvStore h2 = (HeapKvStore) cpu.createStore(layout)) {
            assertThat(a.capacity()).isEqualTo(16);
            assertThat(a.bytes()).isEqualTo(2L * 2 * 16 * kvHeads * d * 2 + 16 * 4);
            int n = 40;
            int[] pos = GpuTestData.range(10, n);
            // 10 slots filled, then 30 more: the second reserve grows the store and must keep the first 10
            assertThat(a.reserve(java.util.Arrays.copyOfRange(pos, 0, 10))).isZero();
            h.reserve(pos);
            float[][] kl = new float[2][];
            float[][] vl = new float[2][];
            for (int l = 0; l < 2; l++) {
                kl[l] = GpuTestData.random((long) n * kvHeads * d, 1.7f, 300 + l, KvDtype.FP16);
                vl[l] = GpuTestData.random((long) n * kvHeads * d, 1.7f, 400 + l, KvDtype.FP16);
                a.put(l, 0, kl[l], vl[l], 0, 10);
                h.put(l, 0, kl[l], vl[l], 0, n);
            }
            assertThat(a.reserve(java.util.Arrays.copyOfRange(pos, 10, n))).isEqualTo(10);
            assertThat(a.capacity()).isGreaterThanOrEqualTo(40);
            for (int l = 0; l < 2; l++) {
                a.put(l, 10, kl[l], vl[l], 10 * kvHeads * d, n - 10);
            }
            assertThat(a.size()).isEqualTo(40);
            assertThat(a.position(0)).isEqualTo(10);
            assertThat(a.lastPosition()).isEqualTo(49);
            float[] q = GpuTestData.random(3L * heads * d, 1.7f, 9, KvDtype.FP16);
            AttentionQuery query = AttentionQuery.of(q, new int[] {15, 49, 100}, 3, heads, d);
            PartialAttention before = fp16.attend(a, 1, query);
            assertClose(before, cpu.attend(h, 1, query), TOL_OUT_FP16);

            // mark / rollback
            int mark = a.mark();
            a.reserve(new int[] {60, 61});
            a.put(1, 40, new float[2 * kvHeads * d], new float[2 * kvHeads * d], 0, 2);
            assertThat(fp16.attend(a, 1, query).lse()[2 * heads]).isNotEqualTo(before.lse()[2 * heads]);
            a.rollback(mark);
            assertThat(a.size()).isEqualTo(40);
            assertClose(fp16.attend(a, 1, query), before, 0);

            // appendFrom GPU -> GPU and heap -> GPU
            b.appendFrom(a, 5, 30);
            h2.appendFrom(h, 5, 30);
            assertThat(b.size()).isEqualTo(25);
            assertThat(b.position(0)).isEqualTo(15);
            for (int l = 0; l < 2; l++) {
                assertClose(fp16.attend(b, l, query), cpu.attend(h2, l, query), TOL_OUT_FP16);
            }
            b.appendFrom(h, 30, 40);
            h2.appendFrom(h, 30, 40);
            assertThat(b.size()).isEqualTo(35);
            assertClose(fp16.attend(b, 0, query), cpu.attend(h2, 0, query), TOL_OUT_FP16);

            // misuse
            assertThatThrownBy(() -> a.reserve(new int[] {49})).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> a.put(0, 39, q, q, 0, 2)).isInstanceOf(IndexOutOfBoundsException.class);
            assertThatThrownBy(() -> fp16.attend(h, 0, query)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> bf16.attend(a, 0, query)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> b.appendFrom(bf16.createStore(layout), 0, 0))
                    .isInstanceOf(IllegalArgumentException.class);

            a.close();
            assertThat(a.bytes()).isZero();
            assertThatThrownBy(() -> a.reserve(new int[] {100})).isInstanceOf(IllegalStateException.class);
            assertThatThrownBy(() -> fp16.attend(a, 0, query)).isInstanceOf(IllegalStateException.class);
        }
    }

    @Test
    void errorsAreClear() {
        assertThatThrownBy(() -> fp16.createStore(new KvLayout(1, 8, 96, 0)))
                .isInstanceOf(UnsupportedOperationException.class).hasMessageContaining("96");
        // ~3 TB: the driver refuses; the message says what was being allocated
        assertThatThrownBy(() -> fp16.createStore(new KvLayout(1, 8, 128, 1_500_000_000)))
                .isInstanceOfSatisfying(CudaAttentionException.class, e -> assertThat(e.outOfMemory()).isTrue())
                .hasMessageContaining("out of GPU memory").hasMessageContaining("KV store");
        // the kernel still works afterwards
        try (CudaKvStore s = fp16.createStore(new KvLayout(1, 1, 64, 0))) {
            s.reserve(new int[] {0});
            s.put(0, 0, new float[64], new float[64], 0, 1);
            PartialAttention p = fp16.attend(s, 0, AttentionQuery.of(new float[64], new int[] {0}, 1, 1, 64));
            assertThat(p.lse()[0]).isEqualTo(0f);
        }
    }

    @Test
    void emptyQueriesAndStores() {
        try (CudaKvStore s = fp16.createStore(new KvLayout(1, 2, 128, 0))) {
            PartialAttention none = fp16.attend(s, 0, AttentionQuery.of(new float[4 * 128], new int[] {5}, 1, 4, 128));
            assertThat(none.lse()).containsOnly(Float.NEGATIVE_INFINITY);
            PartialAttention zero = fp16.attend(s, 0, AttentionQuery.of(new float[0], new int[0], 0, 4, 128));
            assertThat(zero.tokens()).isZero();
        }
    }

    @Test
    void closingTheKernelClosesItsStores() {
        CudaAttentionKernel k = new CudaAttentionKernel(0, KvDtype.FP16);
        CudaKvStore s = k.createStore(new KvLayout(2, 8, 128, 1000));
        assertThat(s.bytes()).isGreaterThan(0);
        k.close();
        assertThat(s.bytes()).isZero();
        assertThatThrownBy(() -> k.createStore(new KvLayout(1, 1, 64, 0))).isInstanceOf(IllegalStateException.class);
        AttentionKernel again = new CudaAttentionKernel();
        assertThat(again.name()).isEqualTo("cuda:0");
        again.close();
    }

    static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs((double) a[i] - b[i]));
            if (Float.isNaN(a[i]) != Float.isNaN(b[i])) {
                return Double.POSITIVE_INFINITY;
            }
        }
        return m;
    }

    static double maxLseDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            if (a[i] == Float.NEGATIVE_INFINITY || b[i] == Float.NEGATIVE_INFINITY) {
                if (a[i] != b[i]) {
                    return Double.POSITIVE_INFINITY;
                }
                continue;
            }
            m = Math.max(m, Math.abs((double) a[i] - b[i]));
        }
        return m;
    }

    static void assertClose(PartialAttention a, PartialAttention b, double tol) {
        assertThat(maxDiff(a.output(), b.output())).isLessThanOrEqualTo(tol);
        assertThat(maxLseDiff(a.lse(), b.lse())).isLessThanOrEqualTo(Math.max(tol, 1e-5));
    }
}
