package io.github.starattention.plan;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class BlockPlanTest {

    @Test
    void defaultsAreFourBlocksWithTheAnchorAsLargeAsABlock() {
        BlockPlan plan = BlockPlan.builder(1000).build();
        assertThat(plan.blockCount()).isEqualTo(BlockPlan.DEFAULT_BLOCKS).isEqualTo(4);
        assertThat(plan.blockSize()).isEqualTo(250);
        assertThat(plan.anchorSize()).isEqualTo(250);
        assertThat(plan.hosts()).isEqualTo(1);
        assertThat(plan.queryHost()).isZero();
        assertThat(plan.blocks()).extracting(Block::start).containsExactly(0, 250, 500, 750);
    }

    @Test
    void blockSizeGivesTheCountAndTheLastBlockIsShorter() {
        BlockPlan plan = BlockPlan.builder(1000).blockSize(300).build();
        assertThat(plan.blockCount()).isEqualTo(4);
        assertThat(plan.blocks()).extracting(Block::length).containsExactly(300, 300, 300, 100);
        assertThat(plan.blocks().getLast()).isEqualTo(new Block(3, 900, 1000, 0));
        assertThat(plan.anchorSize()).isEqualTo(300);
    }

    @Test
    void blockCountGivesTheSizeRoundedUp() {
        BlockPlan plan = BlockPlan.builder(1000).blocks(3).build();
        assertThat(plan.blockSize()).isEqualTo(334);
        assertThat(plan.blocks()).extracting(Block::length).containsExactly(334, 334, 332);
    }

    @Test
    void anchorCanBeSmallerOrOff() {
        assertThat(BlockPlan.builder(1000).anchorSize(64).build().anchorSize()).isEqualTo(64);
        BlockPlan none = BlockPlan.builder(1000).anchorSize(0).build();
        assertThat(none.inputPositions(2)).containsExactly(IntStream.range(500, 750).toArray());
    }

    @Test
    void inputPositionsAreTheAnchorsThenTheBlocksOwnGlobalPositions() {
        BlockPlan plan = BlockPlan.builder(100).blockSize(30).anchorSize(10).build();
        assertThat(plan.inputPositions(0)).containsExactly(IntStream.range(0, 30).toArray());
        assertThat(plan.inputPositions(2)).containsExactly(
                IntStream.concat(IntStream.range(0, 10), IntStream.range(60, 90)).toArray());
        // the last block is short: 90..99
        assertThat(plan.inputPositions(3)).hasSize(20).endsWith(99);
    }

    @Test
    void anchorLongerThanTheContextIsCut() {
        BlockPlan plan = BlockPlan.builder(100).blockSize(200).anchorSize(150).build();
        assertThat(plan.blockCount()).isEqualTo(1);
        assertThat(plan.effectiveAnchor()).isEqualTo(100);
    }

    @Test
    void hostsGetContiguousBlocksFirstOnesGetTheExtraAndTheQueryHostOwnsTheLast() {
        BlockPlan plan = BlockPlan.builder(1000).blocks(10).hosts(4).build();
        assertThat(plan.blocks()).extracting(Block::host).containsExactly(0, 0, 0, 1, 1, 1, 2, 2, 3, 3);
        assertThat(plan.queryHost()).isEqualTo(3);
        assertThat(plan.blocksOf(1)).extracting(Block::index).containsExactly(3, 4, 5);
        assertThat(plan.blocksOf(3)).extracting(Block::index).containsExactly(8, 9);
    }

    @Test
    void randomPlansCoverTheContextInOrder() {
        Random rnd = new Random(17);
        for (int i = 0; i < 500; i++) {
            int length = 1 + rnd.nextInt(5000);
            int blockSize = 1 + rnd.nextInt(length);
            int n = (length + blockSize - 1) / blockSize;
            int hosts = 1 + rnd.nextInt(n);
            BlockPlan plan = BlockPlan.builder(length).blockSize(blockSize).hosts(hosts).build();
            String label = plan.toString();
            List<Block> blocks = plan.blocks();
            assertThat(blocks).as(label).hasSize(n);
            int next = 0;
            int[] perHost = new int[hosts];
            for (int j = 0; j < n; j++) {
                Block b = blocks.get(j);
                assertThat(b.index()).as(label).isEqualTo(j);
                assertThat(b.start()).as(label).isEqualTo(next);
                assertThat(b.length()).as(label).isBetween(1, blockSize);
                if (j < n - 1) {
                    assertThat(b.length()).as(label).isEqualTo(blockSize);
                }
                if (j > 0) {
                    assertThat(b.host()).as(label).isBetween(blocks.get(j - 1).host(), blocks.get(j - 1).host() + 1);
                }
                perHost[b.host()]++;
                next = b.end();
            }
            assertThat(next).as(label).isEqualTo(length);
            assertThat(blocks.getLast().host()).as(label).isEqualTo(plan.queryHost());
            for (int h = 0; h < hosts; h++) {
                assertThat(perHost[h]).as(label + " host " + h).isEqualTo(n / hosts + (h < n % hosts ? 1 : 0));
            }
        }
    }

    @Test
    void globalIsOneBlockOnOneHost() {
        BlockPlan plan = BlockPlan.global(777);
        assertThat(plan.blocks()).containsExactly(new Block(0, 0, 777, 0));
        assertThat(plan.inputPositions(0)).hasSize(777).startsWith(0).endsWith(776);
    }

    @Test
    void validationMessagesSayWhatIsWrong() {
        assertThatThrownBy(() -> BlockPlan.builder(1000).blockSize(250).anchorSize(300).build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("anchor size (300) must not exceed the block size (250)");
        assertThatThrownBy(() -> BlockPlan.builder(1000).blockSize(500).hosts(3).build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("blocks (2) must be at least hosts (3)")
                .hasMessageContaining("block size 500");
        assertThatThrownBy(() -> BlockPlan.builder(0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("context is empty");
        assertThatThrownBy(() -> BlockPlan.builder(1000).blockSize(100).blocks(10).build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("give either a block size or a number of blocks, not both");
        assertThatThrownBy(() -> BlockPlan.builder(10).blockSize(0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("block size must be positive");
        assertThatThrownBy(() -> BlockPlan.builder(10).anchorSize(-1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> BlockPlan.builder(10).hosts(0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> BlockPlan.global(10).blocksOf(1)).isInstanceOf(IllegalArgumentException.class);
    }
}
