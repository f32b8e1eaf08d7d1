package io.github.starattention.plan;

/**
 * One context block of a {@link BlockPlan}: the context tokens {@code [start, end)}, encoded at their own global
 * positions {@code start..end-1}, owned by host {@code host}.
 *
 * @param index block number, 0 for the first (anchor) block
 * @param start first context token (inclusive), also its position id
 * @param end last context token (exclusive)
 * @param host index of the host that encodes and keeps this block's KV
 */
public record Block(int index, int start, int end, int host) {

    /** Number of context tokens in this block. */
    public int length() {
        return end - start;
    }
}
