package io.github.starattention.jlama.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.github.starattention.jlama.ContextSession;
import io.github.starattention.jlama.Generation;
import io.github.starattention.jlama.GenerationOptions;
import io.github.starattention.jlama.LocalEngine;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.PromptSplit;
import io.github.starattention.jlama.StarAttentionModel;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code demo}: the bundled model on the bundled ~16K-token haystack, global vs star. */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Answer a question about a bundled ~16K-token haystack with global and Star Attention and compare.")
public final class DemoCommand implements Callable<Integer> {

    @Mixin
    CommonOptions common;

    @Option(names = "--max-new-tokens", defaultValue = "64", paramLabel = "N", description = "Output tokens. Default: ${DEFAULT-VALUE}.")
    int maxNewTokens;

    @Override
    public Integer call() throws IOException {
        Logging.configure(common.verbose);
        Path demo = CommonOptions.bundledModel().getParent().getParent().resolve("data/demo");
        String context = AskCommand.readContext(demo.resolve("haystack-16k.txt"));
        JsonNode meta = new ObjectMapper().readTree(demo.resolve("haystack-16k.json").toFile());
        String question = meta.get("question").asText();
        System.out.println("Question: " + question);
        System.out.println("Expected: " + meta.get("answers"));
        List<String[]> rows = new ArrayList<>();
        try (StarAttentionModel model = common.loadModel()) {
            PromptSplit split = model.split(context, question);
            System.out.printf("Context:  %d tokens (%s)%n%n", split.contextTokens().length, demo.resolve("haystack-16k.txt"));
            for (Mode mode : List.of(Mode.GLOBAL, Mode.STAR)) {
                try (LocalEngine engine = LocalEngine.create(model, common.engineOptions(mode));
                     ContextSession session = engine.prefill(split.contextTokens(),
                             new ProgressBar(String.format("%-6s prefill", mode.name().toLowerCase()), System.err)::update)) {
                    System.err.println();
                    Generation g = session.generate(split.queryTokens(), GenerationOptions.greedy(maxNewTokens), (id, t) -> { });
                    double ttft = session.prefillMillis() + g.ttftMillis();
                    System.out.printf("[%s] %s%n", mode.name().toLowerCase(), g.text().strip());
                    rows.add(new String[] {mode.name().toLowerCase(), String.valueOf(session.plan().blockCount()),
                            String.format("%.2f s", ttft / 1000), String.format("%.1f", g.decodeTokensPerSecond()),
                            engine.kernelName()});
                }
            }
        }
        System.out.println();
        System.out.printf("%-8s %-7s %-22s %-16s %s%n", "mode", "blocks", "time to first token", "decode tokens/s", "kernel");
        for (String[] r : rows) {
            System.out.printf("%-8s %-7s %-22s %-16s %s%n", (Object[]) r);
        }
        return 0;
    }
}
