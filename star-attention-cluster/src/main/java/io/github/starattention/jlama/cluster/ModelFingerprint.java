package io.github.starattention.jlama.cluster;

import com.github.tjake.jlama.safetensors.Config;
import io.github.starattention.jlama.StarAttentionModel;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;

/**
 * Identifies the model a node serves, so that the query host only uses context hosts that compute exactly what it
 * would: the shape from {@code config.json}, a SHA-256 over {@code config.json}, the tokenizer files and the names and
 * sizes of the weight files, the weight format in memory, and the attention kernel's numerics (CPU fp32, CUDA fp16 or
 * bf16 KV: a mixed cluster would compute something else than any of its members alone). Hashing the weights
 * themselves would take minutes for large models; a different checkpoint of the same shape and size is not detected.
 */
final class ModelFingerprint {

    private ModelFingerprint() {
    }

    /**
     * @param weights the weight format in memory ({@code F32}, {@code AS_STORED}, ...)
     * @param numerics the attention kernel's {@link io.github.starattention.attention.AttentionKernel#numerics()}
     */
    static String of(StarAttentionModel model, String weights, String numerics) {
        Config c = model.decoder().config();
        Path dir = model.directory();
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            for (String f : List.of("config.json", "tokenizer.json", "tokenizer_config.json")) {
                Path p = dir.resolve(f);
                if (Files.isRegularFile(p)) {
                    sha.update(f.getBytes());
                    sha.update(Files.readAllBytes(p));
                }
            }
            try (Stream<Path> files = Files.list(dir)) {
                for (Path p : files.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList()) {
                    sha.update((p.getFileName() + ":" + Files.size(p)).getBytes());
                }
            }
            String hash = HexFormat.of().formatHex(sha.digest()).substring(0, 16);
            return c.numberOfLayers + "x" + c.embeddingLength + "-h" + c.numberOfHeads + "-kv" + c.numberOfKeyValueHeads
                    + "-d" + c.headSize + ":" + hash + ":" + weights + ":" + numerics;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot fingerprint the model in " + dir, e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
