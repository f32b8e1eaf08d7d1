package io.github.starattention.langchain4j;

import com.github.tjake.jlama.safetensors.SafeTensorSupport;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Hugging Face models through Jlama's downloader: {@code owner/name} lives in {@code <cache>/owner_name}; a folder
 * with a {@code .finished} marker is used as is without touching the network.
 */
final class ModelDownloads {

    /** Jlama's (and langchain4j-jlama's) default model cache. */
    static final Path DEFAULT_CACHE = Path.of(System.getProperty("user.home"), ".jlama", "models");

    private ModelDownloads() {
    }

    /** The folder Jlama keeps {@code owner/name} in. */
    static Path folder(Path cache, String modelName) {
        String[] parts = parse(modelName);
        return cache.resolve(parts[0] == null ? parts[1] : parts[0] + "_" + parts[1]);
    }

    /** Whether {@code owner/name} is complete in {@code cache} (no download needed). */
    static boolean isCached(Path cache, String modelName) {
        return Files.exists(folder(cache, modelName).resolve(".finished"));
    }

    /**
     * Returns the model folder, downloading the model first unless it is cached.
     *
     * @throws UncheckedIOException if the download fails (with the model name and the cache in the message)
     */
    static Path resolve(Path cache, String modelName, String authToken) {
        String[] parts = parse(modelName);
        if (isCached(cache, modelName)) {
            return folder(cache, modelName);
        }
        try {
            Files.createDirectories(cache);
            return SafeTensorSupport.maybeDownloadModel(cache.toString(), Optional.ofNullable(parts[0]), parts[1],
                    true, Optional.empty(), Optional.ofNullable(authToken), Optional.empty()).toPath();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot download " + modelName + " from Hugging Face into " + cache
                    + " (offline? then put the model folder there as " + folder(cache, modelName).getFileName()
                    + " with an empty .finished file, or use modelPath): " + e.getMessage(), e);
        }
    }

    private static String[] parse(String modelName) {
        String[] parts = modelName.split("/");
        if (modelName.isBlank() || parts.length > 2 || parts[parts.length - 1].isBlank()) {
            throw new IllegalArgumentException("modelName must be a Hugging Face model id 'owner/name', got '" + modelName + "'");
        }
        return parts.length == 2 ? parts : new String[] {null, parts[0]};
    }
}
