package io.github.starattention.jlama.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.Mode;
import io.github.starattention.plan.Block;
import io.github.starattention.plan.BlockPlan;
import java.util.stream.IntStream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** How a context is planned over the hosts of a cluster. */
class ClusterEngineTest {

    @ParameterizedTest(name = "{0} blocks over {1} context hosts + the query host -> {2} blocks")
    @CsvSource({"4, 3, 4", "4, 2, 6", "4, 1, 4", "2, 4, 5", "1, 1, 2", "8, 2, 9", "6, 2, 6"})
    void aBlockCountIsRaisedUntilEveryHostEncodesAsManyBlocks(int blocks, int contextHosts, int expected) {
        EngineOptions o = EngineOptions.builder().mode(Mode.STAR).blocks(blocks).build();
        EngineOptions b = ClusterEngine.balanced(o, contextHosts);
        assertThat(b.blocks()).isEqualTo(expected);
        BlockPlan plan = b.plan(16_331, contextHosts + 1);
        assertThat(IntStream.range(0, contextHosts + 1).map(h -> plan.blocksOf(h).size()).distinct().toArray())
                .as("blocks per host").containsExactly(expected / (contextHosts + 1));
        assertThat(plan.blocks().stream().mapToInt(Block::length).sum()).isEqualTo(16_331);
    }

    @ParameterizedTest(name = "blocks of {0} tokens stay as asked")
    @CsvSource({"1000", "4096"})
    void aBlockSizeIsKept(int size) {
        EngineOptions o = EngineOptions.builder().mode(Mode.STAR).blockSize(size).build();
        assertThat(ClusterEngine.balanced(o, 2)).isSameAs(o);
    }
}
