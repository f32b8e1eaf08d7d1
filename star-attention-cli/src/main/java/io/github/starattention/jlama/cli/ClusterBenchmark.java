package io.github.starattention.jlama.cli;

import io.github.starattention.jlama.ContextSession;
import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.Generation;
import io.github.starattention.jlama.GenerationOptions;
import io.github.starattention.jlama.LocalEngine;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.PrefillListener;
import io.github.starattention.jlama.StarAttentionEngine;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.TokenListener;
import io.github.starattention.jlama.cluster.ClusterContextSession;
import io.github.starattention.jlama.cluster.ClusterEngine;
import io.github.starattention.jlama.cluster.ClusterOptions;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Distributed vs in-process Star Attention in one run: time to first token, decode speed and phase-2 traffic of
 * the in-process engine (global and star) and of {@code 1, 2, 4, ...} context-host JVMs spawned on this machine, all
 * with the same threads per JVM, on the same context and question. Ratios are taken within the run.
 *
 * <p>The query host is this JVM; it holds the last block (so {@code n} context hosts make a plan of {@code n + 1}
 * hosts) and its threads are the same as each host's. Every configuration is warmed up on a short context first,
 * then measured {@code runs} times; the table shows its fastest run (time to first token), so that a JIT compilation
 * or a noisy neighbour in one run does not decide a ratio.
 */
public final class ClusterBenchmark {

    /**
     * What to run.
     *
     * @param contextTokens tokens of the question's context (cut to this length)
     * @param query query tokens (phase-2 prompt)
     * @param hostCounts context-host JVM counts to try
     * @param threads threads of this JVM (already applied to the model) and of each host
     * @param star block plan of the star runs (block count or size, anchor size, device); distributed runs raise the
     *     block count to a multiple of {@code hosts + 1} ({@link ClusterEngine#balanced}), in-process global runs use
     *     one block
     * @param maxNewTokens tokens to generate (greedy); decoding speed is over these
     * @param warmupTokens context length of the warm-up run of each configuration
     * @param global also run the in-process engine in global mode
     * @param verify compare distributed answers with the in-process star answer of the same block plan
     * @param host what the spawned hosts serve (model, weights, device; threads are set to {@code threads})
     * @param runs measured runs of each configuration (at least 1); the fastest is reported
     * @param compareAnchorSharing also run each host count with every host encoding the anchor itself
     *     ({@link ClusterOptions#shareAnchor} off)
     */
    public record Config(int[] contextTokens, int[] query, List<Integer> hostCounts, int threads, EngineOptions star,
                         int maxNewTokens, int warmupTokens, boolean global, boolean verify, ClusterOptions.Host host,
                         int runs, boolean compareAnchorSharing) {
        public Config {
            if (runs < 1) {
                throw new IllegalArgumentException("runs must be at least 1, got " + runs);
            }
        }
    }

    /** One configuration's result. */
    public record Row(String name, int contextHosts, int blocks, double prefillMs, double ttftMs, double decodeTps,
                      int generated, double bytesPerToken, double bytesPerLayerPerToken, double wireBytesPerToken,
                      Boolean equalToInProcess) {
        Row withEqualToInProcess(Boolean equal) {
            return new Row(name, contextHosts, blocks, prefillMs, ttftMs, decodeTps, generated, bytesPerToken,
                    bytesPerLayerPerToken, wireBytesPerToken, equal);
        }
    }

    private final StarAttentionModel model;
    private final Config config;
    private final PrintStream out;
    private final Map<Integer, int[]> starAnswers = new HashMap<>();

    public ClusterBenchmark(StarAttentionModel model, Config config, PrintStream out) {
        this.model = model;
        this.config = config;
        this.out = out;
    }

    /** Runs every configuration, prints a table (and one JSON line per row) and returns the rows. */
    public List<Row> run() {
        List<Row> rows = new ArrayList<>();
        int[] ctx = config.contextTokens();
        out.printf(Locale.ROOT, "context %d tokens, query %d tokens, %d new tokens, %d threads per JVM, %d cores here%n",
                ctx.length, config.query().length, config.maxNewTokens(), config.threads(),
                Runtime.getRuntime().availableProcessors());
        EngineOptions star = config.star();
        out.printf(Locale.ROOT, "star: %s, anchor %s%n", star.blockSize() > 0 ? "blocks of " + star.blockSize() + " tokens"
                : "at least " + star.blocks() + " blocks", star.anchorSize() < 0 ? "= block" : star.anchorSize() + " tokens");
        try (LocalEngine e = LocalEngine.create(model, local(Mode.STAR))) {
            warmUp(e, star.blocks());
        }
        if (config.global()) {
            rows.add(measureLocal(Mode.GLOBAL));
        }
        rows.add(measureLocal(Mode.STAR));
        for (int n : config.hostCounts()) {
            rows.add(measureCluster(n, true));
            if (config.compareAnchorSharing()) {
                rows.add(measureCluster(n, false));
            }
        }
        printTable(rows);
        return rows;
    }

