package io.github.starattention.jlama.generation;

import io.github.starattention.jlama.GenerationOptions;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits: greedy (first maximum, as {@code torch.argmax}) at temperature 0, otherwise
 * softmax at the temperature restricted to the smallest set of tokens whose probability reaches {@code topP}
 * (nucleus sampling), drawn from a random generator seeded once per generation so a seed reproduces an output.
 */
public final class Sampler {

    private final float temperature;
    private final float topP;
    private final SplittableRandom random;

    public Sampler(GenerationOptions options) {
        this.temperature = options.temperature();
        this.topP = options.topP();
        this.random = new SplittableRandom(options.seed());
    }

    public int sample(float[] logits) {
        if (temperature == 0f) {
            return argmax(logits);
        }
        int n = logits.length;
        float max = logits[argmax(logits)];
        double[] p = new double[n];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            p[i] = Math.exp((logits[i] - max) / (double) temperature);
            sum += p[i];
        }
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Double.compare(p[b], p[a]));
        double kept = 0;
        int count = 0;
        while (count < n && (count == 0 || kept / sum < topP)) {
            kept += p[order[count++]];
        }
        double u = random.nextDouble() * kept;
        double acc = 0;
        for (int i = 0; i < count; i++) {
            acc += p[order[i]];
            if (u < acc) {
                return order[i];
            }
        }
        return order[count - 1];
    }

    static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }
}
