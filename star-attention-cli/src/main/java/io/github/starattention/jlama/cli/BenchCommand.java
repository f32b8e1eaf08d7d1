package io.github.starattention.jlama.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.github.tjake.jlama.model.AbstractModel;
import com.github.tjake.jlama.safetensors.prompt.PromptContext;
import io.github.starattention.jlama.ContextSession;
import io.github.starattention.jlama.Generation;
import io.github.starattention.jlama.GenerationOptions;
import io.github.starattention.jlama.LocalEngine;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.PromptSplit;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.model.ModelFolder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code bench}: stock Jlama's {@code generate} against our global and star modes on the same prompts, in one JVM with
 * the same thread count, printing time to first token, decode tokens/s and their ratios to stock Jlama.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Time to first token and decode speed: stock Jlama vs Star Attention (global, star), same prompts, same threads.")
public final class BenchCommand implements Callable<Integer> {

    @Mixin
    CommonOptions common;

    @Option(names = "--lengths", split = ",", defaultValue = "1024,4096,16384", paramLabel = "N,...",
            description = "Prompt lengths in tokens. Default: ${DEFAULT-VALUE}.")
    List<Integer> lengths;

    @Option(names = "--data", paramLabel = "FILE", description = "JSONL set to take prompts from (default: the bundled dev set).")
    Path data;

    @Option(names = "--max-new-tokens", defaultValue = "32", paramLabel = "N", description = "Output tokens. Default: ${DEFAULT-VALUE}.")
    int maxNewTokens;

    @Option(names = "--skip-stock", description = "Do not run stock Jlama (it is slow at long contexts).")
    boolean skipStock;

    @Option(names = "--json", description = "Also print one JSON line per measurement.")
    boolean json;

    @Override
    public Integer call() throws IOException {
        Logging.configure(common.verbose);
        Path set = data != null ? data : CommonOptions.bundledModel().getParent().getParent().resolve("data/evalsets/ruler-tiny-dev.jsonl");
        List<String[]> rows = new ArrayList<>();
        try (StarAttentionModel model = common.loadModel()) {
            AbstractModel stock = skipStock ? null : ModelFolder.open(common.modelDir()).loadStock(common.weights);
            System.out.printf("threads %d, weights %s, %d new tokens, prompts from %s%n", common.threadCount(), common.weights,
                    maxNewTokens, set);
            warmUp(model, stock, set);
            for (int length : lengths) {
                JsonNode ex = prompt(set, length);
                PromptSplit split = model.split(ex.get("context").asText(), ex.get("question").asText());
                int tokens = split.contextTokens().length + split.queryTokens().length;
                double[] stockRun = stock == null ? null : runStock(stock, split, tokens, maxNewTokens);
                if (stockRun != null) {
                    rows.add(row(length, tokens, "stock-jlama", stockRun, stockRun));
                }
                for (Mode mode : List.of(Mode.GLOBAL, Mode.STAR)) {
                    double[] ours = runOurs(model, mode, split, maxNewTokens);
                    rows.add(row(length, tokens, "ours-" + mode.name().toLowerCase(), ours, stockRun));
                }
                printTable(rows);
            }
            if (stock != null) {
                stock.close();
            }
        }
        System.out.printf("peak resident memory of this JVM: %s%n", peakRss());
        return 0;
    }

    /**
     * Runs every system once, untimed, on the shortest prompt of the set: the first minutes of a JVM are spent
     * compiling the vector code (on 2 cores the JIT competes with the work), and a benchmark measures the steady state.
     */
    private void warmUp(StarAttentionModel model, AbstractModel stock, Path set) throws IOException {
        JsonNode ex = shortestPrompt(set);
        PromptSplit split = model.split(ex.get("context").asText(), ex.get("question").asText());
        System.err.printf("warming up on %s (%d context tokens)%n", ex.path("id").asText("?"), split.contextTokens().length);
        if (stock != null) {
            runStock(stock, split, split.contextTokens().length + split.queryTokens().length, 8);
        }
        for (Mode mode : List.of(Mode.GLOBAL, Mode.STAR)) {
            runOurs(model, mode, split, 8);
        }
    }

