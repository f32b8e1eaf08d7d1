package io.github.starattention.jlama.cli;

import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.cluster.ClusterOptions;
import io.github.starattention.jlama.eval.EngineSource;
import io.github.starattention.jlama.eval.EvalExample;
import io.github.starattention.jlama.eval.EvalReport;
import io.github.starattention.jlama.eval.EvalResult;
import io.github.starattention.jlama.eval.EvalRunner;
import io.github.starattention.jlama.eval.EvalSet;
import io.github.starattention.jlama.eval.EvalSummary;
import io.github.starattention.jlama.eval.MarkdownReport;
import io.github.starattention.jlama.eval.ReferenceComparison;
import io.github.starattention.jlama.eval.TokenBudget;
import io.github.starattention.jlama.eval.Variant;
import io.github.starattention.jlama.model.PassingPolicy;
import io.github.starattention.kv.KvPrecision;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code eval}: RULER-style accuracy and speed of global and Star Attention on a JSONL set. */
@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Evaluate global and Star Attention on a RULER-style JSONL set (id, task, length, context, question, "
                + "answers): score = share of the answers found in the output (string_match_all, ignoring case).",
            "Writes results.jsonl, summary.json, summary.md and PNG charts into --out. A malformed line is reported "
                + "with its number and counted as an error; the other lines are evaluated.",
            "With --hosts N the star variants run distributed (N context-host JVMs on 127.0.0.1 started once for the "
                + "run, this process as the query host); global runs in process, as its baseline."})
public final class EvalCommand implements Callable<Integer> {

    @Mixin
    CommonOptions common;

    @Spec
    CommandSpec spec;

    @Option(names = "--data", required = true, paramLabel = "FILE", description = "The evaluation set (JSONL).")
    Path data;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output folder.")
    Path out;

    @Option(names = "--modes", split = ",", defaultValue = "global,star", paramLabel = "MODE[,MODE]",
            description = "global, star or both. Default: ${DEFAULT-VALUE}.")
    List<String> modes;

    @Option(names = "--lengths", split = ",", paramLabel = "N[,N...]", description = "Only these lengths (default: all).")
    List<Integer> lengths;

    @Option(names = "--tasks", split = ",", paramLabel = "TASK[,TASK...]", description = "Only these tasks (default: all).")
    List<String> tasks;

    @Option(names = "--limit-per-task", paramLabel = "N", description = "At most N examples per task and length (file order).")
    Integer limitPerTask;

    @Option(names = "--max-new-tokens", paramLabel = "N",
            description = "One output cap for every task (default: RULER's budget, niah 128 and vt 64; stop at end of sequence).")
    Integer maxNewTokens;

    @Option(names = "--sweep", paramLabel = "PARAM=V1,V2,...",
            description = "Star Attention ablation: blocks=1,2,4,8 | anchor=0,0.25,0.5,1 (fraction of the block; 0 = no anchor) "
                    + "| block-size=N,... | anchor-size=N,... | passing=0,16,64,256 (passing blocks, tokens per block; "
                    + "N:window or N:spread names the rule). Global runs once as the baseline when --modes has it.")
    String sweep;

    @Option(names = "--reference", paramLabel = "FILE",
            description = "Reference outputs (id, global, star, global_score, star_score): evaluate only their ids and compare.")
    Path reference;

    @Option(names = "--resume", description = "Keep the results already in --out and run only what is missing.")
    boolean resume;

    @Option(names = "--report-only", description = "Run nothing: rebuild summary and charts from --out/results.jsonl.")
    boolean reportOnly;

    @Option(names = "--no-charts", description = "Skip the PNG charts.")
    boolean noCharts;

    @Option(names = "--title", paramLabel = "TEXT", description = "Title of summary.md.")
    String title;

