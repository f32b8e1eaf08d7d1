package io.github.starattention.attention;

import io.github.starattention.kv.KvLayout;
import io.github.starattention.kv.KvPrecision;
import io.github.starattention.kv.KvStore;
import java.util.Arrays;
import java.util.Locale;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * Times {@link CpuAttentionKernel} against the scalar {@link ReferenceAttentionKernel} on the target workload:
 * head dim 64, by default 4 query heads over 2 KV heads,
 * <ul>
 *   <li>causal prefill of a 16K-token context in chunks of 256 query tokens (each chunk's K/V is appended, then the
 *       chunk attends to everything so far, as a model prefill does);</li>
 *   <li>decode of one token (or {@code --decode-tokens}) over the 16K keys: one call is one layer of a decode
 *       step.</li>
 * </ul>
 * It prints milliseconds, GFLOP/s ({@code 4 * headDim} flops per (query token, visible key, query head)), decode
 * GB/s (bytes of K and V read) and the speed-up over the reference. The reference takes minutes for the whole
 * prefill, so by default it runs every 8th chunk only and both kernels are compared on those chunks.
 *
 * <p>Run after {@code mvn -pl star-attention-core compile}:
 * <pre>
 * java --add-modules jdk.incubator.vector \
 *   -cp star-attention-core/target/classes:$HOME/.m2/repository/org/slf4j/slf4j-api/2.0.20/slf4j-api-2.0.20.jar \
 *   io.github.starattention.attention.KernelBenchmark [threads] [--context=16384] [--reference-every=8] \
 *   [--heads=4] [--kv-heads=2] [--kv=f32|bf16] [--decode-tokens=1] [--decode-only] [--layers=1]
 * </pre>
 * {@code --reference-every=1} times the reference on the full prefill; {@code --reference-every=0} skips it.
 * {@code --decode-only} fills the store without timing the prefill. {@code --layers=N} (with {@code --decode-only})
 * fills N layers and times a decode step over all of them, reporting the time per layer: one layer's K/V (6 MB at
 * 4K keys) stays in the last-level cache across repeated calls, N of them do not, as in a model. SmolLM2-135M
 * decode at 4K keys: {@code --context=4096 --heads=9 --kv-heads=3 --kv=bf16 --decode-only --layers=30}.
 */
public final class KernelBenchmark {

    private static final int HEAD_DIM = 64;
    private static final int CHUNK = 256;
    /** Decode warm-up: C2 takes a few seconds over the vector kernels on 2 cores; timing earlier measures it too. */
    private static final long WARMUP_NANOS = 4_000_000_000L;

    private final int threads;
    private final int context;
    private final int referenceEvery;
    private final int heads;
    private final int kvHeads;
    private final KvPrecision precision;
    private final int decodeTokens;
    private final boolean decodeOnly;
    private final int layers;
    private final float[] k;
    private final float[] v;
    private final float[] q;

    private KernelBenchmark(int threads, int context, int referenceEvery, int heads, int kvHeads, KvPrecision precision,
                            int decodeTokens, boolean decodeOnly, int layers) {
        this.threads = threads;
        this.context = context;
        this.referenceEvery = referenceEvery;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.precision = precision;
        this.decodeTokens = decodeTokens;
        this.decodeOnly = decodeOnly;
        this.layers = layers;
        Random rnd = new Random(42);
        this.k = gaussian(rnd, context * kvHeads * HEAD_DIM);
        this.v = gaussian(rnd, context * kvHeads * HEAD_DIM);
        this.q = gaussian(rnd, (context + decodeTokens) * heads * HEAD_DIM);
    }

    /**
     * Arguments: {@code [threads] [--context=N] [--reference-every=N] [--heads=N] [--kv-heads=N] [--kv=f32|bf16]
     * [--decode-tokens=N] [--decode-only] [--layers=N]}.
     */
    public static void main(String[] args) {
        int threads = Runtime.getRuntime().availableProcessors();
        int context = 16384;
        int every = 8;
        int heads = 4;
        int kvHeads = 2;
        KvPrecision precision = KvPrecision.F32;
        int decodeTokens = 1;
        boolean decodeOnly = false;
        int layers = 1;
        for (String a : args) {
            if (a.startsWith("--context=")) {
                context = Integer.parseInt(a.substring("--context=".length()));
            } else if (a.startsWith("--reference-every=")) {
                every = Integer.parseInt(a.substring("--reference-every=".length()));
            } else if (a.startsWith("--heads=")) {
                heads = Integer.parseInt(a.substring("--heads=".length()));
            } else if (a.startsWith("--kv-heads=")) {
                kvHeads = Integer.parseInt(a.substring("--kv-heads=".length()));
            } else if (a.startsWith("--kv=")) {
                precision = KvPrecision.valueOf(a.substring("--kv=".length()).toUpperCase(Locale.ROOT));
            } else if (a.startsWith("--decode-tokens=")) {
                decodeTokens = Integer.parseInt(a.substring("--decode-tokens=".length()));
            } else if (a.startsWith("--layers=")) {
                layers = Integer.parseInt(a.substring("--layers=".length()));
            } else if (a.equals("--decode-only")) {
                decodeOnly = true;
            } else {
                threads = Integer.parseInt(a);
            }
        }
        if (context < CHUNK || context % CHUNK != 0) {
            throw new IllegalArgumentException("--context must be a positive multiple of " + CHUNK + ", got " + context);
        }
        if (kvHeads <= 0 || heads % kvHeads != 0 || decodeTokens <= 0 || layers <= 0 || (layers > 1 && !decodeOnly)) {
            throw new IllegalArgumentException("--heads must be a multiple of --kv-heads, --decode-tokens and --layers"
                    + " positive, --layers > 1 only with --decode-only");
        }
        new KernelBenchmark(threads, context, every, heads, kvHeads, precision, decodeTokens, decodeOnly, layers).run();
    }

