package io.github.starattention.jlama.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class LogitsTest {

    @Test
    void argmaxIsTheFirstMaximumAsTorchArgmax() {
        assertThat(Logits.of(new float[] {1f, 3f, 3f, -2f}).argmax()).isEqualTo(1);
        assertThat(Logits.of(new float[] {-1f}).argmax()).isZero();
        assertThat(Logits.of(new float[] {0f, -0f, 5f, 5f}).argmax()).isEqualTo(2);
    }

    @Test
    void anArgmaxOnlyResultHasNoValues() {
        Logits l = Logits.argmaxOnly(7);
        assertThat(l.argmax()).isEqualTo(7);
        assertThat(l.hasValues()).isFalse();
        assertThatThrownBy(l::values).isInstanceOf(IllegalStateException.class).hasMessageContaining("ARGMAX");
        assertThat(Logits.of(new float[] {2f}).hasValues()).isTrue();
    }

    @Test
    void refusesEmptyOrNegative() {
        assertThatThrownBy(() -> Logits.of(new float[0])).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Logits.argmaxOnly(-1)).isInstanceOf(IllegalArgumentException.class);
    }
}
