package io.github.starattention.jlama;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * Model folders with a given architecture and seeded random weights (safetensors F32), with the bundled model's
 * tokenizer (vocabulary 12544): real shapes without real weights, for tests against an independent implementation.
 */
public final class RandomModels {

    /**
     * An architecture.
     *
     * @param type {@code model_type}: llama, mistral or qwen2
     * @param tied {@code tie_word_embeddings}: no {@code lm_head}, the embedding is the output projection
     */
    public record Shape(String type, int hidden, int intermediate, int layers, int heads, int kvHeads, int headDim,
                        double ropeTheta, boolean qkvBias, boolean tied) {
    }

    /** SmolLM2-135M-Instruct's dimensions (hidden 576, 9 heads / 3 KV heads, head 64, intermediate 1536, tied). */
    public static Shape smolLm2(int layers) {
        return new Shape("llama", 576, 1536, layers, 9, 3, 64, 100000.0, false, true);
    }

    private RandomModels() {
    }

    /** Writes {@code shape} with weights drawn from {@code seed} into {@code dir}. */
    public static Path write(Path dir, Shape shape, long seed) throws IOException {
        Files.createDirectories(dir);
        Path bundled = TestData.modelDir();
        Files.copy(bundled.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        Files.copy(bundled.resolve("tokenizer_config.json"), dir.resolve("tokenizer_config.json"));
        int vocab = 12544;
        int hidden = shape.hidden();
        int d = shape.headDim();
        Map<String, Object> config = new LinkedHashMap<>();
        config.put("model_type", shape.type());
        config.put("vocab_size", vocab);
        config.put("hidden_size", hidden);
        config.put("intermediate_size", shape.intermediate());
        config.put("num_hidden_layers", shape.layers());
        config.put("num_attention_heads", shape.heads());
        config.put("num_key_value_heads", shape.kvHeads());
        config.put("head_dim", d);
        config.put("max_position_embeddings", 4096);
        config.put("rope_theta", shape.ropeTheta());
        config.put("rms_norm_eps", 1e-5);
        config.put("bos_token_id", 1);
        config.put("eos_token_id", 2);
        config.put("hidden_act", "silu");
        config.put("tie_word_embeddings", shape.tied());
        new ObjectMapper().writeValue(dir.resolve("config.json").toFile(), config);

        Map<String, int[]> shapes = new LinkedHashMap<>();
        shapes.put("model.embed_tokens.weight", new int[] {vocab, hidden});
        for (int l = 0; l < shape.layers(); l++) {
            String p = "model.layers." + l + ".";
            shapes.put(p + "self_attn.q_proj.weight", new int[] {shape.heads() * d, hidden});
            shapes.put(p + "self_attn.k_proj.weight", new int[] {shape.kvHeads() * d, hidden});
            shapes.put(p + "self_attn.v_proj.weight", new int[] {shape.kvHeads() * d, hidden});
            shapes.put(p + "self_attn.o_proj.weight", new int[] {hidden, shape.heads() * d});
            if (shape.qkvBias()) {
                shapes.put(p + "self_attn.q_proj.bias", new int[] {shape.heads() * d});
                shapes.put(p + "self_attn.k_proj.bias", new int[] {shape.kvHeads() * d});
                shapes.put(p + "self_attn.v_proj.bias", new int[] {shape.kvHeads() * d});
            }
            shapes.put(p + "mlp.gate_proj.weight", new int[] {shape.intermediate(), hidden});
            shapes.put(p + "mlp.up_proj.weight", new int[] {shape.intermediate(), hidden});
            shapes.put(p + "mlp.down_proj.weight", new int[] {hidden, shape.intermediate()});
            shapes.put(p + "input_layernorm.weight", new int[] {hidden});
            shapes.put(p + "post_attention_layernorm.weight", new int[] {hidden});
        }
        shapes.put("model.norm.weight", new int[] {hidden});
        if (!shape.tied()) {
            shapes.put("lm_head.weight", new int[] {vocab, hidden});
        }
        writeSafetensors(dir.resolve("model.safetensors"), shapes, new Random(seed));
        return dir;
    }

    private static void writeSafetensors(Path file, Map<String, int[]> shapes, Random random) throws IOException {
        StringBuilder header = new StringBuilder("{");
        long offset = 0;
        for (var e : shapes.entrySet()) {
            long n = Arrays.stream(e.getValue()).asLongStream().reduce(1, (x, y) -> x * y);
            if (header.length() > 1) {
                header.append(',');
            }
            header.append('"').append(e.getKey()).append("\":{\"dtype\":\"F32\",\"shape\":")
                    .append(Arrays.toString(e.getValue()).replace(" ", ""))
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
                long n = Arrays.stream(e.getValue()).asLongStream().reduce(1, (x, y) -> x * y);
                ByteBuffer buf = ByteBuffer.allocate((int) (4 * n)).order(ByteOrder.LITTLE_ENDIAN);
                for (long i = 0; i < n; i++) {
                    buf.putFloat(norm ? 1f + 0.1f * (float) random.nextGaussian() : 0.08f * (float) random.nextGaussian());
                }
                out.write(buf.array());
            }
        }
    }
}
