package io.github.starattention.jlama.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.github.starattention.jlama.TestData;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code generate} and {@code eval} end to end with the bundled model: a few 1K examples in both modes, a malformed
 * line among them, then the output files.
 */
class EvalCommandIT {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    private record Result(int code, String out, String err) {
    }

    private static Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = StarAttentionCli.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Result(code, out.toString(), err.toString());
    }

    @Test
    void evaluatesGlobalAndStarAndWritesTheReports() throws Exception {
        // two niah_single and one vt example at 1K from the dev set, with a broken line between them
        List<String> dev = Files.readAllLines(TestData.root().resolve("data/evalsets/ruler-tiny-dev.jsonl"));
        List<String> lines = new ArrayList<>();
        lines.add(dev.stream().filter(l -> l.contains("\"id\": \"niah_single-1024-0\"")).findFirst().orElseThrow());
        lines.add("{\"id\": \"broken\", \"task\": \"vt\", \"length\": 1024");
        lines.add(dev.stream().filter(l -> l.contains("\"id\": \"niah_single-1024-1\"")).findFirst().orElseThrow());
        lines.add(dev.stream().filter(l -> l.contains("\"id\": \"vt-1024-0\"")).findFirst().orElseThrow());
        Path data = tmp.resolve("set.jsonl");
        Files.write(data, lines);
        Path out = tmp.resolve("eval");

        Result r = run("eval", "--data", data.toString(), "--out", out.toString(), "--modes", "global,star",
                "--threads", "2", "--device", "cpu", "--max-new-tokens", "64");

        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("line 2: not valid JSON");
        assertThat(r.out()).contains("star / global:");

        List<String> results = Files.readAllLines(out.resolve("results.jsonl"));
        assertThat(results).hasSize(6);
        for (String line : results) {
            JsonNode n = JSON.readTree(line);
            assertThat(n.get("mode").asText()).isIn("global", "star");
            assertThat(n.get("score").asDouble()).isBetween(0.0, 1.0);
            assertThat(n.get("ttft_ms").asDouble()).isPositive();
            assertThat(n.get("context_tokens").asInt()).isBetween(900, 1024);
            assertThat(n.get("blocks").asInt()).isEqualTo(n.get("mode").asText().equals("star") ? 4 : 1);
            if (n.get("mode").asText().equals("star")) {
                assertThat(n.get("anchor_size").asInt()).isEqualTo(n.get("block_size").asInt());
            }
            assertThat(n.has("decode_tokens_per_s")).isTrue();
            assertThat(n.has("output")).isTrue();
        }

        JsonNode summary = JSON.readTree(out.resolve("summary.json").toFile());
        assertThat(summary.at("/overall/global/n").asInt()).isEqualTo(3);
        assertThat(summary.at("/overall/star/n").asInt()).isEqualTo(3);
        assertThat(summary.at("/overall/star/score").asDouble()).isBetween(0.0, 1.0);
        assertThat(summary.at("/errors/malformed_lines").asInt()).isEqualTo(1);
        assertThat(summary.at("/errors/details/0").asText()).startsWith("line 2: not valid JSON");
        double globalNiah = 0;
        for (JsonNode row : summary.get("rows")) {
            if (row.get("mode").asText().equals("global") && row.get("task").asText().equals("niah_single")) {
                globalNiah = row.get("score").asDouble();
            }
        }
        assertThat(globalNiah).as("global on niah_single at 1K (the model card: 1.00)").isGreaterThanOrEqualTo(0.5);

        String md = Files.readString(out.resolve("summary.md"));
        assertThat(md).contains("## Accuracy by length and task: global", "## Accuracy by length and task: star",
                "## Star / global", "## Errors", "at most 64 new tokens");
        for (String png : List.of("accuracy-vs-length.png", "ttft-vs-length.png", "accuracy-by-task.png")) {
            byte[] b = Files.readAllBytes(out.resolve(png));
            assertThat(Arrays.copyOf(b, 4)).isEqualTo(new byte[] {(byte) 0x89, 'P', 'N', 'G'});
        }

        // a resumed run has nothing left to do and rebuilds the same summary
        Result again = run("eval", "--data", data.toString(), "--out", out.toString(), "--threads", "2",
                "--device", "cpu", "--max-new-tokens", "64", "--resume", "--no-charts");
        assertThat(again.code()).as(again.err()).isZero();
        assertThat(Files.readAllLines(out.resolve("results.jsonl"))).hasSize(6);
    }

    @Test
    void generatesASetInTheModelsTokens() throws Exception {
        Path f = tmp.resolve("gen.jsonl");
        Result r = run("generate", "--tasks", "niah_single,vt", "--lengths", "512,1024", "--per-task", "2", "--seed", "3",
                "--out", f.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("wrote 8 examples", "8 with exactly the requested length");
        List<String> lines = Files.readAllLines(f);
        assertThat(lines).hasSize(8);
        JsonNode first = JSON.readTree(lines.getFirst());
        assertThat(first.get("id").asText()).isEqualTo("niah_single-512-0");
        assertThat(first.get("length").asInt()).isEqualTo(512);
        assertThat(first.get("answers")).hasSize(1);
        assertThat(first.get("context").asText()).contains(first.get("answers").get(0).asText());
        // the same seed gives the same file
        Path g = tmp.resolve("gen2.jsonl");
        assertThat(run("generate", "--tasks", "niah_single,vt", "--lengths", "512,1024", "--per-task", "2", "--seed", "3",
                "--out", g.toString()).code()).isZero();
        assertThat(Files.readAllLines(g)).isEqualTo(lines);
    }

    @Test
    void badInputIsOneClearLine() throws Exception {
        Result r = run("eval", "--data", tmp.resolve("missing.jsonl").toString(), "--out", tmp.resolve("o").toString());
        assertThat(r.code()).isEqualTo(StarAttentionCli.BAD_INPUT);
        assertThat(r.err()).contains("cannot read evaluation set").doesNotContain("\tat ");
        Path data = tmp.resolve("one.jsonl");
        Files.writeString(data, EvalSetLine.of("a", "niah_single", 1024) + "\n");
        r = run("eval", "--data", data.toString(), "--out", tmp.resolve("o").toString(), "--sweep", "heads=1,2");
        assertThat(r.code()).isEqualTo(StarAttentionCli.BAD_INPUT);
        assertThat(r.err()).contains("--sweep parameter must be");
        r = run("eval", "--data", data.toString(), "--out", tmp.resolve("o").toString(), "--lengths", "2048");
        assertThat(r.code()).isEqualTo(StarAttentionCli.BAD_INPUT);
        assertThat(r.err()).contains("no examples of");
    }

    /** A minimal valid line. */
    static final class EvalSetLine {
        static String of(String id, String task, int length) {
            return "{\"id\": \"" + id + "\", \"task\": \"" + task + "\", \"length\": " + length
                    + ", \"context\": \"Some text.\", \"question\": \"What?\", \"answers\": [\"42\"]}";
        }
    }
}
