package io.github.starattention.cuda;

import java.util.Arrays;
import java.util.stream.IntStream;

/** Random inputs rounded to the GPU's KV type and a naive fp64 attention reference for the CUDA tests. */
final class GpuTestData {

    private GpuTestData() {
    }

    /** Uniform values in {@code [-amp, amp)}, rounded to {@code type} (fast xorshift, deterministic per seed). */
    static float[] random(long n, float amp, long seed, KvDtype type) {
        float[] a = new float[Math.toIntExact(n)];
        int chunks = Math.max(1, Math.min(64, a.length / 65536));
        int per = (a.length + chunks - 1) / chunks;
        IntStream.range(0, chunks).parallel().forEach(c -> {
            long x = seed * 0x9E3779B97F4A7C15L + c * 0xBF58476D1CE4E5B9L + 1;
            int end = Math.min(a.length, (c + 1) * per);
            for (int i = c * per; i < end; i++) {
                x ^= x << 13;
                x ^= x >>> 7;
                x ^= x << 17;
                float u = ((x >>> 40) * 0x1.0p-24f) * 2f - 1f;
                a[i] = round(u * amp, type);
            }
        });
        return a;
    }

    static float round(float x, KvDtype type) {
        return switch (type) {
            case FP16 -> Float.float16ToFloat(Float.floatToFloat16(x));
            case BF16 -> {
                int b = Float.floatToRawIntBits(x);
                b += 0x7FFF + ((b >>> 16) & 1);
                yield Float.intBitsToFloat(b & 0xFFFF0000);
            }
        };
    }

    static int[] range(int from, int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = from + i;
        }
        return p;
    }

    /** Token indices to check: all when few, else first, last and a spread of others. */
    static int[] sample(int tokens, int max) {
        if (tokens <= max) {
            return range(0, tokens);
        }
        int[] s = new int[max];
        s[0] = 0;
        s[1] = tokens - 1;
        s[2] = tokens - 2;
        s[3] = 1;
        for (int i = 4; i < max; i++) {
            s[i] = (int) ((long) (i - 3) * (tokens - 1) / (max - 3));
        }
        return Arrays.stream(s).distinct().sorted().toArray();
    }

    /** Maximum absolute errors of (output, lse) against the reference, and whether non-finite values showed up. */
    record Errors(double out, double lse, int checkedRows, boolean nonFinite) {
    }

    /**
     * fp64 naive attention of the sampled tokens (all heads) over token-major K/V {@code [slot][kvHeads][d]} and
     * the maximum error of {@code out}/{@code lse} on those rows; also scans every row for NaN.
     */
    static Errors compare(float[] q, int[] qpos, int tokens, int heads, int d, float scale, float[] k, float[] v,
                          int[] kpos, int kvHeads, float[] out, float[] lse, int[] sampleTokens) {
        int group = heads / kvHeads;
        double[][] res = IntStream.range(0, sampleTokens.length * heads).parallel().mapToObj(idx -> {
            int t = sampleTokens[idx / heads];
            int h = idx % heads;
            int kvh = h / group;
            int visible = 0;
            while (visible < kpos.length && kpos[visible] <= qpos[t]) {
                visible++;
            }
            double[] s = new double[visible];
            double m = Double.NEGATIVE_INFINITY;
            int qo = (t * heads + h) * d;
            for (int j = 0; j < visible; j++) {
                int ko = (j * kvHeads + kvh) * d;
                double dot = 0;
                for (int i = 0; i < d; i++) {
                    dot += (double) q[qo + i] * k[ko + i];
                }
                s[j] = dot * scale;
                m = Math.max(m, s[j]);
            }
            double l = 0;
            double[] o = new double[d];
            for (int j = 0; j < visible; j++) {
                double p = Math.exp(s[j] - m);
                l += p;
                int vo = (j * kvHeads + kvh) * d;
                for (int i = 0; i < d; i++) {
                    o[i] += p * v[vo + i];
                }
            }
            double errO = 0;
            for (int i = 0; i < d; i++) {
                double ref = visible == 0 ? 0 : o[i] / l;
                errO = Math.max(errO, Math.abs(ref - out[qo + i]));
                if (Double.isNaN(out[qo + i])) {
                    errO = Double.POSITIVE_INFINITY;
                }
            }
            double refLse = visible == 0 ? Double.NEGATIVE_INFINITY : m + Math.log(l);
            float got = lse[t * heads + h];
            double errL = visible == 0 ? (got == Float.NEGATIVE_INFINITY ? 0 : Double.POSITIVE_INFINITY)
                    : Math.abs(refLse - got);
            if (Float.isNaN(got)) {
                errL = Double.POSITIVE_INFINITY;
            }
            return new double[] {errO, errL};
        }).toArray(double[][]::new);
        double eo = 0;
        double el = 0;
        for (double[] r : res) {
            eo = Math.max(eo, r[0]);
            el = Math.max(el, r[1]);
        }
        boolean nonFinite = false;
        for (int i = 0; i < tokens * heads * d && !nonFinite; i++) {
            nonFinite = !Float.isFinite(out[i]);
        }
        for (int i = 0; i < tokens * heads && !nonFinite; i++) {
            nonFinite = Float.isNaN(lse[i]) || lse[i] == Float.POSITIVE_INFINITY;
        }
        return new Errors(eo, el, res.length, nonFinite);
    }
}
