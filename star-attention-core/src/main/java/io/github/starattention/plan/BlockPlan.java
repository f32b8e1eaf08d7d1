package io.github.starattention.plan;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The phase-1 layout of Star Attention for one context: blocks, anchor and host ownership.
 *
 * <p>Layout (positions are RoPE position ids, tokens are indices into the context):
 * <ul>
 *   <li>Block {@code j} holds context tokens {@code [j*b, min((j+1)*b, L))} at their global positions; the last
 *       block may be shorter (it is never padded).</li>
 *   <li>Every block after the first is encoded with the <em>anchor</em> prefixed: the first {@code a} context
 *       tokens at their own positions {@code 0..a-1}. The anchor's KV is dropped after encoding, so only block
 *       tokens end up in the cache. {@code a = 0} disables the anchor (an ablation, not a useful setting).</li>
 *   <li>Blocks are split over hosts contiguously; the first {@code n mod h} hosts get one extra block, so the
 *       last host, the <em>query host</em>, always owns the last block (query tokens continue its sequence).</li>
 * </ul>
 * A plan with one block is exactly global attention. Defaults follow the paper: 4 blocks, anchor = block.
 */
public final class BlockPlan {

    /** Default number of blocks when neither a block size nor a block count is given. */
    public static final int DEFAULT_BLOCKS = 4;

    private final int contextLength;
    private final int blockSize;
    private final int anchorSize;
    private final int hosts;
    private final List<Block> blocks;

    private BlockPlan(int contextLength, int blockSize, int anchorSize, int hosts) {
        this.contextLength = contextLength;
        this.blockSize = blockSize;
        this.anchorSize = anchorSize;
        this.hosts = hosts;
        int n = (contextLength + blockSize - 1) / blockSize;
        if (hosts > n) {
            throw new IllegalArgumentException("blocks (" + n + ") must be at least hosts (" + hosts
                    + "): a context of " + contextLength + " tokens with block size " + blockSize
                    + " has only " + n + " block(s); use a smaller block size or fewer hosts");
        }
        List<Block> list = new ArrayList<>(n);
        int base = n / hosts;
        int extra = n % hosts;
        int j = 0;
        for (int host = 0; host < hosts; host++) {
            int count = base + (host < extra ? 1 : 0);
            for (int k = 0; k < count; k++, j++) {
                list.add(new Block(j, j * blockSize, Math.min(contextLength, (j + 1) * blockSize), host));
            }
        }
        this.blocks = Collections.unmodifiableList(list);
    }

    /** Starts a plan for a context of {@code contextLength} tokens. */
    public static Builder builder(int contextLength) {
        return new Builder(contextLength);
    }

    /** A plan of one block (global attention) on one host. */
    public static BlockPlan global(int contextLength) {
        return builder(contextLength).blocks(1).build();
    }

    public int contextLength() {
        return contextLength;
    }

    public int blockSize() {
        return blockSize;
    }

    /** Anchor length in tokens; never more than the block size, 0 for no anchor. */
    public int anchorSize() {
        return anchorSize;
    }

    /** Effective anchor length for this context: {@code min(anchorSize, contextLength)}. */
    public int effectiveAnchor() {
        return Math.min(anchorSize, contextLength);
    }

    public int hosts() {
        return hosts;
    }

    /** Index of the host that owns the last block and the query tokens. */
    public int queryHost() {
        return hosts - 1;
    }

    public List<Block> blocks() {
        return blocks;
    }

    public int blockCount() {
        return blocks.size();
    }

    /** The blocks host {@code host} owns, in context order (contiguous). */
    public List<Block> blocksOf(int host) {
        if (host < 0 || host >= hosts) {
            throw new IllegalArgumentException("host " + host + " is not in [0, " + hosts + ")");
        }
        return blocks.stream().filter(b -> b.host() == host).toList();
    }

    /**
     * Position ids of the phase-1 input of block {@code j}: the anchor's {@code 0..a-1} followed by the block's own
     * global positions; block 0 is encoded alone.
     */
    public int[] inputPositions(int j) {
        Block b = blocks.get(j);
        int a = j == 0 ? 0 : effectiveAnchor();
        int[] p = new int[a + b.length()];
        for (int i = 0; i < a; i++) {
            p[i] = i;
        }
        for (int i = 0; i < b.length(); i++) {
            p[a + i] = b.start() + i;
        }
        return p;
    }

    @Override
    public String toString() {
        return "BlockPlan[context=" + contextLength + ", blocks=" + blocks.size() + ", blockSize=" + blockSize
                + ", anchor=" + anchorSize + ", hosts=" + hosts + "]";
    }

    /** Builder with validation; see {@link BlockPlan} for the defaults. */
    public static final class Builder {
        private final int contextLength;
        private Integer blockSize;
        private Integer blocks;
        private Integer anchorSize;
        private int hosts = 1;

        private Builder(int contextLength) {
            if (contextLength <= 0) {
                throw new IllegalArgumentException("the context is empty: Star Attention needs at least one context token");
            }
            this.contextLength = contextLength;
        }

        /** Block size in tokens; excludes {@link #blocks(int)}. */
        public Builder blockSize(int blockSize) {
            if (blockSize <= 0) {
                throw new IllegalArgumentException("block size must be positive, got " + blockSize);
            }
            this.blockSize = blockSize;
            return this;
        }

        /** Number of blocks (block size = ceil(context / blocks)); excludes {@link #blockSize(int)}. */
        public Builder blocks(int blocks) {
            if (blocks <= 0) {
                throw new IllegalArgumentException("blocks must be positive, got " + blocks);
            }
            this.blocks = blocks;
            return this;
        }

        /** Anchor size in tokens, at most the block size; default: the block size. 0 = no anchor. */
        public Builder anchorSize(int anchorSize) {
            if (anchorSize < 0) {
                throw new IllegalArgumentException("anchor size must not be negative, got " + anchorSize);
            }
            this.anchorSize = anchorSize;
            return this;
        }

        /** Number of hosts sharing the blocks; default 1. Must not exceed the number of blocks. */
        public Builder hosts(int hosts) {
            if (hosts <= 0) {
                throw new IllegalArgumentException("hosts must be positive, got " + hosts);
            }
            this.hosts = hosts;
            return this;
        }

        public BlockPlan build() {
            if (blockSize != null && blocks != null) {
                throw new IllegalArgumentException("give either a block size or a number of blocks, not both");
            }
            int b = blockSize != null ? blockSize
                    : ceilDiv(contextLength, blocks != null ? blocks : DEFAULT_BLOCKS);
            int a = anchorSize != null ? anchorSize : b;
            if (a > b) {
                throw new IllegalArgumentException("anchor size (" + a + ") must not exceed the block size (" + b + ")");
            }
            return new BlockPlan(contextLength, b, a, hosts);
        }

        private static int ceilDiv(int x, int y) {
            return (x + y - 1) / y;
        }
    }
}
