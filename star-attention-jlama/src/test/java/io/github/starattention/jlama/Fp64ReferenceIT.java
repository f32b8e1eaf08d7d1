package io.github.starattention.jlama;

import io.github.starattention.jlama.model.Logits;
import static org.assertj.core.api.Assertions.assertThat;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionKernels;
import io.github.starattention.attention.Device;
import io.github.starattention.jlama.model.ContextEncoder;
import io.github.starattention.jlama.model.WeightFormat;
import io.github.starattention.kv.KvPrecision;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.BlockPlan;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Our forward pass (global, one block) against {@link Fp64Llama}, an independent fp64 implementation, on the bundled
 * model and on SmolLM2-135M's real dimensions with random weights. Prompt lengths are chosen so that the prefill's
 * token count and the projections' widths leave remainders over 5 x 5 tiles: the shapes where Jlama's native matrix
 * product leaves outputs unwritten ({@code JlamaNativeGemmTest}); with it these logits are off by whole units.
 */
class Fp64ReferenceIT {

    @TempDir
    Path tmp;

    @ParameterizedTest(name = "{0}, {1} tokens")
    @CsvSource({"bundled, 13", "bundled, 37", "smollm2-shape, 7", "smollm2-shape, 24", "qwen2-bias, 13"})
    void logitsEqualAnFp64Reference(String model, int length) throws IOException {
        Path dir = modelDir(model);
        int[] tokens = tokens(length);
        double[] want = new Fp64Llama(dir).lastLogits(tokens);
        float[] got = ourLogits(dir, WeightFormat.F32, KvPrecision.F32, tokens);
        double scale = Arrays.stream(want).map(Math::abs).max().orElseThrow();
        double worst = 0;
        for (int i = 0; i < want.length; i++) {
            worst = Math.max(worst, Math.abs(want[i] - got[i]));
        }
        System.out.printf("%s, %d tokens: max |logit error| %.2e (logits up to %.1f)%n", model, length, worst, scale);
        assertThat(worst).as("max |logit - fp64 logit|").isLessThan(1e-3 * Math.max(1, scale));
        assertThat(ModelFamiliesIT.argmax(got)).isEqualTo(argmax(want));
    }

    /**
     * The lossy formats against the same fp64 reference, with the tolerance each format is documented with: cosine
     * similarity of the logits and the reference's top token among ours' top 5.
     */
    @ParameterizedTest(name = "{0}, {1} weights, {2} KV")
    @CsvSource({"bundled, BF16, F32, 0.9999", "bundled, AS_STORED, F32, 0.9999", "bundled, Q8, F32, 0.9999",
            "bundled, Q4, F32, 0.99",
            "bundled, F32, BF16, 0.9999", "smollm2-shape, BF16, F32, 0.9999", "smollm2-shape, AS_STORED, F32, 0.9999",
            "smollm2-shape, Q8, F32, 0.999", "smollm2-shape, Q4, F32, 0.93", "smollm2-shape, F32, BF16, 0.9999"})
    void lossyFormatsStayCloseToTheFp64Reference(String model, WeightFormat format, KvPrecision kv, double minCosine)
            throws IOException {
        Path dir = modelDir(model);
        int[] tokens = tokens(37);
        double[] want = new Fp64Llama(dir).lastLogits(tokens);
        float[] got = ourLogits(dir, format, kv, tokens);
        double dot = 0;
        double nw = 0;
        double ng = 0;
        for (int i = 0; i < want.length; i++) {
            dot += want[i] * got[i];
            nw += want[i] * want[i];
            ng += (double) got[i] * got[i];
        }
        double cosine = dot / Math.sqrt(nw * ng);
        int top = argmax(want);
        long above = java.util.stream.IntStream.range(0, got.length).filter(i -> got[i] > got[top]).count();
        System.out.printf("%s, %s weights, %s KV: logit cosine %.6f, reference's top token ranked %d%n", model, format,
                kv, cosine, above + 1);
        assertThat(cosine).isGreaterThanOrEqualTo(minCosine);
        assertThat(above).as("tokens ranked above the reference's top token").isLessThan(5);
    }

    private Path modelDir(String model) throws IOException {
        return switch (model) {
            case "bundled" -> TestData.modelDir();
            case "smollm2-shape" -> RandomModels.write(tmp.resolve(model), RandomModels.smolLm2(2), 7);
            case "qwen2-bias" -> RandomModels.write(tmp.resolve(model),
                    new RandomModels.Shape("qwen2", 192, 448, 2, 6, 2, 32, 1000000.0, true, true), 9);
            default -> throw new IllegalArgumentException(model);
        };
    }

    private static int[] tokens(int length) {
        int[] tokens = new Random(length).ints(length, 3, 12000).toArray();
        tokens[0] = 1;
        return tokens;
    }

    /** Our logits after the last token: the others encoded as one global block, the last appended. */
    private static float[] ourLogits(Path dir, WeightFormat format, KvPrecision kv, int[] tokens) {
        int length = tokens.length;
        float[] got;
        try (StarAttentionModel ours = StarAttentionModel.load(dir, format, 0);
             AttentionKernel kernel = AttentionKernels.open(Device.CPU, 2, kv)) {
            ContextEncoder encoder = new ContextEncoder(ours.decoder(), kernel, 512);
            int[] context = Arrays.copyOf(tokens, length - 1);
            BlockPlan plan = BlockPlan.global(context.length);
            List<KvStore> stores = encoder.encodeBlocks(plan, context, plan.blocks(), false, n -> { });
            got = encoder.append(new int[] {tokens[length - 1]}, new int[] {length - 1}, stores.getLast(), List.of(),
                    null, Logits.Want.ALL, n -> { }).values();
            stores.forEach(KvStore::close);
        }
        return got;
    }

    private static int argmax(double[] x) {
        int b = 0;
        for (int i = 1; i < x.length; i++) {
            b = x[i] > x[b] ? i : b;
        }
        return b;
    }
}
