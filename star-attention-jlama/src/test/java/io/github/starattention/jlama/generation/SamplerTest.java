package io.github.starattention.jlama.generation;

import io.github.starattention.jlama.model.Logits;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.starattention.jlama.GenerationOptions;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SamplerTest {

    private static final float[] VALUES = {1f, 3f, 3f, 0f, 2.5f};
    private static final Logits LOGITS = Logits.of(VALUES);

    @Test
    void greedyTakesTheFirstMaximum() {
        assertThat(new Sampler(GenerationOptions.greedy(1)).sample(LOGITS)).isEqualTo(1);
    }

    @Test
    void greedyNeedsOnlyTheArgmaxAndSamplingEveryLogit() {
        assertThat(new Sampler(GenerationOptions.greedy(1)).needs()).isEqualTo(Logits.Want.ARGMAX);
        assertThat(new Sampler(GenerationOptions.greedy(1)).sample(Logits.argmaxOnly(4))).isEqualTo(4);
        Sampler hot = new Sampler(GenerationOptions.builder().temperature(1f).seed(1).build());
        assertThat(hot.needs()).isEqualTo(Logits.Want.ALL);
        assertThatThrownBy(() -> hot.sample(Logits.argmaxOnly(4))).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void sameSeedSameDraws() {
        GenerationOptions o = GenerationOptions.builder().temperature(1f).seed(7).build();
        Sampler a = new Sampler(o);
        Sampler b = new Sampler(o);
        for (int i = 0; i < 50; i++) {
            assertThat(a.sample(LOGITS)).isEqualTo(b.sample(LOGITS));
        }
    }

    @Test
    void temperatureFollowsTheSoftmax() {
        Sampler s = new Sampler(GenerationOptions.builder().temperature(1f).seed(1).build());
        Map<Integer, Integer> counts = new HashMap<>();
        int n = 40_000;
        for (int i = 0; i < n; i++) {
            counts.merge(s.sample(LOGITS), 1, Integer::sum);
        }
        double z = 0;
        for (float l : VALUES) {
            z += Math.exp(l);
        }
        for (int t = 0; t < VALUES.length; t++) {
            double expected = Math.exp(VALUES[t]) / z;
            assertThat(counts.getOrDefault(t, 0) / (double) n).as("token " + t).isCloseTo(expected, org.assertj.core.data.Offset.offset(0.01));
        }
    }

    @Test
    void topPKeepsOnlyTheNucleus() {
        // probabilities at T=1: tokens 1 and 2 hold about 0.36 each, token 4 about 0.22: top-p 0.7 keeps {1, 2}
        Sampler s = new Sampler(GenerationOptions.builder().temperature(1f).topP(0.7f).seed(3).build());
        for (int i = 0; i < 2_000; i++) {
            assertThat(s.sample(LOGITS)).isIn(1, 2);
        }
    }
}
