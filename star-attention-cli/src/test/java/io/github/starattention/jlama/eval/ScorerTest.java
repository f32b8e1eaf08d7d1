package io.github.starattention.jlama.eval;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

class ScorerTest {

    @Test
    void stringMatchAllIsTheShareOfAnswersFoundIgnoringCase() {
        String out = "The special magic numbers for cat-dog mentioned in the provided text are 1234567, 7654321.";
        assertThat(Scorer.stringMatchAll(out, List.of("1234567"))).isEqualTo(1.0);
        assertThat(Scorer.stringMatchAll(out, List.of("1234567", "7654321", "1111111", "2222222"))).isEqualTo(0.5);
        assertThat(Scorer.stringMatchAll(out, List.of("9999999"))).isEqualTo(0.0);
        assertThat(Scorer.stringMatchAll("they are: abcde FGHIJ", List.of("ABCDE", "fghij", "KLMNO"))).isEqualTo(2.0 / 3);
    }

    @Test
    void emptyOrNullOutputScoresZero() {
        assertThat(Scorer.stringMatchAll("", List.of("1"))).isZero();
        assertThat(Scorer.stringMatchAll(null, List.of("1"))).isZero();
    }

    @Test
    void substringsCountAsRulerDoes() {
        // RULER's metric is a plain substring test: a value inside a longer number counts
        assertThat(Scorer.stringMatchAll("12345678", List.of("2345"))).isEqualTo(1.0);
    }

    @Test
    void stringMatchPartNeedsOneAnswer() {
        assertThat(Scorer.stringMatchPart("lives in the city Paris", List.of("paris", "rome"))).isEqualTo(1.0);
        assertThat(Scorer.stringMatchPart("lives in the city Oslo", List.of("paris", "rome"))).isZero();
    }

    @Test
    void noAnswersIsAnError() {
        assertThatThrownBy(() -> Scorer.stringMatchAll("x", List.of())).isInstanceOf(IllegalArgumentException.class);
    }
}
