package io.github.starattention.jlama.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.github.tjake.jlama.model.AbstractModel;
import com.github.tjake.jlama.model.ModelSupport;
import com.github.tjake.jlama.safetensors.Config;
import com.github.tjake.jlama.safetensors.DType;
import com.github.tjake.jlama.safetensors.SafeTensorSupport;
import com.github.tjake.jlama.safetensors.WeightLoader;
import com.github.tjake.jlama.safetensors.prompt.PromptSupport;
import com.github.tjake.jlama.safetensors.tokenizer.Tokenizer;
import io.github.starattention.linear.CpuLinearKernel;
import io.github.starattention.rope.RopeScaling;
import io.github.starattention.rope.RotaryEmbedding;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.reflect.InvocationTargetException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;

/**
 * A Hugging Face model folder ({@code config.json}, safetensors, {@code tokenizer.json}) checked for what Star
 * Attention supports, and the loaders of our model and of stock Jlama (the baseline in tests and benchmarks) with the
 * same number formats.
 */
public final class ModelFolder {

    /** {@code model_type}s {@link Decoder} runs. */
    public static final Set<String> SUPPORTED_TYPES = Set.of("llama", "mistral", "qwen2");

    private final Path dir;
    private final JsonNode config;
    private final String modelType;

    private ModelFolder(Path dir, JsonNode config, String modelType) {
        this.dir = dir;
        this.config = config;
        this.modelType = modelType;
    }