    @Option(names = "--hosts", paramLabel = "N", description = {"Distributed: spawn N context-host JVMs on 127.0.0.1 "
            + "(--threads threads, --weights and --device each) once for the whole run, run every star variant with "
            + "this process as the query host (one per setting), and stop them at the end. Global mode runs on one "
            + "host: it stays in process. As with ask --hosts, a block count is raised to a multiple of N+1 (the hosts "
            + "and the query host encode as many blocks each): --blocks 4 --hosts 2 runs 6 blocks (give --blocks 6 to "
            + "an in-process eval to compare; a --block-size is kept). results.jsonl and the summary record the blocks "
            + "and hosts used; --resume continues a folder run with the same --hosts only. Passing blocks run too "
            + "(CPU attention kernels)."})
    Integer hosts;

    @Override
    public Integer call() throws Exception {
        Logging.configure(common.verbose);
        if (hosts != null && hosts < 1) {
            throw new IllegalArgumentException("--hosts must be at least 1, got " + hosts);
        }
        PrintWriter err = spec.commandLine().getErr();
        PrintWriter stdout = spec.commandLine().getOut();
        long t0 = System.nanoTime();
        EvalSet set = EvalSet.read(data);
        for (EvalSet.LineError e : set.errors()) {
            err.println("star-attention: " + data + " " + e + " (skipped, counted as an error)");
        }
        ReferenceComparison ref = reference != null ? ReferenceComparison.read(reference) : null;
        Set<String> ids = ref != null ? ref.byId().keySet() : null;
        List<EvalExample> examples = set.select(lengths, tasks, limitPerTask, ids);
        List<Variant> variants = variants();
        TokenBudget budget = maxNewTokens != null ? TokenBudget.fixed(maxNewTokens) : TokenBudget.ruler();
        Path resultsFile = out.resolve(EvalReport.RESULTS);
        Files.createDirectories(out);

        List<EvalResult> previous = resume || reportOnly ? EvalReport.readResults(resultsFile) : List.of();
        List<EvalResult> results = new ArrayList<>(previous);
        if (!reportOnly) {
            if (examples.isEmpty()) {
                throw new IllegalArgumentException("no examples of " + data + " match the selection (lengths "
                        + (lengths == null ? "all" : lengths) + ", tasks " + (tasks == null ? "all" : tasks)
                        + (ids != null ? ", ids of " + reference : "") + ")");
            }
            checkResumedHosts(previous, variants, resultsFile);
            Set<String> skip = previous.stream().filter(r -> !r.failed()).map(EvalResult::key).collect(Collectors.toSet());
            results.removeIf(EvalResult::failed); // failed runs are tried again
            EvalRunner.Config config = new EvalRunner.Config(variants, budget, common.deviceValue(), common.threadCount());
            if (hosts != null) {
                if (variants.stream().noneMatch(v -> v.mode() == Mode.STAR)) {
                    throw new IllegalArgumentException("--hosts runs the star variants on the hosts and global in "
                            + "process: with --modes global alone there is nothing to distribute; drop --hosts");
                }
                for (Variant v : variants) {
                    if (v.mode() == Mode.STAR && v.passing() != null) {
                        Distributed.refusePassingOnGpu(EngineOptions.builder().device(config.device())
                                .passing(v.passing()).build());
                    }
                }
            }
            err.printf("star-attention: %d examples x %d (%s), %s%n", examples.size(), variants.size(),
                    variants.stream().map(Variant::label).collect(Collectors.joining(", ")), budget.describe());
            if (hosts != null) {
                err.println("star-attention: " + hostsDescription(hosts, variants) + "; starting the hosts...");
                if (variants.stream().anyMatch(v -> v.blockCount() != null && v.anchorFraction() != null
                        && v.anchorFraction() > 0 && v.anchorFraction() < 1)) {
                    err.println("star-attention: note: an anchor that is a fraction of each context's block needs a "
                            + "query host per context length (a cluster join each); --block-size avoids it");
                }
            }
            EvalProgress progress = new EvalProgress(err, System.console() != null);
            // the kept results are written afresh (a resumed folder's failed runs are dropped and tried again)
            try (EvalReport.ResultWriter w = new EvalReport.ResultWriter(resultsFile, false)) {
                results.forEach(w);
            }
            try (StarAttentionModel model = common.loadModel();
                 EngineSource engines = engines(model, variants, err);
                 EvalReport.ResultWriter append = new EvalReport.ResultWriter(resultsFile, true)) {
                results.addAll(new EvalRunner(model, config, engines).run(examples, skip, append, progress));
            } finally {
                progress.done();
            }
        }
        if (results.isEmpty()) {
            throw new IllegalArgumentException("no results in " + resultsFile);
        }
        // report the selected examples only (a resumed folder may hold others)
        Set<String> selected = new HashSet<>();
        examples.forEach(e -> selected.add(e.id()));
        Set<String> labels = variants.stream().map(Variant::label).collect(Collectors.toSet());
        List<EvalResult> reported = reportOnly ? results
                : results.stream().filter(r -> selected.contains(r.id()) && labels.contains(r.variant())).toList();
        EvalSummary summary = new EvalSummary(reported, set.errors(), meta(set, reported, variants, budget, t0), ref);
        List<Path> files = EvalReport.write(summary, out, title != null ? title : "Evaluation: " + data.getFileName(), !noCharts);
        printOverall(summary, stdout);
        stdout.println("wrote " + resultsFile + ", " + files.stream().map(p -> p.getFileName().toString())
                .collect(Collectors.joining(", ")));
        return 0;
    }

