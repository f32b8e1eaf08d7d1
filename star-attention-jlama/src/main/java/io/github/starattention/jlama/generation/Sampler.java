package io.github.starattention.jlama.generation;

import io.github.starattention.jlama.GenerationOptions;
import io.github.starattention.jlama.model.Logits;
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

    /** What this sampler needs of a pass: the argmax when greedy, otherwise every logit. */
    public Logits.Want needs() {
        return temperature == 0f ? Logits.Want.ARGMAX : Logits.Want.ALL;
    }

    public int sample(Logits result) {
        if (temperature == 0f) {
            return result.argmax();
        }
        float[] logits = result.values();
        int n = logits.length;
        float max = logits[result.argmax()];
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
}
