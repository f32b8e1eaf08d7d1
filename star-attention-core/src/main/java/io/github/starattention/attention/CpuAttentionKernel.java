package io.github.starattention.attention;

import io.github.starattention.kv.HeapKvStore;
import io.github.starattention.kv.KvLayout;
import io.github.starattention.kv.KvStore;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.IntStream;

/**
 * CPU attention over a {@link HeapKvStore}: online softmax (flash-style) over the visible prefix of the keys,
 * grouped-query attention, parallel over (query head, token tile).
 */
public final class CpuAttentionKernel implements AttentionKernel {

    private final ForkJoinPool pool;

    /** A kernel running on {@code threads} worker threads. */
    public CpuAttentionKernel(int threads) {
        this.pool = new ForkJoinPool(threads);
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public KvStore createStore(KvLayout layout) {
        return new HeapKvStore(layout);
    }

    @Override
    public PartialAttention attend(KvStore kvStore, int layer, AttentionQuery query) {
        if (!(kvStore instanceof HeapKvStore store)) {
            throw new IllegalArgumentException("the CPU kernel reads heap stores, got " + kvStore.getClass().getSimpleName());
        }
        KvLayout layout = store.layout();
        int heads = query.heads();
        int d = query.headDim();
        if (d != layout.headDim() || heads % layout.kvHeads() != 0) {
            throw new IllegalArgumentException("query [" + heads + " heads x " + d + "] does not fit KV " + layout);
        }
        int group = heads / layout.kvHeads();
        int tokens = query.tokens();
        PartialAttention out = PartialAttention.empty(tokens, heads, d);
        float[] keys = store.keys(layer);
        float[] values = store.values(layer);
        int cap = store.capacity();
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
            int visible = visibleKeys(kpos, size, query.positions()[t]);
            int qo = (t * heads + h) * d;
            int oo = qo;
            float m = Float.NEGATIVE_INFINITY;
            double l = 0;
            float[] acc = new float[d];
            for (int j = 0; j < visible; j++) {
                int ko = (kvh * cap + j) * d;
                float s = 0;
                for (int i = 0; i < d; i++) {
                    s += q[qo + i] * keys[ko + i];
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
                for (int i = 0; i < d; i++) {
                    acc[i] += p * values[ko + i];
                }
            }
            if (visible > 0) {
                float inv = (float) (1.0 / l);
                for (int i = 0; i < d; i++) {
                    o[oo + i] = acc[i] * inv;
                }
                lse[t * heads + h] = (float) (m + Math.log(l));
            }
        });
        pool.submit(work).join();
        return out;
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

    @Override
    public void close() {
        pool.shutdown();
    }
}
