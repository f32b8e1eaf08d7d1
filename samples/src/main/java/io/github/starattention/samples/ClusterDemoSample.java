package io.github.starattention.samples;

import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.Generation;
import io.github.starattention.jlama.GenerationOptions;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.PrefillListener;
import io.github.starattention.jlama.PromptSplit;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.TokenListener;
import io.github.starattention.jlama.cluster.ClusterContextSession;
import io.github.starattention.jlama.cluster.ClusterEngine;
import io.github.starattention.jlama.cluster.ClusterOptions;
import io.github.starattention.jlama.cli.LocalCluster;
import io.github.starattention.jlama.model.ModelFolder;
import io.github.starattention.jlama.model.WeightFormat;
import io.github.starattention.plan.Block;
import io.github.starattention.plan.BlockPlan;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code samples/run cluster}: distributed Star Attention on one machine. Starts context-host JVMs on
 * {@code 127.0.0.1}, joins them as the query host, spreads the phase-1 encoding of a long document over them (one
 * block each, the last block on the query host), answers a question, prints what each host encoded and how long it
 * took, the time to first token and the phase-2 network traffic per token, and stops the hosts.
 */
@Command(name = "cluster", mixinStandardHelpOptions = true,
        description = {"Cluster demo: start context-host JVMs on 127.0.0.1, join them as the query host, encode a long",
                "document across them with Star Attention and answer a question; prints per-host prefill times,",
                "the time to first token and the bytes per token, then stops the hosts.",
                "Default: 3 hosts, the bundled model and data/demo/haystack-16k.txt (16K tokens) with its question."})
public final class ClusterDemoSample implements Callable<Integer> {

    private static final Logger log = LoggerFactory.getLogger(ClusterDemoSample.class);

    @Spec
    CommandSpec spec;

    @Option(names = "--document", paramLabel = "FILE", description = "UTF-8 text file (default: data/demo/haystack-16k.txt).")
    Path document;

    @Option(names = {"-q", "--question"}, paramLabel = "TEXT", description = "The question (default: the demo document's).")
    String question;

    @Option(names = "--model", paramLabel = "DIR", description = "Jlama model folder (default: the bundled tiny-ruler-llama).")
    Path model;

    @Option(names = "--hosts", defaultValue = "3", paramLabel = "N", description = "Context-host JVMs to start. Default: ${DEFAULT-VALUE}.")
    int hosts;

    @Option(names = "--threads", paramLabel = "N",
            description = "Threads of each host and of the query host (default: the cores shared among them, at least 1).")
    Integer threads;

    @Option(names = "--max-new-tokens", defaultValue = "64", paramLabel = "N", description = "Output tokens. Default: ${DEFAULT-VALUE}.")
    int maxNewTokens;

    @Option(names = "--verbose", description = "Print stack traces.")
    boolean verbose;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        if (hosts < 1) {
            throw new IllegalArgumentException("--hosts must be at least 1, got " + hosts);
        }
        if (threads != null && threads < 1) {
            throw new IllegalArgumentException("--threads must be at least 1, got " + threads);
        }
        if (maxNewTokens < 1) {
            throw new IllegalArgumentException("--max-new-tokens must be at least 1, got " + maxNewTokens);
        }
        Path doc = document != null ? document : SampleHome.resolve("data/demo/haystack-16k.txt");
        DocumentQaSample.Question q = DocumentQaSample.question(doc, question, document == null);
        String text = DocumentQaSample.readDocument(doc);
        Path modelDir = (model != null ? model : SampleHome.bundledModel()).toAbsolutePath();
        ModelFolder.open(modelDir); // a wrong model folder fails here, before any JVM is started
        // The hosts and the query host share this machine's cores.
        int perNode = threads != null ? threads : Math.max(1, Runtime.getRuntime().availableProcessors() / (hosts + 1));

