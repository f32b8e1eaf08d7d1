package io.github.starattention.jlama;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.github.starattention.attention.Device;
import io.github.starattention.cuda.CudaAttentionKernel;
import io.github.starattention.cuda.CudaProbe;
import io.github.starattention.cuda.KvDtype;
import io.github.starattention.jlama.model.ContextEncoder;
import io.github.starattention.jlama.model.CudaDecoder;
import io.github.starattention.jlama.model.Logits;
import io.github.starattention.jlama.model.WeightFormat;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.BlockPlan;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * The whole model on the GPU ({@code CudaDecoder}) against transformers and against our CPU pass, on the parity
 * suite's five real architectures (skipped without a usable GPU):
 * <ul>
 *   <li>F32 weights (fp32 matrix products on the GPU, K/V stored as fp16): the logits after the prompt within
 *       {@link #F32_LOGIT_TOLERANCE} of transformers' fp32 logits, and the 32 greedy tokens equal to the CPU pass's
 *       (which equal transformers', {@link FamilyParityIT}), for global attention and for Star Attention with 4
 *       blocks; where they part, the CPU's logits at that step must rank the two tokens within
 *       {@link #F32_LOGIT_TOLERANCE} of each other (a near tie that the fp16 rounding of K and V may decide);</li>
 *   <li>BF16 weights (tensor-core products with bf16 activations): the logits within {@link #BF16_LOGIT_TOLERANCE}
 *       of the CPU pass with the same BF16 weights (whose activations stay fp32), and the first greedy token equal.</li>
 * </ul>
 */
class CudaFamilyParityIT {

    static final List<String> FAMILIES = FamilyParityIT.FAMILIES;

    /** fp16 K/V (11-bit significands) against transformers' fp32 K/V: measured up to 1.2e-2 (Mistral, head dim 128). */
    static final double F32_LOGIT_TOLERANCE = 2e-2;

    /** bf16 activations and fp16 K/V against fp32 activations, both with bf16 weights. */
    static final double BF16_LOGIT_TOLERANCE = 0.25;

    @TempDir
    Path tmp;

    @BeforeAll
    static void needsGpu() {
        Assumptions.assumeTrue(CudaProbe.isAvailable(), () -> "no usable GPU: " + CudaProbe.probe().detail());
    }

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void fp32WeightsGiveTransformersTokens(String family) throws IOException {
        JsonNode expected = Families.reference(family).get("model");
        try (StarAttentionModel model = load(family, WeightFormat.F32)) {
            PromptSplit split = prompt(model, family);
            int[] ctx = split.contextTokens();
            int[] query = split.queryTokens();
            int[] indices = TestData.ints(expected.get("logit_indices"));
            for (String run : List.of("global", "star4")) {
                JsonNode want = expected.get(run);
                int block = want.get("block").asInt();
                Mode mode = run.equals("global") ? Mode.GLOBAL : Mode.STAR;
                float[] logits = gpuLogits(model, ctx, query, mode, block);
                double worst = 0;
                for (int i = 0; i < indices.length; i++) {
                    worst = Math.max(worst, Math.abs(logits[indices[i]] - want.get("logits").get(i).asDouble()));
                }
                int[] gpu = greedy(model, ctx, query, mode, block, Device.CUDA);
                int[] cpu = greedy(model, ctx, query, mode, block, Device.CPU);
                int same = FamilyParityIT.matching(gpu, cpu);
                String parted = "";
                if (same < Math.min(gpu.length, cpu.length)) {
                    int[] prefix = FamilyParityIT.concat(query, Arrays.copyOf(cpu, same));
                    float[] at = FamilyParityIT.firstLogits(model, ctx, prefix, mode, block);
                    double margin = at[cpu[same]] - at[gpu[same]];
                    parted = String.format(" (then %d vs %d, a CPU margin of %.1e)", gpu[same], cpu[same], margin);
                    assertThat(margin).as("%s %s: where the GPU's greedy token %d parts from the CPU's, the CPU's "
                            + "margin between them", family, run, same).isLessThanOrEqualTo(F32_LOGIT_TOLERANCE);
                } else {
                    assertThat(gpu).as("%s %s greedy tokens, GPU vs CPU", family, run).containsExactly(cpu);
                }
                System.out.printf("%s %s fp32 on the GPU: max |logit - transformers'| %.1e, greedy %d/%d equal to the "
                        + "CPU's%s%n", family, run, worst, same, cpu.length, parted);
                assertThat(worst).as("%s %s max |logit - transformers'|", family, run)
                        .isLessThanOrEqualTo(F32_LOGIT_TOLERANCE);
            }
        }
    }

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void bf16WeightsStayCloseToTheCpuPass(String family) throws IOException {
        try (StarAttentionModel model = load(family, WeightFormat.BF16)) {
            PromptSplit split = prompt(model, family);
            int[] ctx = split.contextTokens();
            int[] query = split.queryTokens();
            float[] gpu = gpuLogits(model, ctx, query, Mode.GLOBAL, 0);
            float[] cpu = FamilyParityIT.firstLogits(model, ctx, query, Mode.GLOBAL, 0);
            double worst = maxAbsDifference(gpu, cpu);
            int gpuTop = Logits.of(gpu).argmax();
            int cpuTop = Logits.of(cpu).argmax();
            int[] tokens = greedy(model, ctx, query, Mode.GLOBAL, 0, Device.CUDA);
            int[] cpuTokens = greedy(model, ctx, query, Mode.GLOBAL, 0, Device.CPU);
            int same = FamilyParityIT.matching(tokens, cpuTokens);
            System.out.printf("%s bf16 on the GPU: max |logit - CPU bf16 logit| %.2e over %d logits; greedy %d/%d "
                    + "equal to the CPU's%n", family, worst, cpu.length, same, cpuTokens.length);
            assertThat(worst).as("%s max |GPU - CPU| logit, bf16 weights", family)
                    .isLessThanOrEqualTo(BF16_LOGIT_TOLERANCE);
            assertThat(gpuTop).as("%s first greedy token, bf16 weights", family).isEqualTo(cpuTop);
            assertThat(tokens[0]).isEqualTo(cpuTokens[0]);
        }
    }

    /**
     * The MLP's gate/up projection in slices of 7 tokens ({@code mlpRows}) gives the logits of one slice: F32 weights,
     * where only the summation order of a row may differ (slices of at most 8 rows take the matrix-vector kernel).
     */
    @ParameterizedTest
    @FieldSource("FAMILIES")
    void mlpSlicesChangeNothing(String family) throws IOException {
        try (StarAttentionModel model = load(family, WeightFormat.F32)) {
            PromptSplit split = prompt(model, family);
            int[] ctx = split.contextTokens();
            assertThat(ctx.length).as("%s context tokens", family).isGreaterThan(7);
            float[] whole = gpuLogits(model, ctx, split.queryTokens(), Mode.GLOBAL, 0);
            float[] sliced = gpuLogitsMlpSlices(model, ctx, split.queryTokens(), 7);
            double worst = maxAbsDifference(sliced, whole);
            System.out.printf("%s fp32, MLP in slices of 7 tokens: max |logit - one slice's| %.2e%n", family, worst);
            assertThat(worst).as("%s max |sliced - whole| logit", family).isLessThanOrEqualTo(1e-3);
            assertThat(Logits.of(sliced).argmax()).isEqualTo(Logits.of(whole).argmax());
        }
    }

    /**
     * Decode steps replayed as CUDA graphs give the logits of direct launches bit for bit (the same kernels with the
     * same inputs), for Star Attention with 4 blocks (several partitions, merged every layer) and BF16 weights (the
     * tensor-core path): 24 greedy steps after the query, every one of them a graph launch.
     */
    @ParameterizedTest
    @FieldSource("FAMILIES")
    void decodeGraphsGiveTheLogitsOfDirectLaunches(String family) throws IOException {
        try (StarAttentionModel model = load(family, WeightFormat.BF16)) {
            PromptSplit split = prompt(model, family);
            int steps = 24;
            long[] launches = new long[2];
            List<float[]> direct = decodeLogits(model, split, steps, false, launches, 0);
            List<float[]> graphs = decodeLogits(model, split, steps, true, launches, 1);
            assertThat(launches[0]).as("%s graph launches without graphs", family).isZero();
            assertThat(launches[1]).as("%s graph launches, one per decode step", family).isEqualTo(steps);
            for (int i = 0; i <= steps; i++) {
                assertThat(graphs.get(i)).as("%s logits after step %d", family, i).containsExactly(direct.get(i));
            }
            System.out.printf("%s bf16 star4: %d decode steps as graphs, logits equal to direct launches%n", family,
                    steps);
        }
    }

    /** The logits after the query, then after each of {@code steps} greedy tokens, star with 4 blocks on GPU 0. */
    private static List<float[]> decodeLogits(StarAttentionModel model, PromptSplit split, int steps, boolean graphs,
                                              long[] launches, int slot) {
        int[] ctx = split.contextTokens();
        int[] query = split.queryTokens();
        BlockPlan plan = BlockPlan.builder(ctx.length).blockSize((ctx.length + 3) / 4).anchorSize((ctx.length + 3) / 4)
                .build();
        try (CudaAttentionKernel kernel = new CudaAttentionKernel(0, KvDtype.FP16);
             CudaDecoder gpu = CudaDecoder.upload(model.decoder(), kernel, CudaDecoder.Options.DEFAULTS.withGraphs(graphs));
             ContextEncoder encoder = new ContextEncoder(gpu, kernel, CudaDecoder.DEFAULT_CHUNK)) {
            List<KvStore> stores = encoder.encodeBlocks(plan, ctx, plan.blocks(), false, n -> { });
            try {
                KvStore last = stores.getLast();
                List<KvStore> prefix = stores.subList(0, stores.size() - 1);
                int pos = ctx.length + query.length;
                float[] logits = encoder.append(query, ContextEncoder.range(ctx.length, pos), last, prefix, null,
                        Logits.Want.ALL, n -> { }).values();
                List<float[]> out = new ArrayList<>(List.of(logits));
                for (int i = 0; i < steps; i++, pos++) {
                    int token = Logits.of(logits).argmax();
                    logits = encoder.append(new int[] {token}, new int[] {pos}, last, prefix, null, Logits.Want.ALL,
                            n -> { }).values();
                    out.add(logits);
                }
                launches[slot] = gpu.graphLaunches();
                return out;
            } finally {
                stores.forEach(KvStore::close);
            }
        }
    }

    /** The family's random-weight checkpoint, written under the test's folder, loaded with {@code format}. */
    private StarAttentionModel load(String family, WeightFormat format) throws IOException {
        return StarAttentionModel.load(Families.modelFolder(family, tmp.resolve(family)), format, 0);
    }

    /** The family's reference prompt as context and query. */
    private static PromptSplit prompt(StarAttentionModel model, String family) throws IOException {
        JsonNode p = Families.reference(family).get("prompt");
        return model.split(p.get("system").asText(), p.get("user").asText());
    }

    /** Logits after the query with the whole model on GPU 0 (phase 1 over the plan's blocks, phase 2 over all). */
    private static float[] gpuLogits(StarAttentionModel model, int[] ctx, int[] query, Mode mode, int block) {
        BlockPlan plan = mode == Mode.GLOBAL ? BlockPlan.global(ctx.length)
                : BlockPlan.builder(ctx.length).blockSize(block).anchorSize(block).build();
        try (CudaAttentionKernel kernel = new CudaAttentionKernel(0, KvDtype.FP16);
             ContextEncoder encoder = ContextEncoder.open(model.decoder(), kernel)) {
            assertThat(encoder.passName()).isEqualTo(kernel.name());
            return logitsAfter(encoder, plan, ctx, query);
        }
    }

    /** {@link #gpuLogits} of global attention with the MLP's gate/up projection {@code mlpRows} tokens at a time. */
    private static float[] gpuLogitsMlpSlices(StarAttentionModel model, int[] ctx, int[] query, int mlpRows) {
        try (CudaAttentionKernel kernel = new CudaAttentionKernel(0, KvDtype.FP16);
             CudaDecoder gpu = CudaDecoder.upload(model.decoder(), kernel, CudaDecoder.Options.DEFAULTS.withMlpRows(mlpRows));
             ContextEncoder encoder = new ContextEncoder(gpu, kernel, CudaDecoder.DEFAULT_CHUNK)) {
            return logitsAfter(encoder, BlockPlan.global(ctx.length), ctx, query);
        }
    }

    private static float[] logitsAfter(ContextEncoder encoder, BlockPlan plan, int[] ctx, int[] query) {
        List<KvStore> stores = encoder.encodeBlocks(plan, ctx, plan.blocks(), false, n -> { });
        try {
            return encoder.append(query, ContextEncoder.range(ctx.length, ctx.length + query.length), stores.getLast(),
                    stores.subList(0, stores.size() - 1), null, Logits.Want.ALL, n -> { }).values();
        } finally {
            stores.forEach(KvStore::close);
        }
    }

    private static double maxAbsDifference(float[] a, float[] b) {
        assertThat(a).hasSameSizeAs(b);
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs(a[i] - b[i]));
        }
        return worst;
    }

    private static int[] greedy(StarAttentionModel model, int[] ctx, int[] query, Mode mode, int block, Device device) {
        EngineOptions.Builder options = EngineOptions.builder().mode(mode).device(device).threads(4);
        if (mode == Mode.STAR) {
            options.blockSize(block).anchorSize(block);
        }
        try (LocalEngine engine = LocalEngine.create(model, options.build());
             ContextSession session = engine.prefill(ctx, PrefillListener.NONE)) {
            assertThat(engine.passName()).isEqualTo(device == Device.CUDA ? "cuda:0" : "cpu");
            return session.generate(query, GenerationOptions.greedy(32), TokenListener.NONE).tokens();
        }
    }
}
