package io.github.starattention.jlama.bench;

import io.github.starattention.attention.Device;
import io.github.starattention.jlama.ContextSession;
import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.Generation;
import io.github.starattention.jlama.GenerationOptions;
import io.github.starattention.jlama.LocalEngine;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.PromptSplit;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.cli.Json;
import io.github.starattention.jlama.cli.Logging;
import io.github.starattention.jlama.cli.ProgressBar;
import io.github.starattention.jlama.model.WeightFormat;
import io.github.starattention.kv.KvPrecision;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code bench-llamacpp}: llama.cpp (node-llama-cpp's prebuilt CPU binaries, {@code tools/llamacpp}) against our
 * global and star modes on the same prompt token ids, the same thread count and equivalent weights (F32 against a GGUF
 * in F32, our Q8 against Q8_0), printing time to first token, decode tokens/s, their ratios (ours / llama.cpp) and
 * whether our greedy tokens equal llama.cpp's.
 *
 * <p>Both sides are warmed up on the same short prompt first (llama.cpp loads the model once; our JIT compiles the
 * vector code), both decode greedily and stop at {@code --new-tokens} or an end-of-sequence token. Time to first token
 * counts the whole prompt's prefill and the first sample; decode tokens/s counts the tokens after the first.
 */
@Command(name = "bench-llamacpp", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Time to first token and decode speed: llama.cpp (node-llama-cpp) vs Star Attention (global, star), "
                + "same token ids, same threads, equivalent weights.")
public final class LlamaCppBenchCommand implements Callable<Integer> {

    @Option(names = "--model", paramLabel = "DIR", description = "Hugging Face llama folder with weights.")
    Path model;

    @Option(names = "--shape", paramLabel = "DIR",
            description = "Folder with config.json and tokenizer files but no weights: benchmark a seeded random-weight "
                    + "checkpoint of that shape (written to a temporary folder, deleted at the end).")
    Path shape;

    @Option(names = "--seed", defaultValue = "1234", paramLabel = "S",
            description = "Seed of the --shape weights and of the filler text. Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--lengths", split = ",", defaultValue = "4096", paramLabel = "N,...",
            description = "Prompt lengths in tokens (context + question, chat template included). Default: ${DEFAULT-VALUE}.")
    List<Integer> lengths;

    @Option(names = "--threads", paramLabel = "N", description = "Threads of both engines (default: all cores).")
    Integer threads;

    @Option(names = "--weights", split = ",", defaultValue = "F32,Q8", paramLabel = "F32|Q8,...",
            description = "Weights: F32 (ours F32, llama.cpp F32) and/or Q8 (ours Q8, llama.cpp Q8_0). Default: ${DEFAULT-VALUE}.")
    List<String> weights;

    @Option(names = "--new-tokens", defaultValue = "32", paramLabel = "N", description = "Output tokens. Default: ${DEFAULT-VALUE}.")
    int newTokens;

    @Option(names = "--blocks", defaultValue = "4", paramLabel = "N", description = "Context blocks of star mode. Default: ${DEFAULT-VALUE}.")
    int blocks;

    @Option(names = "--kv", defaultValue = "f32", paramLabel = "f32|bf16",
            description = "K and V cache of both engines: f32 or bf16 (llama.cpp's own default is f16). Default: ${DEFAULT-VALUE}.")
    String kv;

    @Option(names = "--llamacpp-kv", paramLabel = "f32|bf16|f16",
            description = "llama.cpp's K and V cache when it should differ from --kv: f16 is llama.cpp's own default "
                    + "(its f32 attention is much slower at long contexts). Default: as --kv.")
    String llamaKv;

    @Option(names = "--node", defaultValue = "node", paramLabel = "PATH",
            description = "Node.js executable (a path, or a name on PATH). Default: ${DEFAULT-VALUE}.")
    String node;

    @Option(names = "--runs", defaultValue = "1", paramLabel = "N",
            description = "Timed runs per prompt and engine; the fastest counts (least time to first token, most "
                    + "decode tokens/s). Default: ${DEFAULT-VALUE}.")
    int runs;

    @Option(names = "--json", description = "Also print one JSON line per row.")
    boolean json;

    @Option(names = "--out", paramLabel = "FILE",
            description = "Write the report and the raw measurements (one JSON line per run, with generated ids) to FILE.")
    Path out;

    @Option(names = "--verbose", description = "Print stack traces and debug logs.")
    boolean verbose;

    /** The weight settings, each with our format's name and llama.cpp's GGUF type. */
    enum Weights {
        F32("F32", GgufWriter.Type.F32), Q8("Q8", GgufWriter.Type.Q8_0);

        final String ours;
        final GgufWriter.Type gguf;

        Weights(String ours, GgufWriter.Type gguf) {
            this.ours = ours;
            this.gguf = gguf;
        }

        static Weights parse(String s) {
            return switch (s.strip().toUpperCase(Locale.ROOT)) {
                case "F32" -> F32;
                case "Q8", "Q8_0" -> Q8;
                default -> throw new IllegalArgumentException("--weights takes F32 and/or Q8, got '" + s + "'");
            };
        }

        /** Our {@link WeightFormat} of this name, or {@code null} where this build has none. */
        WeightFormat oursFormat() {
            try {
                return WeightFormat.valueOf(ours);
            } catch (IllegalArgumentException e) {
                return null;
            }
        }
    }

    /** One measurement: the fastest of the runs and the first run's tokens. */
    record Measure(double ttftMillis, double decodeTokensPerSecond, int[] tokens) {
        static Measure best(List<Measure> runs) {
            double ttft = runs.stream().mapToDouble(Measure::ttftMillis).min().orElseThrow();
            double tps = runs.stream().mapToDouble(Measure::decodeTokensPerSecond).max().orElseThrow();
            return new Measure(ttft, tps, runs.getFirst().tokens());
        }
    }

    /** llama.cpp's side of one weight setting: its measurements and its margins where ours-global differs. */
    record LlamaSide(Map<Integer, Measure> measures, Map<Integer, LlamaCppRunner.Check> checks) {
        static final LlamaSide NONE = new LlamaSide(Map.of(), Map.of());
    }

    /** Below this margin between two candidate tokens, fp32 rounding decides which one greedy decoding picks. */
    static final double NEAR_TIE_NATS = 0.01;

    private final StringBuilder report = new StringBuilder();
    private final List<String> raw = new ArrayList<>();

    @Override
    public Integer call() throws IOException {
        Logging.configure(verbose);
        List<Weights> formats = weights.stream().map(Weights::parse).distinct().toList();
        int threadCount = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        checkOptions(threadCount);
        Path source = model != null ? model : shape;
        LlamaConfig config = LlamaConfig.read(source);
        List<Integer> sorted = lengths.stream().distinct().sorted().toList();
        for (int length : sorted) {
            if (length + newTokens > config.maxPositions()) {
                throw new IllegalArgumentException("--lengths " + length + " with --new-tokens " + newTokens
                        + " exceeds the model's " + config.maxPositions() + " positions (max_position_embeddings)");
            }
        }
        LlamaCppRunner runner = LlamaCppRunner.find(node, null, this::line);
        if (runner == null && node.contains(java.io.File.separator) && LlamaCppRunner.resolve(node) == null) {
            throw new IllegalArgumentException("--node " + node + " is not an executable file");
        }
        Path work = Files.createTempDirectory("bench-llamacpp-");
        Thread cleanup = new Thread(() -> deleteTree(work)); // also on Ctrl-C
        Runtime.getRuntime().addShutdownHook(cleanup);
        List<Map<String, Object>> rows = new ArrayList<>();
        try {
            Path dir = model;
            if (dir == null) {
                System.err.printf("writing a random-weight checkpoint of %s (seed %d, F32)...%n", shape, seed);
                dir = RandomCheckpoint.write(shape, work.resolve("checkpoint"), seed, RandomCheckpoint.DType.F32, Map.of());
            }
            line(String.format(Locale.ROOT, "model %s%s, %d layers; threads %d; KV cache ours %s, llama.cpp %s; %d new tokens; "
                            + "star blocks %d; fastest of %d run(s); llama.cpp %s", source, model == null
                            ? " (random weights, seed " + seed + ")" : "", config.layers(), threadCount,
                    kv.toLowerCase(Locale.ROOT), llamaKv().toLowerCase(Locale.ROOT), newTokens, blocks, runs,
                    runner == null ? "not run" : "via " + runner.node() + " " + LlamaCppRunner.TOOL.resolve("run.mjs")));
            List<PromptSplit> prompts = null;
            PromptSplit warmup = null;
            for (Weights w : formats) {
                WeightFormat oursFormat = w.oursFormat();
                StarAttentionModel ours = null;
                if (oursFormat == null) {
                    line("ours " + w.ours + " skipped: this build's WeightFormat has no " + w.ours + " (it has "
                            + Arrays.toString(WeightFormat.values()) + ")");
                } else {
                    ours = StarAttentionModel.load(dir, oursFormat, threadCount);
                }
                try {
                    if (prompts == null) {
                        try (StarAttentionModel forPrompts = ours != null ? null
                                : StarAttentionModel.load(dir, WeightFormat.F32, threadCount)) {
                            BenchPrompt maker = new BenchPrompt(ours != null ? ours : forPrompts, seed);
                            prompts = new ArrayList<>();
                            for (int length : sorted) {
                                prompts.add(maker.ofLength(length));
                            }
                            warmup = maker.ofLength(Math.min(512, sorted.getFirst()));
                        }
                    }
                    Map<Integer, Map<Mode, Measure>> oursRuns = ours == null ? Map.of()
                            : runOurs(ours, w, prompts, warmup, threadCount);
                    List<int[]> compare = new ArrayList<>();
                    for (int i = 0; i < prompts.size() && oursRuns.containsKey(i); i++) {
                        compare.add(oursRuns.get(i).get(Mode.GLOBAL).tokens());
                    }
                    LlamaSide llama = runner == null ? LlamaSide.NONE : runLlama(runner, dir, work, w, prompts,
                            warmup, threadCount, compare);
                    for (int i = 0; i < prompts.size(); i++) {
                        int tokens = BenchPrompt.ids(prompts.get(i)).length;
                        Measure l = llama.measures().get(i);
                        if (l != null) {
                            rows.add(row(sorted.get(i), tokens, w, "llama.cpp", l, null, null));
                        }
                        for (Mode mode : List.of(Mode.GLOBAL, Mode.STAR)) {
                            Measure o = oursRuns.getOrDefault(i, Map.of()).get(mode);
                            if (o != null) {
                                rows.add(row(sorted.get(i), tokens, w, "ours-" + mode.name().toLowerCase(Locale.ROOT), o, l,
                                        mode == Mode.GLOBAL ? llama.checks().get(i) : null));
                            }
                        }
                    }
                } finally {
                    if (ours != null) {
                        ours.close();
                    }
                }
            }
            printTable(rows);
        } finally {
            deleteTree(work);
            try {
                Runtime.getRuntime().removeShutdownHook(cleanup);
            } catch (IllegalStateException e) {
                // the JVM is shutting down: the hook deletes (nothing left)
            }
            if (out != null) {
                writeOut(rows);
            }
        }
        return 0;
    }

    /** llama.cpp's K and V cache type. */
    private String llamaKv() {
        return llamaKv != null ? llamaKv : kv;
    }

    private void checkOptions(int threadCount) {
        if ((model == null) == (shape == null)) {
            throw new IllegalArgumentException("give either --model DIR or --shape DIR");
        }
        Path dir = model != null ? model : shape;
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException((model != null ? "model" : "shape") + " folder " + dir
                    + " does not exist or is not a directory");
        }
        if (threadCount < 1) {
            throw new IllegalArgumentException("--threads must be at least 1, got " + threadCount);
        }
        if (newTokens < 1 || blocks < 1 || runs < 1) {
            throw new IllegalArgumentException("--new-tokens, --blocks and --runs must be at least 1");
        }
        for (int length : lengths) {
            if (length < 2 * blocks) {
                throw new IllegalArgumentException("--lengths must be at least twice --blocks, got " + length);
            }
        }
        if (!kv.equalsIgnoreCase("f32") && !kv.equalsIgnoreCase("bf16")) {
            throw new IllegalArgumentException("--kv must be f32 or bf16, got '" + kv + "'");
        }
        if (llamaKv != null && !List.of("f32", "bf16", "f16").contains(llamaKv.toLowerCase(Locale.ROOT))) {
            throw new IllegalArgumentException("--llamacpp-kv must be f32, bf16 or f16, got '" + llamaKv + "'");
        }
        if (weights.isEmpty()) {
            throw new IllegalArgumentException("--weights needs F32 and/or Q8");
        }
    }

    private LlamaSide runLlama(LlamaCppRunner runner, Path dir, Path work, Weights w, List<PromptSplit> prompts,
                               PromptSplit warmup, int threadCount, List<int[]> compare) {
        Path gguf = work.resolve("model-" + w.gguf.name().toLowerCase(Locale.ROOT) + ".gguf");
        try {
            long t0 = System.nanoTime();
            GgufWriter.convert(dir, gguf, w.gguf);
            System.err.printf("wrote %s (%.0f MB) in %.1f s; running llama.cpp %s...%n", gguf.getFileName(),
                    Files.size(gguf) / 1e6, (System.nanoTime() - t0) / 1e9, w.gguf);
            LlamaCppRunner.Result r = runner.run(gguf, prompts.stream().map(BenchPrompt::ids).toList(),
                    BenchPrompt.ids(warmup), newTokens, threadCount, runs, llamaKv().toUpperCase(Locale.ROOT), compare,
                    l -> System.err.println("llama.cpp: " + brief(l)));
            if (r.warmupJson() != null) {
                raw.add(r.warmupJson());
            }
            Map<Integer, List<Measure>> byPrompt = new LinkedHashMap<>();
            for (LlamaCppRunner.Run run : r.runs()) {
                raw.add(run.json());
                byPrompt.computeIfAbsent(run.prompt(), k -> new ArrayList<>())
                        .add(new Measure(run.ttftMillis(), run.decodeTokensPerSecond(), run.generated()));
            }
            Map<Integer, Measure> best = new LinkedHashMap<>();
            byPrompt.forEach((k, v) -> best.put(k, Measure.best(v)));
            Map<Integer, LlamaCppRunner.Check> checks = new LinkedHashMap<>();
            for (LlamaCppRunner.Check c : r.checks()) {
                raw.add(c.json());
                checks.put(c.prompt(), c);
            }
            return new LlamaSide(best, checks);
        } catch (IllegalStateException | UncheckedIOException | IOException e) {
            line("llama.cpp " + w.gguf + " failed: " + e.getMessage());
            return LlamaSide.NONE;
        } finally {
            try {
                Files.deleteIfExists(gguf);
            } catch (IOException e) {
                System.err.println("cannot delete " + gguf + ": " + e);
            }
        }
    }

    private static String brief(String jsonLine) {
        int ids = jsonLine.indexOf(",\"generated_ids\"");
        return ids < 0 ? jsonLine : jsonLine.substring(0, ids) + "}";
    }

    private Map<Integer, Map<Mode, Measure>> runOurs(StarAttentionModel ours, Weights w, List<PromptSplit> prompts,
                                                     PromptSplit warmup, int threadCount) {
        System.err.printf("warming up ours (%s) on %d tokens...%n", w.ours, BenchPrompt.ids(warmup).length);
        for (Mode mode : List.of(Mode.GLOBAL, Mode.STAR)) {
            runOnce(ours, mode, warmup, Math.min(8, newTokens), threadCount, null);
        }
        Map<Integer, Map<Mode, Measure>> all = new LinkedHashMap<>();
        for (int i = 0; i < prompts.size(); i++) {
            for (Mode mode : List.of(Mode.GLOBAL, Mode.STAR)) {
                List<Measure> ms = new ArrayList<>();
                for (int r = 0; r < runs; r++) {
                    Measure m = runOnce(ours, mode, prompts.get(i), newTokens, threadCount, "ours-"
                            + mode.name().toLowerCase(Locale.ROOT) + " " + w.ours);
                    Map<String, Object> j = new LinkedHashMap<>();
                    j.put("engine", "ours-" + mode.name().toLowerCase(Locale.ROOT));
                    j.put("weights", w.ours);
                    j.put("prompt", i);
                    j.put("run", r);
                    j.put("prompt_tokens", BenchPrompt.ids(prompts.get(i)).length);
                    j.put("threads", threadCount);
                    j.put("ttft_ms", Math.round(m.ttftMillis() * 10) / 10.0);
                    j.put("decode_tokens_per_s", Math.round(m.decodeTokensPerSecond() * 10) / 10.0);
                    j.put("generated_ids", m.tokens());
                    raw.add(Json.write(j));
                    System.err.println("ours: " + brief(Json.write(j)));
                    ms.add(m);
                }
                all.computeIfAbsent(i, k -> new LinkedHashMap<>()).put(mode, Measure.best(ms));
            }
        }
        return all;
    }

    private Measure runOnce(StarAttentionModel ours, Mode mode, PromptSplit prompt, int maxNew, int threadCount, String label) {
        EngineOptions.Builder b = EngineOptions.builder().mode(mode).device(Device.CPU).threads(threadCount)
                .kvPrecision(kv.equalsIgnoreCase("bf16") ? KvPrecision.BF16 : KvPrecision.F32);
        if (mode == Mode.STAR) {
            b.blocks(blocks);
        }
        EngineOptions options = b.build();
        ProgressBar bar = label == null ? ProgressBar.silent() : new ProgressBar(label + " prefill", System.err);
        try (LocalEngine engine = LocalEngine.create(ours, options);
             ContextSession session = engine.prefill(prompt.contextTokens(), bar::update)) {
            bar.done();
            Generation g = session.generate(prompt.queryTokens(), GenerationOptions.greedy(maxNew), (id, t) -> { });
            return new Measure(session.prefillMillis() + g.ttftMillis(), g.decodeTokensPerSecond(), g.tokens());
        }
    }

    /** How many leading tokens two greedy outputs share, out of the longer one's length. */
    static String agreement(int[] ours, int[] theirs) {
        int n = 0;
        while (n < ours.length && n < theirs.length && ours[n] == theirs[n]) {
            n++;
        }
        return n + "/" + Math.max(ours.length, theirs.length);
    }

    private Map<String, Object> row(int length, int tokens, Weights w, String engine, Measure m, Measure llama,
                                    LlamaCppRunner.Check check) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("length", length);
        r.put("prompt_tokens", tokens);
        r.put("weights", engine.equals("llama.cpp") ? w.gguf.name() : w.ours);
        r.put("engine", engine);
        r.put("ttft_s", Math.round(m.ttftMillis()) / 1000.0);
        r.put("decode_tokens_per_s", Math.round(m.decodeTokensPerSecond() * 10) / 10.0);
        if (llama != null) {
            r.put("ttft_ratio", Math.round(m.ttftMillis() / llama.ttftMillis() * 1000) / 1000.0);
            r.put("decode_ratio", llama.decodeTokensPerSecond() > 0
                    ? Math.round(m.decodeTokensPerSecond() / llama.decodeTokensPerSecond() * 100) / 100.0 : null);
            r.put("greedy_equal_to_llamacpp", agreement(m.tokens(), llama.tokens()));
            if (check != null && !Double.isNaN(check.marginNats())) {
                r.put("llamacpp_margin_at_difference_nats", Math.round(check.marginNats() * 1e5) / 1e5);
                r.put("llamacpp_batch_reevaluation_picks", check.batchPicksOther() ? "ours" : "llama.cpp's");
            }
        }
        return r;
    }

    private void printTable(List<Map<String, Object>> rows) {
        line("");
        line(String.format(Locale.ROOT, "%-7s %-7s %-8s %-12s %-9s %-13s %-13s %-14s %s", "length", "tokens", "weights",
                "engine", "ttft s", "decode tok/s", "ttft ratio", "decode ratio", "greedy = llama.cpp"));
        for (Map<String, Object> r : rows) {
            line(String.format(Locale.ROOT, "%-7s %-7s %-8s %-12s %-9.2f %-13.1f %-13s %-14s %s", r.get("length"),
                    r.get("prompt_tokens"), r.get("weights"), r.get("engine"), (Double) r.get("ttft_s"),
                    (Double) r.get("decode_tokens_per_s"), dash(r.get("ttft_ratio")), dash(r.get("decode_ratio")),
                    dash(r.get("greedy_equal_to_llamacpp")) + marginNote(r)));
        }
        line("ratios are ours / llama.cpp (time to first token: below 1 is faster; decode tokens/s: above 1 is faster); "
                + "greedy = llama.cpp: leading output tokens equal to llama.cpp's; where they differ, llama.cpp's "
                + "margin between the two tokens (re-evaluated untimed; below " + NEAR_TIE_NATS + " nats rounding decides)");
        if (json) {
            for (Map<String, Object> r : rows) {
                line(Json.write(r));
            }
        }
    }

    /** How close llama.cpp's two candidates were at the first difference from ours-global. */
    private static String marginNote(Map<String, Object> r) {
        Object m = r.get("llamacpp_margin_at_difference_nats");
        if (m == null) {
            return "";
        }
        double margin = Math.abs((Double) m);
        return String.format(Locale.ROOT, " (%sllama.cpp's log-probabilities of the two tokens differ by %.4f nats; "
                        + "re-evaluating that prefix in one batch it picks %s token)", margin < NEAR_TIE_NATS ? "near-tie: " : "",
                margin, "ours".equals(r.get("llamacpp_batch_reevaluation_picks")) ? "our" : "its own");
    }

    private static String dash(Object o) {
        return o == null ? "-" : o.toString();
    }

    private void line(String s) {
        System.out.println(s);
        report.append(s).append('\n');
    }

    private void writeOut(List<Map<String, Object>> rows) throws IOException {
        StringBuilder b = new StringBuilder(report);
        b.append("\n# rows (JSON)\n");
        for (Map<String, Object> r : rows) {
            b.append(Json.write(r)).append('\n');
        }
        b.append("\n# raw runs (JSON, llama.cpp from tools/llamacpp/run.mjs, ours from this command)\n");
        for (String r : raw) {
            b.append(r).append('\n');
        }
        if (out.getParent() != null) {
            Files.createDirectories(out.getParent());
        }
        Files.writeString(out, b.toString());
    }

    private static void deleteTree(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            System.err.println("cannot delete " + dir + ": " + e);
        }
    }
}
