package io.github.starattention.jlama.model;

import io.github.starattention.attention.AttentionQuery;
import io.github.starattention.attention.PartialAttention;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Attention over partitions held by other hosts (phase 2 of distributed Star Attention). They precede the local
 * partitions in context order, and their partials are merged before the local ones.
 */
@FunctionalInterface
public interface RemotePartitions {
    /**
     * Starts the remote partial attention of {@code query} (post-RoPE) at layer {@code layer}. The future completes
     * with one partial per remote partition in context order, or exceptionally when a host fails or its request
     * times out (the caller bounds nothing itself).
     */
    CompletableFuture<List<PartialAttention>> attend(int layer, AttentionQuery query);
}
