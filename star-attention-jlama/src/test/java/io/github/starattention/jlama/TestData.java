package io.github.starattention.jlama;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The bundled model and evaluation sets, found from the module directory. */
public final class TestData {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static volatile StarAttentionModel model;

    private TestData() {
    }

    /** The repository root (the folder holding {@code models/tiny-ruler-llama}). */
    public static Path root() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.isDirectory(p.resolve("models/tiny-ruler-llama"))) {
            p = p.getParent();
        }
        if (p == null) {
            throw new IllegalStateException("cannot find models/tiny-ruler-llama above " + Path.of("").toAbsolutePath());
        }
        return p;
    }

    public static Path modelDir() {
        return root().resolve("models/tiny-ruler-llama");
    }

    /** The bundled model, loaded once per test JVM. */
    public static synchronized StarAttentionModel model() {
        if (model == null) {
            model = StarAttentionModel.load(modelDir());
        }
        return model;
    }

    /** The dev set by id. */
    public static Map<String, JsonNode> devSet() {
        return readJsonl(root().resolve("data/evalsets/ruler-tiny-dev.jsonl"));
    }

    /** The reference outputs (test resource copy of shared/evalsets/ruler-tiny-dev-reference.jsonl). */
    public static List<JsonNode> reference() {
        try {
            Path p = Path.of(TestData.class.getResource("/ruler-tiny-dev-reference.jsonl").toURI());
            return List.copyOf(readJsonl(p).values());
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static Map<String, JsonNode> readJsonl(Path file) {
        Map<String, JsonNode> out = new LinkedHashMap<>();
        try {
            for (String line : Files.readAllLines(file)) {
                if (!line.isBlank()) {
                    JsonNode n = JSON.readTree(line);
                    out.put(n.get("id").asText(), n);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    /** Context ids as the reference builds them: {@code [BOS] + encode("system: " + context)}. */
    public static int[] referenceContext(StarAttentionModel m, JsonNode example) {
        int[] body = m.encode("system: " + example.get("context").asText());
        int[] ids = new int[body.length + 1];
        ids[0] = m.bosToken();
        System.arraycopy(body, 0, ids, 1, body.length);
        return ids;
    }

    /** Query ids as the reference builds them: {@code encode("\nuser: " + question + "\nassistant:")}. */
    public static int[] referenceQuery(StarAttentionModel m, JsonNode example) {
        return m.encode("\nuser: " + example.get("question").asText() + "\nassistant:");
    }

    public static int[] ints(JsonNode array) {
        int[] r = new int[array.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = array.get(i).asInt();
        }
        return r;
    }
}
