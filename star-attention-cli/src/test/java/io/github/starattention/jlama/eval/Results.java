package io.github.starattention.jlama.eval;

import java.util.ArrayList;
import java.util.List;

/** Synthetic results for report tests. */
final class Results {

    private Results() {
    }

    static EvalResult of(String id, String task, int length, String variant, double score, double ttftMs) {
        String mode = variant.startsWith("star") ? "star" : "global";
        String setting = variant.startsWith("star ") ? variant.substring(5) : null;
        return new EvalResult(id, task, length, mode, variant, setting, "out " + score, score, ttftMs, ttftMs * 0.9, 20,
                length - 30, 25, 20, 128, "stop", mode.equals("star") ? 4 : 1, mode.equals("star") ? length / 4 : length,
                mode.equals("star") ? length / 4 : 0, null);
    }

    static EvalResult failed(String id, String task, int length, String variant, String error) {
        String mode = variant.startsWith("star") ? "star" : "global";
        return new EvalResult(id, task, length, mode, variant, null, "", 0, 0, 0, 0, 0, 0, 0, 128, "error", 0, 0, 0, error);
    }

    /**
     * Global: niah_single 1.0 at both lengths, vt 1.0 at 1K and 0.5 at 4K. Star: niah_single 1.0 and 0.5, vt 0.5 and
     * 0.0. Two examples per cell; global takes 200 ms at 1K and 1000 ms at 4K, star half that.
     */
    static List<EvalResult> sample() {
        List<EvalResult> out = new ArrayList<>();
        double[][] global = {{1, 1}, {1, 1}, {1, 1}, {1, 0}};   // rows: single@1K, single@4K, vt@1K, vt@4K
        double[][] star = {{1, 1}, {1, 0}, {1, 0}, {0, 0}};
        String[] tasks = {"niah_single", "niah_single", "vt", "vt"};
        int[] lengths = {1024, 4096, 1024, 4096};
        for (int row = 0; row < 4; row++) {
            for (int k = 0; k < 2; k++) {
                String id = tasks[row] + "-" + lengths[row] + "-" + k;
                double t = lengths[row] == 1024 ? 200 : 1000;
                out.add(of(id, tasks[row], lengths[row], "global", global[row][k], t));
                out.add(of(id, tasks[row], lengths[row], "star", star[row][k], t / 2));
            }
        }
        return out;
    }
}
