package io.github.starattention.jlama.bench;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

class GpuBenchCommandTest {

    private static final long GIB = 1L << 30;

    @Test
    void theReportDividesOursByPyTorchForEachTarget() throws Exception {
        var global = new GpuBenchCommand.Ours("global", 8192, 100, 110, 400, 32, 3 * GIB, 2 * GIB, GIB / 2);
        var star = new GpuBenchCommand.Ours("star", 8192, 80, 90, 200, 32, 3 * GIB, 2 * GIB, GIB / 2);
        JsonNode torch = new ObjectMapper().readTree("{\"impl\":\"torch\",\"length\":8192,\"prefill_ms\":50,"
                + "\"prefill_tokens_per_s\":163840,\"decode_tokens_per_s\":50,\"peak_gib\":3.5}");
        String row = GpuBenchCommand.report(List.of(global, star), List.of(torch)).lines()
                .filter(l -> l.startsWith("| 8,192")).findFirst().orElseThrow();
        List<String> cells = Arrays.stream(row.split("\\|")).map(String::strip).skip(1).toList();
        assertThat(cells.get(1)).isEqualTo("81,920");   // 8192 tokens in 100 ms
        assertThat(cells.get(3)).isEqualTo("0.50");     // against 163,840 tokens/s
        assertThat(cells.get(4)).isEqualTo("110");      // our global time to first token
        assertThat(cells.get(5)).isEqualTo("90");       // star's
        assertThat(cells.get(7)).isEqualTo("1.80");     // star / PyTorch's 50 ms prefill
        assertThat(cells.get(11)).isEqualTo("8.00");    // decode 400 / 50
        assertThat(cells.get(14)).isEqualTo("1.20");    // 3 GiB over 2.5 GiB of weights and KV
        assertThat(cells.get(15)).isEqualTo("3.50");
    }

    @Test
    void aMissingBaselineLeavesItsRatiosOpen() {
        var global = new GpuBenchCommand.Ours("global", 4096, 100, 110, 400, 32, 3 * GIB, 2 * GIB, GIB / 2);
        String report = GpuBenchCommand.report(List.of(global), List.of());
        assertThat(report).contains("| 4,096 | 40,960 | NaN | NaN |");
    }

    @Test
    void contextIdsAreSeededAndAvoidTheSpecialTokens() {
        int[] a = GpuBenchCommand.ids(10_000, 128_256, 7);
        assertThat(a).isEqualTo(GpuBenchCommand.ids(10_000, 128_256, 7));
        assertThat(a).isNotEqualTo(GpuBenchCommand.ids(10_000, 128_256, 8));
        assertThat(Arrays.stream(a).min().orElseThrow()).isGreaterThanOrEqualTo(1000);
        assertThat(Arrays.stream(a).max().orElseThrow()).isLessThan(128_256 - 1000);
    }
}
