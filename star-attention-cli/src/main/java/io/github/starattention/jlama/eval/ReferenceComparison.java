package io.github.starattention.jlama.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Our results next to reference outputs for the same examples: a JSONL of {@code id}, and per mode the output text
 * ({@code global}, {@code star}) and its score ({@code global_score}, {@code star_score}), like
 * {@code ruler-tiny-dev-reference.jsonl} (written by the PyTorch reference {@code star_ref.py}).
 *
 * @param file the reference file
 * @param byId reference lines by id
 */
public record ReferenceComparison(Path file, Map<String, JsonNode> byId) {

    /** Per mode: examples compared, mean reference score, our mean score, identical outputs. */
    public record ModeRow(String mode, String task, int n, double referenceScore, double ourScore, int identical) {
    }

    /**
     * Reads a reference file.
     *
     * @throws IllegalArgumentException naming the line of a malformed entry
     */
    public static ReferenceComparison read(Path file) {
        ObjectMapper json = new ObjectMapper();
        Map<String, JsonNode> byId = new LinkedHashMap<>();
        List<String> lines;
        try {
            lines = Files.readAllLines(file);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read reference file " + file + ": " + e.getMessage(), e);
        }
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).isBlank()) {
                continue;
            }
            try {
                JsonNode n = json.readTree(lines.get(i));
                if (!n.isObject() || !n.path("id").isTextual()) {
                    throw new IllegalArgumentException("expected an object with a string 'id'");
                }
                byId.put(n.get("id").asText(), n);
            } catch (IOException | IllegalArgumentException e) {
                throw new IllegalArgumentException("reference file " + file + " line " + (i + 1) + ": " + e.getMessage(), e);
            }
        }
        return new ReferenceComparison(file, byId);
    }

    /** Rows per mode (task null = all tasks) and per (mode, task), for the modes the reference holds. */
    public List<ModeRow> rows(List<EvalResult> results) {
        List<ModeRow> out = new ArrayList<>();
        for (String mode : List.of("global", "star")) {
            List<EvalResult> rs = results.stream().filter(r -> r.variant().equals(mode) && !r.failed()
                    && byId.containsKey(r.id()) && byId.get(r.id()).has(mode + "_score")).toList();
            if (rs.isEmpty()) {
                continue;
            }
            out.add(row(mode, null, rs));
            rs.stream().map(EvalResult::task).distinct().sorted(java.util.Comparator.comparingInt(EvalSummary::taskOrder))
                    .forEach(t -> out.add(row(mode, t, rs.stream().filter(r -> r.task().equals(t)).toList())));
        }
        return out;
    }

    private ModeRow row(String mode, String task, List<EvalResult> rs) {
        double ref = 0;
        double ours = 0;
        int same = 0;
        for (EvalResult r : rs) {
            JsonNode n = byId.get(r.id());
            ref += n.get(mode + "_score").asDouble();
            ours += r.score();
            if (n.path(mode).asText("").strip().equals(r.output().strip())) {
                same++;
            }
        }
        return new ModeRow(mode, task, rs.size(), ref / rs.size(), ours / rs.size(), same);
    }

    /** The {@code reference} object of summary.json. */
    public Map<String, Object> toJson(List<EvalResult> results) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("file", file.toString());
        Map<String, Object> modes = new LinkedHashMap<>();
        for (ModeRow r : rows(results)) {
            if (r.task() != null) {
                continue;
            }
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("n", r.n());
            o.put("reference_score", EvalSummary.num(r.referenceScore(), 4));
            o.put("score", EvalSummary.num(r.ourScore(), 4));
            o.put("difference", EvalSummary.num(r.ourScore() - r.referenceScore(), 4));
            o.put("identical_outputs", r.identical());
            modes.put(r.mode(), o);
        }
        m.put("modes", modes);
        return m;
    }
}
