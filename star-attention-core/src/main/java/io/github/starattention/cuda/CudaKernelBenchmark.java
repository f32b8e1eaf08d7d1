package io.github.starattention.cuda;

import io.github.starattention.attention.AttentionQuery;
import io.github.starattention.kv.KvLayout;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.TreeSet;
import java.util.stream.IntStream;
import jcuda.driver.CUevent;
import jcuda.driver.JCudaDriver;

/**
 * Kernel throughput on the GPU: causal prefill (TFLOP/s) and one-token decode over a long KV (GB/s of K+V read),
 * timed with CUDA events around the kernels only (queries already on the GPU, results left there), plus the time
 * of one full {@code attend} call including the fp32 transfers. Prints a table and JSON lines ({@code --out FILE})
 * that {@code src/main/cuda/bench_sdpa.py --compare FILE} reads to report the ratio to PyTorch SDPA.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp ... io.github.starattention.cuda.CudaKernelBenchmark \
 *     [--dtype fp16|bf16] [--dims 64,128] [--heads 32] [--kv-heads 8] [--prefill 4096,16384,65536]
 *     [--decode 4096,16384,65536,131072] [--variants w4,w8,w4m2[,wg]] [--waves 1,2] [--out results.jsonl]
 * </pre>
 * FLOPs of causal prefill over N tokens: {@code 4 * N * N * headDim * heads / 2} (the FlashAttention convention).
 */
public final class CudaKernelBenchmark {

    private CudaKernelBenchmark() {
    }

