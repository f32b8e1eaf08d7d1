package io.github.starattention.jlama.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** {@code summary.md}: the tables a reader of the paper expects (length x task per mode, star/global, timings, sweeps). */
public final class MarkdownReport {

    private MarkdownReport() {
    }

    /** The whole report. */
    public static String render(EvalSummary s, String title) {
        StringBuilder md = new StringBuilder();
        md.append("# ").append(title).append("\n\n");
        if (!s.meta().isEmpty()) {
            md.append("| | |\n|---|---|\n");
            for (Map.Entry<String, Object> e : s.meta().entrySet()) {
                md.append("| ").append(e.getKey().replace('_', ' ')).append(" | ").append(cellText(e.getValue())).append(" |\n");
            }
            md.append('\n');
        }
        md.append("Scores are RULER's string_match_all (share of the expected strings found in the output, ignoring case), ")
                .append("in percent, averaged over examples. Times are means per example; time to first token = context ")
                .append("prefill + query prefill + first token.\n\n");
        overall(md, s);
        for (String v : s.variants()) {
            byLengthAndTask(md, s, v);
        }
        if (s.starVariant() != null && s.variants().contains("global")) {
            ratios(md, s);
        }
        timings(md, s);
        if (s.isSweep()) {
            sweep(md, s);
        }
        if (s.reference() != null) {
            reference(md, s);
        }
        errors(md, s);
        return md.toString();
    }

    static void overall(StringBuilder md, EvalSummary s) {
        md.append("## Overall\n\n| mode | score | n | time to first token (ms) | prefill (ms) | decode tokens/s | errors |\n")
                .append("|---|---:|---:|---:|---:|---:|---:|\n");
        for (String v : s.variants()) {
            EvalSummary.Cell c = s.overall(v);
            md.append("| ").append(v).append(" | ").append(pct(c.score())).append(" | ").append(c.n()).append(" | ")
                    .append(fmt(c.ttftMs(), 0)).append(" | ").append(fmt(c.prefillMs(), 0)).append(" | ")
                    .append(fmt(c.decodeTokensPerS(), 1)).append(" | ").append(c.errors()).append(" |\n");
        }
        md.append('\n');
        double ratio = s.ratioStarToGlobal();
        if (!Double.isNaN(ratio)) {
            double speed = s.overall("global").ttftMs() / s.overall("star").ttftMs();
            md.append(String.format(Locale.ROOT, "Star / global score: **%.3f**; time to first token, global / star: **%.2fx**.%n%n",
                    ratio, speed));
        }
    }

    static void byLengthAndTask(StringBuilder md, EvalSummary s, String variant) {
        md.append("## Accuracy by length and task: ").append(variant).append("\n\n");
        header(md, "length", s.tasks(), "all");
        for (int l : s.lengths()) {
            md.append("| ").append(lengthLabel(l)).append(" |");
            for (String t : s.tasks()) {
                md.append(' ').append(pct(s.at(variant, t, l).score())).append(" |");
            }
            md.append(" **").append(pct(s.byLength(variant, l).score())).append("** |\n");
        }
        md.append("| **all** |");
        for (String t : s.tasks()) {
            md.append(" **").append(pct(s.byTask(variant, t).score())).append("** |");
        }
        md.append(" **").append(pct(s.overall(variant).score())).append("** |\n\n");
        int min = Integer.MAX_VALUE;
        int max = 0;
        for (int l : s.lengths()) {
            for (String t : s.tasks()) {
                int n = s.at(variant, t, l).n();
                if (n > 0) {
                    min = Math.min(min, n);
                    max = Math.max(max, n);
                }
            }
        }
        if (max > 0) {
            md.append("Examples per cell: ").append(min == max ? String.valueOf(min) : min + " to " + max).append(".\n\n");
        }
    }

    static void ratios(StringBuilder md, EvalSummary s) {
        md.append("## Star / global (ratio of scores)\n\n");
        header(md, "length", s.tasks(), "all");
        for (int l : s.lengths()) {
            md.append("| ").append(lengthLabel(l)).append(" |");
            for (String t : s.tasks()) {
                md.append(' ').append(fmt(EvalSummary.ratio(s.at("star", t, l), s.at("global", t, l)), 2)).append(" |");
            }
            md.append(" **").append(fmt(EvalSummary.ratio(s.byLength("star", l), s.byLength("global", l)), 3)).append("** |\n");
        }
        md.append("| **all** |");
        for (String t : s.tasks()) {
            md.append(" **").append(fmt(EvalSummary.ratio(s.byTask("star", t), s.byTask("global", t)), 3)).append("** |");
        }
        md.append(" **").append(fmt(s.ratioStarToGlobal(), 3)).append("** |\n\n");
        md.append("A ratio is blank where global scores 0.\n\n");
    }

