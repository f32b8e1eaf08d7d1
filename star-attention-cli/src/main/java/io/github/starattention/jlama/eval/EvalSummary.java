package io.github.starattention.jlama.eval;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Predicate;

/**
 * Aggregates of an evaluation: per variant overall, per (variant, task, length), per task and per length, the
 * star/global ratios and, for sweeps, one row per setting. Scores are means over examples of string_match_all;
 * failed runs are counted as errors and left out of the means.
 */
public final class EvalSummary {

    /**
     * Mean values over a group of results.
     *
     * @param n results that ran
     * @param errors results that failed
     * @param score mean score in [0, 1], NaN when {@code n == 0}
     * @param ttftMs mean time to first token
     * @param prefillMs mean context prefill time
     * @param decodeTokensPerS mean decode speed over results that decoded more than one token
     */
    public record Cell(int n, int errors, double score, double ttftMs, double prefillMs, double decodeTokensPerS) {

        static Cell of(List<EvalResult> rs) {
            int n = 0;
            int errors = 0;
            double score = 0;
            double ttft = 0;
            double prefill = 0;
            double tps = 0;
            int tpsN = 0;
            for (EvalResult r : rs) {
                if (r.failed()) {
                    errors++;
                    continue;
                }
                n++;
                score += r.score();
                ttft += r.ttftMs();
                prefill += r.prefillMs();
                if (r.decodeTokensPerS() > 0) {
                    tps += r.decodeTokensPerS();
                    tpsN++;
                }
            }
            return new Cell(n, errors, n == 0 ? Double.NaN : score / n, n == 0 ? Double.NaN : ttft / n,
                    n == 0 ? Double.NaN : prefill / n, tpsN == 0 ? Double.NaN : tps / tpsN);
        }
    }

    private final List<EvalResult> results;
    private final List<EvalSet.LineError> lineErrors;
    private final Map<String, Object> meta;
    private final List<String> variants;
    private final List<String> tasks;
    private final List<Integer> lengths;
    private final ReferenceComparison reference;

    /**
     * @param results all results (any order)
     * @param lineErrors malformed lines of the set
     * @param meta run description for the reports (model, data, token cap...), written first in summary.json
     */
    public EvalSummary(List<EvalResult> results, List<EvalSet.LineError> lineErrors, Map<String, Object> meta) {
        this(results, lineErrors, meta, null);
    }

    /** As above, with reference outputs to compare with (null for none). */
    public EvalSummary(List<EvalResult> results, List<EvalSet.LineError> lineErrors, Map<String, Object> meta,
                       ReferenceComparison reference) {
        this.reference = reference;
        this.results = List.copyOf(results);
        this.lineErrors = List.copyOf(lineErrors);
        this.meta = new LinkedHashMap<>(meta);
        LinkedHashSet<String> v = new LinkedHashSet<>();
        results.stream().filter(r -> r.variant().equals("global")).findFirst().ifPresent(r -> v.add("global"));
        results.forEach(r -> v.add(r.variant()));
        this.variants = List.copyOf(v);
        this.tasks = results.stream().map(EvalResult::task).distinct().sorted(Comparator.comparingInt(EvalSummary::taskOrder)
                .thenComparing(Comparator.naturalOrder())).toList();
        this.lengths = results.stream().map(EvalResult::length).distinct().sorted().toList();
    }

    /** RULER's order of the tasks this project generates; others after them, by name. */
    static int taskOrder(String t) {
        int i = List.of("niah_single", "niah_multikey", "niah_multivalue", "niah_multiquery", "vt", "fact_qa").indexOf(t);
        return i < 0 ? 100 : i;
    }

    /** The reference comparison, or null. */
    public ReferenceComparison reference() {
        return reference;
    }

    public List<EvalResult> results() {
        return results;
    }

    public List<EvalSet.LineError> lineErrors() {
        return lineErrors;
    }

    public Map<String, Object> meta() {
        return meta;
    }

    /** Variant labels, global first, then in run order. */
    public List<String> variants() {
        return variants;
    }

    public List<String> tasks() {
        return tasks;
    }

    public List<Integer> lengths() {
        return lengths;
    }

    /** Whether the results hold a sweep (variants with a setting). */
    public boolean isSweep() {
        return results.stream().anyMatch(r -> r.setting() != null);
    }

    /** The sweep parameter ({@code anchor}, {@code blocks}...), or null. */
    public String sweepParameter() {
        return results.stream().filter(r -> r.setting() != null).map(r -> r.setting().substring(0, r.setting().indexOf('=')))
                .findFirst().orElse(null);
    }

    /** The aggregate of the results that pass {@code filter}. */
    public Cell cell(Predicate<EvalResult> filter) {
        return Cell.of(results.stream().filter(filter).toList());
    }

    public Cell overall(String variant) {
        return cell(r -> r.variant().equals(variant));
    }

    public Cell byTask(String variant, String task) {
        return cell(r -> r.variant().equals(variant) && r.task().equals(task));
    }

    public Cell byLength(String variant, int length) {
        return cell(r -> r.variant().equals(variant) && r.length() == length);
    }

    public Cell at(String variant, String task, int length) {
        return cell(r -> r.variant().equals(variant) && r.task().equals(task) && r.length() == length);
    }

    /** Number of failed runs. */
    public int failedRuns() {
        return (int) results.stream().filter(EvalResult::failed).count();
    }

