package io.github.starattention.attention;

import io.github.starattention.kv.KvLayout;
import io.github.starattention.kv.KvStore;
import java.util.Arrays;
import java.util.Locale;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * Times {@link CpuAttentionKernel} against the scalar {@link ReferenceAttentionKernel} on the target workload:
 * head dim 64, 4 query heads over 2 KV heads,
 * <ul>
 *   <li>causal prefill of a 16K-token context in chunks of 256 query tokens (each chunk's K/V is appended, then the
 *       chunk attends to everything so far, as a model prefill does);</li>
 *   <li>decode of one token over the 16K keys.</li>
 * </ul>
 * It prints milliseconds, GFLOP/s ({@code 4 * headDim} flops per (query token, visible key, query head)), decode
 * GB/s (bytes of K and V read) and the speed-up over the reference. The reference takes minutes for the whole
 * prefill, so by default it runs every 8th chunk only and both kernels are compared on those chunks.
 *
 * <p>Run after {@code mvn -pl star-attention-core compile}:
 * <pre>
 * java --add-modules jdk.incubator.vector \
 *   -cp star-attention-core/target/classes:$HOME/.m2/repository/org/slf4j/slf4j-api/2.0.20/slf4j-api-2.0.20.jar \
 *   io.github.starattention.attention.KernelBenchmark [threads] [--context=16384] [--reference-every=8]
 * </pre>
 * {@code --reference-every=1} times the reference on the full prefill; {@code --reference-every=0} skips it.
 */
public final class KernelBenchmark {

    private static final int HEAD_DIM = 64;
    private static final int HEADS = 4;
    private static final int KV_HEADS = 2;
    private static final int CHUNK = 256;

    private final int threads;
    private final int context;
    private final int referenceEvery;
    private final float[] k;
    private final float[] v;
    private final float[] q;

    private KernelBenchmark(int threads, int context, int referenceEvery) {
        this.threads = threads;
        this.context = context;
        this.referenceEvery = referenceEvery;
        Random rnd = new Random(42);
        this.k = gaussian(rnd, context * KV_HEADS * HEAD_DIM);
        this.v = gaussian(rnd, context * KV_HEADS * HEAD_DIM);
        this.q = gaussian(rnd, (context + 1) * HEADS * HEAD_DIM);
    }

    /** Arguments: {@code [threads] [--context=N] [--reference-every=N]}. */
    public static void main(String[] args) {
        int threads = Runtime.getRuntime().availableProcessors();
        int context = 16384;
        int every = 8;
        for (String a : args) {
            if (a.startsWith("--context=")) {
                context = Integer.parseInt(a.substring("--context=".length()));
            } else if (a.startsWith("--reference-every=")) {
                every = Integer.parseInt(a.substring("--reference-every=".length()));
            } else {
                threads = Integer.parseInt(a);
            }
        }
        if (context < CHUNK || context % CHUNK != 0) {
            throw new IllegalArgumentException("--context must be a positive multiple of " + CHUNK + ", got " + context);
        }
        new KernelBenchmark(threads, context, every).run();
    }

    private void run() {
        System.out.printf(Locale.ROOT, "attention kernels: context %d, chunks of %d, head dim %d, %d heads / %d KV heads, "
                + "%d threads, %d fp32 lanes%n", context, CHUNK, HEAD_DIM, HEADS, KV_HEADS, threads, CpuAttentionKernel.SPECIES.length());
        int chunks = context / CHUNK;
        boolean[] sampled = new boolean[chunks];
        for (int c = 0; c < chunks; c++) {
            sampled[c] = referenceEvery > 0 && c % referenceEvery == referenceEvery - 1;
        }
        try (AttentionKernel fast = new CpuAttentionKernel(threads); AttentionKernel reference = new ReferenceAttentionKernel(threads)) {
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

    /** Prefills {@code chunks} chunks; times and keeps the chunks {@code sampled} selects (all when null). */
    private KvStore prefill(AttentionKernel kernel, int chunks, long[] nanos, PartialAttention[] out) {
        return prefill(kernel, chunks, nanos, out, null);
    }

    private KvStore prefill(AttentionKernel kernel, int chunks, long[] nanos, PartialAttention[] out, boolean[] sampled) {
        KvStore store = kernel.createStore(new KvLayout(1, KV_HEADS, HEAD_DIM, 0));
        int row = KV_HEADS * HEAD_DIM;
        for (int c = 0; c < chunks; c++) {
            int[] pos = IntStream.range(c * CHUNK, (c + 1) * CHUNK).toArray();
            int first = store.reserve(pos);
            store.put(0, first, k, v, c * CHUNK * row, CHUNK);
            if (sampled != null && !sampled[c]) {
                continue;
            }
            AttentionQuery query = AttentionQuery.of(Arrays.copyOfRange(q, c * CHUNK * HEADS * HEAD_DIM,
                    (c + 1) * CHUNK * HEADS * HEAD_DIM), pos, CHUNK, HEADS, HEAD_DIM);
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
            double f = pairs * HEADS * 4.0 * HEAD_DIM;
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
        AttentionQuery query = AttentionQuery.of(Arrays.copyOfRange(q, context * HEADS * HEAD_DIM, (context + 1) * HEADS * HEAD_DIM),
                new int[] {context}, 1, HEADS, HEAD_DIM);
        double bytes = 2.0 * keys * KV_HEADS * HEAD_DIM * Float.BYTES;
        double flops = (double) keys * HEADS * 4 * HEAD_DIM;
        long fastNs = medianNanos(fast, store, query, 200, 300);
        System.out.printf(Locale.ROOT, "decode 1 token over %d keys, optimized: %7.3f ms  %6.1f GB/s  %6.1f GFLOP/s%n",
                keys, fastNs / 1e6, bytes / fastNs, flops / fastNs);
        if (referenceEvery > 0) {
            long refNs = medianNanos(reference, store, query, 3, 9);
            System.out.printf(Locale.ROOT, "decode 1 token over %d keys, reference: %7.3f ms  %6.1f GB/s  %6.1f GFLOP/s"
                            + " | speed-up %6.1fx | max |diff| %.2e%n", keys, refNs / 1e6, bytes / refNs, flops / refNs,
                    (double) refNs / fastNs, maxDifference(fast.attend(store, 0, query), reference.attend(store, 0, query)));
        }
    }

    private static long medianNanos(AttentionKernel kernel, KvStore store, AttentionQuery query, int warmup, int runs) {
        for (int i = 0; i < warmup; i++) {
            kernel.attend(store, 0, query);
        }
        long[] t = new long[runs];
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            kernel.attend(store, 0, query);
            t[i] = System.nanoTime() - t0;
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
