package io.github.starattention.jlama.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.github.starattention.attention.Device;
import io.github.starattention.cuda.CudaAttentionKernel;
import io.github.starattention.cuda.CudaProbe;
import io.github.starattention.cuda.KvDtype;
import io.github.starattention.jlama.ContextSession;
import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.Generation;
import io.github.starattention.jlama.GenerationOptions;
import io.github.starattention.jlama.LocalEngine;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.PrefillListener;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.TokenListener;
import io.github.starattention.jlama.cli.Json;
import io.github.starattention.jlama.cli.Logging;
import io.github.starattention.jlama.model.WeightFormat;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code bench-gpu}: the whole model on one GPU (BF16 weights, {@code CudaDecoder}) against PyTorch with Hugging Face
 * transformers (bf16, SDPA; {@code tools/gpu/torch_bench.py}) on the same checkpoint, in one invocation: prefill
 * tokens/s (global), time to first token (star, {@code --blocks} blocks on the one GPU, against PyTorch's prefill),
 * decode tokens/s (greedy; PyTorch generates with a static cache) and GPU memory against weights + KV. Ours runs first
 * and frees the GPU before PyTorch starts. Contexts are seeded random ids (each side draws its own) of the same
 * lengths; ours are followed by a 16-token query, PyTorch generates right after the context.
 */
@Command(name = "bench-gpu", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Whole model on the GPU vs PyTorch/transformers (bf16, SDPA) on the same checkpoint: prefill, "
                + "time to first token, decode, memory, with ratios.")
public final class GpuBenchCommand implements Callable<Integer> {

    /** Targets of the benchmark (issue 17): ratios ours / PyTorch, and memory over weights + KV. */
    static final double PREFILL_TARGET = 0.7;
    static final double STAR_TTFT_TARGET = 0.6;
    static final double DECODE_TARGET = 0.8;
    static final double MEMORY_TARGET = 1.2;

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Hugging Face llama folder with weights.")
    Path model;

    @Option(names = "--lengths", split = ",", defaultValue = "8192,32768,131072", paramLabel = "N,...",
            description = "Context lengths in tokens. Default: ${DEFAULT-VALUE}.")
    List<Integer> lengths;

    @Option(names = "--blocks", defaultValue = "4", paramLabel = "N", description = "Blocks of star mode. Default: ${DEFAULT-VALUE}.")
    int blocks;

    @Option(names = "--decode-tokens", defaultValue = "32", paramLabel = "N",
            description = "Generated tokens per decode measurement. Default: ${DEFAULT-VALUE}.")
    int decodeTokens;

    @Option(names = "--runs", defaultValue = "2", paramLabel = "N",
            description = "Timed runs per length and mode; the fastest counts. Default: ${DEFAULT-VALUE}.")
    int runs;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "Seed of the context ids. Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--python", defaultValue = "python3", paramLabel = "PATH",
            description = "Python with torch and transformers for the baseline, or 'none' to skip it. Default: ${DEFAULT-VALUE}.")
    String python;

    @Option(names = "--out", paramLabel = "DIR", description = "Write the report and the raw JSON lines of both sides here.")
    Path out;

    @Option(names = "--verbose", description = "Print stack traces and debug logs.")
    boolean verbose;

    /** Tokens of the query after the context. */
    static final int QUERY_TOKENS = 16;

    /** The context lengths measured: {@link #lengths} within the model's positions. */
    private List<Integer> contexts;

    /** Our measurement of one length and mode. */
    record Ours(String mode, int length, double prefillMs, double ttftMs, double decodeTps, int decoded,
                long memoryBytes, long weightBytes, long kvBytes) {
    }

    @Override
    public Integer call() {
        Logging.configure(verbose);
        if (blocks < 1 || decodeTokens < 2 || runs < 1 || lengths.stream().anyMatch(l -> l < 64)) {
            throw new IllegalArgumentException("--blocks must be >= 1, --decode-tokens >= 2, --runs >= 1 and every "
                    + "length >= 64");
        }
        CudaProbe.requireAvailable("bench-gpu", "a machine with an NVIDIA GPU of compute capability 8.0 or newer");
        List<Ours> ours = new ArrayList<>();
        List<String> raw = new ArrayList<>();
        try (CudaAttentionKernel meter = new CudaAttentionKernel(0, KvDtype.FP16)) {
            String gpu = meter.deviceName();
            long before = meter.deviceMemoryInUse();
            try (StarAttentionModel m = StarAttentionModel.load(model, WeightFormat.BF16, 0)) {
                int vocab = m.decoder().config().vocabularySize;
                // the context, the 16-token query and the generated tokens must fit the model's positions
                int room = m.maxPositions() - QUERY_TOKENS - decodeTokens;
                contexts = lengths.stream().map(l -> Math.min(l, room)).distinct().toList();
                if (!contexts.equals(lengths)) {
                    System.err.printf("contexts %s (the model has %,d positions)%n", contexts, m.maxPositions());
                }
                for (Mode mode : List.of(Mode.GLOBAL, Mode.STAR)) {
                    EngineOptions.Builder b = EngineOptions.builder().mode(mode).device(Device.CUDA);
                    if (mode == Mode.STAR) {
                        b.blocks(blocks);
                    }
                    try (LocalEngine engine = LocalEngine.create(m, b.build())) {
                        measure(engine, ids(Math.min(2048, lengths.getFirst()), vocab, seed), 1, null, meter, before);
                        for (int length : contexts) {
                            Ours o = measure(engine, ids(length, vocab, seed + length), runs, mode, meter, before);
                            ours.add(o);
                            String line = Json.write(row(o, gpu));
                            raw.add(line);
                            System.out.println(line);
                        }
                    }
                }
            }
        }
        List<JsonNode> torch = python.equals("none") ? List.of() : torch(raw);
        String report = report(ours, torch);
        System.out.print(report);
        if (out != null) {
            try {
                Files.createDirectories(out);
                Files.writeString(out.resolve("report.md"), report);
                Files.write(out.resolve("ours.jsonl"), raw);
                Files.write(out.resolve("torch.jsonl"), torch.stream().map(JsonNode::toString).toList());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return 0;
    }

    /** Fastest of {@code runs}: prefill of {@code context}, then {@code decodeTokens} greedy tokens after a query. */
    private Ours measure(LocalEngine engine, int[] context, int runs, Mode mode, CudaAttentionKernel meter, long before) {
        int[] query = ids(QUERY_TOKENS, engine.model().decoder().config().vocabularySize, seed - 1);
        double prefill = Double.MAX_VALUE;
        double ttft = Double.MAX_VALUE;
        double tps = 0;
        int decoded = 0;
        long memory = 0;
        long kv = 0;
        for (int r = 0; r < runs; r++) {
            System.err.printf("  %s %,d tokens, run %d/%d%n", engine.options().mode(), context.length, r + 1, runs);
            try (ContextSession s = engine.prefill(context, PrefillListener.NONE)) {
                Generation g = s.generate(query, GenerationOptions.greedy(decodeTokens), TokenListener.NONE);
                prefill = Math.min(prefill, s.prefillMillis());
                ttft = Math.min(ttft, s.prefillMillis() + g.ttftMillis());
                if (g.decodeTokensPerSecond() > tps) {
                    tps = g.decodeTokensPerSecond();
                    decoded = g.tokens().length;
                }
                kv = s.kvBytes();
                memory = Math.max(memory, meter.deviceMemoryInUse() - before);
            }
        }
        return new Ours(mode == null ? "warmup" : mode.name().toLowerCase(Locale.ROOT), context.length, prefill, ttft, tps,
                decoded, memory, engine.model().decoder().weightBytes(), kv);
    }

    private static Map<String, Object> row(Ours o, String gpu) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("impl", "ours");
        m.put("gpu", gpu);
        m.put("mode", o.mode());
        m.put("length", o.length());
        m.put("prefill_ms", round(o.prefillMs()));
        m.put("prefill_tokens_per_s", round(o.length() / (o.prefillMs() / 1000)));
        m.put("ttft_ms", round(o.ttftMs()));
        m.put("decode_tokens_per_s", round(o.decodeTps()));
        m.put("decode_tokens", o.decoded());
        m.put("gpu_memory_gib", round(o.memoryBytes() / GIB));
        m.put("weights_gib", round(o.weightBytes() / GIB));
        m.put("kv_gib", round(o.kvBytes() / GIB));
        return m;
    }

    private static final double GIB = 1L << 30;

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }

    /** Seeded random ids away from the special tokens at both ends of the vocabulary. */
    static int[] ids(int n, int vocab, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int lo = Math.min(1000, vocab / 4);
        int hi = Math.max(lo + 1, vocab - 1000);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = r.nextInt(lo, hi);
        }
        return ids;
    }

    /** Runs the PyTorch baseline on the same lengths and returns its JSON lines (its progress goes to stderr). */
    private List<JsonNode> torch(List<String> ours) {
        String home = System.getProperty("star.attention.home", System.getenv().getOrDefault("STAR_ATTENTION_HOME", "."));
        Path script = Path.of(home, "tools", "gpu", "torch_bench.py");
        String lens = contexts.stream().map(String::valueOf).collect(Collectors.joining(","));
        List<String> cmd = List.of(python, script.toString(), "--model", model.toString(), "--lengths", lens,
                "--decode-tokens", String.valueOf(decodeTokens), "--runs", String.valueOf(runs), "--seed",
                String.valueOf(seed), "--out", "/dev/null");
        System.err.println("PyTorch baseline: " + String.join(" ", cmd));
        List<JsonNode> rows = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        try {
            Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                    if (line.startsWith("{")) {
                        rows.add(json.readTree(line));
                        System.out.println(line);
                    }
                }
            }
            int rc = p.waitFor();
            if (rc != 0) {
                System.err.println("the PyTorch baseline exited with " + rc);
            }
        } catch (IOException e) {
            System.err.println("the PyTorch baseline did not run: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return rows;
    }

    /** The table of both sides with their ratios and the targets. */
    static String report(List<Ours> ours, List<JsonNode> torch) {
        StringBuilder sb = new StringBuilder();
        sb.append("\n| context | prefill tok/s ours global | PyTorch | ratio (>= ").append(PREFILL_TARGET)
                .append(") | TTFT ms ours global | ours star | PyTorch global | ratio star (<= ").append(STAR_TTFT_TARGET)
                .append(") | decode tok/s ours global | ours star | PyTorch | ratio (>= ").append(DECODE_TARGET)
                .append(") | GPU GiB ours | weights + KV | ratio (<= ").append(MEMORY_TARGET)
                .append(") | PyTorch peak GiB |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (Ours g : ours) {
            if (!g.mode().equals("global")) {
                continue;
            }
            Ours s = ours.stream().filter(o -> o.mode().equals("star") && o.length() == g.length()).findFirst()
                    .orElse(null);
            JsonNode t = torch.stream().filter(n -> n.path("length").asInt() == g.length() && !n.has("error"))
                    .findFirst().orElse(null);
            double gPrefill = g.length() / (g.prefillMs() / 1000);
            double tPrefill = t == null ? Double.NaN : t.path("prefill_tokens_per_s").asDouble();
            double tPrefillMs = t == null ? Double.NaN : t.path("prefill_ms").asDouble();
            double tDecode = t == null ? Double.NaN : t.path("decode_tokens_per_s").asDouble();
            double mem = g.memoryBytes() / GIB;
            double need = (g.weightBytes() + g.kvBytes()) / GIB;
            sb.append(String.format(Locale.ROOT, "| %,d | %,.0f | %,.0f | %.2f | %,.0f | %s | %,.0f | %s | %.1f | %s | %.1f"
                            + " | %.2f | %.2f | %.2f | %.2f | %s |%n",
                    g.length(), gPrefill, tPrefill, gPrefill / tPrefill, g.ttftMs(),
                    s == null ? "-" : String.format(Locale.ROOT, "%,.0f", s.ttftMs()), tPrefillMs,
                    s == null ? "-" : String.format(Locale.ROOT, "%.2f", s.ttftMs() / tPrefillMs),
                    g.decodeTps(), s == null ? "-" : String.format(Locale.ROOT, "%.1f", s.decodeTps()), tDecode,
                    g.decodeTps() / tDecode, mem, need, mem / need,
                    t == null ? "-" : String.format(Locale.ROOT, "%.2f", t.path("peak_gib").asDouble())));
        }
        return sb.toString();
    }
}