    private void run() {
        System.out.printf(Locale.ROOT, "attention kernels: context %d, chunks of %d, head dim %d, %d heads / %d KV heads, "
                + "%s KV, %d layers, %d threads, %d fp32 lanes%n", context, CHUNK, HEAD_DIM, heads, kvHeads, precision,
                layers, threads, CpuAttentionKernel.SPECIES.length());
        int chunks = context / CHUNK;
        boolean[] sampled = new boolean[chunks];
        for (int c = 0; c < chunks; c++) {
            sampled[c] = referenceEvery > 0 && c % referenceEvery == referenceEvery - 1;
        }
        // the reference reads the fast kernel's stores, widening bf16 ones
        try (AttentionKernel fast = new CpuAttentionKernel(threads, precision);
             AttentionKernel reference = new ReferenceAttentionKernel(threads)) {
            if (decodeOnly) {
                KvStore store = fill(fast);
                decode(fast, reference, store);
                store.close();
                return;
            }
            // warm-up: let C2 compile both kernels on a shorter prefill and a few decodes
            prefill(fast, Math.min(context, 4096) / CHUNK, null, null);
            prefill(fast, Math.min(context, 4096) / CHUNK, null, null);
            if (referenceEvery > 0) {
                prefill(reference, Math.min(context, 1024) / CHUNK, null, null);
            }
            long[] fastNanos = new long[chunks];
            PartialAttention[] fastOut = new PartialAttention[chunks];
            KvStore store = null;
            for (int rep = 0; rep < 3; rep++) {
                long[] t = new long[chunks];
                if (store != null) {
                    store.close();
                }
                store = prefill(fast, chunks, t, rep == 0 ? fastOut : null);
                if (rep == 0 || Arrays.stream(t).sum() < Arrays.stream(fastNanos).sum()) {
                    fastNanos = t;
                }
            }
            long[] refNanos = new long[chunks];
            PartialAttention[] refOut = new PartialAttention[chunks];
            if (referenceEvery > 0) {
                prefill(reference, chunks, refNanos, refOut, sampled).close();
            }
            report("prefill", chunks, sampled, fastNanos, refNanos, fastOut, refOut);
            decode(fast, reference, store);
            store.close();
        }
    }

    /** A store holding the whole context in every layer, filled without attending. */
    private KvStore fill(AttentionKernel kernel) {
        KvStore store = kernel.createStore(new KvLayout(layers, kvHeads, HEAD_DIM, 0));
        int first = store.reserve(IntStream.range(0, context).toArray());
        for (int l = 0; l < layers; l++) {
            store.put(l, first, k, v, 0, context);
        }
        return store;
    }

    /** Prefills {@code chunks} chunks; times and keeps the chunks {@code sampled} selects (all when null). */
    private KvStore prefill(AttentionKernel kernel, int chunks, long[] nanos, PartialAttention[] out) {
        return prefill(kernel, chunks, nanos, out, null);
    }

    private KvStore prefill(AttentionKernel kernel, int chunks, long[] nanos, PartialAttention[] out, boolean[] sampled) {
        KvStore store = kernel.createStore(new KvLayout(1, kvHeads, HEAD_DIM, 0));
        int row = kvHeads * HEAD_DIM;
        for (int c = 0; c < chunks; c++) {
            int[] pos = IntStream.range(c * CHUNK, (c + 1) * CHUNK).toArray();
            int first = store.reserve(pos);
            store.put(0, first, k, v, c * CHUNK * row, CHUNK);
            if (sampled != null && !sampled[c]) {
                continue;
            }
            AttentionQuery query = AttentionQuery.of(Arrays.copyOfRange(q, c * CHUNK * heads * HEAD_DIM,
                    (c + 1) * CHUNK * heads * HEAD_DIM), pos, CHUNK, heads, HEAD_DIM);
            long t0 = System.nanoTime();
            PartialAttention p = kernel.attend(store, 0, query);
            long t1 = System.nanoTime();
            if (nanos != null) {
                nanos[c] = t1 - t0;
            }
            if (out != null) {
                out[c] = p;
            }
        }
        return store;
    }