    private static JsonNode shortestPrompt(Path set) throws IOException {
        return readSet(set).stream().min(Comparator.comparingInt(n -> n.path("length").asInt()))
                .orElseThrow(() -> new IllegalArgumentException("no prompts in " + set));
    }

    private double[] runStock(AbstractModel stock, PromptSplit split, int promptTokens, int maxNewTokens) {
        String prompt = split.contextText() + split.queryText();
        long t0 = System.nanoTime();
        long[] first = {0};
        ProgressBar bar = new ProgressBar("stock prefill", System.err);
        bar.update(0, 1);
        var r = stock.generate(UUID.randomUUID(), PromptContext.of(prompt), 0f, promptTokens + maxNewTokens + 1, (s, f) -> {
            if (first[0] == 0) {
                first[0] = System.nanoTime();
            }
        });
        bar.update(1, 1);
        bar.done();
        double ttft = ((first[0] == 0 ? System.nanoTime() : first[0]) - t0) / 1e6;
        double tps = r.generateTimeMs > 0 ? r.generatedTokens * 1000.0 / r.generateTimeMs : 0;
        return new double[] {ttft, tps};
    }

    private double[] runOurs(StarAttentionModel model, Mode mode, PromptSplit split, int maxNewTokens) {
        try (LocalEngine engine = LocalEngine.create(model, common.engineOptions(mode));
             ContextSession session = engine.prefill(split.contextTokens(),
                     new ProgressBar(String.format("%-6s prefill", mode.name().toLowerCase()), System.err)::update)) {
            System.err.println();
            Generation g = session.generate(split.queryTokens(), GenerationOptions.greedy(maxNewTokens), (id, t) -> { });
            return new double[] {session.prefillMillis() + g.ttftMillis(), g.decodeTokensPerSecond()};
        }
    }

    private String[] row(int length, int tokens, String system, double[] run, double[] stock) {
        String ttftRatio = stock == null ? "-" : String.format("%.3f", run[0] / stock[0]);
        String tpsRatio = stock == null || stock[1] == 0 ? "-" : String.format("%.2f", run[1] / stock[1]);
        if (json) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("length", length);
            m.put("prompt_tokens", tokens);
            m.put("system", system);
            m.put("ttft_ms", Math.round(run[0]));
            m.put("decode_tokens_per_s", Math.round(run[1] * 10) / 10.0);
            m.put("ttft_ratio_to_stock", ttftRatio);
            m.put("decode_ratio_to_stock", tpsRatio);
            System.out.println(Json.write(m));
        }
        return new String[] {String.valueOf(length), String.valueOf(tokens), system, String.format("%.2f s", run[0] / 1000),
                ttftRatio, String.format("%.1f", run[1]), tpsRatio};
    }

    private static void printTable(List<String[]> rows) {
        System.out.printf("%n%-7s %-7s %-12s %-10s %-14s %-14s %s%n", "length", "tokens", "system", "ttft", "ttft/stock",
                "decode tok/s", "decode/stock");
        for (String[] r : rows) {
            System.out.printf("%-7s %-7s %-12s %-10s %-14s %-14s %s%n", (Object[]) r);
        }
    }

    /** The first example of {@code length} tokens in the set (by its {@code length} field). */
    static JsonNode prompt(Path set, int length) throws IOException {
        List<JsonNode> all = readSet(set);
        return all.stream().filter(n -> n.path("length").asInt() == length).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no prompt of length " + length + " in " + set
                        + " (lengths there: " + all.stream().map(n -> n.path("length").asInt()).distinct().toList() + ")"));
    }

    private static List<JsonNode> readSet(Path set) throws IOException {
        if (!Files.isRegularFile(set)) {
            throw new IllegalArgumentException("cannot read " + set);
        }
        ObjectMapper json = new ObjectMapper();
        List<JsonNode> out = new ArrayList<>();
        for (String line : Files.readAllLines(set)) {
            if (!line.isBlank()) {
                out.add(json.readTree(line));
            }
        }
        return out;
    }

    static String peakRss() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return line.substring(6).trim();
                }
            }
        } catch (IOException | RuntimeException e) {
            return "unknown";
        }
        return "unknown";
    }
}
