package io.github.starattention.jlama.eval;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.starattention.attention.Device;
import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.model.PassingPolicy;
import java.util.List;
import org.junit.jupiter.api.Test;

class VariantTest {

    @Test
    void defaultStarIsFourBlocksWithAnchorEqualToTheBlock() {
        Variant v = Variant.star(null, null, null);
        assertThat(v.blockSizeFor(965)).isEqualTo(242);   // ceil(965 / 4), as the reference
        assertThat(v.anchorSizeFor(965)).isEqualTo(242);
        EngineOptions o = v.options(965, Device.CPU, 2);
        assertThat(o.mode()).isEqualTo(Mode.STAR);
        assertThat(o.plan(965, 1).blockCount()).isEqualTo(4);
        assertThat(o.plan(965, 1).anchorSize()).isEqualTo(242);
    }

    @Test
    void globalIsOneBlockWithoutAnchor() {
        Variant g = Variant.global();
        assertThat(g.blockSizeFor(1000)).isEqualTo(1000);
        assertThat(g.anchorSizeFor(1000)).isZero();
        assertThat(g.options(1000, Device.CPU, 2).plan(1000, 1).blockCount()).isEqualTo(1);
    }

    @Test
    void anchorSweepIsAFractionOfTheBlock() {
        List<Variant> vs = Variant.sweep("anchor=0,0.25,0.5,1", Variant.star(null, null, null));
        assertThat(vs).extracting(Variant::label).containsExactly("star anchor=0", "star anchor=0.25", "star anchor=0.5",
                "star anchor=1");
        assertThat(vs).extracting(v -> v.anchorSizeFor(4000)).containsExactly(0, 250, 500, 1000);
        assertThat(vs.getFirst().setting()).isEqualTo("anchor=0");
        assertThat(vs.getFirst().sweepParameter()).isEqualTo("anchor");
        assertThat(vs.get(1).sweepValue()).isEqualTo("0.25");
    }

    @Test
    void blockSweepKeepsTheAnchorEqualToTheBlock() {
        List<Variant> vs = Variant.sweep("blocks=1,2,4,8", Variant.star(null, null, null));
        assertThat(vs).extracting(v -> v.blockSizeFor(4000)).containsExactly(4000, 2000, 1000, 500);
        assertThat(vs).extracting(v -> v.anchorSizeFor(4000)).containsExactly(4000, 2000, 1000, 500);
        assertThat(vs.getFirst().options(4000, Device.CPU, 1).plan(4000, 1).blockCount()).isEqualTo(1);
    }

    @Test
    void aFixedAnchorIsCappedAtTheBlock() {
        Variant v = Variant.star(4, null, 512);
        assertThat(v.anchorSizeFor(1000)).isEqualTo(250);
        assertThat(v.anchorCapped(1000)).isTrue();
        assertThat(v.anchorSizeFor(4000)).isEqualTo(512);
        assertThat(v.anchorCapped(4000)).isFalse();
    }

    @Test
    void passingSweepSetsThePolicyAndKeepsTheBlocks() {
        Variant base = Variant.star(null, null, 100, PassingPolicy.of(0, PassingPolicy.Selection.SPREAD));
        List<Variant> vs = Variant.sweep("passing=0,16,64:window", base);
        assertThat(vs).extracting(Variant::label)
                .containsExactly("star passing=0", "star passing=16", "star passing=64:window");
        assertThat(vs).extracting(Variant::passing).containsExactly(PassingPolicy.of(0, PassingPolicy.Selection.SPREAD),
                PassingPolicy.of(16, PassingPolicy.Selection.SPREAD), PassingPolicy.of(64, PassingPolicy.Selection.WINDOW));
        EngineOptions o = vs.get(2).options(4000, Device.CPU, 1);
        assertThat(o.passing()).isEqualTo(PassingPolicy.of(64, PassingPolicy.Selection.WINDOW));
        assertThat(o.blockSize()).isEqualTo(1000);
        assertThat(o.anchorSize()).isEqualTo(100);
        assertThat(Variant.star(null, null, null).options(4000, Device.CPU, 1).passing()).isEqualTo(PassingPolicy.OFF);
        assertThatThrownBy(() -> Variant.sweep("passing=-1", base)).hasMessageContaining("at least 0");
        assertThatThrownBy(() -> Variant.sweep("passing=8:question", base))
                .hasMessage("passing selection must be window or spread, got 'question'");
        assertThatThrownBy(() -> Variant.sweep("passing=lots", base)).hasMessageContaining("is not a number");
    }

