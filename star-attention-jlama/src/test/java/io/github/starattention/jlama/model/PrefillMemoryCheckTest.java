package io.github.starattention.jlama.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionKernels;
import io.github.starattention.attention.Device;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.TestData;
import io.github.starattention.kv.KvPrecision;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.BlockPlan;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A prefill whose KV cannot fit the heap is refused before it starts, saying what it needs and what is free. */
class PrefillMemoryCheckTest {

    @Test
    void aContextWhoseKvExceedsTheHeapIsRefusedUpFront() {
        StarAttentionModel model = TestData.model();
        long perToken = 2L * 8 * 2 * 64 * Float.BYTES; // the bundled model: 8 layers, 2 KV heads, head 64
        int tokens = (int) Math.min(Integer.MAX_VALUE - 8, Runtime.getRuntime().maxMemory() / perToken + 1024);
        int[] context = new int[tokens];
        try (AttentionKernel kernel = AttentionKernels.open(Device.CPU, 1)) {
            ContextEncoder encoder = new ContextEncoder(model.decoder(), kernel, 512);
            BlockPlan plan = BlockPlan.builder(tokens).blocks(4).build();
            assertThatThrownBy(() -> encoder.encodeBlocks(plan, context, plan.blocks(), false, n -> { }))
                    .isInstanceOf(NotEnoughMemoryException.class)
                    .hasMessageContaining("needs about")
                    .hasMessageContaining("8 layers x 2 KV heads x 64")
                    .hasMessageContaining("raise -Xmx")
                    .satisfies(e -> assertThat(((NotEnoughMemoryException) e).needed())
                            .isGreaterThan(((NotEnoughMemoryException) e).available()));

            assertThat(((NotEnoughMemoryException) catchThrowable(
                    () -> encoder.encodeBlocks(plan, context, plan.blocks(), false, n -> { }))).needed())
                    .isEqualTo((tokens + plan.effectiveAnchor() + 512L) * perToken);
            try (AttentionKernel bf16 = AttentionKernels.open(Device.CPU, 1, KvPrecision.BF16)) {
                ContextEncoder half = new ContextEncoder(model.decoder(), bf16, 512);
                int[] twice = new int[2 * tokens];
                BlockPlan twicePlan = BlockPlan.builder(twice.length).blocks(4).build();
                assertThatThrownBy(() -> half.encodeBlocks(twicePlan, twice, twicePlan.blocks(), false, n -> { }))
                        .isInstanceOf(NotEnoughMemoryException.class)
                        .hasMessageContaining("K and V x 2 bytes")
                        .satisfies(e -> assertThat(((NotEnoughMemoryException) e).needed())
                                .as("the blocks, the anchor and the query's 512 slots at half of fp32's bytes")
                                .isEqualTo((twice.length + twicePlan.effectiveAnchor() + 512L) * perToken / 2));
            }

            BlockPlan small = BlockPlan.global(64);
            List<KvStore> stores = encoder.encodeBlocks(small, new int[64], small.blocks(), false, n -> { });
            assertThat(stores.getFirst().size()).isEqualTo(64);
            stores.forEach(KvStore::close);
        }
    }
}
