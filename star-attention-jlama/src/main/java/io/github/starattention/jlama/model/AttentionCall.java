package io.github.starattention.jlama.model;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionQuery;
import io.github.starattention.attention.PartialAttention;
import io.github.starattention.kv.KvStore;
import io.github.starattention.rope.RotaryEmbedding;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;

/**
 * What the attention layers of one forward pass over a chunk of tokens read and write.
 *
 * <p>Jlama calls {@code CausalSelfAttention.forward} with a single start position and its own KV buffer; Star
 * Attention needs explicit position ids, its own KV stores and partial attention over several partitions. The
 * engine therefore binds an {@code AttentionCall} to the thread that runs {@link StarLlamaModel#forward} (Jlama runs
 * every layer's attention on the calling thread) and {@link StarSelfAttention} reads it.
 *
 * @param kernel the kernel that owns the stores
 * @param rope rotary embedding applied to queries and keys at {@code positions}
 * @param positions position id of each token of the chunk ({@code [tokens]})
 * @param target store receiving this chunk's K/V (slots {@code firstSlot..firstSlot+tokens-1} already reserved with
 *     {@code positions}), or {@code null} to keep nothing
 * @param firstSlot first reserved slot in {@code target}
 * @param sources local partitions to attend to, each giving one partial; include {@code target} to attend to the
 *     chunk itself (causally, by position)
 * @param remote partitions held elsewhere (other hosts), or {@code null}
 * @param hook called around each layer's attention (phase 1 with a shared anchor), or {@code null}
 */
public record AttentionCall(AttentionKernel kernel, RotaryEmbedding rope, int[] positions, KvStore target, int firstSlot,
                            List<KvStore> sources, RemotePartitions remote, LayerHook hook) {

    private static final ThreadLocal<AttentionCall> CURRENT = new ThreadLocal<>();

    public AttentionCall {
        Objects.requireNonNull(kernel, "kernel");
        Objects.requireNonNull(rope, "rope");
        sources = List.copyOf(sources);
    }

    /**
     * Attention over partitions held by other hosts (phase 2 of distributed Star Attention). They precede the local
     * {@code sources} in context order, and their partials are merged before the local ones.
     */
    @FunctionalInterface
    public interface RemotePartitions {
        /**
         * Starts the remote partial attention of {@code query} (post-RoPE) at layer {@code layer}. The future
         * completes with one partial per remote partition in context order, or exceptionally when a host fails.
         */
        CompletableFuture<List<PartialAttention>> attend(int layer, AttentionQuery query);
    }

    /** What phase 1 does around a layer's attention when the anchor is shared between hosts. */
    interface LayerHook {
        /** Called once {@code layer}'s K/V of the chunk ({@code [tokens][kvHeads][headDim]}) are in the target. */
        default void stored(int layer, float[] k, float[] v, int tokens) {
        }

        /** Called before {@code layer} attends to the sources; may wait until a source holds that layer. */
        default void beforeAttention(int layer) {
        }
    }

    static AttentionCall current() {
        AttentionCall call = CURRENT.get();
        if (call == null) {
            throw new IllegalStateException("Star Attention layers run only inside StarLlamaModel.forward(tokens, call)");
        }
        return call;
    }

    void bind() {
        CURRENT.set(this);
    }

    static void unbind() {
        CURRENT.remove();
    }
}
