package io.github.starattention.jlama.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.starattention.jlama.eval.EvalReport;
import io.github.starattention.jlama.eval.EvalResult;
import io.github.starattention.jlama.eval.Variant;
import io.github.starattention.jlama.model.PassingPolicy;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code eval --hosts}: what it runs where, and its bad input (refused before any model or host is loaded). */
class EvalCommandTest {

    @TempDir
    Path tmp;

    private record Result(int code, String err) {
    }

    private static Result run(String... args) {
        StringWriter err = new StringWriter();
        int code = StarAttentionCli.run(new PrintWriter(new StringWriter(), true), new PrintWriter(err, true), args);
        return new Result(code, err.toString());
    }

    private static void assertOneLine(Result r, String expected) {
        assertThat(r.code()).as(r.err()).isEqualTo(StarAttentionCli.BAD_INPUT);
        assertThat(r.err()).contains(expected).doesNotContain("\tat ");
        assertThat(r.err().strip().lines().count()).as(r.err()).isEqualTo(1);
    }

    private Path data() throws Exception {
        Path f = tmp.resolve("set.jsonl");
        Files.writeString(f, EvalCommandIT.EvalSetLine.of("a", "niah_single", 1024) + "\n");
        return f;
    }

    @Test
    void hostsMustBePositive() throws Exception {
        for (String n : List.of("0", "-2")) {
            assertOneLine(run("eval", "--data", data().toString(), "--out", tmp.resolve("o").toString(), "--hosts", n),
                    "--hosts must be at least 1, got " + n);
        }
    }

    @Test
    void globalAloneHasNothingToDistribute() throws Exception {
        assertOneLine(run("eval", "--data", data().toString(), "--out", tmp.resolve("o").toString(), "--modes", "global",
                "--hosts", "2"), "with --modes global alone there is nothing to distribute; drop --hosts");
    }

    @Test
    void aFolderOfInProcessResultsIsNotResumedOnHosts() throws Exception {
        Path out = tmp.resolve("o");
        try (EvalReport.ResultWriter w = new EvalReport.ResultWriter(out.resolve(EvalReport.RESULTS), false)) {
            w.accept(new EvalResult("a", "niah_single", 1024, "star", "star", null, "42", 1, 10, 9, 20, 1000, 20, 3, 128,
                    "stop", 4, 250, 250, null));
        }
        assertOneLine(run("eval", "--data", data().toString(), "--out", out.toString(), "--modes", "star", "--hosts", "2",
                "--resume"), "holds star results run in process, this run would run it on 2 context hosts; use another "
                + "--out, or the same --hosts");
    }

    @Test
    void theDescriptionSaysWhereEachVariantRunsAndWhichBlockCountsAreRaised() {
        List<Variant> vs = new ArrayList<>(List.of(Variant.global()));
        vs.addAll(Variant.sweep("passing=0,16:window", Variant.star(null, null, null, PassingPolicy.OFF)));
        assertThat(EvalCommand.hostsDescription(2, vs)).isEqualTo("2 context-host JVMs on 127.0.0.1 + this JVM as the "
                + "query host (star); global in process; blocks raised to a multiple of 3: 4 -> 6");
        assertThat(EvalCommand.hostsDescription(3, vs.subList(1, 3))).isEqualTo("3 context-host JVMs on 127.0.0.1 + "
                + "this JVM as the query host (star)");
        assertThat(EvalCommand.hostsDescription(1, Variant.sweep("blocks=1,2,3", Variant.star(null, null, null))))
                .endsWith("; blocks raised to a multiple of 2: 1 -> 2, 3 -> 4");
        assertThat(EvalCommand.hostsDescription(2, List.of(Variant.star(null, 128, null)))).doesNotContain("raised");
    }

    @Test
    void theClusterSpreadsABlockCountOverAllItsHosts() {
        Variant star = Variant.star(null, null, null);
        assertThat(ClusterEngineSource.spread(star, 2).blockCount()).isEqualTo(6);
        assertThat(ClusterEngineSource.spread(star, 1)).isSameAs(star);
        assertThat(ClusterEngineSource.spread(star, 3)).isSameAs(star);
        assertThat(ClusterEngineSource.spread(Variant.star(8, null, null), 2).blockCount()).isEqualTo(9);
        assertThat(ClusterEngineSource.spread(Variant.global(), 2)).isEqualTo(Variant.global());
    }
}