    /** In process, or the hosts of {@code --hosts} started (and waited for) now. */
    private EngineSource engines(StarAttentionModel model, List<Variant> variants, PrintWriter err) {
        if (hosts == null) {
            return EngineSource.inProcess(model);
        }
        // eval's engines keep K and V in fp32 (Variant.options), and the hosts must match the query hosts' numerics
        ClusterOptions.Host host = new ClusterOptions.Host(common.modelDir().toAbsolutePath(), common.threadCount(),
                common.weights.name(), common.device, ClusterOptions.defaults().host().maxSessions(),
                KvPrecision.F32.name().toLowerCase(Locale.ROOT));
        long t0 = System.nanoTime();
        ClusterEngineSource source = ClusterEngineSource.start(model, hosts, host,
                (int) variants.stream().filter(v -> v.mode() == Mode.STAR).count());
        err.printf(Locale.ROOT, "star-attention: %d context host(s) up in %.1f s%n", hosts, (System.nanoTime() - t0) / 1e9);
        err.flush();
        return source;
    }

    /**
     * Refuses to resume a folder whose finished results ran on another number of hosts than this run would use (in
     * process and distributed would be mixed in one summary).
     */
    private void checkResumedHosts(List<EvalResult> previous, List<Variant> variants, Path resultsFile) {
        for (Variant v : variants) {
            int want = contextHosts(v);
            for (EvalResult r : previous) {
                if (!r.failed() && r.variant().equals(v.label()) && r.hosts() != want) {
                    throw new IllegalArgumentException("--resume: " + resultsFile + " holds " + v.label() + " results run "
                            + hostsText(r.hosts()) + ", this run would run it " + hostsText(want)
                            + "; use another --out, or the same --hosts");
                }
            }
        }
    }

    private int contextHosts(Variant v) {
        return hosts == null || v.mode() == Mode.GLOBAL ? 0 : hosts;
    }

    private static String hostsText(int n) {
        return n == 0 ? "in process" : "on " + n + " context host" + (n == 1 ? "" : "s");
    }

    /**
     * What {@code --hosts n} does with these variants, for stderr and the summary: where star and global run, and the
     * block counts raised to a multiple of the hosts.
     */
    static String hostsDescription(int n, List<Variant> variants) {
        StringBuilder s = new StringBuilder().append(n).append(" context-host JVM").append(n == 1 ? "" : "s")
                .append(" on 127.0.0.1 + this JVM as the query host (star)");
        if (variants.stream().anyMatch(v -> v.mode() == Mode.GLOBAL)) {
            s.append("; global in process");
        }
        Map<Integer, Integer> raised = new java.util.TreeMap<>();
        for (Variant v : variants) {
            Integer from = v.blockCount();
            Integer to = ClusterEngineSource.spread(v, n).blockCount();
            if (from != null && !from.equals(to)) {
                raised.put(from, to);
            }
        }
        if (!raised.isEmpty()) {
            s.append("; blocks raised to a multiple of ").append(n + 1).append(": ").append(raised.entrySet().stream()
                    .map(e -> e.getKey() + " -> " + e.getValue()).collect(Collectors.joining(", ")));
        }
        return s.toString();
    }

