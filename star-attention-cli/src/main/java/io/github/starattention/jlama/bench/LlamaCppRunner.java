package io.github.starattention.jlama.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;

/**
 * Runs {@code tools/llamacpp/run.mjs} (llama.cpp through node-llama-cpp's prebuilt CPU binaries) with a JSON request on
 * its standard input and reads its JSON lines.
 */
public final class LlamaCppRunner {

    /** The folder of the runner, relative to the project root. */
    public static final Path TOOL = Path.of("tools", "llamacpp");
    /** How to install the runner's dependencies. */
    public static final String INSTALL_HINT = "cd tools/llamacpp && npm ci";

    private final String node;
    private final Path toolDir;

    private LlamaCppRunner(String node, Path toolDir) {
        this.node = node;
        this.toolDir = toolDir;
    }

    /** The result of one timed run of one prompt. */
    public record Run(int prompt, int promptTokens, double ttftMillis, double decodeTokensPerSecond, int[] generated,
                      String json) {
    }

    /**
     * Where llama.cpp's greedy tokens first differ from another engine's: llama.cpp's log-probability margin of its own
     * token over the other engine's there, from a separate untimed evaluation of the prompt and the common tokens in
     * one batch, and whether that evaluation picks the other engine's token.
     */
    public record Check(int prompt, int firstDifference, double marginNats, boolean batchPicksOther, String json) {
    }

    /** Everything one request produced. */
    public record Result(List<Run> runs, List<Check> checks, String warmupJson) {
    }

    /**
     * The runner, or {@code null} with the reason given to {@code whyNot} when node or {@code node_modules} is missing.
     *
     * @param node the node executable: a path, or a name looked up on {@code PATH}
     * @param toolDir the runner's folder; {@code null} to look for {@link #TOOL} under the project root
     */
    public static LlamaCppRunner find(String node, Path toolDir, Consumer<String> whyNot) {
        Path dir = toolDir != null ? toolDir : projectTool();
        if (dir == null || !Files.isRegularFile(dir.resolve("run.mjs"))) {
            whyNot.accept("llama.cpp skipped: " + TOOL.resolve("run.mjs") + " not found (run from the project folder)");
            return null;
        }
        String exe = resolve(node);
        if (exe == null) {
            whyNot.accept("llama.cpp skipped: node (" + node + ") not found; install Node.js 20+ and run: " + INSTALL_HINT);
            return null;
        }
        if (!Files.isDirectory(dir.resolve("node_modules").resolve("node-llama-cpp"))) {
            whyNot.accept("llama.cpp skipped: " + dir.resolve("node_modules") + " is missing; install it with: "
                    + INSTALL_HINT);
            return null;
        }
        return new LlamaCppRunner(exe, dir);
    }

