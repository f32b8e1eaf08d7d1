package io.github.starattention.jlama.cli;

import io.github.starattention.jlama.ContextSession;
import io.github.starattention.jlama.Generation;
import io.github.starattention.jlama.GenerationOptions;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.PromptSplit;
import io.github.starattention.jlama.StarAttentionEngine;
import io.github.starattention.jlama.StarAttentionModel;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code ask}: answers one question about a context file. */
@Command(name = "ask", mixinStandardHelpOptions = true,
        description = "Answer a question about a long context file (system = the file, user = the question).")
public final class AskCommand implements Callable<Integer> {

    @Mixin
    CommonOptions common;

    @Spec
    CommandSpec spec;

    @Option(names = "--context-file", required = true, paramLabel = "FILE", description = "The context (UTF-8 text).")
    Path contextFile;

    @Option(names = "--question", required = true, paramLabel = "TEXT", description = "The question.")
    String question;

    @Option(names = "--mode", defaultValue = "star", paramLabel = "global|star",
            description = "Context encoding: global or star. Default: ${DEFAULT-VALUE}.")
    String mode;

    @Option(names = "--max-new-tokens", defaultValue = "64", paramLabel = "N", description = "Output tokens. Default: ${DEFAULT-VALUE}.")
    int maxNewTokens;

    @Option(names = "--temperature", defaultValue = "0", paramLabel = "T", description = "0 = greedy. Default: ${DEFAULT-VALUE}.")
    float temperature;

    @Option(names = "--top-p", defaultValue = "1", paramLabel = "P", description = "Nucleus sampling threshold. Default: ${DEFAULT-VALUE}.")
    float topP;

    @Option(names = "--seed", defaultValue = "42", paramLabel = "S", description = "Sampling seed. Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--json", description = "Print one JSON line instead of text.")
    boolean json;

    @Option(names = "--hosts", paramLabel = "N", description = {"Distributed: spawn N context-host JVMs on 127.0.0.1 "
            + "(--threads threads each), answer with this process as the query host, and stop them.",
            "With --cluster: use N hosts of that cluster."})
    Integer hosts;

    @Option(names = "--cluster", paramLabel = "FILE",
            description = "Distributed: join the cluster configured in FILE (JSON) as the query host.")
    Path cluster;

    @Override
    public Integer call() throws IOException {
        Logging.configure(common.verbose);
        String context = readContext(contextFile);
        Mode m = parseMode(mode);
        GenerationOptions gen = GenerationOptions.builder().maxNewTokens(maxNewTokens).temperature(temperature)
                .topP(topP).seed(seed).build();
        var engineOptions = common.engineOptions(m);
        PrintWriter out = spec.commandLine().getOut();
        try (StarAttentionModel model = common.loadModel();
             StarAttentionEngine engine = Distributed.engine(model, engineOptions, common, hosts, cluster)) {
            long t0 = System.nanoTime();
            PromptSplit split = model.split(context, question);
            double tokenizeMillis = (System.nanoTime() - t0) / 1e6;
            if (!json) {
                spec.commandLine().getErr().printf("tokenized %d context + %d query tokens in %.0f ms%n",
                        split.contextTokens().length, split.queryTokens().length, tokenizeMillis);
            }
            common.checkPlanFits(split.contextTokens().length);
            ProgressBar bar = json ? ProgressBar.silent() : new ProgressBar("prefill", System.err);
            try (ContextSession session = engine.prefill(split.contextTokens(), bar::update)) {
                bar.done();
                Generation g = session.generate(split.queryTokens(), gen,
                        json ? (id, text) -> { } : (id, text) -> { out.print(text); out.flush(); });
                if (json) {
                    Map<String, Object> r = result(g, session, m);
                    r.put("tokenize_ms", round(tokenizeMillis));
                    out.println(Json.write(r));
                } else {
                    out.println();
                    spec.commandLine().getErr().printf("%s: %d context tokens in %d blocks, ttft %.0f ms (prefill %.0f ms + query %.0f ms), %.1f tokens/s%n",
                            m.name().toLowerCase(), session.contextTokens(), session.plan().blockCount(),
                            session.prefillMillis() + g.ttftMillis(), session.prefillMillis(), g.ttftMillis(),
                            g.decodeTokensPerSecond());
                }
            }
        }
        return 0;
    }

    static Map<String, Object> result(Generation g, ContextSession s, Mode m) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("answer", g.text());
        r.put("mode", m.name().toLowerCase());
        r.put("context_tokens", s.contextTokens());
        r.put("query_tokens", g.queryTokens());
        r.put("generated_tokens", g.tokens().length);
        r.put("blocks", s.plan().blockCount());
        r.put("block_size", s.plan().blockSize());
        r.put("anchor_size", s.plan().blockCount() == 1 ? 0 : s.plan().anchorSize());
        r.put("ttft_ms", round(s.prefillMillis() + g.ttftMillis()));
        r.put("decode_tokens_per_s", round(g.decodeTokensPerSecond()));
        Distributed.addResult(r, s);
        return r;
    }

    static double round(double v) {
        return Math.round(v * 10) / 10.0;
    }

    static Mode parseMode(String mode) {
        return switch (mode.toLowerCase(java.util.Locale.ROOT)) {
            case "global" -> Mode.GLOBAL;
            case "star" -> Mode.STAR;
            default -> throw new IllegalArgumentException("--mode must be global or star, got '" + mode + "'");
        };
    }

    static String readContext(Path file) {
        if (!Files.isRegularFile(file) || !Files.isReadable(file)) {
            throw new IllegalArgumentException("cannot read context file " + file);
        }
        try {
            String text = Files.readString(file);
            if (text.isBlank()) {
                throw new IllegalArgumentException("the context file " + file + " is empty: nothing to encode");
            }
            return text;
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read context file " + file + ": " + e.getMessage(), e);
        }
    }
}
