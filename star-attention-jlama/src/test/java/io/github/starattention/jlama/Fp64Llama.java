package io.github.starattention.jlama;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A naive, independent Llama-family forward pass in fp64, written from the Hugging Face definition (no Jlama, none of
 * our kernels): RMSNorm, Q/K/V (with Qwen2's biases when present), rotate-half RoPE, causal grouped-query
 * attention, SwiGLU, tied or separate LM head. It reads {@code config.json} and the safetensors itself (F32, BF16).
 * Slow (it recomputes everything per call) and only meant for short prompts in tests.
 */
public final class Fp64Llama {

    private final Map<String, float[]> w = new HashMap<>();
    private final int hidden;
    private final int inter;
    private final int layers;
    private final int heads;
    private final int kvHeads;
    private final int d;
    private final int vocab;
    private final double theta;
    private final double eps;
    private final boolean tied;

    public Fp64Llama(Path dir) throws IOException {
        JsonNode c = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        hidden = c.get("hidden_size").asInt();
        inter = c.get("intermediate_size").asInt();
        layers = c.get("num_hidden_layers").asInt();
        heads = c.get("num_attention_heads").asInt();
        kvHeads = c.path("num_key_value_heads").asInt(heads);
        d = c.hasNonNull("head_dim") ? c.get("head_dim").asInt() : hidden / heads;
        vocab = c.get("vocab_size").asInt();
        theta = c.path("rope_theta").asDouble(10000.0);
        eps = c.path("rms_norm_eps").asDouble(1e-6);
        if (c.hasNonNull("rope_scaling")) {
            throw new IllegalArgumentException("rope_scaling is not implemented in this reference");
        }
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".safetensors")).toList()) {
                read(f);
            }
        }
        tied = !w.containsKey("lm_head.weight");
    }

    private void read(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer all = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size()).order(ByteOrder.LITTLE_ENDIAN);
            int n = (int) all.getLong(0);
            byte[] h = new byte[n];
            all.get(8, h);
            JsonNode header = new ObjectMapper().readTree(h);
            for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (e.getKey().equals("__metadata__")) {
                    continue;
                }
                String dtype = e.getValue().get("dtype").asText();
                long begin = 8 + n + e.getValue().get("data_offsets").get(0).asLong();
                long end = 8 + n + e.getValue().get("data_offsets").get(1).asLong();
                float[] v = new float[(int) ((end - begin) / (dtype.equals("F32") ? 4 : 2))];
                for (int i = 0; i < v.length; i++) {
                    v[i] = switch (dtype) {
                        case "F32" -> all.getFloat((int) begin + 4 * i);
                        case "BF16" -> Float.intBitsToFloat((all.getShort((int) begin + 2 * i) & 0xffff) << 16);
                        default -> throw new IllegalArgumentException("dtype " + dtype + " is not implemented here");
                    };
                }
                w.put(e.getKey(), v);
            }
        }
    }

    /** Logits after the last of {@code tokens} (positions 0..n-1). */
    public double[] lastLogits(int[] tokens) {
        double[][] x = forward(tokens, (layer, query, key) -> key <= query, null);
        double[] h = rmsNorm(x[tokens.length - 1], w.get("model.norm.weight"));
        return linear(h, tied ? "model.embed_tokens" : "lm_head", vocab);
    }

    /** Which keys a query token sees at a layer (token indices = positions {@code 0..n-1}). */
    @FunctionalInterface
    public interface Mask {
        boolean visible(int layer, int query, int key);
    }

    /**
     * The per-layer queries, keys (both after RoPE) and values of every token, {@code [layer][token][heads * d]} for
     * {@code q} and {@code [layer][token][kvHeads * d]} for {@code k} and {@code v}.
     */
    public record Internals(double[][][] q, double[][][] k, double[][][] v) {
    }

    /**
     * The forward pass of {@link #lastLogits} with each token's attention restricted to the keys {@code mask} lets it
     * see at each layer (instead of the causal prefix), token {@code t} at position {@code t}; returns every layer's
     * Q, K and V.
     */
    public Internals internals(int[] tokens, Mask mask) {
        Internals out = new Internals(new double[layers][][], new double[layers][][], new double[layers][][]);
        forward(tokens, mask, out);
        return out;
    }

    /** The residual stream after the last layer; every layer's Q, K and V go into {@code keep} when it is not null. */
    private double[][] forward(int[] tokens, Mask mask, Internals keep) {
        int n = tokens.length;
        double[][] x = new double[n][hidden];
        float[] emb = w.get("model.embed_tokens.weight");
        for (int t = 0; t < n; t++) {
            for (int i = 0; i < hidden; i++) {
                x[t][i] = emb[tokens[t] * hidden + i];
            }
        }
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            double[][] q = new double[n][];
            double[][] k = new double[n][];
            double[][] v = new double[n][];
            for (int t = 0; t < n; t++) {
                double[] h = rmsNorm(x[t], w.get(p + "input_layernorm.weight"));
                q[t] = rope(linear(h, p + "self_attn.q_proj", heads * d), heads, t);
                k[t] = rope(linear(h, p + "self_attn.k_proj", kvHeads * d), kvHeads, t);
                v[t] = linear(h, p + "self_attn.v_proj", kvHeads * d);
            }
            if (keep != null) {
                keep.q()[l] = q;
                keep.k()[l] = k;
                keep.v()[l] = v;
            }
            for (int t = 0; t < n; t++) {
                double[] att = new double[heads * d];
                for (int hd = 0; hd < heads; hd++) {
                    int kv = hd / (heads / kvHeads);
                    double[] s = new double[n];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < n; j++) {
                        if (!mask.visible(l, t, j)) {
                            continue;
                        }
                        double dot = 0;
                        for (int i = 0; i < d; i++) {
                            dot += q[t][hd * d + i] * k[j][kv * d + i];
                        }
                        s[j] = dot / Math.sqrt(d);
                        max = Math.max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < n; j++) {
                        if (mask.visible(l, t, j)) {
                            s[j] = Math.exp(s[j] - max);
                            sum += s[j];
                        }
                    }
                    for (int j = 0; j < n; j++) {
                        if (mask.visible(l, t, j)) {
                            for (int i = 0; i < d; i++) {
                                att[hd * d + i] += s[j] / sum * v[j][kv * d + i];
                            }
                        }
                    }
                }
                double[] o = linear(att, p + "self_attn.o_proj", hidden);
                for (int i = 0; i < hidden; i++) {
                    x[t][i] += o[i];
                }
                double[] h = rmsNorm(x[t], w.get(p + "post_attention_layernorm.weight"));
                double[] gate = linear(h, p + "mlp.gate_proj", inter);
                double[] up = linear(h, p + "mlp.up_proj", inter);
                for (int i = 0; i < inter; i++) {
                    gate[i] = gate[i] / (1 + Math.exp(-gate[i])) * up[i];
                }
                double[] down = linear(gate, p + "mlp.down_proj", hidden);
                for (int i = 0; i < hidden; i++) {
                    x[t][i] += down[i];
                }
            }
        }
        return x;
    }

    /** Query heads. */
    public int heads() {
        return heads;
    }

    /** Key/value heads. */
    public int kvHeads() {
        return kvHeads;
    }

    /** Head size. */
    public int headDim() {
        return d;
    }

    private double[] linear(double[] in, String name, int out) {
        float[] m = w.get(name + ".weight");
        float[] bias = w.get(name + ".bias");
        int k = in.length;
        double[] r = new double[out];
        for (int o = 0; o < out; o++) {
            double s = bias == null ? 0 : bias[o];
            for (int i = 0; i < k; i++) {
                s += m[o * k + i] * in[i];
            }
            r[o] = s;
        }
        return r;
    }

    private double[] rmsNorm(double[] x, float[] weight) {
        double ss = 0;
        for (double v : x) {
            ss += v * v;
        }
        double inv = 1 / Math.sqrt(ss / x.length + eps);
        double[] r = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            r[i] = x[i] * inv * weight[i];
        }
        return r;
    }

    /** Rotate-half RoPE at position {@code pos}: pairs (i, i + d/2) of every head. */
    private double[] rope(double[] x, int nHeads, int pos) {
        double[] r = x.clone();
        int half = d / 2;
        for (int hd = 0; hd < nHeads; hd++) {
            for (int i = 0; i < half; i++) {
                double angle = pos * Math.pow(theta, -2.0 * i / d);
                double cos = Math.cos(angle);
                double sin = Math.sin(angle);
                double a = x[hd * d + i];
                double b = x[hd * d + i + half];
                r[hd * d + i] = a * cos - b * sin;
                r[hd * d + i + half] = b * cos + a * sin;
            }
        }
        return r;
    }
}
