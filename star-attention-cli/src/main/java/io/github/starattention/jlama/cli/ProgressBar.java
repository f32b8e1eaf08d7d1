package io.github.starattention.jlama.cli;

import java.io.PrintStream;

/** A one-line text progress bar with rate and ETA, redrawn in place on a terminal stream. */
public final class ProgressBar {

    private static final int WIDTH = 30;

    private final String label;
    private final PrintStream out;
    private final long start = System.nanoTime();
    private long lastDraw;
    private boolean drawn;

    public ProgressBar(String label, PrintStream out) {
        this.label = label;
        this.out = out;
    }

    /** A bar that draws nothing. */
    public static ProgressBar silent() {
        return new ProgressBar("", null);
    }

    /** Records {@code done} of {@code total} units; redraws at most every 100 ms and at the end. */
    public synchronized void update(int done, int total) {
        if (out == null) {
            return;
        }
        long now = System.nanoTime();
        if (done < total && now - lastDraw < 100_000_000L) {
            return;
        }
        lastDraw = now;
        double frac = total == 0 ? 1 : (double) done / total;
        int fill = (int) Math.round(frac * WIDTH);
        double secs = (now - start) / 1e9;
        double rate = secs > 0 ? done / secs : 0;
        double eta = rate > 0 ? (total - done) / rate : 0;
        out.printf("\r%s [%s%s] %3d%% %d/%d  %.0f/s  ETA %s ", label, "#".repeat(fill), ".".repeat(WIDTH - fill),
                (int) (frac * 100), done, total, rate, formatSeconds(eta));
        out.flush();
        drawn = true;
    }

    /** Ends the bar's line. */
    public synchronized void done() {
        if (out != null && drawn) {
            out.println();
            drawn = false;
        }
    }

    static String formatSeconds(double s) {
        long t = Math.round(s);
        return t >= 60 ? (t / 60) + "m" + String.format("%02d", t % 60) + "s" : t + "s";
    }
}
