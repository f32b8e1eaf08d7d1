package io.github.starattention.jlama.eval;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class EvalSummaryTest {

    @Test
    void aggregatesPerModeTaskAndLength() {
        EvalSummary s = new EvalSummary(Results.sample(), List.of(), Map.of());
        assertThat(s.variants()).containsExactly("global", "star");
        assertThat(s.tasks()).containsExactly("niah_single", "vt");
        assertThat(s.lengths()).containsExactly(1024, 4096);
        assertThat(s.overall("global").score()).isEqualTo(7.0 / 8);
        assertThat(s.overall("star").score()).isEqualTo(4.0 / 8);
        assertThat(s.overall("star").n()).isEqualTo(8);
        assertThat(s.at("global", "vt", 4096).score()).isEqualTo(0.5);
        assertThat(s.byTask("star", "niah_single").score()).isEqualTo(0.75);
        assertThat(s.byLength("star", 1024).score()).isEqualTo(0.75);
        assertThat(s.overall("global").ttftMs()).isEqualTo(600);
        assertThat(s.overall("star").ttftMs()).isEqualTo(300);
        assertThat(s.ratioStarToGlobal()).isEqualTo((4.0 / 8) / (7.0 / 8));
    }

    @Test
    void summaryJsonHasTheDocumentedShape() throws Exception {
        EvalSummary s = new EvalSummary(Results.sample(), List.of(new EvalSet.LineError(3, null, "not valid JSON: x")),
                Map.of("model", "m"));
        JsonNode j = new ObjectMapper().valueToTree(s.toJson());
        assertThat(j.get("model").asText()).isEqualTo("m");
        assertThat(j.at("/overall/global/score").asDouble()).isEqualTo(0.875);
        assertThat(j.at("/overall/global/n").asInt()).isEqualTo(8);
        assertThat(j.at("/overall/star/ttft_ms_mean").asDouble()).isEqualTo(300.0);
        assertThat(j.get("ratio_star_to_global").asDouble()).isEqualTo(0.5714);
        assertThat(j.at("/ratio_star_to_global_by_task/niah_single").asDouble()).isEqualTo(0.75);
        assertThat(j.at("/errors/malformed_lines").asInt()).isEqualTo(1);
        assertThat(j.at("/errors/details/0").asText()).isEqualTo("line 3: not valid JSON: x");
        JsonNode rows = j.get("rows");
        assertThat(rows).hasSize(8);
        JsonNode first = rows.get(0);
        assertThat(first.get("mode").asText()).isEqualTo("global");
        assertThat(first.get("task").asText()).isEqualTo("niah_single");
        assertThat(first.get("length").asInt()).isEqualTo(1024);
        assertThat(first.get("n").asInt()).isEqualTo(2);
        assertThat(first.get("score").asDouble()).isEqualTo(1.0);
        assertThat(first.has("ttft_ms_mean")).isTrue();
        assertThat(first.has("decode_tokens_per_s_mean")).isTrue();
        assertThat(j.has("sweep")).isFalse();
    }

    @Test
    void failedRunsAreErrorsNotZeroScores() {
        List<EvalResult> rs = new ArrayList<>(Results.sample());
        rs.add(Results.failed("x", "vt", 4096, "star", "prompt too long"));
        EvalSummary s = new EvalSummary(rs, List.of(), Map.of());
        assertThat(s.overall("star").n()).isEqualTo(8);
        assertThat(s.overall("star").errors()).isEqualTo(1);
        assertThat(s.overall("star").score()).isEqualTo(0.5);
        assertThat(s.failedRuns()).isEqualTo(1);
        JsonNode j = new ObjectMapper().valueToTree(s.toJson());
        assertThat(j.at("/errors/failed_runs").asInt()).isEqualTo(1);
        assertThat(j.at("/errors/details/0").asText()).isEqualTo("x (star): prompt too long");
    }

    @Test
    void sweepRowsOnePerSettingWithTheGlobalBaseline() {
        List<EvalResult> rs = new ArrayList<>();
        rs.add(Results.of("a", "niah_single", 1024, "global", 1, 100));
        rs.add(Results.of("a", "niah_single", 1024, "star anchor=0", 0, 40));
        rs.add(Results.of("a", "niah_single", 1024, "star anchor=1", 1, 60));
        EvalSummary s = new EvalSummary(rs, List.of(), Map.of());
        assertThat(s.isSweep()).isTrue();
        assertThat(s.sweepParameter()).isEqualTo("anchor");
        JsonNode j = new ObjectMapper().valueToTree(s.toJson());
        assertThat(j.at("/sweep/parameter").asText()).isEqualTo("anchor");
        assertThat(j.at("/sweep/rows")).hasSize(2);
        assertThat(j.at("/sweep/rows/0/setting").asText()).isEqualTo("anchor=0");
        assertThat(j.at("/sweep/rows/0/score").asDouble()).isZero();
        assertThat(j.at("/sweep/rows/1/ratio_to_global").asDouble()).isEqualTo(1.0);
        assertThat(j.at("/sweep/global/score").asDouble()).isEqualTo(1.0);
        assertThat(j.at("/overall/star anchor=0/ttft_ms_mean").asDouble()).isEqualTo(40.0);
    }

    @Test
    void markdownHasTheLengthByTaskTablesRatiosAndTimings() {
        EvalSummary s = new EvalSummary(Results.sample(), List.of(new EvalSet.LineError(3, "b", "missing field 'answers'")),
                Map.of("max_new_tokens", "RULER budget"));
        String md = MarkdownReport.render(s, "Evaluation: test");
        assertThat(md).startsWith("# Evaluation: test\n");
        assertThat(md).contains("| max new tokens | RULER budget |");
        assertThat(md).contains("## Accuracy by length and task: global\n\n| length | niah_single | vt | all |\n|---|---:|---:|---:|\n"
                + "| 1K | 100.0 | 100.0 | **100.0** |\n| 4K | 100.0 | 50.0 | **75.0** |\n"
                + "| **all** | **100.0** | **75.0** | **87.5** |");
        assertThat(md).contains("## Accuracy by length and task: star\n");
        assertThat(md).contains("| 4K | 50.0 | 0.0 | **25.0** |");
        assertThat(md).contains("## Star / global (ratio of scores)");
        assertThat(md).contains("| 1K | 1.00 | 0.50 | **0.750** |");
        assertThat(md).contains("Star / global score: **0.571**; time to first token, global / star: **2.00x**.");
        assertThat(md).contains("## Time to first token (ms, mean)\n\n| length | global | star | global / star |");
        assertThat(md).contains("| 4K | 1000 | 500 | 2.00x |");
        assertThat(md).contains("## Errors\n\n1 malformed line(s), 0 failed run(s).\n\n- line 3 (id 'b'): missing field 'answers'");
    }

    @Test
    void markdownSweepTable() {
        List<EvalResult> rs = new ArrayList<>();
        rs.add(Results.of("a", "vt", 1024, "global", 1, 100));
        rs.add(Results.of("a", "vt", 1024, "star anchor=0", 0, 40));
        rs.add(Results.of("a", "vt", 1024, "star anchor=1", 1, 60));
        String md = MarkdownReport.render(new EvalSummary(rs, List.of(), Map.of()), "Sweep");
        assertThat(md).contains("## Sweep: anchor");
        assertThat(md).contains("| setting | score | star / global | time to first token (ms) | prefill (ms) | vt |");
        assertThat(md).contains("| global | 100.0 | 1.000 | 100 | 90 | 100.0 |");
        assertThat(md).contains("| anchor=0 | 0.0 | 0.000 | 40 | 36 | 0.0 |");
    }

    @Test
    void resultsRoundTripThroughJsonl(@org.junit.jupiter.api.io.TempDir Path dir) {
        Path f = dir.resolve(EvalReport.RESULTS);
        try (EvalReport.ResultWriter w = new EvalReport.ResultWriter(f, false)) {
            Results.sample().forEach(w);
            w.accept(Results.failed("x", "vt", 4096, "star", "boom"));
        }
        List<EvalResult> back = EvalReport.readResults(f);
        assertThat(back).hasSize(17);
        assertThat(back.getFirst()).isEqualTo(Results.sample().getFirst());
        assertThat(back.getLast().error()).isEqualTo("boom");
    }

    @Test
    void resultLinesCarryTheDocumentedFields() {
        Map<String, Object> m = Results.sample().get(1).toJson();
        assertThat(m).containsKeys("id", "task", "length", "mode", "output", "score", "ttft_ms", "decode_tokens_per_s",
                "context_tokens", "blocks", "block_size", "anchor_size");
        assertThat(m.get("mode")).isEqualTo("star");
        assertThat(m).doesNotContainKeys("variant", "setting", "error");
        assertThat(m.get("hosts")).as("in process").isEqualTo(0);
    }

    @Test
    void theHostCountRoundTripsAndOldLinesReadAsInProcess(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        EvalResult r = Results.sample().get(1);
        EvalResult distributed = new EvalResult(r.id(), r.task(), r.length(), r.mode(), r.variant(), r.setting(),
                r.output(), r.score(), r.ttftMs(), r.prefillMs(), r.decodeTokensPerS(), r.contextTokens(),
                r.queryTokens(), r.outputTokens(), r.maxNewTokens(), r.finishReason(), 6, r.blockSize(), r.anchorSize(),
                null, 2);
        Path f = dir.resolve(EvalReport.RESULTS);
        try (EvalReport.ResultWriter w = new EvalReport.ResultWriter(f, false)) {
            w.accept(distributed);
        }
        // a line written before results had "hosts"
        Map<String, Object> old = new java.util.LinkedHashMap<>(r.toJson());
        old.remove("hosts");
        java.nio.file.Files.writeString(f, new ObjectMapper().writeValueAsString(old) + "\n",
                java.nio.file.StandardOpenOption.APPEND);
        List<EvalResult> back = EvalReport.readResults(f);
        assertThat(back.getFirst()).isEqualTo(distributed);
        assertThat(back.getFirst().hosts()).isEqualTo(2);
        assertThat(back.getLast()).isEqualTo(r);
        assertThat(back.getLast().hosts()).isZero();
    }
}
