package io.github.starattention.jlama.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/** The files of an evaluation folder: {@code results.jsonl}, {@code summary.json}, {@code summary.md} and charts. */
public final class EvalReport {

    public static final String RESULTS = "results.jsonl";
    public static final String SUMMARY_JSON = "summary.json";
    public static final String SUMMARY_MD = "summary.md";

    private static final ObjectMapper JSON = new ObjectMapper();

    private EvalReport() {
    }

    /** Appends results to {@code results.jsonl} as they come, one flushed line each. */
    public static final class ResultWriter implements Consumer<EvalResult>, AutoCloseable {
        private final BufferedWriter out;

        /** Opens {@code file}; appends when {@code append}, else starts it afresh. */
        public ResultWriter(Path file, boolean append) {
            try {
                Files.createDirectories(file.toAbsolutePath().getParent());
                out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                        StandardOpenOption.WRITE, append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write " + file, e);
            }
        }

        @Override
        public synchronized void accept(EvalResult r) {
            try {
                out.write(JSON.writeValueAsString(r.toJson()));
                out.write('\n');
                out.flush();
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write a result", e);
            }
        }

        @Override
        public void close() {
            try {
                out.close();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    /**
     * Reads a {@code results.jsonl}; a missing file gives an empty list. A line that does not parse (a run killed
     * while writing it) is skipped.
     */
    public static List<EvalResult> readResults(Path file) {
        List<EvalResult> out = new ArrayList<>();
        if (!Files.exists(file)) {
            return out;
        }
        try {
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                if (line.isBlank()) {
                    continue;
                }
                try {
                    JsonNode n = JSON.readTree(line);
                    if (n.isObject() && n.hasNonNull("id") && n.hasNonNull("mode")) {
                        out.add(EvalResult.fromJson(n));
                    }
                } catch (IOException e) {
                    // a partly written last line of an interrupted run
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        return out;
    }

    /**
     * Writes {@code summary.json}, {@code summary.md} and, when {@code charts}, the PNG charts into {@code dir}.
     *
     * @return the files written
     */
    public static List<Path> write(EvalSummary s, Path dir, String title, boolean charts) {
        List<Path> files = new ArrayList<>();
        try {
            Files.createDirectories(dir);
            Path json = dir.resolve(SUMMARY_JSON);
            Files.writeString(json, JSON.copy().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(s.toJson()) + "\n");
            files.add(json);
            Path md = dir.resolve(SUMMARY_MD);
            Files.writeString(md, MarkdownReport.render(s, title));
            files.add(md);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the summary into " + dir, e);
        }
        if (charts) {
            files.addAll(Charts.write(s, dir));
        }
        return files;
    }
}