    @Test
    void sharedOptionsHaveThePlanOfEachContextAndDoNotDependOnIt() {
        List<Variant> vs = new java.util.ArrayList<>(List.of(Variant.star(null, null, null), Variant.star(6, null, 64),
                Variant.star(null, 300, 100), Variant.star(null, null, 0),
                Variant.star(null, null, null, PassingPolicy.of(16, PassingPolicy.Selection.WINDOW))));
        vs.addAll(Variant.sweep("anchor=0,0.25,1", Variant.star(null, null, null)));
        vs.addAll(Variant.sweep("blocks=1,3", Variant.star(null, null, null)));
        for (Variant v : vs) {
            for (int ctx : new int[] {900, 965, 1000, 1024, 4000}) {
                EngineOptions shared = v.sharedOptions(ctx, Device.CPU, 2);
                EngineOptions own = v.options(ctx, Device.CPU, 2);
                assertThat(shared.plan(ctx, 1).toString()).as("%s at %d", v.label(), ctx)
                        .isEqualTo(own.plan(ctx, 1).toString());
                assertThat(shared.passing()).isEqualTo(own.passing());
            }
        }
        // a count and "anchor = block", a fixed anchor below the block, no anchor, a block size: one set of options
        for (Variant v : List.of(vs.get(0), vs.get(1), vs.get(2), vs.get(3), vs.get(4), vs.get(5), vs.get(7))) {
            assertThat(v.sharedOptions(965, Device.CPU, 2)).as(v.label()).isEqualTo(v.sharedOptions(4000, Device.CPU, 2));
        }
        // an anchor that is a quarter of each context's block cannot be
        assertThat(vs.get(6).sharedOptions(965, Device.CPU, 2)).isNotEqualTo(vs.get(6).sharedOptions(4000, Device.CPU, 2));
        assertThat(Variant.global().sharedOptions(965, Device.CPU, 2)).isEqualTo(Variant.global().options(965, Device.CPU, 2));
    }

    @Test
    void withBlocksKeepsTheLabelAndTheRest() {
        Variant v = Variant.sweep("passing=16", Variant.star(null, null, null)).getFirst();
        assertThat(v.blockCount()).isEqualTo(4);
        Variant six = v.withBlocks(6);
        assertThat(six.label()).isEqualTo("star passing=16");
        assertThat(six.blockCount()).isEqualTo(6);
        assertThat(six.passing()).isEqualTo(v.passing());
        assertThat(six.sharedOptions(1000, Device.CPU, 1).plan(1000, 3).blockCount()).isEqualTo(6);
        Variant sized = Variant.star(null, 256, null);
        assertThat(sized.withBlocks(6)).isSameAs(sized);
        assertThat(sized.blockCount()).isNull();
        assertThat(Variant.global().blockCount()).isNull();
    }

    @Test
    void badSweepsAreClearErrors() {
        Variant base = Variant.star(null, null, null);
        assertThatThrownBy(() -> Variant.sweep("blocks", base)).hasMessageContaining("--sweep must look like");
        assertThatThrownBy(() -> Variant.sweep("heads=1,2", base)).hasMessageContaining("--sweep parameter must be");
        assertThatThrownBy(() -> Variant.sweep("blocks=two", base)).hasMessageContaining("is not a number");
        assertThatThrownBy(() -> Variant.sweep("anchor=1.5", base)).hasMessageContaining("anchor fraction must be in [0, 1]");
        assertThatThrownBy(() -> Variant.sweep("blocks=0", base)).hasMessageContaining("blocks must be at least 1");
    }

    @Test
    void tokenBudgets() {
        assertThat(TokenBudget.ruler().maxNewTokens("niah_multiquery")).isEqualTo(128);
        assertThat(TokenBudget.ruler().maxNewTokens("vt")).isEqualTo(64);
        assertThat(TokenBudget.fixed(48).maxNewTokens("vt")).isEqualTo(48);
        assertThat(TokenBudget.fixed(48).describe()).contains("48");
        assertThatThrownBy(() -> TokenBudget.fixed(0)).isInstanceOf(IllegalArgumentException.class);
    }
}