    private List<Variant> variants() {
        List<Variant> out = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (String m : modes) {
            String mode = m.strip().toLowerCase(Locale.ROOT);
            if (!mode.equals("global") && !mode.equals("star")) {
                throw new IllegalArgumentException("--modes takes global and star, got '" + m + "'");
            }
            if (!seen.add(mode)) {
                continue;
            }
            if (mode.equals("global")) {
                out.add(Variant.global());
            } else if (sweep == null) {
                out.add(Variant.star(common.blocks, common.blockSize, common.anchorSize, common.passingPolicy()));
            }
        }
        if (common.blocks != null && common.blockSize != null) {
            throw new IllegalArgumentException("give either --blocks or --block-size, not both");
        }
        if (sweep != null) {
            out.addAll(Variant.sweep(sweep, Variant.star(common.blocks, common.blockSize, common.anchorSize,
                    common.passingPolicy())));
        }
        return out;
    }

    private Map<String, Object> meta(EvalSet set, List<EvalResult> results, List<Variant> variants, TokenBudget budget,
                                     long t0) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model", common.modelDir().toString());
        m.put("data", data.toString());
        m.put("examples", results.stream().map(EvalResult::id).distinct().count());
        m.put("malformed_lines", set.errors().size());
        m.put("selection", "lengths " + (lengths == null ? "all" : lengths.stream().map(MarkdownReport::lengthLabel)
                .collect(Collectors.joining(","))) + ", tasks " + (tasks == null ? "all" : String.join(",", tasks))
                + (limitPerTask != null ? ", at most " + limitPerTask + " per task and length" : "")
                + (reference != null ? ", ids of " + reference.getFileName() : ""));
        m.put("max_new_tokens", budget.describe());
        m.put("star_blocks", starDescription());
        int n = hosts != null ? hosts : results.stream().mapToInt(EvalResult::hosts).max().orElse(0);
        m.put("hosts", n == 0 ? "0 (in process)" : hostsDescription(n, variants));
        if (sweep != null) {
            m.put("sweep", sweep);
        }
        m.put("modes", results.stream().map(EvalResult::variant).distinct().toList());
        m.put("weights", common.weights.name());
        m.put("threads", common.threadCount());
        m.put("device", common.device);
        m.put("decoding", "greedy");
        m.put("date", Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
        m.put("wall_time_s", Math.round((System.nanoTime() - t0) / 1e9));
        return m;
    }

    private String starDescription() {
        String block = common.blockSize != null ? "block size " + common.blockSize
                : (common.blocks != null ? common.blocks : 4) + " blocks (block = ceil(context tokens / "
                        + (common.blocks != null ? common.blocks : 4) + "))";
        String anchor = common.anchorSize != null ? "anchor " + common.anchorSize + " tokens (capped at the block)"
                : "anchor = block";
        PassingPolicy p = common.passingPolicy();
        return block + ", " + anchor + (p.enabled() ? ", passing blocks " + p : "");
    }

    private static void printOverall(EvalSummary s, PrintWriter o) {
        o.printf("%-22s %7s %5s %12s %10s%n", "mode", "score", "n", "ttft ms", "errors");
        for (String v : s.variants()) {
            EvalSummary.Cell c = s.overall(v);
            o.printf(Locale.ROOT, "%-22s %7.3f %5d %12.0f %10d%n", v, c.score(), c.n(), c.ttftMs(), c.errors());
        }
        if (!Double.isNaN(s.ratioStarToGlobal())) {
            o.printf(Locale.ROOT, "star / global: %.3f%n", s.ratioStarToGlobal());
        }
        if (!s.lineErrors().isEmpty()) {
            o.printf("%d malformed line(s) in the set (see summary.md)%n", s.lineErrors().size());
        }
        o.flush();
    }
}
