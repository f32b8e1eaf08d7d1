package io.github.starattention.jlama.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.github.starattention.jlama.model.PassingPolicy;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class ClusterBenchmarkTest {

    private static final String PASSING = "64:window";

    private static ClusterBenchmark.Row run(String name, int hosts, String passing, int run, double prefillMs) {
        return new ClusterBenchmark.Row(name, passing, run, hosts, 4, prefillMs, prefillMs + 50, 100, 32, 0, 0, 0, null);
    }

    @Test
    void thePassingRatioIsFastestOverFastestWithTheRangeOfEachRunsPair() {
        List<ClusterBenchmark.Row> runs = List.of(
                run("in-process global", 0, ClusterBenchmark.PLAIN, 1, 3000),
                run("in-process star", 0, ClusterBenchmark.PLAIN, 1, 1000),
                run("in-process star", 0, PASSING, 1, 1100),
                run("in-process star", 0, PASSING, 2, 1040),
                run("in-process star", 0, ClusterBenchmark.PLAIN, 2, 800),
                run("2 host JVMs", 2, ClusterBenchmark.PLAIN, 1, 500),
                run("2 host JVMs", 2, PASSING, 1, 700),
                run("2 host JVMs", 2, ClusterBenchmark.PLAIN, 2, 600),
                run("2 host JVMs", 2, PASSING, 2, 720),
                run("2 host JVMs (no anchor sharing)", 2, ClusterBenchmark.PLAIN, 1, 650));

        List<ClusterBenchmark.PassingRatio> ratios = ClusterBenchmark.passingRatios(runs);

        // global and the configuration without passing runs have nothing to compare
        assertThat(ratios).extracting(ClusterBenchmark.PassingRatio::name).containsExactly("in-process star",
                "2 host JVMs");
        ClusterBenchmark.PassingRatio local = ratios.get(0);
        assertThat(local.passing()).isEqualTo(PASSING);
        assertThat(local.plainMs()).isEqualTo(800);
        assertThat(local.passingMs()).isEqualTo(1040);
        assertThat(local.ratio()).isCloseTo(1040.0 / 800, within(1e-12));
        assertThat(local.minRunRatio()).isCloseTo(1100.0 / 1000, within(1e-12));
        assertThat(local.maxRunRatio()).isCloseTo(1040.0 / 800, within(1e-12));
        ClusterBenchmark.PassingRatio two = ratios.get(1);
        assertThat(two.contextHosts()).isEqualTo(2);
        assertThat(two.ratio()).isCloseTo(700.0 / 500, within(1e-12));
        assertThat(two.minRunRatio()).isCloseTo(720.0 / 600, within(1e-12));
        assertThat(two.maxRunRatio()).isCloseTo(700.0 / 500, within(1e-12));
    }

    @Test
    void aPassingRunWithoutAPlainRunOfTheSameRoundHasNoPairRatio() {
        List<ClusterBenchmark.PassingRatio> ratios = ClusterBenchmark.passingRatios(List.of(
                run("1 host JVM", 1, ClusterBenchmark.PLAIN, 1, 400), run("1 host JVM", 1, PASSING, 2, 440)));
        assertThat(ratios).singleElement().satisfies(p -> {
            assertThat(p.ratio()).isCloseTo(1.1, within(1e-12));
            assertThat(p.minRunRatio()).isNaN();
        });
    }

    @Test
    void theReportSaysWhetherEachRatioIsWithinTheTarget() {
        List<ClusterBenchmark.PassingRatio> ratios = ClusterBenchmark.passingRatios(List.of(
                run("in-process star", 0, ClusterBenchmark.PLAIN, 1, 1000), run("in-process star", 0, PASSING, 1, 1070),
                run("4 host JVMs", 4, ClusterBenchmark.PLAIN, 1, 300), run("4 host JVMs", 4, PASSING, 1, 450)));
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ClusterBenchmark.printPassingRatios(ratios, new PrintStream(bytes, true, StandardCharsets.UTF_8));
        String out = bytes.toString(StandardCharsets.UTF_8);

        assertThat(out).contains("target: at most 1.3x")
                .contains("| in-process star | 0 | 64:window | 1000 | 1070 | 1.07x | 1.07-1.07x | yes |")
                .contains("| 4 host JVMs | 4 | 64:window | 300 | 450 | 1.50x | 1.50-1.50x | NO |");
    }

    @Test
    void nothingIsReportedWithoutPassingRuns() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ClusterBenchmark.printPassingRatios(ClusterBenchmark.passingRatios(List.of(
                run("in-process star", 0, ClusterBenchmark.PLAIN, 1, 1000))), new PrintStream(bytes));
        assertThat(bytes.size()).isZero();
    }

    @Test
    void thePolicyLabelIsTheSweepsSyntax() {
        assertThat(ClusterBenchmark.label(PassingPolicy.OFF)).isEqualTo(ClusterBenchmark.PLAIN);
        assertThat(ClusterBenchmark.label(PassingPolicy.of(16, PassingPolicy.Selection.SPREAD))).isEqualTo("16:spread");
    }
}
