package io.github.starattention.jlama.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** A tiny llama "shape" folder for the tests: config.json and byte-level-BPE-style tokenizer files, no weights. */
final class TinyShape {

    static final int VOCAB = 48;
    static final int HIDDEN = 64;
    static final int HEADS = 4;
    static final int KV_HEADS = 2;
    static final int INTERMEDIATE = 96;
    static final int LAYERS = 2;

    private TinyShape() {
    }

    static Path write(Path dir, boolean tied, Map<String, Object> extraConfig) throws IOException {
        Files.createDirectories(dir);
        ObjectMapper json = new ObjectMapper();
        Map<String, Object> config = new LinkedHashMap<>();
        config.put("architectures", List.of("LlamaForCausalLM"));
        config.put("model_type", "llama");
        config.put("hidden_size", HIDDEN);
        config.put("intermediate_size", INTERMEDIATE);
        config.put("num_hidden_layers", LAYERS);
        config.put("num_attention_heads", HEADS);
        config.put("num_key_value_heads", KV_HEADS);
        config.put("max_position_embeddings", 256);
        config.put("rope_theta", 100000);
        config.put("rms_norm_eps", 1e-5);
        config.put("initializer_range", 0.05);
        config.put("tie_word_embeddings", tied);
        config.put("vocab_size", VOCAB);
        config.put("bos_token_id", 1);
        config.put("eos_token_id", 2);
        config.putAll(extraConfig);
        json.writeValue(dir.resolve("config.json").toFile(), config);

        Map<String, Integer> vocab = new LinkedHashMap<>();
        List<String> normal = new ArrayList<>(List.of("a", "b", "c", "d", "e", "Ġ", "Ġa", "Ġb", "ab", "Ċ", "0", "1"));
        for (int i = 0; normal.size() < VOCAB - 4; i++) {
            normal.add("t" + i);
        }
        for (int i = 0; i < normal.size(); i++) {
            vocab.put(normal.get(i), i + 3); // ids 0..2 are the special tokens; the last id has no token
        }
        List<Map<String, Object>> added = List.of(
                Map.of("id", 0, "content", "<|endoftext|>", "special", true),
                Map.of("id", 1, "content", "<|im_start|>", "special", true),
                Map.of("id", 2, "content", "<|im_end|>", "special", true));
        Map<String, Object> tokenizer = new LinkedHashMap<>();
        tokenizer.put("version", "1.0");
        tokenizer.put("added_tokens", added);
        tokenizer.put("pre_tokenizer", Map.of("type", "Sequence", "pretokenizers", List.of(
                Map.of("type", "Digits", "individual_digits", true),
                Map.of("type", "ByteLevel", "add_prefix_space", false, "trim_offsets", true, "use_regex", true))));
        tokenizer.put("decoder", Map.of("type", "ByteLevel"));
        tokenizer.put("model", Map.of("type", "BPE", "vocab", vocab, "merges", List.of("Ġ a", List.of("Ġ", "b"), "a b")));
        json.writeValue(dir.resolve("tokenizer.json").toFile(), tokenizer);
        json.writeValue(dir.resolve("tokenizer_config.json").toFile(), Map.of(
                "chat_template", "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}",
                "unk_token", "<|endoftext|>", "pad_token", "<|im_end|>"));
        Files.writeString(dir.resolve("generation_config.json"), "{\"bos_token_id\": 1, \"eos_token_id\": 2}");
        return dir;
    }
}
