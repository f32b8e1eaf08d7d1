package io.github.starattention.jlama.model;

import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;

/**
 * How phase 1 with a {@link PassingPolicy} shares what blocks pass on between hosts, as {@link AnchorExchange} shares
 * the anchor: a host publishes what each of its blocks passes on layer by layer as soon as the block's K/V of that
 * layer are written ({@link #sink}), and a host encoding a later block takes each earlier block's layer from there
 * ({@link #feed}) just before its own block attends at that layer. Since what a block passes is chosen before the
 * block is encoded (its scout, see {@link PassingPolicy}), hosts encode their blocks at the same time, layer by layer.
 * If the feed fails, the host encodes the earlier blocks itself (the same K/V, bit for bit) and goes on.
 *
 * @param feed where earlier blocks that are not encoded here come from, or {@code null} when every earlier block is
 * @param sink receives what the blocks encoded here pass on, layer by layer, or {@code null}
 */
public record PassingExchange(Feed feed, Consumer<Passed> sink) {

    /** Nothing shared: every block is encoded in this process, in order. */
    public static final PassingExchange NONE = new PassingExchange(null, null);

    /** What earlier blocks passed on, from the hosts that encode them. */
    @FunctionalInterface
    public interface Feed {
        /** Completes with what {@code block} passes on at {@code layer}, or exceptionally if it cannot be had. */
        CompletableFuture<Passed> passed(int block, int layer);
    }

    /**
     * What {@code block} passes on at {@code layer}: the tokens at {@code positions} (increasing), their K and V each
     * {@code [tokens][kvHeads][headDim]} fp32, post-RoPE. Empty when the block passes nothing (fewer candidates).
     */
    public record Passed(int block, int layer, int[] positions, float[] k, float[] v) {
        public Passed {
            Objects.requireNonNull(positions, "positions");
            Objects.requireNonNull(k, "k");
            Objects.requireNonNull(v, "v");
            if (block < 0 || layer < 0) {
                throw new IllegalArgumentException("block and layer must be >= 0, got " + block + " and " + layer);
            }
            if (k.length != v.length || (positions.length == 0 ? k.length != 0 : k.length % positions.length != 0)) {
                throw new IllegalArgumentException("K and V of " + positions.length + " tokens cannot hold " + k.length
                        + " and " + v.length + " floats");
            }
            for (int i = 1; i < positions.length; i++) {
                if (positions[i] <= positions[i - 1]) {
                    throw new IllegalArgumentException("passed positions must increase: " + positions[i - 1] + ", "
                            + positions[i]);
                }
            }
        }

        public int tokens() {
            return positions.length;
        }
    }
}