    /** The star options with {@code mode} and this run's threads (one block for global). */
    private EngineOptions local(Mode mode) {
        EngineOptions.Builder b = config.star().toBuilder().mode(mode).threads(config.threads());
        if (mode == Mode.GLOBAL) {
            b.blocks(1);
        }
        return b.build();
    }

    /** A short prefill and a few tokens; long enough that every one of {@code blocks} blocks holds a whole anchor. */
    private void warmUp(StarAttentionEngine e, int blocks) {
        int anchor = config.star().anchorSize();
        int n = Math.min(Math.max(config.warmupTokens(), anchor > 0 ? anchor * blocks : 0), config.contextTokens().length);
        try (ContextSession s = e.prefill(Arrays.copyOf(config.contextTokens(), n), PrefillListener.NONE)) {
            s.generate(config.query(), GenerationOptions.greedy(Math.min(8, config.maxNewTokens())), TokenListener.NONE);
        }
    }

    private Row measureLocal(Mode mode) {
        String name = "in-process " + mode.name().toLowerCase(Locale.ROOT);
        out.printf("running %s...%n", name);
        Row best = null;
        try (LocalEngine e = LocalEngine.create(model, local(mode))) {
            for (int run = 1; run <= config.runs(); run++) {
                try (ContextSession s = e.prefill(config.contextTokens(), PrefillListener.NONE)) {
                    Generation g = s.generate(config.query(), GenerationOptions.greedy(config.maxNewTokens()),
                            TokenListener.NONE);
                    if (mode == Mode.STAR) {
                        starAnswers.put(s.plan().blockCount(), g.tokens());
                    }
                    Row r = new Row(name, 0, s.plan().blockCount(), s.prefillMillis(), s.prefillMillis() + g.ttftMillis(),
                            g.decodeTokensPerSecond(), g.tokens().length, 0, 0, 0, null);
                    best = faster(best, r, run);
                }
            }
        }
        return best;
    }

    private Row measureCluster(int hosts, boolean shareAnchor) {
        String name = hosts + " host JVM" + (hosts == 1 ? "" : "s") + (shareAnchor ? "" : " (no anchor sharing)");
        out.printf("running %s x %d threads + query host...%n", name, config.threads());
        ClusterOptions.Host h = config.host();
        ClusterOptions.Host host = new ClusterOptions.Host(h.model(), config.threads(), h.weights(), h.device(),
                h.maxSessions());
        long t0 = System.nanoTime();
        EngineOptions options = ClusterEngine.balanced(local(Mode.STAR), hosts);
        Row best = null;
        boolean allEqual = true;
        try (ClusterEngine e = LocalCluster.engine(model, options, hosts, host, shareAnchor)) {
            out.printf(Locale.ROOT, "  %d host(s) up in %.1f s%n", hosts, (System.nanoTime() - t0) / 1e9);
            warmUp(e, options.blocks());
            for (int run = 1; run <= config.runs(); run++) {
                try (ClusterContextSession s = e.prefillSession(config.contextTokens(), PrefillListener.NONE)) {
                    out.printf(Locale.ROOT, "  phase 1: %.0f ms (this query host %.0f ms; context hosts %s)%n",
                            s.prefillMillis(), s.localPrefillMillis(), hostMillis(s.hostPrefillMillis()));
                    long[] w0 = e.wireBytes();
                    Generation g = s.generate(config.query(), GenerationOptions.greedy(config.maxNewTokens()),
                            TokenListener.NONE);
                    long[] w1 = e.wireBytes();
                    ClusterContextSession.Traffic t = s.lastTraffic();
                    double wire = t.tokens() == 0 ? 0 : (double) (w1[0] - w0[0] + w1[1] - w0[1]) / t.tokens();
                    if (config.verify()) {
                        allEqual &= Arrays.equals(inProcessStarAnswer(options, s.plan().blockCount()), g.tokens());
                    }
                    Row r = new Row(name, hosts, s.plan().blockCount(), s.prefillMillis(),
                            s.prefillMillis() + g.ttftMillis(), g.decodeTokensPerSecond(), g.tokens().length,
                            t.bytesPerToken(), t.bytesPerLayerPerToken(), wire, null);
                    best = faster(best, r, run);
                }
            }
        }
        return best.withEqualToInProcess(config.verify() ? allEqual : null);
    }