        out.printf("Document: %s (%,d characters)%nQuestion: %s%n", doc, text.length(), q.text());
        out.printf("Starting %d context host%s on 127.0.0.1 (%d thread%s each):%n", hosts, hosts == 1 ? "" : "s",
                perNode, perNode == 1 ? "" : "s");
        out.flush();
        long t0 = System.nanoTime();
        // LocalCluster registers a shutdown hook that stops the hosts on Ctrl-C; try-with-resources stops them on
        // every other way out.
        LocalCluster local = LocalCluster.start(hosts, hostSettings(modelDir, perNode), null, List.of());
        try (local) {
            for (int i = 0; i < local.size(); i++) {
                out.printf("  host-%d  pid %d%n", i, local.process(i).pid());
            }
            out.flush();
            // The query host loads its copy of the model while the hosts start.
            EngineOptions options = EngineOptions.builder().mode(Mode.STAR).blocks(hosts + 1).threads(perNode).build();
            try (StarAttentionModel loaded = StarAttentionModel.load(modelDir, WeightFormat.F32, perNode)) {
                local.awaitReady();
                try (ClusterEngine engine = ClusterEngine.start(loaded, options, local.queryHostOptions(), hosts)) {
                    engine.awaitHosts(hosts);
                    out.printf(Locale.ROOT, "%d context host%s ready and the query host joined in %.1f s%n", hosts,
                            hosts == 1 ? "" : "s", (System.nanoTime() - t0) / 1e9);
                    ask(engine, loaded, q, text, out);
                }
            }
        }
        long alive = IntStream.range(0, local.size()).filter(i -> local.process(i).isAlive()).count();
        if (alive > 0) {
            log.warn("{} context host(s) still running after the cluster was closed", alive);
        }
        out.printf("Stopped %d of %d context hosts.%n", local.size() - alive, local.size());
        out.flush();
        return 0;
    }

    /**
     * What the spawned hosts serve, and patient settings: every node starts a JVM, loads the model and computes on
     * the same cores, so a late heartbeat or reply means a busy node, not a dead one (LocalCluster stops the hosts
     * itself). Starting and joining may take {@code -Dstar.attention.hostWaitMs} (default 180 s, as for
     * {@code ask --hosts}).
     */
    private static ClusterOptions hostSettings(Path modelDir, int threads) {
        ClusterOptions d = ClusterOptions.defaults();
        ClusterOptions.Timeouts t = d.timeouts();
        long wait = Math.max(t.hostWaitMs(), Long.getLong("star.attention.hostWaitMs", 180_000));
        return d.withHost(new ClusterOptions.Host(modelDir, threads, WeightFormat.F32.name(), "auto", d.host().maxSessions()))
                .withFailureDetectionAtLeast(60)
                .withTimeouts(new ClusterOptions.Timeouts(Math.max(t.requestMs(), 120_000), t.prefillMs(),
                        Math.max(t.joinMs(), wait), wait, t.sessionIdleMs()));
    }

    private void ask(ClusterEngine engine, StarAttentionModel loaded, DocumentQaSample.Question q, String text,
                     PrintWriter out) {
        PromptSplit split = loaded.split(text, q.text());
        out.printf("%nPrefill (phase 1) of %,d context tokens...%n", split.contextTokens().length);
        out.flush();
        try (ClusterContextSession s = engine.prefillSession(split.contextTokens(), PrefillListener.NONE)) {
            BlockPlan plan = s.plan();
            out.printf("%d blocks of %,d tokens (anchor %,d), encoded in parallel:%n", plan.blockCount(),
                    plan.blockSize(), plan.effectiveAnchor());
            Map<String, Double> hostMillis = s.hostPrefillMillis();
            for (Map.Entry<String, List<Integer>> e : s.placement().entrySet()) {
                printHost(out, plan, e.getKey(), e.getValue(), hostMillis.get(e.getKey()));
            }
            printHost(out, plan, "query host", plan.blocksOf(plan.queryHost()).stream().map(Block::index).toList(),
                    s.localPrefillMillis());
            out.printf(Locale.ROOT, "  %-12s %-14s %,7d tokens %,8.0f ms wall clock, %,d bytes of tokens sent%n", "all",
                    "", s.contextTokens(), s.prefillMillis(), s.prefillBytes());
            out.flush();

            Generation g = s.generate(split.queryTokens(), GenerationOptions.greedy(maxNewTokens), TokenListener.NONE);
            String answer = g.text().strip();
            String check = q.answers().isEmpty() ? ""
                    : q.answers().stream().allMatch(answer::contains) ? "  [correct]"
                    : "  [expected " + String.join(", ", q.answers()) + "]";
            ClusterContextSession.Traffic t = s.lastTraffic();
            out.printf("%nAnswer: %s%s%n", answer, check);
            out.printf(Locale.ROOT, "Time to first token: %,.0f ms (prefill %,.0f ms + query and first token %,.0f ms)%n",
                    s.prefillMillis() + g.ttftMillis(), s.prefillMillis(), g.ttftMillis());
            out.printf(Locale.ROOT, "Phase 2 traffic: %,.0f bytes per token (%,.0f per layer), %d tokens, %d requests; "
                    + "decode %.1f tokens/s%n", t.bytesPerToken(), t.bytesPerLayerPerToken(), t.tokens(), t.requests(),
                    g.decodeTokensPerSecond());
            out.flush();
        }
    }

    private static void printHost(PrintWriter out, BlockPlan plan, String host, List<Integer> blocks, Double millis) {
        int tokens = blocks.stream().mapToInt(b -> plan.blocks().get(b).length()).sum();
        String which = (blocks.size() == 1 ? "block " : "blocks ")
                + blocks.stream().map(String::valueOf).collect(Collectors.joining(","));
        String time = millis != null ? String.format(Locale.ROOT, "%,8.0f ms", millis) : "       - ms";
        out.printf(Locale.ROOT, "  %-12s %-14s %,7d tokens %s%n", host, which, tokens, time);
    }
}
