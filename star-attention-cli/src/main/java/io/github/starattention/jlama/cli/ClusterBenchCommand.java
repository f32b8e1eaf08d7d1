package io.github.starattention.jlama.cli;

import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.PromptSplit;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.cluster.ClusterOptions;
import io.github.starattention.jlama.model.PassingPolicy;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code bench-cluster}: distributed (N context-host JVMs) vs in-process, in one run; with {@code --passing}, passing
 * blocks vs plain star as well.
 */
@Command(name = "bench-cluster", mixinStandardHelpOptions = true,
        description = {"Benchmark distributed Star Attention: the in-process engine (global, star) against 1, 2, 4... "
                + "context-host JVMs spawned on 127.0.0.1, all with --threads threads per JVM, on the bundled haystack.",
                "Prints time to first token, decode tokens/s, their ratios and phase-2 bytes per token.",
                "With --passing N: also runs in-process star and each host count with passing blocks on the same hosts, "
                        + "alternating with plain star run by run, and prints the passing / plain phase-1 prefill "
                        + "time (target: at most " + ClusterBenchmark.PASSING_PREFILL_TARGET + "x). Needs the CPU "
                        + "attention kernels (--device cpu where a GPU is usable)."})
public final class ClusterBenchCommand implements Callable<Integer> {

    @Mixin
    CommonOptions common;

    @Option(names = "--context-tokens", defaultValue = "16384", paramLabel = "N",
            description = "Context length (the haystack is cut to it). Default: ${DEFAULT-VALUE}.")
    int contextTokens;

    @Option(names = "--hosts", defaultValue = "1,2,4", split = ",", paramLabel = "N[,N...]",
            description = "Context-host JVM counts to run. Default: ${DEFAULT-VALUE}.")
    List<Integer> hosts;

    @Option(names = "--max-new-tokens", defaultValue = "32", paramLabel = "N", description = "Output tokens. Default: ${DEFAULT-VALUE}.")
    int maxNewTokens;

    @Option(names = "--warmup-tokens", defaultValue = "1024", paramLabel = "N",
            description = "Context length of each configuration's warm-up. Default: ${DEFAULT-VALUE}.")
    int warmupTokens;

    @Option(names = "--runs", defaultValue = "2", paramLabel = "N",
            description = "Measured runs of each configuration after its warm-up (with --passing, plain and passing "
                    + "star take turns); the fastest is reported. Default: ${DEFAULT-VALUE}.")
    int runs;

    @Option(names = "--compare-anchor-sharing",
            description = "Also run each host count with every host encoding the anchor itself (no anchor sharing).")
    boolean compareAnchorSharing;

    @Option(names = "--no-global", description = "Skip the in-process global run (the slowest one).")
    boolean noGlobal;

    @Option(names = "--no-verify", description = "Do not compare distributed answers with the in-process star answer.")
    boolean noVerify;

    @Option(names = "--context-file", paramLabel = "FILE", description = "Context text (default: the bundled 16K haystack).")
    Path contextFile;

    @Option(names = "--question", paramLabel = "TEXT", description = "Question (default: the haystack's).")
    String question;

    @Override
    public Integer call() throws Exception {
        Logging.configure(common.verbose);
        if (common.threads == null) {
            common.threads = 4;
        }
        for (int h : hosts) {
            if (h < 1) {
                throw new IllegalArgumentException("--hosts values must be at least 1, got " + h);
            }
        }
        Path demo = CommonOptions.bundledModel().getParent().getParent().resolve("data/demo");
        String context = AskCommand.readContext(contextFile != null ? contextFile : demo.resolve("haystack-16k.txt"));
        String q = question != null ? question : new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(demo.resolve("haystack-16k.json").toFile()).get("question").asText();
        EngineOptions options = common.engineOptions(Mode.STAR);
        Distributed.refusePassingOnGpu(options);
        try (StarAttentionModel model = common.loadModel()) {
            PromptSplit split = model.split(context, q);
            int[] ctx = split.contextTokens();
            if (ctx.length > contextTokens) {
                ctx = Arrays.copyOf(ctx, contextTokens);
            } else if (ctx.length < contextTokens) {
                System.out.printf("note: the context has only %d tokens (asked for %d)%n", ctx.length, contextTokens);
            }
            ClusterOptions.Host host = new ClusterOptions.Host(common.modelDir().toAbsolutePath(), common.threadCount(),
                    common.weights.name(), common.device, 4);
            new ClusterBenchmark(model, new ClusterBenchmark.Config(ctx, split.queryTokens(), hosts, common.threadCount(),
                    options.toBuilder().passing(PassingPolicy.OFF).build(), maxNewTokens, warmupTokens, !noGlobal,
                    !noVerify, host, runs, compareAnchorSharing, options.passing()),
                    System.out).run();
        }
        return 0;
    }
}