    private void report(String what, int chunks, boolean[] sampled, long[] fastNanos, long[] refNanos,
                        PartialAttention[] fastOut, PartialAttention[] refOut) {
        double flops = 0;
        double sampledFlops = 0;
        long fastSampled = 0;
        long refSampled = 0;
        double maxDiff = 0;
        for (int c = 0; c < chunks; c++) {
            // chunk c: token i of the chunk sees c * CHUNK + i + 1 keys
            double pairs = (double) CHUNK * c * CHUNK + CHUNK * (CHUNK + 1) / 2.0;
            double f = pairs * heads * 4.0 * HEAD_DIM;
            flops += f;
            if (sampled[c]) {
                sampledFlops += f;
                fastSampled += fastNanos[c];
                refSampled += refNanos[c];
                maxDiff = Math.max(maxDiff, maxDifference(fastOut[c], refOut[c]));
            }
        }
        long fastTotal = Arrays.stream(fastNanos).sum();
        System.out.printf(Locale.ROOT, "%s %d tokens, optimized: %9.1f ms  %7.1f GFLOP/s%n", what, context,
                fastTotal / 1e6, flops / fastTotal);
        if (refSampled > 0) {
            System.out.printf(Locale.ROOT, "%s, %s: reference %9.1f ms  %7.1f GFLOP/s | optimized %8.1f ms  %7.1f GFLOP/s"
                            + " | speed-up %6.1fx | max |diff| %.2e%n", what,
                    referenceEvery == 1 ? "all chunks" : "every " + referenceEvery + "th chunk", refSampled / 1e6,
                    sampledFlops / refSampled, fastSampled / 1e6, sampledFlops / fastSampled,
                    (double) refSampled / fastSampled, maxDiff);
        }
    }

    private void decode(AttentionKernel fast, AttentionKernel reference, KvStore store) {
        int keys = store.size();
        int n = decodeTokens;
        AttentionQuery query = AttentionQuery.of(Arrays.copyOfRange(q, context * heads * HEAD_DIM, (context + n) * heads * HEAD_DIM),
                IntStream.range(context, context + n).toArray(), n, heads, HEAD_DIM);
        double bytes = 2.0 * keys * kvHeads * HEAD_DIM * precision.bytes();
        double flops = (double) n * keys * heads * 4 * HEAD_DIM;
        // about 60 K/V-seconds' worth of calls at most: 16K keys over 30 layers is 0.75 GB a step
        int runs = Math.max(9, Math.min(300, 3000 / layers));
        long fastNs = medianNanos(fast, store, query, runs * 2 / 3, WARMUP_NANOS, runs);
        System.out.printf(Locale.ROOT, "decode %d token(s) over %d keys, optimized: %7.3f ms  %6.1f GB/s  %6.1f GFLOP/s"
                + " per layer%n", n, keys, fastNs / 1e6, bytes / fastNs, flops / fastNs);
        if (referenceEvery > 0) {
            long refNs = medianNanos(reference, store, query, 3, 0, 9);
            System.out.printf(Locale.ROOT, "decode %d token(s) over %d keys, reference: %7.3f ms  %6.1f GB/s  %6.1f GFLOP/s"
                            + " | speed-up %6.1fx | max |diff| %.2e%n", n, keys, refNs / 1e6, bytes / refNs, flops / refNs,
                    (double) refNs / fastNs, maxDifference(fast.attend(store, 0, query), reference.attend(store, 0, query)));
        }
    }

    /**
     * Median over {@code runs} decode steps of the time per layer of a step (a call per layer), after at least
     * {@code warmup} steps and {@code warmupNanos}.
     */
    private long medianNanos(AttentionKernel kernel, KvStore store, AttentionQuery query, int warmup, long warmupNanos,
                             int runs) {
        long start = System.nanoTime();
        for (int i = 0; i < warmup || System.nanoTime() - start < warmupNanos; i++) {
            for (int l = 0; l < layers; l++) {
                kernel.attend(store, l, query);
            }
        }
        long[] t = new long[runs];
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            for (int l = 0; l < layers; l++) {
                kernel.attend(store, l, query);
            }
            t[i] = (System.nanoTime() - t0) / layers;
        }
        Arrays.sort(t);
        return t[runs / 2];
    }

    private static double maxDifference(PartialAttention a, PartialAttention b) {
        double max = 0;
        for (int i = 0; i < a.output().length; i++) {
            max = Math.max(max, Math.abs(a.output()[i] - b.output()[i]));
        }
        for (int i = 0; i < a.lse().length; i++) {
            max = Math.max(max, Math.abs(a.lse()[i] - b.lse()[i]));
        }
        return max;
    }

    private static float[] gaussian(Random rnd, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return x;
    }
}
