package io.github.starattention.jlama;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.zip.GZIPInputStream;

/**
 * The parity suite's model families (test resources {@code families/NAME/}): the real {@code config.json},
 * {@code tokenizer.json} (gzipped) and {@code tokenizer_config.json} of each, and {@code reference.json}, made by
 * {@code tools/parity/reference.py} with transformers.
 */
public final class Families {

    /** SmolLM2-135M-Instruct, Llama-3.2-1B-Instruct, Qwen2.5-0.5B-Instruct, Mistral-7B-Instruct-v0.3, TinyLlama-1.1B-Chat. */
    public static final List<String> ALL = List.of("smollm2", "llama3.2", "qwen2.5", "mistral-v0.3", "tinyllama");

    private static final ObjectMapper JSON = new ObjectMapper();

    private Families() {
    }

    /** The transformers reference of {@code family}. */
    public static JsonNode reference(String family) {
        try (InputStream in = resource(family, "reference.json")) {
            return JSON.readTree(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A folder with the family's tokenizer files and {@code config.json}, without weights. */
    public static Path tokenizerFolder(String family, Path dir) throws IOException {
        Files.createDirectories(dir);
        try (InputStream in = new GZIPInputStream(resource(family, "tokenizer.json.gz"))) {
            Files.copy(in, dir.resolve("tokenizer.json"), StandardCopyOption.REPLACE_EXISTING);
        }
        for (String f : List.of("tokenizer_config.json", "config.json")) {
            try (InputStream in = resource(family, f)) {
                Files.copy(in, dir.resolve(f), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        return dir;
    }

    /**
     * A whole model folder: the family's real dimensions with the reference's number of layers and its seeded BF16
     * weights ({@link SeededWeights}).
     */
    public static Path modelFolder(String family, Path dir) throws IOException {
        tokenizerFolder(family, dir);
        JsonNode model = reference(family).get("model");
        ObjectNode config = (ObjectNode) JSON.readTree(dir.resolve("config.json").toFile());
        config.put("num_hidden_layers", model.get("layers").asInt());
        JSON.writeValue(dir.resolve("config.json").toFile(), config);
        SeededWeights.write(config, dir.resolve("model.safetensors"), model.get("seed").asLong());
        return dir;
    }

    private static InputStream resource(String family, String file) {
        InputStream in = Families.class.getResourceAsStream("/families/" + family + "/" + file);
        if (in == null) {
            throw new IllegalStateException("test resource families/" + family + "/" + file + " is missing");
        }
        return in;
    }
}
