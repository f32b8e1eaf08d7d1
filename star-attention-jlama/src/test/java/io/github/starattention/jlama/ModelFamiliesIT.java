package io.github.starattention.jlama;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
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
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
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
            ContextEncoder encoder = new ContextEncoder(ours.jlama(), kernel, ours.rotaryEmbedding(), 128);
            BlockPlan plan = BlockPlan.global(tokens.length - 1);
            List<KvStore> stores = encoder.encodeBlocks(plan, java.util.Arrays.copyOf(tokens, tokens.length - 1), plan.blocks(), false, n -> { });
            mine = encoder.append(new int[] {tokens[tokens.length - 1]}, new int[] {tokens.length - 1}, stores.getLast(),
                    List.of(), null, true, n -> { });
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

    private static int argmax(float[] x) {
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
        Files.createDirectories(dir);
        Path bundled = TestData.modelDir();
        Files.copy(bundled.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        Files.copy(bundled.resolve("tokenizer_config.json"), dir.resolve("tokenizer_config.json"));
        int vocab = 12544, hidden = 128, inter = 256, heads = 4, kvHeads = 2, d = 32, layers = 2;
        Map<String, Object> config = new LinkedHashMap<>();
        config.put("model_type", type);
        config.put("vocab_size", vocab);
        config.put("hidden_size", hidden);
        config.put("intermediate_size", inter);
        config.put("num_hidden_layers", layers);
        config.put("num_attention_heads", heads);
        config.put("num_key_value_heads", kvHeads);
        config.put("head_dim", d);
        config.put("max_position_embeddings", 4096);
        config.put("rope_theta", 10000.0);
        config.put("rms_norm_eps", 1e-5);
        config.put("bos_token_id", 1);
        config.put("eos_token_id", 2);
        config.put("hidden_act", "silu");
        config.put("tie_word_embeddings", false);
        new ObjectMapper().writeValue(dir.resolve("config.json").toFile(), config);

        Map<String, int[]> shapes = new LinkedHashMap<>();
        shapes.put("model.embed_tokens.weight", new int[] {vocab, hidden});
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            shapes.put(p + "self_attn.q_proj.weight", new int[] {heads * d, hidden});
            shapes.put(p + "self_attn.k_proj.weight", new int[] {kvHeads * d, hidden});
            shapes.put(p + "self_attn.v_proj.weight", new int[] {kvHeads * d, hidden});
            shapes.put(p + "self_attn.o_proj.weight", new int[] {hidden, heads * d});
            if (qkvBias) {
                shapes.put(p + "self_attn.q_proj.bias", new int[] {heads * d});
                shapes.put(p + "self_attn.k_proj.bias", new int[] {kvHeads * d});
                shapes.put(p + "self_attn.v_proj.bias", new int[] {kvHeads * d});
            }
            shapes.put(p + "mlp.gate_proj.weight", new int[] {inter, hidden});
            shapes.put(p + "mlp.up_proj.weight", new int[] {inter, hidden});
            shapes.put(p + "mlp.down_proj.weight", new int[] {hidden, inter});
            shapes.put(p + "input_layernorm.weight", new int[] {hidden});
            shapes.put(p + "post_attention_layernorm.weight", new int[] {hidden});
        }
        shapes.put("model.norm.weight", new int[] {hidden});
        shapes.put("lm_head.weight", new int[] {vocab, hidden});
        writeSafetensors(dir.resolve("model.safetensors"), shapes, new Random(42));
        return dir;
    }

    private static void writeSafetensors(Path file, Map<String, int[]> shapes, Random random) throws IOException {
        StringBuilder header = new StringBuilder("{");
        long offset = 0;
        for (var e : shapes.entrySet()) {
            long n = 1;
            for (int s : e.getValue()) {
                n *= s;
            }
            if (header.length() > 1) {
                header.append(',');
            }
            header.append('"').append(e.getKey()).append("\":{\"dtype\":\"F32\",\"shape\":")
                    .append(java.util.Arrays.toString(e.getValue()).replace(" ", ""))
                    .append(",\"data_offsets\":[").append(offset).append(',').append(offset + 4 * n).append("]}");
            offset += 4 * n;
        }
        header.append('}');
        while (header.length() % 8 != 0) {
            header.append(' ');
        }
        byte[] h = header.toString().getBytes(StandardCharsets.UTF_8);
        try (OutputStream out = Files.newOutputStream(file)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).array());
            out.write(h);
            for (var e : shapes.entrySet()) {
                boolean norm = e.getKey().endsWith("norm.weight");
                long n = 1;
                for (int s : e.getValue()) {
                    n *= s;
                }
                ByteBuffer buf = ByteBuffer.allocate((int) (4 * n)).order(ByteOrder.LITTLE_ENDIAN);
                for (long i = 0; i < n; i++) {
                    buf.putFloat(norm ? 1f + 0.1f * (float) random.nextGaussian() : 0.08f * (float) random.nextGaussian());
                }
                out.write(buf.array());
            }
        }
    }
}