    public static void main(String[] args) throws IOException {
        KvDtype dtype = KvDtype.FP16;
        int[] dims = {64, 128};
        int heads = 32;
        int kvHeads = 8;
        int[] prefill = {4096, 16384, 65536};
        int[] decode = {4096, 16384, 65536, 131072};
        String[] variants = null; // default: w4, w8, w4m2, and wg on Hopper
        double[] waves = {0.5, 1, 2};
        Path out = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String v = i + 1 < args.length ? args[i + 1] : "";
            switch (a) {
                case "--dtype" -> dtype = v.startsWith("bf") ? KvDtype.BF16 : KvDtype.FP16;
                case "--dims" -> dims = ints(v);
                case "--heads" -> heads = Integer.parseInt(v);
                case "--kv-heads" -> kvHeads = Integer.parseInt(v);
                case "--prefill" -> prefill = ints(v);
                case "--decode" -> decode = ints(v);
                case "--variants" -> variants = v.split(",");
                case "--waves" -> waves = Arrays.stream(v.split(",")).filter(s -> !s.isBlank())
                        .mapToDouble(Double::parseDouble).toArray();
                case "--out" -> out = Path.of(v);
                default -> throw new IllegalArgumentException("unknown option " + a);
            }
            i++;
        }
        PrintStream json = out == null ? null : new PrintStream(Files.newOutputStream(out), true);
        try (CudaAttentionKernel k = new CudaAttentionKernel(0, dtype)) {
            CudaRuntime rt = k.runtime();
            if (variants == null) {
                variants = rt.hopper ? new String[] {"w4", "w8", "w4m2", "wg"} : new String[] {"w4", "w8", "w4m2"};
            }
            System.out.printf(Locale.ROOT, "device %s, %d SMs, peak DRAM %.0f GB/s, KV %s, heads %d / kv heads %d%n",
                    rt.deviceName, rt.smCount, rt.peakGBps, dtype, heads, kvHeads);
            TreeSet<Integer> seqs = new TreeSet<>();
            Arrays.stream(prefill).forEach(seqs::add);
            Arrays.stream(decode).forEach(seqs::add);
            for (int d : dims) {
                for (int n : seqs) {
                    boolean doPrefill = Arrays.stream(prefill).anyMatch(x -> x == n);
                    boolean doDecode = Arrays.stream(decode).anyMatch(x -> x == n);
                    runShape(k, json, dtype, d, heads, kvHeads, n, doPrefill ? variants : new String[0],
                            doDecode ? waves : new double[0]);
                }
            }
        } finally {
            if (json != null) {
                json.close();
            }
        }
    }

    private static void runShape(CudaAttentionKernel k, PrintStream json, KvDtype dtype, int d, int heads,
                                 int kvHeads, int n, String[] variants, double[] waves) {
        CudaRuntime rt = k.runtime();
        float scale = (float) (1 / Math.sqrt(d));
        try (CudaKvStore store = k.createStore(new KvLayout(1, kvHeads, d, n))) {
            int[] pos = IntStream.range(0, n).toArray();
            store.reserve(pos);
            float[] kv = fill((long) n * kvHeads * d, 11 + n + d);
            store.put(0, 0, kv, kv, 0, n);
            kv = null;
            if (variants.length > 0) {
                float[] q = fill((long) n * heads * d, 17 + n);
                double flops = 4.0 * n * (double) n * d * heads / 2;
                for (String w : variants) {
                    k.setFwdVariant(w);
                    CudaAttentionKernel.Plan[] plan = new CudaAttentionKernel.Plan[1];
                    double ms = time(k, () -> plan[0] = k.prepare(store, q, pos, n, heads, d, n),
                            () -> k.launch(plan[0], store, 0, scale, false), 0.6);
                    double tflops = flops / (ms * 1e-3) / 1e12;
                    System.out.printf(Locale.ROOT, "prefill d=%-3d N=%-6d %-24s %9.3f ms %7.1f TFLOP/s%n", d, n,
                            plan[0].kernel() + "/s" + plan[0].splits(), ms, tflops);
                    emit(json, String.format(Locale.ROOT, "{\"bench\":\"prefill\",\"impl\":\"jcuda\",\"dtype\":\"%s\","
                                    + "\"d\":%d,\"heads\":%d,\"kvHeads\":%d,\"seq\":%d,\"variant\":\"%s\",\"ms\":%.4f,"
                                    + "\"tflops\":%.2f}", dtype, d, heads, kvHeads, n, plan[0].kernel(), ms, tflops));
                }
                k.setFwdVariant(System.getProperty("starattention.cuda.fwdVariant", k.defaultFwdVariant()));
                // one full attend(): upload fp32 Q, kernel, download fp32 output + LSE
                AttentionQuery query = AttentionQuery.of(q, pos, n, heads, d);
                k.attend(store, 0, query);
                long t0 = System.nanoTime();
                k.attend(store, 0, query);
                double e2e = (System.nanoTime() - t0) / 1e6;
                System.out.printf(Locale.ROOT, "prefill d=%-3d N=%-6d attend() incl. transfers %9.3f ms%n", d, n, e2e);
                emit(json, String.format(Locale.ROOT, "{\"bench\":\"prefill_e2e\",\"impl\":\"jcuda\",\"dtype\":\"%s\","
                        + "\"d\":%d,\"seq\":%d,\"ms\":%.3f}", dtype, d, n, e2e));
            }
            if (waves.length > 0) {
                float[] q = fill((long) heads * d, 23 + n);
                int[] qpos = {n - 1};
                double bytes = 2.0 * n * kvHeads * d * dtype.bytes();
                for (double w : waves) {
                    k.setSplitWaves(w);
                    CudaAttentionKernel.Plan[] plan = new CudaAttentionKernel.Plan[1];
                    double ms = time(k, () -> plan[0] = k.prepare(store, q, qpos, 1, heads, d, n),
                            () -> k.launch(plan[0], store, 0, scale, false), 0.3);
                    double gbps = bytes / (ms * 1e-3) / 1e9;
                    System.out.printf(Locale.ROOT, "decode  d=%-3d N=%-6d %-24s %9.4f ms %7.0f GB/s (%.0f%% of peak)%n",
                            d, n, plan[0].kernel() + "/s" + plan[0].splits() + "/w" + w, ms, gbps,
                            rt.peakGBps > 0 ? 100 * gbps / rt.peakGBps : 0);
                    emit(json, String.format(Locale.ROOT, "{\"bench\":\"decode\",\"impl\":\"jcuda\",\"dtype\":\"%s\","
                                    + "\"d\":%d,\"heads\":%d,\"kvHeads\":%d,\"seq\":%d,\"variant\":\"%s/splits%d/waves%s\","
                                    + "\"ms\":%.5f,\"gbps\":%.1f,\"peakGbps\":%.0f}", dtype, d, heads, kvHeads, n,
                            plan[0].kernel(), plan[0].splits(), w, ms, gbps, rt.peakGBps));
                }
                k.setSplitWaves(Double.parseDouble(System.getProperty("starattention.cuda.splitWaves", "1")));
                AttentionQuery query = AttentionQuery.of(q, qpos, 1, heads, d);
                k.attend(store, 0, query);
                long t0 = System.nanoTime();
                int reps = 20;
                for (int i = 0; i < reps; i++) {
                    k.attend(store, 0, query);
                }
                double e2e = (System.nanoTime() - t0) / 1e6 / reps;
                System.out.printf(Locale.ROOT, "decode  d=%-3d N=%-6d attend() incl. transfers %9.4f ms%n", d, n, e2e);
                emit(json, String.format(Locale.ROOT, "{\"bench\":\"decode_e2e\",\"impl\":\"jcuda\",\"dtype\":\"%s\","
                        + "\"d\":%d,\"seq\":%d,\"ms\":%.4f}", dtype, d, n, e2e));
            }
        }
    }

    /** Mean milliseconds of {@code body} (kernels only, CUDA events), after a warm-up; runs about budgetSec. */
    private static double time(CudaAttentionKernel k, Runnable setup, Runnable body, double budgetSec) {
        CudaRuntime rt = k.runtime();
        rt.enter();
        try {
            setup.run();
            body.run();
            rt.sync(() -> "warm-up");
            CUevent a = new CUevent();
            CUevent b = new CUevent();
            JCudaDriver.cuEventCreate(a, 0);
            JCudaDriver.cuEventCreate(b, 0);
            try {
                JCudaDriver.cuEventRecord(a, null);
                body.run();
                JCudaDriver.cuEventRecord(b, null);
                JCudaDriver.cuEventSynchronize(b);
                float[] ms = {0};
                JCudaDriver.cuEventElapsedTime(ms, a, b);
                int iters = (int) Math.max(3, Math.min(500, budgetSec * 1e3 / Math.max(ms[0], 1e-3)));
                JCudaDriver.cuEventRecord(a, null);
                for (int i = 0; i < iters; i++) {
                    body.run();
                }
                JCudaDriver.cuEventRecord(b, null);
                JCudaDriver.cuEventSynchronize(b);
                JCudaDriver.cuEventElapsedTime(ms, a, b);
                rt.sync(() -> "benchmark loop");
                return ms[0] / iters;
            } finally {
                JCudaDriver.cuEventDestroy(a);
                JCudaDriver.cuEventDestroy(b);
            }
        } finally {
            rt.exit();
        }
    }

    private static void emit(PrintStream json, String line) {
        if (json != null) {
            json.println(line);
        }
    }

    private static int[] ints(String csv) {
        return Arrays.stream(csv.split(",")).filter(s -> !s.isBlank()).mapToInt(Integer::parseInt).toArray();
    }

    /** Uniform [-1, 1) values, fast and deterministic. */
    private static float[] fill(long n, long seed) {
        float[] a = new float[Math.toIntExact(n)];
        int chunks = 64;
        int per = (a.length + chunks - 1) / chunks;
        IntStream.range(0, chunks).parallel().forEach(c -> {
            long x = seed * 0x9E3779B97F4A7C15L + c * 0xBF58476D1CE4E5B9L + 1;
            for (int i = c * per, end = Math.min(a.length, (c + 1) * per); i < end; i++) {
                x ^= x << 13;
                x ^= x >>> 7;
                x ^= x << 17;
                a[i] = ((x >>> 40) * 0x1.0p-24f) * 2f - 1f;
            }
        });
        return a;
    }
}