    /**
     * Checks {@code dir}.
     *
     * @throws IllegalArgumentException naming the missing file, the unsupported model type, or what in the weights is
     *     broken or does not match {@code config.json} ({@link SafetensorsCheck})
     */
    public static ModelFolder open(Path dir) {
        if (Files.isRegularFile(dir) && dir.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".gguf")) {
            throw new IllegalArgumentException(dir + " is a GGUF file; Star Attention loads Hugging Face model folders "
                    + "(config.json, tokenizer.json, *.safetensors): use the model's original safetensors release, or "
                    + "convert with transformers: AutoModelForCausalLM.from_pretrained(DIR, gguf_file=FILE)"
                    + ".save_pretrained(OUT), and the same for AutoTokenizer");
        }
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("model folder " + dir + " does not exist or is not a directory");
        }
        Path configFile = dir.resolve("config.json");
        if (!Files.isRegularFile(configFile)) {
            throw new IllegalArgumentException("model folder " + dir + " has no config.json");
        }
        if (!Files.isRegularFile(dir.resolve("tokenizer.json"))) {
            throw new IllegalArgumentException("model folder " + dir + " has no tokenizer.json");
        }
        List<Path> weights;
        try (Stream<Path> files = Files.list(dir)) {
            weights = files.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list model folder " + dir, e);
        }
        if (weights.isEmpty()) {
            throw new IllegalArgumentException("model folder " + dir + " has no .safetensors weights");
        }
        JsonNode config;
        try {
            config = new ObjectMapper().readTree(configFile.toFile());
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot parse " + configFile + ": " + e.getMessage(), e);
        }
        String type = config.path("model_type").asText("");
        if (!SUPPORTED_TYPES.contains(type)) {
            throw new IllegalArgumentException("unsupported model_type '" + type + "' in " + configFile
                    + " (supported: llama, mistral, qwen2)");
        }
        try {
            SafetensorsCheck.check(weights, config);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("model folder " + dir + ": " + e.getMessage(), e);
        }
        return new ModelFolder(dir, config, type);
    }

    public Path directory() {
        return dir;
    }

    public String modelType() {
        return modelType;
    }

    /** {@code max_position_embeddings}. */
    public int maxPositions() {
        return config.path("max_position_embeddings").asInt(2048);
    }

    /** Head dimension: {@code head_dim}, else {@code hidden_size / num_attention_heads}. */
    public int headDim() {
        if (config.hasNonNull("head_dim")) {
            return config.get("head_dim").asInt();
        }
        return config.path("hidden_size").asInt() / config.path("num_attention_heads").asInt();
    }

    /** The rotary embedding {@code config.json} describes ({@code rope_theta}, {@code rope_scaling}). */
    public RotaryEmbedding rotaryEmbedding() {
        double theta = config.path("rope_theta").asDouble(10000.0);
        return new RotaryEmbedding(headDim(), theta, ropeScaling(config.get("rope_scaling")), maxPositions());
    }

    static RopeScaling ropeScaling(JsonNode node) {
        if (node == null || node.isNull()) {
            return RopeScaling.NONE;
        }
        String type = node.hasNonNull("rope_type") ? node.get("rope_type").asText() : node.path("type").asText("default");
        return switch (type) {
            case "default" -> RopeScaling.NONE;
            case "linear" -> RopeScaling.linear(node.path("factor").asDouble());
            case "llama3" -> RopeScaling.llama3(node.path("factor").asDouble(), node.path("low_freq_factor").asDouble(),
                    node.path("high_freq_factor").asDouble(), node.path("original_max_position_embeddings").asInt());
            default -> new RopeScaling(type, 1, 0, 0, 0);
        };
    }

    /**
     * Loads our decoder: Jlama parses {@code config.json} and reads the safetensors, the weights are converted to
     * {@code format}, and the products run on {@code threads} CPU workers.
     */
    public Decoder loadDecoder(WeightFormat format, int threads) {
        try {
            Config c = config(jlamaType());
            try (WeightLoader weights = SafeTensorSupport.loadWeights(dir.toFile())) {
                DecoderWeights w = DecoderWeights.load(weights, c, format);
                return new Decoder(c, w, new CpuLinearKernel(threads), rotaryEmbedding());
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot load model from " + dir, e);
        } catch (UncheckedIOException | IllegalArgumentException | IllegalStateException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException("cannot load model from " + dir + ": " + e, e);
        }
    }

    /** The chat template of {@code tokenizer_config.json}, rendered by Jlama, if the model has one. */
    public Optional<PromptSupport> promptSupport() {
        try {
            return jlamaType().tokenizerClass.getConstructor(Path.class).newInstance(dir).promptSupport();
        } catch (InvocationTargetException e) {
            throw e.getCause() instanceof RuntimeException re ? re
                    : new IllegalStateException("cannot read the chat template of " + dir + ": " + e.getCause(), e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + dir, e);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot read the chat template of " + dir + ": " + e, e);
        }
    }

    private ModelSupport.ModelType jlamaType() throws IOException {
        return SafeTensorSupport.detectModel(dir.resolve("config.json").toFile());
    }

    private Config config(ModelSupport.ModelType type) throws IOException {
        return com.github.tjake.jlama.util.JsonSupport.om.readValue(dir.resolve("config.json").toFile(), type.configClass);
    }

    /** Loads stock Jlama's model (its own attention and KV cache) with the same number formats: the baseline. */
    public AbstractModel loadStock(WeightFormat format) {
        JlamaOperations.select(); // before Jlama computes anything: its native F32 GEMM is wrong for some shapes
        try {
            ModelSupport.ModelType type = jlamaType();
            Config c = config(type);
            Tokenizer tokenizer = type.tokenizerClass.getConstructor(Path.class).newInstance(dir);
            WeightLoader weights = SafeTensorSupport.loadWeights(dir.toFile());
            Optional<DType> modelQ = format.stockQuantization();
            DType workingQ = modelQ.isEmpty() ? DType.I8 : DType.F32; // as stored: Jlama's default int8 activations
            return type.modelClass.getConstructor(AbstractModel.InferenceType.class, Config.class, WeightLoader.class,
                    Tokenizer.class, DType.class, DType.class, Optional.class)
                    .newInstance(AbstractModel.InferenceType.FULL_GENERATION, c, weights, tokenizer, DType.F32,
                            workingQ, modelQ);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot load model from " + dir, e);
        } catch (InvocationTargetException e) {
            throw e.getCause() instanceof RuntimeException re ? re
                    : new IllegalStateException("cannot load model from " + dir + ": " + e.getCause(), e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot load model from " + dir + ": " + e, e);
        }
    }
}
