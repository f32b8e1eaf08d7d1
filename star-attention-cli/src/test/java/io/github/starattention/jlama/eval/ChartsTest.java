package io.github.starattention.jlama.eval;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ChartsTest {

    private static final byte[] PNG = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    static void assertPng(Path f) throws Exception {
        assertThat(f).exists();
        byte[] b = Files.readAllBytes(f);
        assertThat(b.length).isGreaterThan(1000);
        assertThat(Arrays.copyOf(b, 8)).isEqualTo(PNG);
    }

    @Test
    void writesAccuracyTimeAndPerTaskCharts(@TempDir Path dir) throws Exception {
        EvalSummary s = new EvalSummary(Results.sample(), List.of(), Map.of());
        List<Path> files = EvalReport.write(s, dir, "t", true);
        assertThat(files).extracting(p -> p.getFileName().toString()).contains(EvalReport.SUMMARY_JSON, EvalReport.SUMMARY_MD,
                Charts.ACCURACY, Charts.TTFT, Charts.BY_TASK);
        assertPng(dir.resolve(Charts.ACCURACY));
        assertPng(dir.resolve(Charts.TTFT));
        assertPng(dir.resolve(Charts.BY_TASK));
    }

    @Test
    void writesTheSweepChart(@TempDir Path dir) throws Exception {
        List<EvalResult> rs = new ArrayList<>();
        for (String v : List.of("global", "star blocks=1", "star blocks=2", "star blocks=4", "star blocks=8")) {
            rs.add(Results.of("a", "vt", 4096, v, v.endsWith("8") ? 0.5 : 1, 100));
        }
        List<Path> files = Charts.write(new EvalSummary(rs, List.of(), Map.of()), dir);
        assertThat(files).extracting(p -> p.getFileName().toString()).contains("sweep-blocks.png");
        assertPng(dir.resolve("sweep-blocks.png"));
    }

    @Test
    void noChartsWithoutResults(@TempDir Path dir) {
        List<EvalResult> rs = List.of(Results.failed("x", "vt", 1024, "global", "boom"));
        assertThat(Charts.write(new EvalSummary(rs, List.of(), Map.of()), dir)).isEmpty();
    }
}
