package io.github.starattention.jlama.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.github.starattention.jlama.TestData;
import io.github.starattention.jlama.cli.StarAttentionCli;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code ask --hosts N} end to end, as a user runs it: a CLI process that spawns its host JVM and stops it. */
class ClusterCliIT {

    @TempDir
    Path tmp;

    @ParameterizedTest(name = "--kv {0}")
    @ValueSource(strings = {"f32", "bf16"})
    void askWithLocalHostsAnswersLikeInProcessAndReportsHostsAndBytes(String kv) throws Exception {
        JsonNode ex = ClusterFixture.example("niah_single-1024-6");
        Path context = tmp.resolve("context.txt");
        Files.writeString(context, ex.get("context").asText());
        List<String> common = List.of("ask", "--context-file", context.toString(), "--question",
                ex.get("question").asText(), "--blocks", "2", "--threads", "1", "--max-new-tokens", "12", "--kv", kv,
                "--json");
        JsonNode local = askProcess(common);
        List<String> distributed = new ArrayList<>(common);
        distributed.addAll(List.of("--hosts", "1"));
        JsonNode dist = askProcess(distributed);
        assertThat(local.get("hosts").asInt()).isZero();
        assertThat(dist.get("hosts").asInt()).isEqualTo(1);
        assertThat(dist.get("blocks").asInt()).isEqualTo(2);
        assertThat(dist.get("bytes_per_token").asDouble()).isGreaterThan(2 * 4 * 64 * 4 * 8);
        assertThat(dist.get("answer").asText()).isEqualTo(local.get("answer").asText());
        assertThat(dist.get("generated_tokens").asInt()).isEqualTo(local.get("generated_tokens").asInt());
    }

    @Test
    void hostsMustBePositive() throws IOException {
        Path context = tmp.resolve("c.txt");
        Files.writeString(context, "some context");
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = StarAttentionCli.run(new PrintWriter(out, true), new PrintWriter(err, true), "ask", "--model",
                TestData.modelDir().toString(), "--context-file", context.toString(), "--question", "q", "--hosts", "0");
        assertThat(code).isEqualTo(StarAttentionCli.BAD_INPUT);
        assertThat(err.toString()).contains("--hosts must be at least 1").doesNotContain("\tat ");
    }

    /** Runs the command line in a new JVM (the launcher's flags) and returns its JSON line. */
    private JsonNode askProcess(List<String> args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow", "-Xss4m", "-Xmx512m", "-Dhazelcast.phone.home.enabled=false",
                "-Dstar.attention.home=" + TestData.root(), "-cp", System.getProperty("java.class.path"),
                "io.github.starattention.jlama.cli.StarAttentionCli"));
        cmd.addAll(args);
        Path log = tmp.resolve("ask-" + System.nanoTime() + ".err");
        Process p = new ProcessBuilder(cmd).redirectError(log.toFile()).start();
        Set<ProcessHandle> children = ConcurrentHashMap.newKeySet();
        Thread watcher = Thread.ofVirtual().start(() -> {
            while (p.isAlive()) {
                p.descendants().forEach(children::add);
                try {
                    Thread.sleep(200);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        try {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(p.waitFor(300 * ClusterFixture.SCALE, TimeUnit.SECONDS)).as("ask finished").isTrue();
            assertThat(p.exitValue()).as("exit code; stderr:\n%s", Files.readString(log)).isZero();
            String json = out.lines().filter(l -> l.startsWith("{")).reduce((a, b) -> b).orElseThrow(
                    () -> new AssertionError("no JSON line in:\n" + out));
            for (ProcessHandle child : children) {
                child.onExit().get(30, TimeUnit.SECONDS); // the host JVMs it spawned are gone too
            }
            return new ObjectMapper().readTree(json);
        } finally {
            watcher.interrupt();
            children.forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
    }
}
