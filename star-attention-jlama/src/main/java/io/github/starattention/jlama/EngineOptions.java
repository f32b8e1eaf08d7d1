package io.github.starattention.jlama;

import io.github.starattention.attention.Device;
import io.github.starattention.jlama.model.PassingPolicy;
import io.github.starattention.kv.KvPrecision;
import io.github.starattention.plan.BlockPlan;

/**
 * How an engine encodes contexts.
 *
 * <p>Defaults: {@link Mode#STAR}, 4 blocks, anchor = block, {@link Device#AUTO} (CUDA when a GPU is usable, else
 * CPU), threads = available processors, fp32 KV, no passing blocks. Give either {@code blocks} or {@code blockSize}. In {@link Mode#GLOBAL}
 * the block settings are ignored and the context is one block.
 *
 * @param mode global or star
 * @param blocks number of blocks (used when {@code blockSize} is 0)
 * @param blockSize block size in tokens, 0 to derive it from {@code blocks}
 * @param anchorSize anchor size in tokens, -1 for "same as the block"; 0 disables the anchor
 * @param device attention kernels to use
 * @param threads worker threads for the attention kernels
 * @param recomputeAnchor encode the anchor on its own instead of reusing block 0's first slots (same result, more
 *     work; what a host that does not own block 0 does); default false
 * @param kvPrecision element type of K and V in CPU memory: {@link KvPrecision#F32} (default, the reference) or
 *     {@link KvPrecision#BF16} (half the memory); a GPU stores KV in fp16 or bf16 either way
 * @param passing phase-1 passing blocks (beyond the paper, see {@link PassingPolicy}): each block passes the K/V (every
 *     layer's) of some of its tokens on to the later blocks; default {@link #DEFAULT_PASSING} (off, the paper's phase 1). In
 *     process and on the CPU attention kernels only; ignored in {@link Mode#GLOBAL}
 */
public record EngineOptions(Mode mode, int blocks, int blockSize, int anchorSize, Device device, int threads,
                            boolean recomputeAnchor, KvPrecision kvPrecision, PassingPolicy passing) {

    /** No passing blocks: the paper's phase 1. */
    public static final PassingPolicy DEFAULT_PASSING = PassingPolicy.OFF;

    public EngineOptions {
        if (mode == null || device == null || kvPrecision == null || passing == null) {
            throw new IllegalArgumentException("mode, device, kvPrecision and passing are required");
        }
        if (blocks < 1) {
            throw new IllegalArgumentException("blocks must be at least 1, got " + blocks);
        }
        if (blockSize < 0) {
            throw new IllegalArgumentException("block size must not be negative, got " + blockSize);
        }
        if (anchorSize < -1) {
            throw new IllegalArgumentException("anchor size must be >= 0 (or -1 for the block size), got " + anchorSize);
        }
        if (blockSize > 0 && anchorSize > blockSize) {
            throw new IllegalArgumentException("anchor size (" + anchorSize + ") must not exceed the block size (" + blockSize + ")");
        }
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        }
    }

    public static EngineOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        return new Builder().mode(mode).blocks(blocks).blockSize(blockSize).anchorSize(anchorSize).device(device)
                .threads(threads).recomputeAnchor(recomputeAnchor).kvPrecision(kvPrecision).passing(passing);
    }

    /** The block plan for a context of {@code contextLength} tokens spread over {@code hosts} hosts. */
    public BlockPlan plan(int contextLength, int hosts) {
        if (mode == Mode.GLOBAL) {
            if (hosts != 1) {
                throw new IllegalArgumentException("global mode runs on one host; use star mode to spread a context over " + hosts);
            }
            return BlockPlan.global(contextLength);
        }
        BlockPlan.Builder b = BlockPlan.builder(contextLength).hosts(hosts);
        if (blockSize > 0) {
            b.blockSize(blockSize);
        } else {
            b.blocks(blocks);
        }
        if (anchorSize >= 0) {
            b.anchorSize(anchorSize);
        }
        return b.build();
    }

    /** Builder; see the record for defaults. */
    public static final class Builder {
        private Mode mode = Mode.STAR;
        private int blocks = BlockPlan.DEFAULT_BLOCKS;
        private int blockSize;
        private int anchorSize = -1;
        private Device device = Device.AUTO;
        private int threads = Runtime.getRuntime().availableProcessors();
        private boolean recomputeAnchor;
        private KvPrecision kvPrecision = KvPrecision.F32;
        private PassingPolicy passing = DEFAULT_PASSING;

        public Builder mode(Mode mode) {
            this.mode = mode;
            return this;
        }

        public Builder blocks(int blocks) {
            this.blocks = blocks;
            this.blockSize = 0;
            return this;
        }

        public Builder blockSize(int blockSize) {
            this.blockSize = blockSize;
            return this;
        }

        public Builder anchorSize(int anchorSize) {
            this.anchorSize = anchorSize;
            return this;
        }

        public Builder device(Device device) {
            this.device = device;
            return this;
        }

        public Builder threads(int threads) {
            this.threads = threads;
            return this;
        }

        public Builder recomputeAnchor(boolean recomputeAnchor) {
            this.recomputeAnchor = recomputeAnchor;
            return this;
        }

        public Builder kvPrecision(KvPrecision kvPrecision) {
            this.kvPrecision = kvPrecision;
            return this;
        }

        /** Passing blocks (see {@link PassingPolicy}); {@link PassingPolicy#OFF} for the paper's phase 1. */
        public Builder passing(PassingPolicy passing) {
            this.passing = passing;
            return this;
        }

        /** Passing blocks: {@code tokensPerBlock} tokens per block (0 = off), chosen by {@code selection}. */
        public Builder passing(int tokensPerBlock, PassingPolicy.Selection selection) {
            return passing(PassingPolicy.of(tokensPerBlock, selection));
        }

        public EngineOptions build() {
            return new EngineOptions(mode, blocks, blockSize, anchorSize, device, threads, recomputeAnchor, kvPrecision,
                    passing);
        }
    }
}
