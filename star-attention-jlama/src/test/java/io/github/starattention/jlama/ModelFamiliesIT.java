package io.github.starattention.jlama;

import io.github.starattention.jlama.model.Logits;
import static org.assertj.core.api.Assertions.assertThat;

import com.github.tjake.jlama.model.AbstractModel;
import com.github.tjake.jlama.tensor.AbstractTensor;
import com.github.tjake.jlama.tensor.KvBufferCache;
import io.github.starattention.attention.Device;
import io.github.starattention.jlama.model.ContextEncoder;
import io.github.starattention.jlama.model.ModelFolder;
import io.github.starattention.jlama.model.WeightFormat;
import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionKernels;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.BlockPlan;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * Qwen2 (Q/K/V biases) and Mistral through our attention against stock Jlama's own model classes, on small
 * random-weight models written in the test (the tokenizer is the bundled model's).
 */
class ModelFamiliesIT {

    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"llama", "qwen2", "mistral"})
    void globalAttentionMatchesStockJlama(String type) throws IOException {
        Path dir = writeRandomModel(tmp.resolve(type), type, type.equals("qwen2"));
        StarAttentionModel ours = StarAttentionModel.load(dir);
        AbstractModel stock = ModelFolder.open(dir).loadStock(WeightFormat.F32);
        int[] tokens = new Random(1).ints(300, 3, 12000).toArray();
        tokens[0] = 1;
        float[] mine;
        try (AttentionKernel kernel = AttentionKernels.open(Device.CPU, 2)) {
            ContextEncoder encoder = new ContextEncoder(ours.decoder(), kernel, 128);
            BlockPlan plan = BlockPlan.global(tokens.length - 1);
            List<KvStore> stores = encoder.encodeBlocks(plan, java.util.Arrays.copyOf(tokens, tokens.length - 1), plan.blocks(), false, n -> { });
            mine = encoder.append(new int[] {tokens[tokens.length - 1]}, new int[] {tokens.length - 1}, stores.getLast(),
                    List.of(), null, Logits.Want.ALL, n -> { }).values();
            stores.forEach(KvStore::close);
        }
        float[] theirs;
        try (KvBufferCache cache = new KvBufferCache(stock);
             KvBufferCache.KvBuffer kv = cache.getEphemeralKvBuffer();
             AbstractTensor out = stock.batchForward(tokens, 0, kv)) {
            theirs = stock.getLogits(out.slice(out.shape().first() - 1));
        }
        float[] p = EngineEquivalenceIT.softmaxOf(mine);
        assertThat(EngineEquivalenceIT.maxAbsDiff(p, theirs)).isLessThanOrEqualTo(1e-4f);
        assertThat(argmax(p)).isEqualTo(argmax(theirs));
        stock.close();
        ours.close();
    }

    static int argmax(float[] x) {
        int b = 0;
        for (int i = 1; i < x.length; i++) {
            if (x[i] > x[b]) {
                b = i;
            }
        }
        return b;
    }

    /** A 2-layer model with GQA (4 heads, 2 KV heads, head_dim 32) and random weights, in safetensors F32. */
    static Path writeRandomModel(Path dir, String type, boolean qkvBias) throws IOException {
        return RandomModels.write(dir, new RandomModels.Shape(type, 128, 256, 2, 4, 2, 32, 10000.0, qkvBias, false), 42);
    }
}