    /** {@link #TOOL} under {@code $STAR_ATTENTION_HOME} (the launcher sets it), else the working folder or a parent. */
    static Path projectTool() {
        String home = System.getProperty("star.attention.home", System.getenv("STAR_ATTENTION_HOME"));
        if (home != null && Files.isDirectory(Path.of(home).resolve(TOOL))) {
            return Path.of(home).resolve(TOOL);
        }
        for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
            if (Files.isRegularFile(d.resolve(TOOL).resolve("run.mjs"))) {
                return d.resolve(TOOL);
            }
        }
        return null;
    }

    /** An executable path for {@code node}: as given when it contains a separator, else the first on {@code PATH}. */
    static String resolve(String node) {
        if (node.contains(File.separator)) {
            return Files.isExecutable(Path.of(node)) ? node : null;
        }
        String path = System.getenv("PATH");
        if (path == null) {
            return null;
        }
        for (String dir : path.split(File.pathSeparator)) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, node))) {
                return Path.of(dir, node).toString();
            }
        }
        return null;
    }

    /** The node executable this runner starts. */
    public String node() {
        return node;
    }

    /**
     * Loads {@code gguf} once, runs {@code warmup} untimed, then each prompt {@code runs} times.
     *
     * @param kvType llama.cpp's K and V cache type: F32, BF16 or F16
     * @param compare another engine's greedy tokens per prompt (or an empty list): where they differ the runner reports
     *     llama.cpp's margin between the two tokens
     * @param progress receives each line the runner prints
     * @throws IllegalStateException if the runner fails (its last stderr lines in the message)
     */
    public Result run(Path gguf, List<int[]> prompts, int[] warmup, int newTokens, int threads, int runs, String kvType,
                      List<int[]> compare, Consumer<String> progress) {
        Map<String, Object> request = new LinkedHashMap<>();
        request.put("model", gguf.toAbsolutePath().toString());
        request.put("prompts", prompts);
        request.put("warmup", warmup);
        request.put("newTokens", newTokens);
        request.put("threads", threads);
        request.put("batchSize", 512);
        request.put("runs", runs);
        request.put("kvType", kvType);
        request.put("compare", compare);
        ObjectMapper json = new ObjectMapper();
        // a file, not stdin: Node's synchronous read of a pipe fails with EAGAIN when the request outgrows the pipe
        // buffer before it is all written (8K-token prompts)
        Path requestFile = gguf.toAbsolutePath().resolveSibling(gguf.getFileName() + ".request.json");
        Process p;
        try {
            json.writeValue(requestFile.toFile(), request);
            p = new ProcessBuilder(node, toolDir.resolve("run.mjs").toAbsolutePath().toString(), requestFile.toString())
                    .directory(toolDir.toFile()).start();
            p.getOutputStream().close();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + node, e);
        }
        Thread stop = new Thread(p::destroyForcibly); // a JVM stopped by Ctrl-C stops llama.cpp too
        Runtime.getRuntime().addShutdownHook(stop);
        try {
            CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> {
                try {
                    return new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
                } catch (IOException e) {
                    return e.toString();
                }
            });
            List<Run> out = new ArrayList<>();
            List<Check> checks = new ArrayList<>();
            String warm = null;
            boolean done = false;
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    if (!line.startsWith("{")) {
                        continue; // stray log lines of the native library
                    }
                    progress.accept(line);
                    JsonNode n = json.readTree(line);
                    if (n.path("warmup").asBoolean()) {
                        warm = line;
                    } else if (n.path("check").asBoolean()) {
                        checks.add(new Check(n.path("prompt").asInt(), n.path("first_difference").asInt(),
                                n.path("margin_nats").asDouble(Double.NaN),
                                n.path("sampled").asInt(-1) == n.path("other_token").asInt(-2), line));
                    } else if (n.path("done").asBoolean()) {
                        done = true;
                    } else if (n.has("ttft_ms")) {
                        int[] ids = new int[n.path("generated_ids").size()];
                        for (int i = 0; i < ids.length; i++) {
                            ids[i] = n.path("generated_ids").get(i).asInt();
                        }
                        out.add(new Run(n.path("prompt").asInt(), n.path("prompt_tokens").asInt(),
                                n.path("ttft_ms").asDouble(), n.path("decode_tokens_per_s").asDouble(), ids, line));
                    }
                }
            }
            int code = p.waitFor();
            if (code != 0 || !done) {
                String e = err.join().strip();
                throw new IllegalStateException("llama.cpp runner failed (exit " + code + "): "
                        + (e.isEmpty() ? "no output" : e.lines().reduce((a, b) -> b).orElse(e)));
            }
            return new Result(out, checks, warm);
        } catch (IOException e) {
            throw new UncheckedIOException("llama.cpp runner: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        } finally {
            p.destroy();
            try {
                Files.deleteIfExists(requestFile);
            } catch (IOException e) {
                // in the benchmark's temporary folder, removed with it
            }
            try {
                Runtime.getRuntime().removeShutdownHook(stop);
            } catch (IllegalStateException e) {
                // shutting down: the hook stops the process
            }
        }
    }
}
