package io.github.starattention.jlama.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An evaluation set read from JSONL: one JSON object per line with {@code id, task, length, context, question,
 * answers} (other fields are ignored). A malformed line does not stop the reading: it becomes a {@link LineError}
 * naming the line and what is wrong, and the other lines are read on.
 *
 * @param source the file (for messages)
 * @param examples the well-formed examples in file order
 * @param errors the malformed lines in file order
 */
public record EvalSet(Path source, List<EvalExample> examples, List<LineError> errors) {

    private static final ObjectMapper JSON = new ObjectMapper();

    public EvalSet {
        examples = List.copyOf(examples);
        errors = List.copyOf(errors);
    }

    /**
     * A malformed line.
     *
     * @param line 1-based line number
     * @param id the line's {@code id} if it could be read, else null
     * @param message what is wrong
     */
    public record LineError(int line, String id, String message) {

        /** {@code line N: message}. */
        @Override
        public String toString() {
            return "line " + line + (id != null ? " (id '" + id + "')" : "") + ": " + message;
        }
    }

    /**
     * Reads {@code file}. Blank lines are skipped.
     *
     * @throws IllegalArgumentException if the file cannot be read at all
     */
    public static EvalSet read(Path file) {
        if (!Files.isRegularFile(file) || !Files.isReadable(file)) {
            throw new IllegalArgumentException("cannot read evaluation set " + file);
        }
        try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            return parse(file, r.lines().toList());
        } catch (IOException | UncheckedIOException e) {
            throw new IllegalArgumentException("cannot read evaluation set " + file + ": " + e.getMessage(), e);
        }
    }

    /** Parses JSONL lines (numbered from 1). */
    public static EvalSet parse(Path source, List<String> lines) {
        List<EvalExample> examples = new ArrayList<>();
        List<LineError> errors = new ArrayList<>();
        Map<String, Integer> seen = new HashMap<>();
        for (int i = 0; i < lines.size(); i++) {
            String text = lines.get(i);
            int lineNo = i + 1;
            if (text.isBlank()) {
                continue;
            }
            JsonNode node;
            try {
                node = JSON.readTree(text);
            } catch (JsonProcessingException e) {
                errors.add(new LineError(lineNo, null, "not valid JSON: " + e.getOriginalMessage()));
                continue;
            }
            if (node == null || !node.isObject()) {
                errors.add(new LineError(lineNo, null, "expected a JSON object, got " + describe(node)));
                continue;
            }
            String id = node.path("id").isTextual() ? node.get("id").asText() : null;
            try {
                EvalExample ex = toExample(node, lineNo);
                Integer first = seen.putIfAbsent(ex.id(), lineNo);
                if (first != null) {
                    throw new IllegalArgumentException("duplicate id '" + ex.id() + "' (first on line " + first + ")");
                }
                examples.add(ex);
            } catch (IllegalArgumentException e) {
                errors.add(new LineError(lineNo, id, e.getMessage()));
            }
        }
        return new EvalSet(source, examples, errors);
    }

    private static EvalExample toExample(JsonNode n, int line) {
        String id = text(n, "id", false);
        String task = text(n, "task", false);
        JsonNode len = n.get("length");
        if (len == null || len.isNull()) {
            throw missing("length");
        }
        if (!len.isIntegralNumber() || len.asLong() <= 0 || len.asLong() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("field 'length' must be a positive integer, got " + describe(len));
        }
        String context = text(n, "context", true);
        String question = text(n, "question", false);
        JsonNode a = n.get("answers");
        if (a == null || a.isNull()) {
            throw missing("answers");
        }
        if (!a.isArray() || a.isEmpty()) {
            throw new IllegalArgumentException("field 'answers' must be a non-empty array of strings, got " + describe(a));
        }
        List<String> answers = new ArrayList<>(a.size());
        for (JsonNode v : a) {
            if (!v.isTextual() || v.asText().isEmpty()) {
                throw new IllegalArgumentException("field 'answers' must hold non-empty strings, got " + describe(v));
            }
            answers.add(v.asText());
        }
        return new EvalExample(id, task, len.asInt(), context, question, answers, line);
    }

    private static String text(JsonNode n, String field, boolean emptyAllowed) {
        JsonNode v = n.get(field);
        if (v == null || v.isNull()) {
            throw missing(field);
        }
        if (!v.isTextual()) {
            throw new IllegalArgumentException("field '" + field + "' must be a string, got " + describe(v));
        }
        if (!emptyAllowed && v.asText().isBlank()) {
            throw new IllegalArgumentException("field '" + field + "' is empty");
        }
        return v.asText();
    }

    private static IllegalArgumentException missing(String field) {
        return new IllegalArgumentException("missing field '" + field + "'");
    }

    private static String describe(JsonNode v) {
        if (v == null || v.isMissingNode()) {
            return "nothing";
        }
        String s = v.toString();
        String kind = v.isObject() ? "an object" : v.isArray() ? "an array" : v.isTextual() ? "a string"
                : v.isNumber() ? "a number" : v.isBoolean() ? "a boolean" : v.isNull() ? "null" : v.getNodeType().toString();
        return kind + " " + (s.length() > 40 ? s.substring(0, 37) + "..." : s);
    }

    /** Number of examples plus malformed lines. */
    public int lineCount() {
        return examples.size() + errors.size();
    }

    /**
     * The examples of the given lengths and tasks (null or empty = all), at most {@code limitPerTask} per (task,
     * length) in file order (null = no limit), and only those whose id is in {@code ids} (null = all).
     */
    public List<EvalExample> select(Collection<Integer> lengths, Collection<String> tasks, Integer limitPerTask,
                                    Set<String> ids) {
        Map<String, Integer> count = new LinkedHashMap<>();
        List<EvalExample> out = new ArrayList<>();
        for (EvalExample e : examples) {
            if (lengths != null && !lengths.isEmpty() && !lengths.contains(e.length())) {
                continue;
            }
            if (tasks != null && !tasks.isEmpty() && !tasks.contains(e.task())) {
                continue;
            }
            if (ids != null && !ids.contains(e.id())) {
                continue;
            }
            if (limitPerTask != null) {
                int c = count.merge(e.task() + "@" + e.length(), 1, Integer::sum);
                if (c > limitPerTask) {
                    continue;
                }
            }
            out.add(e);
        }
        return out;
    }
}
