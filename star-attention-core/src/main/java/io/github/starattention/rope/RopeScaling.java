package io.github.starattention.rope;

/**
 * The {@code rope_scaling} entry of a Hugging Face {@code config.json}.
 *
 * @param type {@code default} (none), {@code linear} or {@code llama3}
 * @param factor scaling factor ({@code linear}, {@code llama3})
 * @param lowFreqFactor {@code llama3} only
 * @param highFreqFactor {@code llama3} only
 * @param originalMaxPositions {@code llama3} only: {@code original_max_position_embeddings}
 */
public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) {

    /** No scaling. */
    public static final RopeScaling NONE = new RopeScaling("default", 1, 0, 0, 0);

    public RopeScaling {
        switch (type) {
            case "default" -> {
            }
            case "linear" -> {
                if (!(factor > 0)) {
                    throw new IllegalArgumentException("linear rope scaling needs factor > 0, got " + factor);
                }
            }
            case "llama3" -> {
                if (!(factor > 0) || !(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor) || originalMaxPositions <= 0) {
                    throw new IllegalArgumentException("llama3 rope scaling needs factor > 0, 0 < low_freq_factor < "
                            + "high_freq_factor and original_max_position_embeddings > 0, got " + this);
                }
            }
            default -> throw new IllegalArgumentException("unsupported rope_scaling type '" + type
                    + "' (supported: default, linear, llama3)");
        }
    }

    public static RopeScaling linear(double factor) {
        return new RopeScaling("linear", factor, 0, 0, 0);
    }

    public static RopeScaling llama3(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) {
        return new RopeScaling("llama3", factor, lowFreqFactor, highFreqFactor, originalMaxPositions);
    }
}
