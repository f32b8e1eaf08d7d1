package io.github.starattention.jlama.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.starattention.jlama.EngineOptions;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class PassingPolicyTest {

    @Test
    void offByDefaultAndValidated() {
        assertThat(EngineOptions.defaults().passing()).isEqualTo(PassingPolicy.OFF);
        assertThat(PassingPolicy.OFF.enabled()).isFalse();
        assertThat(EngineOptions.builder().passing(64, PassingPolicy.Selection.SPREAD).build().passing())
                .isEqualTo(PassingPolicy.of(64, PassingPolicy.Selection.SPREAD));
        assertThatThrownBy(() -> PassingPolicy.of(-1, PassingPolicy.Selection.WINDOW))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("got -1");
        assertThatThrownBy(() -> PassingPolicy.of(PassingPolicy.MAX_TOKENS_PER_BLOCK + 1, PassingPolicy.Selection.WINDOW))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> EngineOptions.builder().passing(null).build()).isInstanceOf(IllegalArgumentException.class);
        assertThat(PassingPolicy.Selection.parse(" Spread ")).isEqualTo(PassingPolicy.Selection.SPREAD);
        assertThatThrownBy(() -> PassingPolicy.Selection.parse("question"))
                .hasMessage("passing selection must be window or spread, got 'question'");
    }

    @ParameterizedTest(name = "{0}, block [{1}, {2})")
    @CsvSource({"WINDOW, 100, 1100", "SPREAD, 100, 1100", "SPREAD, 0, 33", "SPREAD, 5, 37", "WINDOW, 0, 20",
            "SPREAD, 0, 20", "SPREAD, 1000, 5096"})
    void observersAreTheRulesTokensOfTheBlockOnly(PassingPolicy.Selection rule, int start, int end) {
        PassingPolicy p = PassingPolicy.of(8, rule);
        int[] obs = IntStream.range(start - 50, end + 50).filter(x -> p.isObserver(x, start, end)).toArray();
        int len = end - start;
        assertThat(obs).hasSize(Math.min(len, PassingPolicy.OBSERVERS));
        assertThat(Arrays.stream(obs).boxed().toList()).allMatch(x -> x >= start && x < end);
        assertThat(obs[obs.length - 1]).as("the block's last token observes").isEqualTo(end - 1);
        if (rule == PassingPolicy.Selection.WINDOW || len <= PassingPolicy.OBSERVERS) {
            assertThat(obs[0]).isEqualTo(Math.max(start, end - PassingPolicy.OBSERVERS));
        } else {
            // evenly spread: gaps differ by at most one
            int[] gaps = IntStream.range(1, obs.length).map(i -> obs[i] - obs[i - 1]).toArray();
            assertThat(Arrays.stream(gaps).max().orElseThrow() - Arrays.stream(gaps).min().orElseThrow()).isLessThanOrEqualTo(1);
            assertThat(obs[0] - start + 1).isBetween(len / PassingPolicy.OBSERVERS, len / PassingPolicy.OBSERVERS + 1);
        }
    }

    @Test
    void selectTakesTheBestPooledCandidatesOnly() {
        double[] s = new double[40];
        s[3] = 9; // not a candidate (first = 10)
        s[20] = 5;
        s[35] = 4;
        // radius 1: 19..21 share 5, 34..36 share 4; ties go to the token's own score, then the later slot
        assertThat(PassingBlocks.select(s, 10, 4, 1)).containsExactly(19, 20, 21, 35);
        assertThat(PassingBlocks.select(s, 10, 6, 1)).containsExactly(19, 20, 21, 34, 35, 36);
        assertThat(PassingBlocks.select(s, 10, 1, 0)).containsExactly(20);
        // k at or beyond the candidates: all of them; none when there are none
        assertThat(PassingBlocks.select(s, 10, 30, 3)).containsExactly(IntStream.range(10, 40).toArray());
        assertThat(PassingBlocks.select(s, 10, 100, 3)).hasSize(30);
        assertThat(PassingBlocks.select(s, 40, 5, 3)).isEmpty();
        assertThat(PassingBlocks.select(s, 50, 5, 3)).isEmpty();
        assertThat(PassingBlocks.select(s, 0, 0, 3)).isEmpty();
    }

    @Test
    void selectionsAreSortedDistinctExistingSlots() {
        Random r = new Random(7);
        for (int trial = 0; trial < 200; trial++) {
            int len = 1 + r.nextInt(300);
            int first = r.nextInt(len + 5);
            int k = r.nextInt(80);
            double[] s = new double[len];
            for (int i = 0; i < len; i++) {
                s[i] = r.nextInt(4) == 0 ? r.nextDouble() : 0; // many ties
            }
            int[] got = PassingBlocks.select(s, first, k, r.nextInt(5));
            assertThat(got).hasSize(Math.max(0, Math.min(k, len - first))).isSorted().doesNotHaveDuplicates();
            assertThat(Arrays.stream(got).boxed().toList()).allMatch(x -> x >= first && x < len);
        }
    }
}
