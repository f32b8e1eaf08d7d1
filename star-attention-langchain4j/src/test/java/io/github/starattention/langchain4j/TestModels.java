package io.github.starattention.langchain4j;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.github.starattention.jlama.StarAttentionModel;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The bundled model, dev set and demo haystack, found from the module directory; the model is loaded once per JVM. */
final class TestModels {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static StarAttentionModel model;
    private static List<JsonNode> devSet;

    private TestModels() {
    }

    /** The repository root (the folder holding {@code models/tiny-ruler-llama}). */
    static Path root() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.isDirectory(p.resolve("models/tiny-ruler-llama"))) {
            p = p.getParent();
        }
        if (p == null) {
            throw new IllegalStateException("cannot find models/tiny-ruler-llama above " + Path.of("").toAbsolutePath());
        }
        return p;
    }

    static Path modelDir() {
        return root().resolve("models/tiny-ruler-llama");
    }

    /** The bundled model (fp32), loaded once per test JVM and never closed. */
    static synchronized StarAttentionModel model() {
        if (model == null) {
            model = StarAttentionModel.load(modelDir());
        }
        return model;
    }

    /** Dev-set examples of {@code task} with {@code length} tokens, in file order. */
    static synchronized List<JsonNode> dev(String task, int length) {
        if (devSet == null) {
            List<JsonNode> all = new ArrayList<>();
            try {
                for (String line : Files.readAllLines(root().resolve("data/evalsets/ruler-tiny-dev.jsonl"))) {
                    if (!line.isBlank()) {
                        all.add(JSON.readTree(line));
                    }
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            devSet = List.copyOf(all);
        }
        return devSet.stream()
                .filter(n -> n.get("task").asText().equals(task) && n.get("length").asInt() == length)
                .toList();
    }

    /** The 16K-token demo haystack (the dev example niah_multikey-16384-0, seven needles). */
    static String haystack16k() {
        try {
            return Files.readString(root().resolve("data/demo/haystack-16k.txt"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static String question(String key) {
        return "What is the special magic number for " + key + " mentioned in the provided text?";
    }
}
