package io.github.starattention.jlama.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The parts of a Hugging Face {@code config.json} of {@code model_type} llama that the checkpoint maker and the GGUF
 * writer need.
 *
 * @param headDim {@code head_dim}, else {@code hidden_size / num_attention_heads}
 * @param bosToken {@code bos_token_id}, -1 when absent
 * @param eosToken {@code eos_token_id} (the first one of a list), -1 when absent
 * @param padToken {@code pad_token_id}, -1 when absent
 */
record LlamaConfig(int hidden, int intermediate, int layers, int heads, int kvHeads, int headDim, int vocab,
                   int maxPositions, double ropeTheta, double rmsEps, boolean tiedEmbeddings, double initializerRange,
                   int bosToken, int eosToken, int padToken, JsonNode json) {

    /** Reads {@code dir/config.json}; refuses anything but {@code model_type} llama without biases or RoPE scaling. */
    static LlamaConfig read(Path dir) {
        Path file = dir.resolve("config.json");
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("model folder " + dir + " has no config.json");
        }
        JsonNode c;
        try {
            c = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot parse " + file + ": " + e.getMessage());
        }
        String type = c.path("model_type").asText("");
        if (!type.equals("llama")) {
            throw new IllegalArgumentException("only model_type llama is supported here, " + file + " has '" + type + "'");
        }
        if (c.path("attention_bias").asBoolean(false) || c.path("mlp_bias").asBoolean(false)) {
            throw new IllegalArgumentException(file + ": attention_bias / mlp_bias are not supported");
        }
        if (c.hasNonNull("rope_scaling")) {
            throw new IllegalArgumentException(file + ": rope_scaling is not supported (plain RoPE only)");
        }
        int hidden = required(c, "hidden_size", file);
        int heads = required(c, "num_attention_heads", file);
        int kvHeads = c.path("num_key_value_heads").asInt(heads);
        int headDim = c.hasNonNull("head_dim") ? c.get("head_dim").asInt() : hidden / heads;
        if (heads % kvHeads != 0 || headDim % 2 != 0) {
            throw new IllegalArgumentException(file + ": " + heads + " heads, " + kvHeads + " KV heads, head size "
                    + headDim + " is not a Llama attention shape");
        }
        JsonNode eos = c.path("eos_token_id");
        int eosId = eos.isArray() ? (eos.isEmpty() ? -1 : eos.get(0).asInt()) : eos.asInt(-1);
        return new LlamaConfig(hidden, required(c, "intermediate_size", file), required(c, "num_hidden_layers", file),
                heads, kvHeads, headDim, required(c, "vocab_size", file), c.path("max_position_embeddings").asInt(2048),
                c.path("rope_theta").asDouble(10000.0), c.path("rms_norm_eps").asDouble(1e-6),
                c.path("tie_word_embeddings").asBoolean(false), c.path("initializer_range").asDouble(0.02),
                c.path("bos_token_id").asInt(-1), eosId, c.path("pad_token_id").asInt(-1), c);
    }

    private static int required(JsonNode c, String key, Path file) {
        int v = c.path(key).asInt(0);
        if (v <= 0) {
            throw new IllegalArgumentException(file + " has no positive " + key);
        }
        return v;
    }

    /** Rows of the query projection. */
    int qRows() {
        return heads * headDim;
    }

    /** Rows of the key and value projections. */
    int kvRows() {
        return kvHeads * headDim;
    }
}
