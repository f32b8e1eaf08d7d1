package io.github.starattention.jlama.cli;

import io.github.starattention.attention.Device;
import io.github.starattention.cuda.CudaProbe;
import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.model.PassingPolicy;
import io.github.starattention.jlama.model.WeightFormat;
import io.github.starattention.kv.KvPrecision;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/** Options shared by the commands that load a model and build an engine (a picocli mixin). */
public final class CommonOptions {

    @Option(names = "--model", paramLabel = "DIR", description = "Model folder (default: the bundled tiny-ruler-llama).")
    Path model;

    @Option(names = "--blocks", paramLabel = "N", description = "Number of context blocks (default 4).")
    Integer blocks;

    @Option(names = "--block-size", paramLabel = "N", description = "Block size in tokens (instead of --blocks).")
    Integer blockSize;

    @Option(names = "--anchor-size", paramLabel = "N", description = "Anchor size in tokens (default: the block size; 0 = none).")
    Integer anchorSize;

    @Option(names = "--passing", paramLabel = "N",
            description = "Passing blocks (beyond the paper): each context block passes the K/V of N of its tokens "
                    + "on to the later blocks (default 0 = none, the paper's phase 1). In process or with "
                    + "--hosts/--cluster (the hosts exchange what they pass on); CPU attention kernels only (--device cpu "
                    + "where a GPU is usable).")
    Integer passing;

    @Option(names = "--passing-rule", paramLabel = "window|spread", defaultValue = "window",
            description = "Which of a block's tokens choose what it passes on: its last 32 tokens (window) or 32 spread "
                    + "over it (spread), by the attention mass they put on each token. Default: ${DEFAULT-VALUE}.")
    String passingRule;

    @Option(names = "--device", paramLabel = "cpu|cuda|auto", defaultValue = "auto",
            description = "Attention kernels: cpu, cuda or auto (CUDA when a GPU is usable). Default: ${DEFAULT-VALUE}.")
    String device;

    @Option(names = "--kv", paramLabel = "f32|bf16", defaultValue = "f32",
            description = "K and V in CPU memory: f32 (exact) or bf16 (half the memory). Default: ${DEFAULT-VALUE}.")
    String kv;

    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: all cores).")
    Integer threads;

    @Option(names = "--weights", paramLabel = "F32|BF16|AS_STORED|Q8|Q4", defaultValue = "F32",
            description = "Weights in memory: F32 (exact), BF16, AS_STORED, Q8 or Q4. Default: ${DEFAULT-VALUE}.")
    WeightFormat weights;

    @Option(names = "--verbose", description = "Print stack traces and debug logs.")
    boolean verbose;

    /** {@code --weights}: a {@link WeightFormat} by name, case-insensitive. */
    static WeightFormat weightFormat(String value) {
        try {
            return WeightFormat.valueOf(value.toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new CommandLine.TypeConversionException("expected F32, BF16, AS_STORED, Q8 or Q4, got '" + value + "'");
        }
    }

    /** The model folder: {@code --model}, else the bundled model. */
    public Path modelDir() {
        if (model != null) {
            return model;
        }
        return bundledModel();
    }

    /**
     * The bundled model: {@code $STAR_ATTENTION_HOME/models/tiny-ruler-llama} (the launcher sets it), else the first
     * {@code models/tiny-ruler-llama} in the working directory or one of its parents (a module folder of a checkout).
     */
    public static Path bundledModel() {
        String home = System.getProperty("star.attention.home", System.getenv("STAR_ATTENTION_HOME"));
        Path rel = Path.of("models", "tiny-ruler-llama");
        if (home != null) {
            Path p = Path.of(home).resolve(rel);
            if (!Files.isDirectory(p)) {
                throw new IllegalArgumentException("the bundled model is not at " + p.toAbsolutePath() + "; pass --model DIR");
            }
            return p;
        }
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            if (Files.isDirectory(dir.resolve(rel))) {
                return dir.resolve(rel);
            }
        }
        throw new IllegalArgumentException("the bundled model (" + rel + ") is not in " + Path.of("").toAbsolutePath()
                + " or a parent folder; pass --model DIR");
    }

    public int threadCount() {
        return threads != null ? threads : Runtime.getRuntime().availableProcessors();
    }

    public Device deviceValue() {
        return switch (device.toLowerCase(java.util.Locale.ROOT)) {
            case "cpu" -> Device.CPU;
            case "cuda" -> {
                CudaProbe.requireAvailable("--device cuda", "--device auto or --device cpu");
                yield Device.CUDA;
            }
            case "auto" -> Device.AUTO;
            default -> throw new IllegalArgumentException("--device must be cpu, cuda or auto, got '" + device + "'");
        };
    }

    public KvPrecision kvPrecision() {
        return switch (kv.toLowerCase(java.util.Locale.ROOT)) {
            case "f32", "fp32" -> KvPrecision.F32;
            case "bf16" -> KvPrecision.BF16;
            default -> throw new IllegalArgumentException("--kv must be f32 or bf16, got '" + kv + "'");
        };
    }

    /** Loads the model (and sets Jlama's thread count before it starts). */
    public StarAttentionModel loadModel() {
        if (threads != null && threads < 1) {
            throw new IllegalArgumentException("--threads must be at least 1, got " + threads);
        }
        return StarAttentionModel.load(modelDir(), weights, threadCount());
    }

    /**
     * Checks the block flags against a context of {@code contextTokens} tokens: more blocks than tokens would cut it
     * into one-token blocks (and answer from almost nothing).
     */
    public void checkPlanFits(int contextTokens) {
        if (blocks != null && blocks > contextTokens) {
            throw new IllegalArgumentException("--blocks " + blocks + " is more than the context's " + contextTokens
                    + " tokens; use fewer blocks");
        }
    }

    /** {@code --passing} (0 when not given: nothing passed) with {@code --passing-rule}. */
    public PassingPolicy passingPolicy() {
        PassingPolicy.Selection rule = PassingPolicy.Selection.parse(passingRule);
        if (passing != null && (passing < 0 || passing > PassingPolicy.MAX_TOKENS_PER_BLOCK)) {
            throw new IllegalArgumentException("--passing must be in [0, " + PassingPolicy.MAX_TOKENS_PER_BLOCK
                    + "] (0 = none), got " + passing);
        }
        return PassingPolicy.of(passing == null ? 0 : passing, rule);
    }

    /** Engine options for {@code mode} from the block flags. */
    public EngineOptions engineOptions(Mode mode) {
        if (blocks != null && blockSize != null) {
            throw new IllegalArgumentException("give either --blocks or --block-size, not both");
        }
        // 0 and -1 mean "unset" inside EngineOptions: refuse them here rather than silently use a default
        if (blocks != null && blocks < 1) {
            throw new IllegalArgumentException("--blocks must be at least 1, got " + blocks);
        }
        if (blockSize != null && blockSize < 1) {
            throw new IllegalArgumentException("--block-size must be at least 1, got " + blockSize);
        }
        if (anchorSize != null && anchorSize < 0) {
            throw new IllegalArgumentException("--anchor-size must be at least 0 (0 = no anchor), got " + anchorSize);
        }
        EngineOptions.Builder b = EngineOptions.builder().mode(mode).device(deviceValue()).threads(threadCount())
                .kvPrecision(kvPrecision());
        if (blocks != null) {
            b.blocks(blocks);
        }
        if (blockSize != null) {
            b.blockSize(blockSize);
        }
        if (anchorSize != null) {
            b.anchorSize(anchorSize);
        }
        return b.passing(passingPolicy()).build();
    }
}
