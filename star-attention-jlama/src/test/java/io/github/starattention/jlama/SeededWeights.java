package io.github.starattention.jlama;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Seeded BF16 weights for a Llama, Mistral or Qwen2 {@code config.json}, bit for bit the ones
 * {@code tools/parity/seeded.py} gives transformers, so a checkpoint of any size is regenerated at test time instead
 * of being stored.
 *
 * <p>Element {@code i} of tensor {@code NAME} is {@code u = (top 24 bits of splitmix64((fnv1a64(NAME) ^ seed) + i) -
 * 2^23) / 2^23}, an exact float32 in [-1, 1); a weight is {@code u * scale} (a power of two), a norm weight
 * {@code 1 + u * scale}; stored as bfloat16 by keeping the float32's upper 16 bits.
 */
public final class SeededWeights {

    static final float SCALE_EMBED = 0x1p-3f;
    static final float SCALE_LINEAR = 0x1p-4f;
    static final float SCALE_BIAS = 0x1p-4f;
    static final float SCALE_NORM = 0x1p-3f;

    private record Tensor(String name, long[] shape, String kind) {
        long size() {
            long n = 1;
            for (long s : shape) {
                n *= s;
            }
            return n;
        }
    }

    private SeededWeights() {
    }

    /** Writes {@code model.safetensors} for {@code config} to {@code file}. */
    public static void write(JsonNode config, Path file, long seed) throws IOException {
        List<Tensor> tensors = specs(config);
        StringBuilder header = new StringBuilder("{");
        long offset = 0;
        for (Tensor t : tensors) {
            header.append(header.length() > 1 ? "," : "").append('"').append(t.name()).append("\":{\"dtype\":\"BF16\",\"shape\":[");
            for (int i = 0; i < t.shape().length; i++) {
                header.append(i > 0 ? "," : "").append(t.shape()[i]);
            }
            long bytes = 2 * t.size();
            header.append("],\"data_offsets\":[").append(offset).append(',').append(offset + bytes).append("]}");
            offset += bytes;
        }
        header.append('}');
        while (header.length() % 8 != 0) {
            header.append(' ');
        }
        byte[] h = header.toString().getBytes(StandardCharsets.UTF_8);
        try (FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, h.length));
            out.write(ByteBuffer.wrap(h));
            ByteBuffer buf = ByteBuffer.allocate(1 << 22).order(ByteOrder.LITTLE_ENDIAN);
            for (Tensor t : tensors) {
                long base = fnv1a64(t.name()) ^ seed;
                float scale = switch (t.kind()) {
                    case "embed" -> SCALE_EMBED;
                    case "bias" -> SCALE_BIAS;
                    case "norm" -> SCALE_NORM;
                    default -> SCALE_LINEAR;
                };
                boolean norm = t.kind().equals("norm");
                long n = t.size();
                for (long i = 0; i < n; i++) {
                    float x = uniform(base + i) * scale;
                    if (norm) {
                        x = 1f + x;
                    }
                    buf.putShort((short) (Float.floatToRawIntBits(x) >>> 16));
                    if (!buf.hasRemaining()) {
                        buf.flip();
                        out.write(buf);
                        buf.clear();
                    }
                }
            }
            buf.flip();
            out.write(buf);
        }
    }

    /** {@code (top 24 bits of splitmix64(x) - 2^23) / 2^23}. */
    static float uniform(long x) {
        long z = x + 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z = z ^ (z >>> 31);
        return ((int) (z >>> 40) - (1 << 23)) * 0x1p-23f;
    }

    static long fnv1a64(String name) {
        long h = 0xCBF29CE484222325L;
        for (byte b : name.getBytes(StandardCharsets.UTF_8)) {
            h = (h ^ (b & 0xff)) * 0x100000001B3L;
        }
        return h;
    }

    private static List<Tensor> specs(JsonNode c) {
        long h = c.get("hidden_size").asLong();
        long heads = c.get("num_attention_heads").asLong();
        long kv = c.path("num_key_value_heads").asLong(heads);
        long d = c.hasNonNull("head_dim") ? c.get("head_dim").asLong() : h / heads;
        long inter = c.get("intermediate_size").asLong();
        long vocab = c.get("vocab_size").asLong();
        boolean bias = c.get("model_type").asText().equals("qwen2") || c.path("attention_bias").asBoolean(false);
        List<Tensor> t = new ArrayList<>();
        t.add(new Tensor("model.embed_tokens.weight", new long[] {vocab, h}, "embed"));
        for (int l = 0; l < c.get("num_hidden_layers").asInt(); l++) {
            String p = "model.layers." + l + ".";
            t.add(new Tensor(p + "input_layernorm.weight", new long[] {h}, "norm"));
            t.add(new Tensor(p + "self_attn.q_proj.weight", new long[] {heads * d, h}, "linear"));
            t.add(new Tensor(p + "self_attn.k_proj.weight", new long[] {kv * d, h}, "linear"));
            t.add(new Tensor(p + "self_attn.v_proj.weight", new long[] {kv * d, h}, "linear"));
            if (bias) {
                t.add(new Tensor(p + "self_attn.q_proj.bias", new long[] {heads * d}, "bias"));
                t.add(new Tensor(p + "self_attn.k_proj.bias", new long[] {kv * d}, "bias"));
                t.add(new Tensor(p + "self_attn.v_proj.bias", new long[] {kv * d}, "bias"));
            }
            t.add(new Tensor(p + "self_attn.o_proj.weight", new long[] {h, heads * d}, "linear"));
            t.add(new Tensor(p + "post_attention_layernorm.weight", new long[] {h}, "norm"));
            t.add(new Tensor(p + "mlp.gate_proj.weight", new long[] {inter, h}, "linear"));
            t.add(new Tensor(p + "mlp.up_proj.weight", new long[] {inter, h}, "linear"));
            t.add(new Tensor(p + "mlp.down_proj.weight", new long[] {h, inter}, "linear"));
        }
        t.add(new Tensor("model.norm.weight", new long[] {h}, "norm"));
        if (!c.path("tie_word_embeddings").asBoolean(false)) {
            t.add(new Tensor("lm_head.weight", new long[] {vocab, h}, "embed"));
        }
        return t;
    }
}