    static void timings(StringBuilder md, EvalSummary s) {
        md.append("## Time to first token (ms, mean)\n\n");
        List<String> cols = new ArrayList<>(s.variants());
        boolean speedup = s.variants().contains("global") && s.variants().contains("star");
        header(md, "length", cols, speedup ? "global / star" : null);
        for (int l : s.lengths()) {
            md.append("| ").append(lengthLabel(l)).append(" |");
            for (String v : cols) {
                md.append(' ').append(fmt(s.byLength(v, l).ttftMs(), 0)).append(" |");
            }
            if (speedup) {
                md.append(' ').append(fmt(s.byLength("global", l).ttftMs() / s.byLength("star", l).ttftMs(), 2)).append("x |");
            }
            md.append('\n');
        }
        md.append('\n');
        md.append("## Decode speed (tokens/s, mean)\n\n");
        header(md, "length", cols, null);
        for (int l : s.lengths()) {
            md.append("| ").append(lengthLabel(l)).append(" |");
            for (String v : cols) {
                md.append(' ').append(fmt(s.byLength(v, l).decodeTokensPerS(), 1)).append(" |");
            }
            md.append('\n');
        }
        md.append('\n');
    }

    static void sweep(StringBuilder md, EvalSummary s) {
        String p = s.sweepParameter();
        md.append("## Sweep: ").append(p).append("\n\n");
        if (p.equals("anchor")) {
            md.append("Anchor as a fraction of the block (0 = no anchor, 1 = anchor = block, the paper's default).\n\n");
        } else if (p.equals("blocks")) {
            md.append("Number of context blocks (1 block = global attention; block = ceil(context / blocks)).\n\n");
        }
        List<String> cols = new ArrayList<>(List.of("score", "star / global", "time to first token (ms)", "prefill (ms)"));
        cols.addAll(s.tasks());
        header(md, "setting", cols, null);
        for (String v : s.variants()) {
            EvalSummary.Cell c = s.overall(v);
            String name = v.startsWith("star ") ? v.substring(5) : v;
            md.append("| ").append(name).append(" | ").append(pct(c.score())).append(" | ")
                    .append(s.variants().contains("global") ? fmt(EvalSummary.ratio(c, s.overall("global")), 3) : "")
                    .append(" | ").append(fmt(c.ttftMs(), 0)).append(" | ").append(fmt(c.prefillMs(), 0)).append(" |");
            for (String t : s.tasks()) {
                md.append(' ').append(pct(s.byTask(v, t).score())).append(" |");
            }
            md.append('\n');
        }
        md.append('\n');
    }

    static void reference(StringBuilder md, EvalSummary s) {
        md.append("## Against the reference outputs\n\n").append("Reference: `").append(s.reference().file().getFileName())
                .append("`.\n\n| mode | task | n | reference | ours | difference | identical outputs |\n")
                .append("|---|---|---:|---:|---:|---:|---:|\n");
        for (ReferenceComparison.ModeRow r : s.reference().rows(s.results())) {
            boolean all = r.task() == null;
            String b = all ? "**" : "";
            md.append("| ").append(r.mode()).append(" | ").append(all ? "**all**" : r.task()).append(" | ").append(r.n())
                    .append(" | ").append(b).append(fmt(r.referenceScore(), 3)).append(b).append(" | ")
                    .append(b).append(fmt(r.ourScore(), 3)).append(b).append(" | ")
                    .append(String.format(Locale.ROOT, "%+.3f", r.ourScore() - r.referenceScore())).append(" | ")
                    .append(r.identical()).append(" / ").append(r.n()).append(" |\n");
        }
        md.append('\n');
    }

    static void errors(StringBuilder md, EvalSummary s) {
        int n = s.lineErrors().size() + s.failedRuns();
        if (n == 0) {
            return;
        }
        md.append("## Errors\n\n").append(s.lineErrors().size()).append(" malformed line(s), ").append(s.failedRuns())
                .append(" failed run(s).\n\n");
        s.lineErrors().forEach(e -> md.append("- ").append(e).append('\n'));
        s.results().stream().filter(EvalResult::failed).forEach(r -> md.append("- ").append(r.id()).append(" (")
                .append(r.variant()).append("): ").append(r.error()).append('\n'));
        md.append('\n');
    }

    private static void header(StringBuilder md, String first, List<String> cols, String last) {
        md.append("| ").append(first).append(" |");
        cols.forEach(c -> md.append(' ').append(c).append(" |"));
        if (last != null) {
            md.append(' ').append(last).append(" |");
        }
        md.append("\n|---|");
        cols.forEach(c -> md.append("---:|"));
        if (last != null) {
            md.append("---:|");
        }
        md.append('\n');
    }

    /** {@code 1024 -> 1K}, {@code 16384 -> 16K}, others as they are. */
    public static String lengthLabel(int length) {
        return length >= 1024 && length % 1024 == 0 ? (length / 1024) + "K" : String.valueOf(length);
    }

    /** A score in [0, 1] as a percentage with one decimal; blank for NaN. */
    static String pct(double v) {
        return Double.isNaN(v) ? "" : String.format(Locale.ROOT, "%.1f", v * 100);
    }

    static String fmt(double v, int digits) {
        return Double.isNaN(v) || Double.isInfinite(v) ? "" : String.format(Locale.ROOT, "%." + digits + "f", v);
    }

    private static String cellText(Object v) {
        return String.valueOf(v).replace("|", "\\|").replace("\n", " ");
    }
}
