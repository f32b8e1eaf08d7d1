package io.github.starattention.jlama.generation;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.starattention.jlama.GenerationOptions;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SamplerTest {

    private static final float[] LOGITS = {1f, 3f, 3f, 0f, 2.5f};

    @Test
    void greedyTakesTheFirstMaximum() {
        assertThat(new Sampler(GenerationOptions.greedy(1)).sample(LOGITS)).isEqualTo(1);
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
        for (float l : LOGITS) {
            z += Math.exp(l);
        }
        for (int t = 0; t < LOGITS.length; t++) {
            double expected = Math.exp(LOGITS[t]) / z;
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
