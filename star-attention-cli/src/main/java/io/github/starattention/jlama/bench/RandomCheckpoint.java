package io.github.starattention.jlama.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * Writes a Llama checkpoint with seeded random weights from a folder that has a real {@code config.json} and tokenizer
 * files but no weights (a model's "shape"), so benchmarks and cross-checks run with nothing downloaded.
 *
 * <p>Every tensor of a Llama model is drawn from its own {@link SplittableRandom} split off a root seeded with
 * {@code seed}, in a fixed order (so the same seed and shape give the same bytes): projections, MLP matrices and the
 * embedding (and {@code lm_head} when the embeddings are not tied) are normal with standard deviation
 * {@code initializer_range} (0.02 when absent); RMSNorm weights are 1. With that the final hidden state has unit RMS
 * and the logits have a standard deviation of about {@code sqrt(hidden) * std} (about 1 for SmolLM2's shape), so greedy
 * decoding picks varied tokens whose margins are far above fp32 rounding: two correct runtimes agree on them.
 */
public final class RandomCheckpoint {

    /** The number format of the written weights. */
    public enum DType { F32, BF16 }

    private RandomCheckpoint() {
    }

    /**
     * Writes {@code out/model.safetensors}, {@code out/config.json} ({@code shape}'s, with {@code configOverrides}
     * applied and {@code torch_dtype} set) and copies of {@code shape}'s other non-weight files (tokenizer files, chat
     * template, generation config).
     *
     * @param configOverrides values replacing those of {@code config.json}, e.g. {@code num_hidden_layers}
     * @return {@code out}
     * @throws IllegalArgumentException if {@code shape} is not a llama folder with a config.json and tokenizer.json
     */
    public static Path write(Path shape, Path out, long seed, DType dtype, Map<String, Object> configOverrides) {
        if (!Files.isDirectory(shape)) {
            throw new IllegalArgumentException("shape folder " + shape + " does not exist or is not a directory");
        }
        if (!Files.isRegularFile(shape.resolve("tokenizer.json"))) {
            throw new IllegalArgumentException("shape folder " + shape + " has no tokenizer.json");
        }
        try {
            Files.createDirectories(out);
            ObjectMapper mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
            ObjectNode config = (ObjectNode) mapper.readTree(shape.resolve("config.json").toFile());
            if (config == null) {
                throw new IllegalArgumentException("shape folder " + shape + " has an empty config.json");
            }
            configOverrides.forEach((k, v) -> config.set(k, mapper.valueToTree(v)));
            config.put("torch_dtype", dtype == DType.F32 ? "float32" : "bfloat16");
            copyFiles(shape, out);
            Files.writeString(out.resolve("config.json"), mapper.writeValueAsString(config), StandardCharsets.UTF_8);
            LlamaConfig c = LlamaConfig.read(out);
            writeWeights(c, out.resolve("model.safetensors"), seed, dtype);
            Files.writeString(out.resolve("README.md"), String.format(Locale.ROOT,
                    "Shape of %s with RANDOM weights (seed %d, %s, normal std %s, norms 1), written by "
                            + "star-attention bench-llamacpp. Not a trained model: its answers are noise.%n",
                    shape.toAbsolutePath(), seed, dtype, c.initializerRange()));
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the checkpoint to " + out, e);
        }
    }

    private static void copyFiles(Path shape, Path out) throws IOException {
        try (Stream<Path> files = Files.list(shape)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                String name = f.getFileName().toString();
                boolean weights = name.endsWith(".safetensors") || name.endsWith(".bin") || name.endsWith(".gguf")
                        || name.endsWith(".pt") || name.endsWith(".pth") || name.endsWith(".index.json");
                if (!weights && !name.equals("config.json") && !name.equals("README.md")) {
                    Files.copy(f, out.resolve(name), StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
    }

    /** A tensor to write: its name, shape and how its values are drawn. */
    private record Spec(String name, int rows, int cols, boolean norm) {
        long elements() {
            return (long) rows * cols;
        }
    }

    /** The tensors of a Llama model with this config, in the order they are drawn. */
    private static List<Spec> specs(LlamaConfig c) {
        List<Spec> s = new ArrayList<>();
        s.add(new Spec("model.embed_tokens.weight", c.vocab(), c.hidden(), false));
        for (int i = 0; i < c.layers(); i++) {
            String p = "model.layers." + i + ".";
            s.add(new Spec(p + "input_layernorm.weight", 1, c.hidden(), true));
            s.add(new Spec(p + "self_attn.q_proj.weight", c.qRows(), c.hidden(), false));
            s.add(new Spec(p + "self_attn.k_proj.weight", c.kvRows(), c.hidden(), false));
            s.add(new Spec(p + "self_attn.v_proj.weight", c.kvRows(), c.hidden(), false));
            s.add(new Spec(p + "self_attn.o_proj.weight", c.hidden(), c.qRows(), false));
            s.add(new Spec(p + "post_attention_layernorm.weight", 1, c.hidden(), true));
            s.add(new Spec(p + "mlp.gate_proj.weight", c.intermediate(), c.hidden(), false));
            s.add(new Spec(p + "mlp.up_proj.weight", c.intermediate(), c.hidden(), false));
            s.add(new Spec(p + "mlp.down_proj.weight", c.hidden(), c.intermediate(), false));
        }
        s.add(new Spec("model.norm.weight", 1, c.hidden(), true));
        if (!c.tiedEmbeddings()) {
            s.add(new Spec("lm_head.weight", c.vocab(), c.hidden(), false));
        }
        return s;
    }

    private static void writeWeights(LlamaConfig c, Path file, long seed, DType dtype) throws IOException {
        List<Spec> specs = specs(c);
        int width = dtype == DType.F32 ? 4 : 2;
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("__metadata__", Map.of("format", "pt"));
        long offset = 0;
        for (Spec s : specs) {
            long bytes = s.elements() * width;
            header.put(s.name(), Map.of("dtype", dtype.name(),
                    "shape", s.rows() == 1 && s.norm() ? List.of(s.cols()) : List.of(s.rows(), s.cols()),
                    "data_offsets", List.of(offset, offset + bytes)));
            offset += bytes;
        }
        byte[] json = new ObjectMapper().writeValueAsBytes(header);
        int padded = (json.length + 7) / 8 * 8;
        byte[] h = new byte[padded];
        java.util.Arrays.fill(h, (byte) ' ');
        System.arraycopy(json, 0, h, 0, json.length);
        SplittableRandom root = new SplittableRandom(seed);
        double std = c.initializerRange();
        try (LeSink sink = new LeSink(file)) {
            sink.u64(padded).bytes(h);
            for (Spec s : specs) {
                SplittableRandom r = root.split();
                for (long i = 0; i < s.elements(); i++) {
                    float v = s.norm() ? 1f : (float) (r.nextGaussian() * std);
                    if (dtype == DType.F32) {
                        sink.f32(v);
                    } else {
                        sink.u16(bf16(v));
                    }
                }
            }
        }
    }

    /** fp32 to bfloat16 bits, rounding to nearest even. */
    static int bf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if (Float.isNaN(v)) {
            return (bits >>> 16) | 0x40;
        }
        return (bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16;
    }
}
