package io.github.starattention.attention;

import io.github.starattention.kv.KvLayout;
import io.github.starattention.kv.KvStore;
import java.util.ArrayList;
import java.util.List;

/**
 * Computes partial attention of query tokens over the KV held in a {@link KvStore} it created.
 *
 * <p>A kernel owns the memory its stores live in (Java heap for the CPU kernel, GPU memory for CUDA), so stores
 * are created through the kernel that reads them. Implementations are thread-safe: several layers or sessions may
 * call {@link #attend} concurrently on different stores.
 */
public interface AttentionKernel extends AutoCloseable {

    /** A short name for logs and reports, e.g. {@code cpu} or {@code cuda:0}. */
    String name();

    /**
     * What about this kernel changes its results (not which device instance runs it), e.g. {@code cpu-fp32} or
     * {@code cuda-fp16}: two kernels with the same numerics compute the same partial attention. Hosts of a cluster
     * must agree on it.
     */
    default String numerics() {
        return name();
    }

    /** Creates an empty KV store for this kernel. */
    KvStore createStore(KvLayout layout);

    /**
     * Bytes per K or V element of the stores {@link #createStore} keeps on the Java heap (and so against
     * {@code -Xmx}); 0 when they live elsewhere (GPU memory).
     */
    default int heapBytesPerKvElement() {
        return 0;
    }

    /**
     * Attention of {@code query} over the keys of layer {@code layer} in {@code store} visible to each token
     * (key position {@code <=} token position). Grouped-query attention maps query head {@code h} to KV head
     * {@code h / (heads / kvHeads)}.
     */
    PartialAttention attend(KvStore store, int layer, AttentionQuery query);

    /**
     * {@link #attend} over each of {@code stores}, the partials in the same order. A kernel may run them as one batch
     * (the CPU kernel hands all their tasks to its workers at once instead of once per store); each partial is the
     * one {@link #attend} gives, bit for bit.
     */
    default List<PartialAttention> attendAll(List<? extends KvStore> stores, int layer, AttentionQuery query) {
        List<PartialAttention> out = new ArrayList<>(stores.size());
        for (KvStore store : stores) {
            out.add(attend(store, layer, query));
        }
        return out;
    }

    /** Releases the kernel's resources; stores it created must not be used afterwards. */
    @Override
    default void close() {
    }
}
