package io.github.starattention.attention;

import io.github.starattention.kv.HeapKvStore;
import io.github.starattention.kv.KvLayout;
import io.github.starattention.kv.KvStore;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.IntStream;

/**
 * Plain scalar attention over a {@link HeapKvStore}: one online softmax per (query head, token), one key at a time,
 * parallel over (query head, token). It is the baseline {@link KernelBenchmark} measures {@link CpuAttentionKernel}
 * against (the algorithm of the first CPU kernel), and an easy-to-read statement of what the kernels compute.
 */
public final class ReferenceAttentionKernel implements AttentionKernel {

    private final ForkJoinPool pool;

    /** A kernel running on {@code threads} worker threads. */
    public ReferenceAttentionKernel(int threads) {
        this.pool = new ForkJoinPool(threads);
    }

    @Override
    public String name() {
        return "cpu-reference";
    }

    @Override
    public KvStore createStore(KvLayout layout) {
        return new HeapKvStore(layout);
    }

    @Override
    public PartialAttention attend(KvStore kvStore, int layer, AttentionQuery query) {
        HeapKvStore store = CpuAttentionKernel.heapStore(kvStore, query);
        int heads = query.heads();
        int d = query.headDim();
        int group = heads / store.layout().kvHeads();
        int tokens = query.tokens();
        PartialAttention out = PartialAttention.empty(tokens, heads, d);
        float[] keys = store.keysAsF32(layer);
        float[] values = store.valuesAsF32(layer);
        int[] kpos = store.positions();
        int size = store.size();
        float scale = query.scale();
        float[] q = query.q();
        float[] o = out.output();
        float[] lse = out.lse();
        Runnable work = () -> IntStream.range(0, heads * tokens).parallel().forEach(idx -> {
            int h = idx / tokens;
            int t = idx % tokens;
            int kvh = h / group;
            int visible = CpuAttentionKernel.visibleKeys(kpos, size, query.positions()[t]);
            int qo = (t * heads + h) * d;
            float m = Float.NEGATIVE_INFINITY;
            double l = 0;
            float[] acc = new float[d];
            for (int j = 0; j < visible; j++) {
                int ko = store.keyIndex(kvh, j, 0);
                float s = 0;
                for (int i = 0; i < d; i++) {
                    s += q[qo + i] * keys[ko + i * HeapKvStore.KEY_PANEL];
                }
                s *= scale;
                if (s > m) {
                    float c = (float) Math.exp(m - s);
                    l *= c;
                    for (int i = 0; i < d; i++) {
                        acc[i] *= c;
                    }
                    m = s;
                }
                float p = (float) Math.exp(s - m);
                l += p;
                int vo = store.valueIndex(kvh, j, 0);
                for (int i = 0; i < d; i++) {
                    acc[i] += p * values[vo + i];
                }
            }
            if (visible > 0) {
                float inv = (float) (1.0 / l);
                for (int i = 0; i < d; i++) {
                    o[qo + i] = acc[i] * inv;
                }
                lse[t * heads + h] = (float) (m + Math.log(l));
            }
        });
        pool.submit(work).join();
        return out;
    }

    @Override
    public void close() {
        pool.shutdown();
    }
}