    /** The in-process star answer with {@code blocks} blocks (computed once per block count). */
    private int[] inProcessStarAnswer(EngineOptions options, int blocks) {
        return starAnswers.computeIfAbsent(blocks, b -> {
            out.printf("  computing the in-process star answer with %d blocks for comparison...%n", b);
            try (LocalEngine le = LocalEngine.create(model, options);
                 ContextSession ls = le.prefill(config.contextTokens(), PrefillListener.NONE)) {
                return ls.generate(config.query(), GenerationOptions.greedy(config.maxNewTokens()), TokenListener.NONE)
                        .tokens();
            }
        });
    }

    /** Prints run {@code run}'s time to first token and returns the faster of {@code best} and {@code r}. */
    private Row faster(Row best, Row r, int run) {
        out.printf(Locale.ROOT, "  run %d/%d: TTFT %.0f ms, decode %.1f tokens/s%n", run, config.runs(), r.ttftMs(),
                r.decodeTps());
        return best == null || r.ttftMs() < best.ttftMs() ? r : best;
    }

    private static String hostMillis(Map<String, Double> millis) {
        StringBuilder b = new StringBuilder();
        millis.forEach((host, ms) -> b.append(b.isEmpty() ? "" : ", ").append(host).append(' ')
                .append(Math.round(ms)).append(" ms"));
        return b.toString();
    }

    private void printTable(List<Row> rows) {
        Row global = rows.stream().filter(r -> r.name().equals("in-process global")).findFirst().orElse(null);
        Row star = rows.stream().filter(r -> r.name().equals("in-process star")).findFirst().orElse(null);
        out.println();
        out.println("| configuration | blocks | prefill ms | TTFT ms | TTFT / global | TTFT / star | decode tok/s "
                + "| decode / star | phase-2 B/token | B/layer/token | wire B/token | = in-process star |");
        out.println("|---|---|---|---|---|---|---|---|---|---|---|---|");
        for (Row r : rows) {
            out.printf(Locale.ROOT, "| %s | %d | %.0f | %.0f | %s | %s | %.1f | %s | %.0f | %.0f | %.0f | %s |%n",
                    r.name() + (r.contextHosts() > 0 ? " x " + config.threads() + " thr" : " (" + config.threads() + " thr)"),
                    r.blocks(), r.prefillMs(), r.ttftMs(), ratio(r.ttftMs(), global == null ? 0 : global.ttftMs()),
                    ratio(r.ttftMs(), star == null ? 0 : star.ttftMs()), r.decodeTps(),
                    ratio(r.decodeTps(), star == null ? 0 : star.decodeTps()), r.bytesPerToken(),
                    r.bytesPerLayerPerToken(), r.wireBytesPerToken(),
                    r.equalToInProcess() == null ? "-" : r.equalToInProcess() ? "yes" : "NO");
        }
        out.println();
        for (Row r : rows) {
            Map<String, Object> j = new LinkedHashMap<>();
            j.put("configuration", r.name());
            j.put("context_hosts", r.contextHosts());
            j.put("threads_per_jvm", config.threads());
            j.put("context_tokens", config.contextTokens().length);
            j.put("blocks", r.blocks());
            j.put("prefill_ms", Math.round(r.prefillMs()));
            j.put("ttft_ms", Math.round(r.ttftMs()));
            j.put("ttft_vs_global", global == null ? null : round3(r.ttftMs() / global.ttftMs()));
            j.put("ttft_vs_star", star == null ? null : round3(r.ttftMs() / star.ttftMs()));
            j.put("decode_tokens_per_s", round3(r.decodeTps()));
            j.put("generated_tokens", r.generated());
            j.put("bytes_per_token", Math.round(r.bytesPerToken()));
            j.put("bytes_per_layer_per_token", Math.round(r.bytesPerLayerPerToken()));
            j.put("wire_bytes_per_token", Math.round(r.wireBytesPerToken()));
            j.put("equal_to_in_process_star", r.equalToInProcess());
            out.println("JSON " + toJson(j));
        }
    }

    private static String ratio(double a, double b) {
        return b <= 0 ? "-" : String.format(Locale.ROOT, "%.2fx", a / b);
    }

    private static double round3(double v) {
        return Math.round(v * 1000) / 1000.0;
    }

    private static String toJson(Map<String, Object> m) {
        StringBuilder b = new StringBuilder("{");
        for (var e : m.entrySet()) {
            if (b.length() > 1) {
                b.append(", ");
            }
            b.append('"').append(e.getKey()).append("\": ");
            Object v = e.getValue();
            b.append(v instanceof String s ? "\"" + s + "\"" : String.valueOf(v));
        }
        return b.append('}').toString();
    }
}
