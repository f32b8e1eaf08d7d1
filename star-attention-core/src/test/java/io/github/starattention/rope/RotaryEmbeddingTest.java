package io.github.starattention.rope;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class RotaryEmbeddingTest {

    @ParameterizedTest(name = "d={0} theta={1}")
    @CsvSource({"64, 10000", "128, 500000", "96, 1000000"})
    void defaultFrequenciesAreThetaToTheMinusTwoIOverD(int d, double theta) {
        float[] f = RotaryEmbedding.inverseFrequencies(d, theta, RopeScaling.NONE);
        assertThat(f).hasSize(d / 2);
        for (int i = 0; i < d / 2; i++) {
            double expected = Math.pow(theta, -2.0 * i / d);
            assertThat((double) f[i]).as("inv_freq[%d]", i).isCloseTo(expected, within(1e-6 * expected));
        }
    }

    /**
     * Llama 3.1 ({@code rope_type: llama3}, factor 8, low_freq_factor 1, high_freq_factor 4, original 8192), as
     * published with the model: wavelengths above {@code 8192 / 1} are divided by 8, those below {@code 8192 / 4} are
     * kept, and those in between are interpolated with {@code smooth = (8192 / wavelen - 1) / (4 - 1)}.
     */
    @Test
    void llama3ScalingFollowsTheLlama31Formula() {
        int d = 128;
        double theta = 500000;
        float[] f = RotaryEmbedding.inverseFrequencies(d, theta, RopeScaling.llama3(8, 1, 4, 8192));
        int kept = 0;
        int divided = 0;
        int smoothed = 0;
        for (int i = 0; i < d / 2; i++) {
            double base = Math.pow(theta, -2.0 * i / d);
            double wavelen = 2 * Math.PI / base;
            double expected;
            if (wavelen < 8192 / 4.0) {
                expected = base;
                kept++;
            } else if (wavelen > 8192 / 1.0) {
                expected = base / 8;
                divided++;
            } else {
                double smooth = (8192 / wavelen - 1) / (4 - 1);
                expected = (1 - smooth) * base / 8 + smooth * base;
                smoothed++;
            }
            assertThat((double) f[i]).as("inv_freq[%d]", i).isCloseTo(expected, within(2e-6 * expected));
        }
        // all three regimes are exercised, so a mix-up of the bands fails the test
        assertThat(kept).isPositive();
        assertThat(divided).isPositive();
        assertThat(smoothed).isPositive();
        assertThat(f[0]).isEqualTo(1f);
        assertThat((double) f[d / 2 - 1]).isCloseTo(Math.pow(theta, -2.0 * (d / 2 - 1) / d) / 8, within(1e-12));
    }

    @Test
    void linearScalingDividesEveryFrequency() {
        float[] plain = RotaryEmbedding.inverseFrequencies(64, 10000, RopeScaling.NONE);
        float[] scaled = RotaryEmbedding.inverseFrequencies(64, 10000, RopeScaling.linear(4));
        for (int i = 0; i < plain.length; i++) {
            assertThat(scaled[i]).isCloseTo(plain[i] / 4, within(1e-7f * plain[i]));
        }
    }

    @Test
    void applyRotatesHalvesAtTheGivenPosition() {
        int d = 64;
        RotaryEmbedding rope = new RotaryEmbedding(d, 10000, RopeScaling.NONE, 1 << 16);
        float[] inv = RotaryEmbedding.inverseFrequencies(d, 10000, RopeScaling.NONE);
        Random rnd = new Random(1);
        for (int position : new int[] {0, 1, 7, 1000, 4095, 60000}) {
            float[] x = random(rnd, d);
            float[] y = x.clone();
            rope.apply(y, 0, 1, position);
            for (int i = 0; i < d / 2; i++) {
                // the angle is formed in fp32, as PyTorch does
                double angle = (float) position * inv[i];
                double c = Math.cos(angle);
                double s = Math.sin(angle);
                assertThat((double) y[i]).isCloseTo(x[i] * c - x[i + d / 2] * s, within(1e-5));
                assertThat((double) y[i + d / 2]).isCloseTo(x[i + d / 2] * c + x[i] * s, within(1e-5));
            }
        }
    }

    @Test
    void positionZeroIsTheIdentityAndEveryHeadIsRotated() {
        int d = 32;
        RotaryEmbedding rope = new RotaryEmbedding(d, 10000, RopeScaling.NONE, 8192);
        Random rnd = new Random(2);
        float[] x = random(rnd, 3 * d + 5);
        float[] y = x.clone();
        rope.apply(y, 5, 3, 0);
        assertThat(y).containsExactly(x);

        rope.apply(y, 5, 3, 321);
        for (int h = 0; h < 3; h++) {
            float[] one = new float[d];
            System.arraycopy(x, 5 + h * d, one, 0, d);
            rope.apply(one, 0, 1, 321);
            for (int i = 0; i < d; i++) {
                assertThat(y[5 + h * d + i]).isEqualTo(one[i]);
            }
        }
        assertThat(y[0]).isEqualTo(x[0]);
    }

    @Test
    void scoresDependOnlyOnTheRelativeOffset() {
        int d = 64;
        RotaryEmbedding rope = new RotaryEmbedding(d, 500000, RopeScaling.llama3(8, 1, 4, 8192), 131072);
        Random rnd = new Random(3);
        float[] q = random(rnd, d);
        float[] k = random(rnd, d);
        double norm = Math.sqrt(dot(q, q) * dot(k, k));
        for (int trial = 0; trial < 50; trial++) {
            int p = rnd.nextInt(2000);
            int offset = rnd.nextInt(2000);
            int delta = rnd.nextInt(3000);
            double base = rotatedDot(rope, q, p + offset, k, p);
            double shifted = rotatedDot(rope, q, p + offset + delta, k, p + delta);
            assertThat(shifted).as("p=%d offset=%d delta=%d", p, offset, delta).isCloseTo(base, within(1e-3 * norm));
        }
        // and the offset matters: otherwise the test above would pass without any rotation
        assertThat(Math.abs(rotatedDot(rope, q, 10, k, 10) - rotatedDot(rope, q, 13, k, 10))).isGreaterThan(1e-2 * norm);
    }

    @Test
    void rejectsBadArguments() {
        RotaryEmbedding rope = new RotaryEmbedding(8, 10000, RopeScaling.NONE, 100);
        assertThatThrownBy(() -> rope.apply(new float[8], 0, 1, 100)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("position 100");
        assertThatThrownBy(() -> rope.apply(new float[8], 0, 1, -1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new RotaryEmbedding(7, 10000, RopeScaling.NONE, 100)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new RotaryEmbedding(8, 0, RopeScaling.NONE, 100)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new RopeScaling("yarn", 4, 0, 0, 0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("unsupported rope_scaling type 'yarn'");
        assertThatThrownBy(() -> RopeScaling.llama3(8, 4, 1, 8192)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> RopeScaling.linear(0)).isInstanceOf(IllegalArgumentException.class);
    }

    private static double rotatedDot(RotaryEmbedding rope, float[] q, int qPos, float[] k, int kPos) {
        float[] a = q.clone();
        float[] b = k.clone();
        rope.apply(a, 0, 1, qPos);
        rope.apply(b, 0, 1, kPos);
        return dot(a, b);
    }

    private static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (double) a[i] * b[i];
        }
        return s;
    }

    private static float[] random(Random rnd, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return x;
    }
}
