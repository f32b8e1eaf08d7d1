package io.github.starattention.jlama.cli;

import io.github.starattention.jlama.eval.EvalResult;
import io.github.starattention.jlama.eval.EvalRunner;
import java.io.PrintWriter;
import java.util.Locale;

/**
 * The progress line of {@code eval}: a bar over the runs (example x mode), the ETA from the work still to do (long
 * contexts weigh more) and the last result. Redrawn in place on a terminal, one line every 15 s otherwise.
 */
final class EvalProgress implements EvalRunner.Progress {

    private static final int WIDTH = 30;

    private final PrintWriter out;
    private final boolean terminal;
    private final long start = System.nanoTime();
    private double skippedWork;
    private long lastDraw;
    private boolean drawn;

    EvalProgress(PrintWriter out, boolean terminal) {
        this.out = out;
        this.terminal = terminal;
    }

    @Override
    public synchronized void update(int done, int total, double doneWork, double totalWork, EvalResult last) {
        if (out == null) {
            return;
        }
        long now = System.nanoTime();
        if (last == null) {
            skippedWork = doneWork;
        }
        if (done < total && now - lastDraw < (terminal ? 200_000_000L : 15_000_000_000L)) {
            return;
        }
        lastDraw = now;
        double secs = (now - start) / 1e9;
        double ranWork = doneWork - skippedWork;
        double eta = ranWork > 0 ? secs * (totalWork - doneWork) / ranWork : Double.NaN;
        double frac = totalWork == 0 ? 1 : doneWork / totalWork;
        int fill = (int) Math.round(frac * WIDTH);
        String lastText = last == null ? "" : String.format(Locale.ROOT, "  last: %s %s %s", last.id(), last.variant(),
                last.failed() ? "ERROR" : String.format(Locale.ROOT, "%.2f", last.score()));
        String line = String.format(Locale.ROOT, "eval [%s%s] %3d%% %d/%d runs  %s elapsed  ETA %s%s", "#".repeat(fill),
                ".".repeat(WIDTH - fill), (int) (frac * 100), done, total, ProgressBar.formatSeconds(secs),
                Double.isNaN(eta) ? "?" : ProgressBar.formatSeconds(eta), lastText);
        if (terminal) {
            out.print("\r" + line + "\u001b[K");
            drawn = true;
        } else {
            out.println(line);
        }
        out.flush();
    }

    /** Ends the bar's line. */
    synchronized void done() {
        if (out != null && drawn) {
            out.println();
            drawn = false;
        }
    }
}
