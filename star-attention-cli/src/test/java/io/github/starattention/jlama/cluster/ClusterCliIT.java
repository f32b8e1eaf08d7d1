package io.github.starattention.jlama.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.github.starattention.jlama.TestData;
import io.github.starattention.jlama.cli.StarAttentionCli;
import io.github.starattention.jlama.eval.EvalReport;
import io.github.starattention.jlama.eval.EvalResult;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code ask --hosts N} end to end, as a user runs it: a CLI process that spawns its host JVM and stops it; and
 * {@code eval --hosts N}, whose outputs are the in-process eval's, example by example.
 */
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
    void evalWithLocalHostsGivesTheInProcessOutputsExampleByExample() throws Exception {
        // one vt and one niah_single example at 1K, global and a passing sweep: star runs on two host JVMs (started
        // once, a query host per passing setting), global in process; 4 blocks become 6 (a multiple of the 3 hosts)
        List<String> common = List.of("eval", "--data", TestData.root().resolve("data/evalsets/ruler-tiny-dev.jsonl")
                .toString(), "--tasks", "vt,niah_single", "--lengths", "1024", "--limit-per-task", "1", "--modes",
                "global,star", "--sweep", "passing=0,16:window", "--max-new-tokens", "16", "--threads", "1", "--device",
                "cpu", "--no-charts");
        Path local = tmp.resolve("in-process");
        Path cluster = tmp.resolve("cluster");
        List<String> inProcess = new ArrayList<>(common);
        inProcess.addAll(List.of("--blocks", "6", "--out", local.toString()));
        List<String> distributed = new ArrayList<>(common);
        distributed.addAll(List.of("--hosts", "2", "--out", cluster.toString()));
        Set<ProcessHandle> before = ProcessHandle.current().descendants().collect(Collectors.toSet());
        String previousJvmArgs = System.getProperty("star.attention.hostJvmArgs");
        System.setProperty("star.attention.hostJvmArgs", "-Xmx512m");
        String[] err = new String[2];
        try {
            assertTimeoutPreemptively(Duration.ofSeconds(300 * ClusterFixture.SCALE), () -> {
                err[0] = evalInThisJvm(inProcess);
                err[1] = evalInThisJvm(distributed);
            });
        } finally {
            if (previousJvmArgs == null) {
                System.clearProperty("star.attention.hostJvmArgs");
            } else {
                System.setProperty("star.attention.hostJvmArgs", previousJvmArgs);
            }
        }
        assertThat(err[1]).contains("2 context-host JVMs on 127.0.0.1 + this JVM as the query host (star); global in "
                + "process; blocks raised to a multiple of 3: 4 -> 6");
        assertThat(ProcessHandle.current().descendants().filter(p -> !before.contains(p) && p.isAlive()))
                .as("the host JVMs are stopped").isEmpty();

        Map<String, EvalResult> want = byKey(EvalReport.readResults(local.resolve(EvalReport.RESULTS)));
        Map<String, EvalResult> got = byKey(EvalReport.readResults(cluster.resolve(EvalReport.RESULTS)));
        assertThat(want).hasSize(6);
        assertThat(got.keySet()).isEqualTo(want.keySet());
        for (Map.Entry<String, EvalResult> e : want.entrySet()) {
            EvalResult w = e.getValue();
            EvalResult g = got.get(e.getKey());
            String what = w.id() + " in " + w.variant();
            assertThat(g.error()).as(what).isNull();
            assertThat(w.error()).as(what).isNull();
            assertThat(g.output()).as(what).isEqualTo(w.output());
            assertThat(g.outputTokens()).as(what).isEqualTo(w.outputTokens());
            assertThat(g.score()).as(what).isEqualTo(w.score());
            assertThat(g.blocks()).as(what).isEqualTo(w.blocks()).isEqualTo(w.mode().equals("star") ? 6 : 1);
            assertThat(g.anchorSize()).as(what).isEqualTo(w.anchorSize());
            assertThat(g.hosts()).as(what).isEqualTo(w.mode().equals("star") ? 2 : 0);
            assertThat(w.hosts()).as(what).isZero();
        }
        assertThat(Files.readString(cluster.resolve(EvalReport.SUMMARY_MD)))
                .contains("| hosts | 2 context-host JVMs on 127.0.0.1 + this JVM as the query host (star); global in "
                        + "process; blocks raised to a multiple of 3: 4 -> 6 |");
        assertThat(Files.readString(local.resolve(EvalReport.SUMMARY_MD))).contains("| hosts | 0 (in process) |");
    }

    /** Runs {@code eval} in this JVM (it spawns its hosts) and returns its stderr. */
    private static String evalInThisJvm(List<String> args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = StarAttentionCli.run(new PrintWriter(out, true), new PrintWriter(err, true), args.toArray(String[]::new));
        assertThat(code).as("exit code of %s; stderr:%n%s", args, err).isZero();
        return err.toString();
    }

    private static Map<String, EvalResult> byKey(List<EvalResult> results) {
        Map<String, EvalResult> m = new TreeMap<>();
        results.forEach(r -> m.put(r.id() + " / " + r.variant(), r));
        return m;
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