    /** {@code a / b}, or NaN when either is missing or {@code b} is 0. */
    public static double ratio(Cell a, Cell b) {
        if (a.n() == 0 || b.n() == 0 || Double.isNaN(a.score()) || Double.isNaN(b.score()) || b.score() == 0) {
            return Double.NaN;
        }
        return a.score() / b.score();
    }

    /** The variant a ratio to global is reported for: {@code star} when present. */
    public String starVariant() {
        return variants.contains("star") ? "star" : null;
    }

    /** Star's overall score over global's, NaN when either is missing. */
    public double ratioStarToGlobal() {
        return variants.contains("global") && variants.contains("star") ? ratio(overall("star"), overall("global")) : Double.NaN;
    }

    /** The summary.json object. */
    public Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<>(meta);
        Map<String, Object> errors = new LinkedHashMap<>();
        errors.put("malformed_lines", lineErrors.size());
        errors.put("failed_runs", failedRuns());
        List<String> details = new ArrayList<>();
        lineErrors.forEach(e -> details.add(e.toString()));
        results.stream().filter(EvalResult::failed).forEach(r -> details.add(r.id() + " (" + r.variant() + "): " + r.error()));
        errors.put("details", details);
        m.put("errors", errors);
        Map<String, Object> overall = new LinkedHashMap<>();
        for (String v : variants) {
            Cell c = overall(v);
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("score", num(c.score(), 4));
            o.put("n", c.n());
            o.put("ttft_ms_mean", num(c.ttftMs(), 1));
            o.put("prefill_ms_mean", num(c.prefillMs(), 1));
            o.put("decode_tokens_per_s_mean", num(c.decodeTokensPerS(), 2));
            o.put("errors", c.errors());
            overall.put(v, o);
        }
        m.put("overall", overall);
        m.put("ratio_star_to_global", num(ratioStarToGlobal(), 4));
        if (variants.contains("global") && variants.contains("star")) {
            Map<String, Object> byTask = new LinkedHashMap<>();
            for (String t : tasks) {
                byTask.put(t, num(ratio(byTask("star", t), byTask("global", t)), 4));
            }
            m.put("ratio_star_to_global_by_task", byTask);
            Map<String, Object> byLength = new LinkedHashMap<>();
            for (int l : lengths) {
                byLength.put(String.valueOf(l), num(ratio(byLength("star", l), byLength("global", l)), 4));
            }
            m.put("ratio_star_to_global_by_length", byLength);
            m.put("ttft_speedup_star_vs_global", num(overall("global").ttftMs() / overall("star").ttftMs(), 3));
        }
        List<Map<String, Object>> rows = new ArrayList<>();
        for (String v : variants) {
            EvalResult any = results.stream().filter(r -> r.variant().equals(v)).findFirst().orElseThrow();
            for (String t : tasks) {
                for (int l : lengths) {
                    Cell c = at(v, t, l);
                    if (c.n() + c.errors() == 0) {
                        continue;
                    }
                    Map<String, Object> row = new LinkedHashMap<>();
                    row.put("mode", any.mode());
                    if (!v.equals(any.mode())) {
                        row.put("variant", v);
                    }
                    if (any.setting() != null) {
                        row.put("setting", any.setting());
                    }
                    row.put("task", t);
                    row.put("length", l);
                    row.put("n", c.n());
                    row.put("score", num(c.score(), 4));
                    row.put("ttft_ms_mean", num(c.ttftMs(), 1));
                    row.put("decode_tokens_per_s_mean", num(c.decodeTokensPerS(), 2));
                    if (c.errors() > 0) {
                        row.put("errors", c.errors());
                    }
                    rows.add(row);
                }
            }
        }
        m.put("rows", rows);
        if (isSweep()) {
            m.put("sweep", sweepJson());
        }
        if (reference != null) {
            m.put("reference", reference.toJson(results));
        }
        return m;
    }

    private Map<String, Object> sweepJson() {
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("parameter", sweepParameter());
        Cell global = variants.contains("global") ? overall("global") : null;
        if (global != null) {
            s.put("global", Map.of("score", num(global.score(), 4), "ttft_ms_mean", num(global.ttftMs(), 1), "n", global.n()));
        }
        List<Map<String, Object>> rows = new ArrayList<>();
        for (String v : variants) {
            EvalResult any = results.stream().filter(r -> r.variant().equals(v)).findFirst().orElseThrow();
            if (any.setting() == null) {
                continue;
            }
            Cell c = overall(v);
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("setting", any.setting());
            row.put("value", any.setting().substring(any.setting().indexOf('=') + 1));
            row.put("n", c.n());
            row.put("score", num(c.score(), 4));
            row.put("ratio_to_global", global == null ? null : num(ratio(c, global), 4));
            row.put("ttft_ms_mean", num(c.ttftMs(), 1));
            row.put("prefill_ms_mean", num(c.prefillMs(), 1));
            Map<String, Object> byTask = new LinkedHashMap<>();
            for (String t : tasks) {
                byTask.put(t, num(byTask(v, t).score(), 4));
            }
            row.put("score_by_task", byTask);
            rows.add(row);
        }
        s.put("rows", rows);
        return s;
    }

    /** {@code v} rounded to {@code digits} decimals, or null for NaN and infinities (JSON has no NaN). */
    static Double num(double v, int digits) {
        if (Double.isNaN(v) || Double.isInfinite(v)) {
            return null;
        }
        double f = Math.pow(10, digits);
        return Math.round(v * f) / f;
    }

    @Override
    public String toString() {
        return "EvalSummary" + Objects.toString(variants);
    }
}
