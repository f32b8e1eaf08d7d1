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
import io.github.starattention.jlama.model.PassingPolicy;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Distributed vs in-process Star Attention in one run: time to first token, decode speed and phase-2 traffic of
 * the in-process engine (global and star) and of {@code 1, 2, 4, ...} context-host JVMs spawned on this machine, all
 * with the same threads per JVM, on the same context and question. Ratios are taken within the run.
 *
 * <p>The query host is this JVM; it holds the last block (so {@code n} context hosts make a plan of {@code n + 1}
 * hosts) and its threads are the same as each host's. Every configuration is warmed up on a short context first,
 * then measured {@code runs} times; the table shows its fastest run (time to first token), so that a JIT compilation
 * or a noisy neighbour in one run does not decide a ratio.
 *
 * <p>With a {@link Config#passing() passing policy}, in-process star and each host count with the anchor shared are
 * also run with passing blocks, on the same hosts (a second query host in this JVM joins them), the two alternating
 * run by run, and the phase-1 prefill of passing over plain star is reported per configuration
 * ({@link #passingRatios}; the target is at most {@link #PASSING_PREFILL_TARGET}).
 */
public final class ClusterBenchmark {

    /** Label of the runs without passing blocks (the paper's phase 1), in the table and the JSON lines. */
    public static final String PLAIN = "off";

    /** Target of passing blocks' phase-1 prefill over plain star's (the README's). */
    public static final double PASSING_PREFILL_TARGET = 1.3;

    /** Node name of the second query host, which runs the passing engine on the same context hosts. */
    private static final String PASSING_QUERY_HOST = "query-host-passing";

    /**
     * What to run.
     *
     * @param contextTokens tokens of the question's context (cut to this length)
     * @param query query tokens (phase-2 prompt)
     * @param hostCounts context-host JVM counts to try
     * @param threads threads of this JVM (already applied to the model) and of each host
     * @param star block plan of the star runs (block count or size, anchor size, device; no passing blocks);
     *     distributed runs raise the block count to a multiple of {@code hosts + 1} ({@link ClusterEngine#balanced}),
     *     in-process global runs use one block
     * @param maxNewTokens tokens to generate (greedy); decoding speed is over these
     * @param warmupTokens context length of the warm-up run of each configuration
     * @param global also run the in-process engine in global mode
     * @param verify compare distributed answers with the in-process answer of the same block plan and passing policy
     * @param host what the spawned hosts serve (model, weights, device; threads are set to {@code threads})
     * @param runs measured runs of each configuration (at least 1); the fastest is reported
     * @param compareAnchorSharing also run each host count with every host encoding the anchor itself
     *     ({@link ClusterOptions#shareAnchor} off)
     * @param passing passing blocks to compare with plain star ({@link PassingPolicy#OFF}: none)
     */
    public record Config(int[] contextTokens, int[] query, List<Integer> hostCounts, int threads, EngineOptions star,
                         int maxNewTokens, int warmupTokens, boolean global, boolean verify, ClusterOptions.Host host,
                         int runs, boolean compareAnchorSharing, PassingPolicy passing) {
        public Config {
            if (runs < 1) {
                throw new IllegalArgumentException("runs must be at least 1, got " + runs);
            }
            Objects.requireNonNull(passing, "passing");
            if (star.passing().enabled()) {
                throw new IllegalArgumentException("star is plain star; give the passing blocks to compare as passing");
            }
        }
    }

    /**
     * One measured run of a configuration, or its fastest.
     *
     * @param name the configuration ({@code in-process star}, {@code 2 host JVMs}, ...), the same with and without
     *     passing blocks
     * @param passing the passing blocks: {@link #PLAIN} or {@code N:window|spread}
     * @param run which measured run (from 1)
     */
    public record Row(String name, String passing, int run, int contextHosts, int blocks, double prefillMs,
                      double ttftMs, double decodeTps, int generated, double bytesPerToken, double bytesPerLayerPerToken,
                      double wireBytesPerToken, Boolean equalToInProcess) {
        Row withEqualToInProcess(Boolean equal) {
            return new Row(name, passing, run, contextHosts, blocks, prefillMs, ttftMs, decodeTps, generated,
                    bytesPerToken, bytesPerLayerPerToken, wireBytesPerToken, equal);
        }

        boolean plain() {
            return passing.equals(PLAIN);
        }
    }

    /**
     * Passing blocks against plain star in one configuration.
     *
     * @param name the configuration
     * @param passing the passing blocks ({@code N:window|spread})
     * @param plainMs the fastest plain star phase-1 prefill
     * @param passingMs the fastest passing phase-1 prefill
     * @param minRunRatio the least of passing over plain prefill in the same run
     * @param maxRunRatio the largest of them
     */
    public record PassingRatio(String name, int contextHosts, String passing, double plainMs, double passingMs,
                               double minRunRatio, double maxRunRatio) {
        /** Fastest passing prefill over fastest plain prefill. */
        public double ratio() {
            return passingMs / plainMs;
        }
    }

    /** An engine measured in turn with the others of its configuration. */
    private record Contender(String name, int contextHosts, StarAttentionEngine engine) {
        String passing() {
            return label(engine.options().passing());
        }
    }

    private final StarAttentionModel model;
    private final Config config;
    private final PrintStream out;
    /** In-process answers by passing label and block count, for the distributed runs to compare with. */
    private final Map<String, int[]> inProcessAnswers = new HashMap<>();
    /** Every measured run, in the order run. */
    private final List<Row> measured = new ArrayList<>();

    public ClusterBenchmark(StarAttentionModel model, Config config, PrintStream out) {
        this.model = model;
        this.config = config;
        this.out = out;
    }

    /** {@code N:window|spread}, or {@link #PLAIN} when nothing is passed. */
    static String label(PassingPolicy p) {
        return p.enabled() ? p.tokensPerBlock() + ":" + p.selection().label() : PLAIN;
    }

    /**
     * Runs every configuration, prints a table (and one JSON line per row, then one per measured run) and returns the
     * rows (the fastest run of each configuration).
     */
    public List<Row> run() {
        List<Row> rows = new ArrayList<>();
        int[] ctx = config.contextTokens();
        out.printf(Locale.ROOT, "context %d tokens, query %d tokens, %d new tokens, %d threads per JVM, %d cores here%n",
                ctx.length, config.query().length, config.maxNewTokens(), config.threads(),
                Runtime.getRuntime().availableProcessors());
        EngineOptions star = config.star();
        out.printf(Locale.ROOT, "star: %s, anchor %s%s%n", star.blockSize() > 0 ? "blocks of " + star.blockSize() + " tokens"
                : "at least " + star.blocks() + " blocks", star.anchorSize() < 0 ? "= block" : star.anchorSize() + " tokens",
                config.passing().enabled() ? "; also with passing blocks " + label(config.passing()) : "");
        try (LocalEngine e = LocalEngine.create(model, local(Mode.STAR))) {
            warmUp(e, star.blocks());
        }
        if (config.passing().enabled()) {
            try (LocalEngine e = LocalEngine.create(model, withPassing(local(Mode.STAR)))) {
                warmUp(e, star.blocks());
            }
        }
        if (config.global()) {
            rows.addAll(measureLocal(Mode.GLOBAL));
        }
        rows.addAll(measureLocal(Mode.STAR));
        for (int n : config.hostCounts()) {
            rows.addAll(measureCluster(n, true));
            if (config.compareAnchorSharing()) {
                rows.addAll(measureCluster(n, false));
            }
        }
        List<PassingRatio> ratios = passingRatios(measured);
        printTable(rows);
        printPassingRatios(ratios, out);
        printJson(rows, measured, ratios);
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

    private EngineOptions withPassing(EngineOptions options) {
        return options.toBuilder().passing(config.passing()).build();
    }

    /** A short prefill and a few tokens; long enough that every one of {@code blocks} blocks holds a whole anchor. */
    private void warmUp(StarAttentionEngine e, int blocks) {
        int anchor = config.star().anchorSize();
        int n = Math.min(Math.max(config.warmupTokens(), anchor > 0 ? anchor * blocks : 0), config.contextTokens().length);
        try (ContextSession s = e.prefill(Arrays.copyOf(config.contextTokens(), n), PrefillListener.NONE)) {
            s.generate(config.query(), GenerationOptions.greedy(Math.min(8, config.maxNewTokens())), TokenListener.NONE);
        }
    }

    /** In-process global, or in-process star (and star with passing blocks, alternately). */
    private List<Row> measureLocal(Mode mode) {
        String name = "in-process " + mode.name().toLowerCase(Locale.ROOT);
        out.printf("running %s...%n", name);
        boolean passing = mode == Mode.STAR && config.passing().enabled();
        try (LocalEngine plain = LocalEngine.create(model, local(mode));
             LocalEngine withPassing = passing ? LocalEngine.create(model, withPassing(local(mode))) : null) {
            List<Contender> cs = new ArrayList<>(List.of(new Contender(name, 0, plain)));
            if (withPassing != null) {
                cs.add(new Contender(name, 0, withPassing));
            }
            return measureAlternately(cs);
        }
    }

    /**
     * {@code hosts} context-host JVMs, started once for this configuration; with passing blocks (anchor shared), a
     * second query host joins the same hosts with them and the two alternate.
     */
    private List<Row> measureCluster(int hosts, boolean shareAnchor) {
        String name = hosts + " host JVM" + (hosts == 1 ? "" : "s") + (shareAnchor ? "" : " (no anchor sharing)");
        out.printf("running %s x %d threads + query host...%n", name, config.threads());
        ClusterOptions.Host h = config.host();
        ClusterOptions.Host host = new ClusterOptions.Host(h.model(), config.threads(), h.weights(), h.device(),
                h.maxSessions());
        long t0 = System.nanoTime();
        EngineOptions options = ClusterEngine.balanced(local(Mode.STAR), hosts);
        boolean passing = shareAnchor && config.passing().enabled();
        try (LocalCluster local = LocalCluster.startServing(hosts, host);
             ClusterEngine plain = local.join(model, options, local.queryHostOptions().withShareAnchor(shareAnchor),
                     hosts);
             ClusterEngine withPassing = passing ? local.join(model, withPassing(options),
                     local.extraNodeOptions(PASSING_QUERY_HOST).withShareAnchor(shareAnchor), hosts) : null) {
            out.printf(Locale.ROOT, "  %d host(s) up in %.1f s%n", hosts, (System.nanoTime() - t0) / 1e9);
            List<Contender> cs = new ArrayList<>(List.of(new Contender(name, hosts, plain)));
            if (withPassing != null) {
                cs.add(new Contender(name, hosts, withPassing));
            }
            for (Contender c : cs) {
                warmUp(c.engine(), options.blocks());
            }
            return measureAlternately(cs);
        }
    }

    /**
     * Measures each contender {@code runs} times, one run of each in turn, and returns the fastest run of each (for a
     * distributed one, {@code equalToInProcess} over all its runs).
     */
    private List<Row> measureAlternately(List<Contender> cs) {
        Row[] best = new Row[cs.size()];
        Boolean[] equal = new Boolean[cs.size()];
        for (int run = 1; run <= config.runs(); run++) {
            for (int k = 0; k < cs.size(); k++) {
                // every other run in reverse order: neither contender always runs right after the other (its garbage,
                // its caches), so that the order does not lean on the ratio
                int i = run % 2 == 1 ? k : cs.size() - 1 - k;
                Row r = measureOnce(cs.get(i), run);
                measured.add(r);
                best[i] = faster(best[i], r, run, cs.size() > 1);
                if (r.equalToInProcess() != null) {
                    equal[i] = (equal[i] == null || equal[i]) && r.equalToInProcess();
                }
            }
        }
        List<Row> out = new ArrayList<>();
        for (int i = 0; i < cs.size(); i++) {
            out.add(best[i].withEqualToInProcess(equal[i]));
        }
        return out;
    }

    private Row measureOnce(Contender c, int run) {
        if (c.engine() instanceof ClusterEngine e) {
            try (ClusterContextSession s = e.prefillSession(config.contextTokens(), PrefillListener.NONE)) {
                out.printf(Locale.ROOT, "  phase 1%s: %.0f ms (this query host %.0f ms; context hosts %s)%n",
                        c.passing().equals(PLAIN) ? "" : " (passing " + c.passing() + ")", s.prefillMillis(),
                        s.localPrefillMillis(), hostMillis(s.hostPrefillMillis()));
                long[] w0 = e.wireBytes();
                Generation g = s.generate(config.query(), GenerationOptions.greedy(config.maxNewTokens()),
                        TokenListener.NONE);
                long[] w1 = e.wireBytes();
                ClusterContextSession.Traffic t = s.lastTraffic();
                double wire = t.tokens() == 0 ? 0 : (double) (w1[0] - w0[0] + w1[1] - w0[1]) / t.tokens();
                Boolean equal = config.verify()
                        ? Arrays.equals(inProcessAnswer(e.options(), s.plan().blockCount()), g.tokens()) : null;
                return new Row(c.name(), c.passing(), run, c.contextHosts(), s.plan().blockCount(), s.prefillMillis(),
                        s.prefillMillis() + g.ttftMillis(), g.decodeTokensPerSecond(), g.tokens().length,
                        t.bytesPerToken(), t.bytesPerLayerPerToken(), wire, equal);
            }
        }
        try (ContextSession s = c.engine().prefill(config.contextTokens(), PrefillListener.NONE)) {
            Generation g = s.generate(config.query(), GenerationOptions.greedy(config.maxNewTokens()),
                    TokenListener.NONE);
            if (c.engine().options().mode() == Mode.STAR) {
                inProcessAnswers.put(answerKey(c.passing(), s.plan().blockCount()), g.tokens());
            }
            return new Row(c.name(), c.passing(), run, 0, s.plan().blockCount(), s.prefillMillis(),
                    s.prefillMillis() + g.ttftMillis(), g.decodeTokensPerSecond(), g.tokens().length, 0, 0, 0, null);
        }
    }

    private static String answerKey(String passing, int blocks) {
        return passing + " " + blocks;
    }

    /** The in-process answer with {@code options}' passing blocks and {@code blocks} blocks (computed once). */
    private int[] inProcessAnswer(EngineOptions options, int blocks) {
        String passing = label(options.passing());
        return inProcessAnswers.computeIfAbsent(answerKey(passing, blocks), k -> {
            out.printf("  computing the in-process star answer with %d blocks%s for comparison...%n", blocks,
                    passing.equals(PLAIN) ? "" : " and passing " + passing);
            try (LocalEngine le = LocalEngine.create(model, options);
                 ContextSession ls = le.prefill(config.contextTokens(), PrefillListener.NONE)) {
                return ls.generate(config.query(), GenerationOptions.greedy(config.maxNewTokens()), TokenListener.NONE)
                        .tokens();
            }
        });
    }

    /** Prints run {@code run}'s time to first token and returns the faster of {@code best} and {@code r}. */
    private Row faster(Row best, Row r, int run, boolean namePassing) {
        out.printf(Locale.ROOT, "  run %d/%d%s: prefill %.0f ms, TTFT %.0f ms, decode %.1f tokens/s%n", run,
                config.runs(), namePassing ? " (passing " + r.passing() + ")" : "", r.prefillMs(), r.ttftMs(),
                r.decodeTps());
        return best == null || r.ttftMs() < best.ttftMs() ? r : best;
    }

    /**
     * Passing over plain star phase-1 prefill per configuration that has both, from its measured runs: the fastest of
     * each, and the range of the two's ratio within a run (the runs alternate, so a run's pair saw the same machine).
     */
    static List<PassingRatio> passingRatios(List<Row> runs) {
        Map<String, List<Row>> byName = new LinkedHashMap<>();
        runs.forEach(r -> byName.computeIfAbsent(r.name(), k -> new ArrayList<>()).add(r));
        List<PassingRatio> out = new ArrayList<>();
        for (List<Row> rs : byName.values()) {
            Map<Integer, Double> plainByRun = new HashMap<>();
            double plain = Double.POSITIVE_INFINITY;
            for (Row r : rs) {
                if (r.plain()) {
                    plainByRun.put(r.run(), r.prefillMs());
                    plain = Math.min(plain, r.prefillMs());
                }
            }
            if (plainByRun.isEmpty() || plain <= 0) {
                continue;
            }
            Map<String, List<Row>> byPassing = new LinkedHashMap<>();
            rs.stream().filter(r -> !r.plain()).forEach(r -> byPassing.computeIfAbsent(r.passing(),
                    k -> new ArrayList<>()).add(r));
            for (var e : byPassing.entrySet()) {
                double fastest = Double.POSITIVE_INFINITY;
                double min = Double.NaN;
                double max = Double.NaN;
                for (Row r : e.getValue()) {
                    fastest = Math.min(fastest, r.prefillMs());
                    Double p = plainByRun.get(r.run());
                    if (p != null && p > 0) {
                        double q = r.prefillMs() / p;
                        min = Double.isNaN(min) ? q : Math.min(min, q);
                        max = Double.isNaN(max) ? q : Math.max(max, q);
                    }
                }
                out.add(new PassingRatio(rs.getFirst().name(), rs.getFirst().contextHosts(), e.getKey(), plain, fastest,
                        min, max));
            }
        }
        return out;
    }

    /** The passing over plain star table, with the target; nothing without passing runs. */
    static void printPassingRatios(List<PassingRatio> ratios, PrintStream out) {
        if (ratios.isEmpty()) {
            return;
        }
        out.println();
        out.printf(Locale.ROOT, "passing blocks over plain star, phase-1 prefill (fastest run of each; target: at most "
                + "%.1fx):%n", PASSING_PREFILL_TARGET);
        out.println("| configuration | context hosts | passing | plain prefill ms | passing prefill ms | passing / plain "
                + "| per run | within target |");
        out.println("|---|---|---|---|---|---|---|---|");
        for (PassingRatio p : ratios) {
            out.printf(Locale.ROOT, "| %s | %d | %s | %.0f | %.0f | %.2fx | %s | %s |%n", p.name(), p.contextHosts(),
                    p.passing(), p.plainMs(), p.passingMs(), p.ratio(), Double.isNaN(p.minRunRatio()) ? "-"
                            : String.format(Locale.ROOT, "%.2f-%.2fx", p.minRunRatio(), p.maxRunRatio()),
                    p.ratio() <= PASSING_PREFILL_TARGET ? "yes" : "NO");
        }
    }

    private static String hostMillis(Map<String, Double> millis) {
        StringBuilder b = new StringBuilder();
        millis.forEach((host, ms) -> b.append(b.isEmpty() ? "" : ", ").append(host).append(' ')
                .append(Math.round(ms)).append(" ms"));
        return b.toString();
    }

    private static Row plainRow(List<Row> rows, String name) {
        return rows.stream().filter(r -> r.name().equals(name) && r.plain()).findFirst().orElse(null);
    }

    private String displayName(Row r) {
        return r.name() + (r.contextHosts() > 0 ? " x " + config.threads() + " thr" : " (" + config.threads() + " thr)")
                + (r.plain() ? "" : ", passing " + r.passing());
    }

    private void printTable(List<Row> rows) {
        Row global = plainRow(rows, "in-process global");
        Row star = plainRow(rows, "in-process star");
        out.println();
        out.println("| configuration | blocks | prefill ms | TTFT ms | TTFT / global | TTFT / star | decode tok/s "
                + "| decode / star | phase-2 B/token | B/layer/token | wire B/token | = in-process star |");
        out.println("|---|---|---|---|---|---|---|---|---|---|---|---|");
        for (Row r : rows) {
            out.printf(Locale.ROOT, "| %s | %d | %.0f | %.0f | %s | %s | %.1f | %s | %.0f | %.0f | %.0f | %s |%n",
                    displayName(r), r.blocks(), r.prefillMs(), r.ttftMs(),
                    ratio(r.ttftMs(), global == null ? 0 : global.ttftMs()),
                    ratio(r.ttftMs(), star == null ? 0 : star.ttftMs()), r.decodeTps(),
                    ratio(r.decodeTps(), star == null ? 0 : star.decodeTps()), r.bytesPerToken(),
                    r.bytesPerLayerPerToken(), r.wireBytesPerToken(),
                    r.equalToInProcess() == null ? "-" : r.equalToInProcess() ? "yes" : "NO");
        }
    }

    /**
     * One JSON line per row (the fastest run of each configuration, {@code "row": "fastest"}), then one per measured
     * run ({@code "row": "run"}, without the ratios); {@code passing} says which policy each is.
     */
    private void printJson(List<Row> rows, List<Row> allRuns, List<PassingRatio> ratios) {
        Row global = plainRow(rows, "in-process global");
        Row star = plainRow(rows, "in-process star");
        out.println();
        for (Row r : rows) {
            Map<String, Object> ratioFields = new LinkedHashMap<>();
            ratioFields.put("ttft_vs_global", global == null ? null : round3(r.ttftMs() / global.ttftMs()));
            ratioFields.put("ttft_vs_star", star == null ? null : round3(r.ttftMs() / star.ttftMs()));
            if (!r.plain()) {
                ratioFields.put("prefill_vs_plain", ratios.stream().filter(p -> p.name().equals(r.name())
                        && p.passing().equals(r.passing())).findFirst().map(p -> round3(p.ratio())).orElse(null));
            }
            out.println("JSON " + toJson(json(r, "fastest", ratioFields)));
        }
        for (Row r : allRuns) {
            out.println("JSON " + toJson(json(r, "run", Map.of())));
        }
    }

    /** A row's JSON fields, in the order the command has always written them, {@code ratioFields} after TTFT. */
    private Map<String, Object> json(Row r, String kind, Map<String, Object> ratioFields) {
        Map<String, Object> j = new LinkedHashMap<>();
        j.put("configuration", r.name());
        j.put("passing", r.passing());
        j.put("row", kind);
        j.put("run", r.run());
        j.put("context_hosts", r.contextHosts());
        j.put("threads_per_jvm", config.threads());
        j.put("context_tokens", config.contextTokens().length);
        j.put("blocks", r.blocks());
        j.put("prefill_ms", Math.round(r.prefillMs()));
        j.put("ttft_ms", Math.round(r.ttftMs()));
        j.putAll(ratioFields);
        j.put("decode_tokens_per_s", round3(r.decodeTps()));
        j.put("generated_tokens", r.generated());
        j.put("bytes_per_token", Math.round(r.bytesPerToken()));
        j.put("bytes_per_layer_per_token", Math.round(r.bytesPerLayerPerToken()));
        j.put("wire_bytes_per_token", Math.round(r.wireBytesPerToken()));
        j.put("equal_to_in_process_star", r.equalToInProcess());
        return j;
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
