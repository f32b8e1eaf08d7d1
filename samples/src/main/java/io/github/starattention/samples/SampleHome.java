package io.github.starattention.samples;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where the samples find the bundled model and demo data, and the settings that keep them offline.
 *
 * <p>The project root is {@code -Dstar.attention.home} (set by {@code samples/run}), else {@code $STAR_ATTENTION_HOME},
 * else the first folder at or above the working directory that holds {@code models/tiny-ruler-llama}.
 */
public final class SampleHome {

    /** The instruction the bundled model was trained on (RULER niah, numbers); the haystack follows it. */
    public static final String NIAH_INSTRUCTION = "Some special magic numbers are hidden within the following text. "
            + "Make sure to memorize it. I will quiz you about the numbers afterwards.";

    private SampleHome() {
    }

    /** The project root, or null when it cannot be found. */
    public static Path root() {
        String home = System.getProperty("star.attention.home", System.getenv("STAR_ATTENTION_HOME"));
        if (home != null && !home.isBlank()) {
            return Path.of(home).toAbsolutePath();
        }
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.isDirectory(p.resolve("models/tiny-ruler-llama"))) {
            p = p.getParent();
        }
        return p;
    }

    /** A path under the project root (relative to the working directory when no root is found). */
    public static Path resolve(String relative) {
        Path root = root();
        return root != null ? root.resolve(relative) : Path.of(relative);
    }

    /** The bundled model folder, or an error that says to pass {@code --model}. */
    public static Path bundledModel() {
        Path p = resolve("models/tiny-ruler-llama");
        if (!Files.isDirectory(p)) {
            throw new IllegalArgumentException("the bundled model is not at " + p.toAbsolutePath()
                    + "; run from the project folder or pass --model DIR");
        }
        return p;
    }

    /** True when {@code dir} is the bundled model (whose only skill is the RULER needle format). */
    public static boolean isBundled(Path dir) {
        try {
            return Files.isSameFile(dir, resolve("models/tiny-ruler-llama"));
        } catch (Exception e) {
            return false;
        }
    }

    /**
     * Keeps DJL (used by the in-process embedding model for its tokenizer) from downloading anything or sending
     * usage data, and sets quiet logging. Call before the first embedding model is built.
     */
    public static void offline() {
        System.setProperty("ai.djl.offline", "true");
        System.setProperty("OPT_OUT_TRACKING", "true");
        setIfAbsent("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        setIfAbsent("org.slf4j.simpleLogger.logFile", "System.err");
    }

    private static void setIfAbsent(String key, String value) {
        if (System.getProperty(key) == null) {
            System.setProperty(key, value);
        }
    }
}
