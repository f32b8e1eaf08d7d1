package io.github.starattention.jlama.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionKernels;
import io.github.starattention.attention.Device;
import io.github.starattention.kv.HeapKvStore;
import io.github.starattention.kv.KvLayout;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The attention mass {@link PassingBlocks#scores} gives each of a block's tokens, against a plain scalar computation
 * written here: every score the same to the last bit (the vectorised products keep the scalar order of operations),
 * with the anchor's keys in the softmax denominator only, and causal by position.
 */
class PassingScoresTest {

    @ParameterizedTest(name = "{0} heads / {1} KV heads, block {2}, anchor {3}")
    @CsvSource({"4, 2, 70, 0", "4, 2, 100, 33", "8, 8, 17, 16", "6, 2, 129, 64"})
    void scoresEqualAPlainScalarSoftmaxBitForBit(int heads, int kvHeads, int len, int anchor) {
        int d = 32;
        int start = 1000;
        float scale = (float) (1 / Math.sqrt(d));
        Random r = new Random(len * 31L + anchor);
        try (AttentionKernel kernel = AttentionKernels.open(Device.CPU, 1);
             HeapKvStore block = (HeapKvStore) kernel.createStore(new KvLayout(1, kvHeads, d, len));
             HeapKvStore anchorStore = (HeapKvStore) kernel.createStore(new KvLayout(1, kvHeads, d, anchor));
             PassingBlocks passing = new PassingBlocks(PassingPolicy.of(4, PassingPolicy.Selection.SPREAD), kernel,
                     new KvLayout(1, kvHeads, d, 0), heads, scale, anchor, 2, PassingExchange.NONE,
                     PassingBlocks.Trace.NONE)) {
            float[][] keys = fill(block, start, len, kvHeads, d, r);
            float[][] anchorKeys = fill(anchorStore, 0, anchor, kvHeads, d, r);
            int observers = 5;
            int[] pos = {start + 3, start + len / 2, start + len - 2, start + len - 1, start - 1};
            float[] q = new float[observers * heads * d];
            for (int i = 0; i < q.length; i++) {
                q[i] = (float) r.nextGaussian() * 2;
            }
            double[] got = passing.scores(block, anchor == 0 ? null : anchorStore, 0, len, q, pos);

            double[] want = new double[len];
            int group = heads / kvHeads;
            for (int o = 0; o < observers; o++) {
                for (int h = 0; h < heads; h++) {
                    int g = h / group;
                    int visible = Math.max(0, Math.min(len, pos[o] - start + 1));
                    if (visible == 0) {
                        continue;
                    }
                    float[] own = new float[visible];
                    float[] anc = new float[anchor];
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = 0; j < visible; j++) {
                        own[j] = dot(q, (o * heads + h) * d, keys[j], g * d, d) * scale;
                        max = Math.max(max, own[j]);
                    }
                    for (int j = 0; j < anchor; j++) {
                        anc[j] = dot(q, (o * heads + h) * d, anchorKeys[j], g * d, d) * scale;
                        max = Math.max(max, anc[j]);
                    }
                    double sum = 0;
                    for (float x : own) {
                        sum += Math.exp(x - max);
                    }
                    for (float x : anc) {
                        sum += Math.exp(x - max);
                    }
                    for (int j = 0; j < visible; j++) {
                        want[j] += Math.exp(own[j] - max) / sum;
                    }
                }
            }
            assertThat(got).containsExactly(want);
            double total = 0;
            for (double x : got) {
                total += x;
            }
            // each observer and head spreads mass 1 over anchor + block; the block's share is below that
            assertThat(total).isGreaterThan(0).isLessThanOrEqualTo(4.0 * heads + 1e-9);
        }
    }

    private static float dot(float[] q, int qo, float[] k, int ko, int d) {
        float acc = 0;
        for (int i = 0; i < d; i++) {
            acc += q[qo + i] * k[ko + i];
        }
        return acc;
    }

    /** Random keys (and values) at positions {@code from..from+n-1}; returns the keys as {@code [slot][kvHeads*d]}. */
    private static float[][] fill(HeapKvStore store, int from, int n, int kvHeads, int d, Random r) {
        float[][] keys = new float[n][kvHeads * d];
        if (n == 0) {
            return keys;
        }
        int[] positions = new int[n];
        float[] k = new float[n * kvHeads * d];
        float[] v = new float[n * kvHeads * d];
        for (int t = 0; t < n; t++) {
            positions[t] = from + t;
            for (int i = 0; i < kvHeads * d; i++) {
                keys[t][i] = (float) r.nextGaussian();
                k[t * kvHeads * d + i] = keys[t][i];
                v[t * kvHeads * d + i] = (float) r.nextGaussian();
            }
        }
        store.put(0, store.reserve(positions), k, v, 0, n);
        return keys;
    }
}
