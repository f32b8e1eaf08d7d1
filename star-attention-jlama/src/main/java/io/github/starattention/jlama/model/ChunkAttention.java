package io.github.starattention.jlama.model;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionQuery;
import io.github.starattention.attention.PartialAttention;
import io.github.starattention.kv.KvStore;
import java.util.List;
import java.util.Objects;

/**
 * What the attention of one chunk of tokens reads and writes at every layer of a {@link Decoder} pass: the chunk's
 * position ids, where its K/V go, and the explicit list of partitions it attends to. Passed to
 * {@link Decoder#forward} as an argument; nothing about a pass lives in thread-local or model state.
 *
 * @param kernel the attention kernel that owns {@code target} and {@code local}
 * @param positions position id of each token of the chunk ({@code [tokens]}); queries and keys are rotated there
 * @param target store receiving the chunk's K/V (slots {@code firstSlot .. firstSlot + tokens - 1} already reserved
 *     with {@code positions}), or {@code null} to keep nothing
 * @param firstSlot first reserved slot in {@code target}
 * @param local partitions on this host, in context order, each giving one partial; include {@code target} to attend
 *     to the chunk itself (causally, by position)
 * @param remote partitions on other hosts (they precede {@code local} in context order), or {@code null}
 * @param hook called around each layer's attention (phase 1 with an anchor from another host, or with passing
 *     blocks), or {@code null}
 */
public record ChunkAttention(AttentionKernel kernel, int[] positions, KvStore target, int firstSlot,
                             List<KvStore> local, RemotePartitions remote, LayerHook hook) {

    public ChunkAttention {
        Objects.requireNonNull(kernel, "kernel");
        Objects.requireNonNull(positions, "positions");
        local = List.copyOf(local);
    }

    /** What phase 1 does around a layer's attention when the anchor is shared between hosts. */
    interface LayerHook {
        /** Called once {@code layer}'s K/V of the chunk ({@code [tokens][kvHeads][headDim]}) are in the target. */
        default void stored(int layer, float[] k, float[] v, int tokens) {
        }

        /** Called before {@code layer} attends to the partitions; may wait until a partition holds that layer. */
        default void beforeAttention(int layer) {
        }

        /**
         * A partition beyond {@code local} and {@code remote} that {@code query} attends to at {@code layer} (what
         * earlier blocks passed on, see {@link PassingPolicy}), or {@code null} for none. Called once per layer after
         * {@link #beforeAttention}; it may also look at the queries.
         */
        default PartialAttention attendExtra(int layer, AttentionQuery query) {
            return null;
        }

        /** {@code first} then {@code second} at each call; at most one of them may give an extra partition. */
        static LayerHook both(LayerHook first, LayerHook second) {
            return new LayerHook() {
                @Override
                public void stored(int layer, float[] k, float[] v, int tokens) {
                    first.stored(layer, k, v, tokens);
                    second.stored(layer, k, v, tokens);
                }

                @Override
                public void beforeAttention(int layer) {
                    first.beforeAttention(layer);
                    second.beforeAttention(layer);
                }

                @Override
                public PartialAttention attendExtra(int layer, AttentionQuery query) {
                    PartialAttention a = first.attendExtra(layer, query);
                    PartialAttention b = second.attendExtra(layer, query);
                    if (a != null && b != null) {
                        throw new IllegalStateException("two hooks gave an extra partition at layer " + layer);
                    }
                    return a != null ? a : b;
                }
            };
        }
    }
}
