package io.github.starattention.jlama;

import java.util.List;
import java.util.Objects;
import java.util.function.BooleanSupplier;

/**
 * Sampling and stopping options for one generation.
 *
 * <p>Defaults: 64 new tokens, greedy ({@code temperature 0}), {@code topP 1}, seed 42, no stop strings, never
 * cancelled. {@code maxNewTokens} counts output tokens only (never the prompt). Generation also stops at the model's
 * end-of-sequence tokens.
 *
 * @param maxNewTokens maximum number of output tokens, at least 1
 * @param temperature 0 for greedy, otherwise the softmax temperature
 * @param topP nucleus sampling threshold in (0, 1]
 * @param seed seed of the sampler's random generator (sampling is reproducible for a seed)
 * @param stopStrings generation stops as soon as the output contains one of these; the text is cut before it
 * @param cancelled polled between tokens; true stops generation with {@link FinishReason#CANCELLED}
 */
public record GenerationOptions(int maxNewTokens, float temperature, float topP, long seed, List<String> stopStrings,
                                BooleanSupplier cancelled) {

    public static final int DEFAULT_MAX_NEW_TOKENS = 64;

    public GenerationOptions {
        if (maxNewTokens < 1) {
            throw new IllegalArgumentException("maxNewTokens must be at least 1, got " + maxNewTokens);
        }
        if (!(temperature >= 0) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be >= 0, got " + temperature);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("topP must be in (0, 1], got " + topP);
        }
        stopStrings = List.copyOf(stopStrings);
        for (String s : stopStrings) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("stop strings must not be empty");
            }
        }
        Objects.requireNonNull(cancelled, "cancelled");
    }

    /** Greedy decoding of at most {@code maxNewTokens} tokens. */
    public static GenerationOptions greedy(int maxNewTokens) {
        return builder().maxNewTokens(maxNewTokens).build();
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        return new Builder().maxNewTokens(maxNewTokens).temperature(temperature).topP(topP).seed(seed)
                .stopStrings(stopStrings).cancelled(cancelled);
    }

    /** Builder; see the record for defaults. */
    public static final class Builder {
        private int maxNewTokens = DEFAULT_MAX_NEW_TOKENS;
        private float temperature = 0f;
        private float topP = 1f;
        private long seed = 42;
        private List<String> stopStrings = List.of();
        private BooleanSupplier cancelled = () -> false;

        public Builder maxNewTokens(int maxNewTokens) {
            this.maxNewTokens = maxNewTokens;
            return this;
        }

        public Builder temperature(float temperature) {
            this.temperature = temperature;
            return this;
        }

        public Builder topP(float topP) {
            this.topP = topP;
            return this;
        }

        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        public Builder stopStrings(List<String> stopStrings) {
            this.stopStrings = stopStrings;
            return this;
        }

        public Builder cancelled(BooleanSupplier cancelled) {
            this.cancelled = cancelled;
            return this;
        }

        public GenerationOptions build() {
            return new GenerationOptions(maxNewTokens, temperature, topP, seed, stopStrings, cancelled);
        }
    }
}
