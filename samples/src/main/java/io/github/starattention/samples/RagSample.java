package io.github.starattention.samples;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.github.starattention.jlama.Mode;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code samples/run rag}: ingests a folder of documents into an in-memory embedding store and answers questions
 * from the top retrieved segments with a LangChain4j AI service on a Star Attention chat model. Nothing leaves the
 * machine: the embedding model (ONNX) and the chat model run in-process.
 */
@Command(name = "rag", mixinStandardHelpOptions = true,
        description = {"Offline RAG: embed a folder of documents in-process, retrieve the segments closest to each",
                "question and answer from them with a LangChain4j AI service on Star Attention.",
                "Default: the bundled model and demo documents (data/samples/docs) with their demo questions."})
public final class RagSample implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--docs", paramLabel = "DIR", description = "Folder of .txt/.md documents (default: data/samples/docs).")
    Path docs;

    @Option(names = "--model", paramLabel = "DIR", description = "Jlama model folder (default: the bundled tiny-ruler-llama).")
    Path model;

    @Option(names = {"-q", "--question"}, paramLabel = "TEXT",
            description = "A question (repeatable). Default with the demo documents: their demo questions.")
    List<String> questions;

    @Option(names = "--top-k", defaultValue = "4", paramLabel = "N", description = "Segments retrieved per question. Default: ${DEFAULT-VALUE}.")
    int topK;

    @Option(names = "--segment-chars", defaultValue = "400", paramLabel = "N", description = "Maximum segment size in characters. Default: ${DEFAULT-VALUE}.")
    int segmentChars;

    @Option(names = "--min-score", defaultValue = "0", paramLabel = "S", description = "Minimum similarity of a retrieved segment (0..1). Default: ${DEFAULT-VALUE}.")
    double minScore;

    @Option(names = "--instruction", paramLabel = "TEXT",
            description = "Text before the passages in the system message (default: the bundled model's training "
                    + "instruction; for other models a generic one).")
    String instruction;

    @Option(names = "--mode", defaultValue = "star", paramLabel = "global|star", description = "Context encoding. Default: ${DEFAULT-VALUE}.")
    String mode;

    @Option(names = "--blocks", defaultValue = "2", paramLabel = "N", description = "Star Attention context blocks. Default: ${DEFAULT-VALUE}.")
    int blocks;

    @Option(names = "--max-new-tokens", defaultValue = "64", paramLabel = "N", description = "Output tokens per answer. Default: ${DEFAULT-VALUE}.")
    int maxNewTokens;

    @Option(names = "--show-passages", description = "Print the retrieved segments' text too.")
    boolean showPassages;

    @Option(names = "--verbose", description = "Print stack traces.")
    boolean verbose;

    /** The demo questions of the bundled documents (data/samples/rag-questions.json): question and expected answer. */
    public record DemoQuestion(String question, String answer) {
    }

    public static List<DemoQuestion> demoQuestions() {
        Path file = SampleHome.resolve("data/samples/rag-questions.json");
        try {
            List<DemoQuestion> out = new ArrayList<>();
            for (JsonNode n : new ObjectMapper().readTree(file.toFile())) {
                out.add(new DemoQuestion(n.get("question").asText(), n.get("answer").asText()));
            }
            return out;
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read the demo questions " + file + ": " + e.getMessage(), e);
        }
    }

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        Path defaultDocs = SampleHome.resolve("data/samples/docs");
        Path docsDir = docs != null ? docs : defaultDocs;
        Path modelDir = model != null ? model : SampleHome.bundledModel();
        List<String> asked = new ArrayList<>();
        if (questions != null && !questions.isEmpty()) {
            asked.addAll(questions);
        } else if (docs == null) {
            // Three of the demo questions, one per document.
            List<DemoQuestion> demo = demoQuestions();
            for (int i = 0; i < demo.size() && asked.size() < 3; i += 4) {
                asked.add(demo.get(i).question());
            }
        } else {
            throw new IllegalArgumentException("with your own --docs, pass one or more --question TEXT");
        }
        var settings = new RagPipeline.Settings(topK, segmentChars, 0, minScore, maxNewTokens, parseMode(mode), blocks,
                instruction);
        long t0 = System.nanoTime();
        try (RagPipeline rag = RagPipeline.open(modelDir, docsDir, settings)) {
            out.printf("Ingested %d documents from %s into %d segments; model %s, %s, ready in %.1f s%n",
                    rag.documentCount(), docsDir, rag.segmentCount(), modelDir.getFileName(),
                    settings.mode() == Mode.STAR ? "Star Attention (" + blocks + " blocks)" : "global attention",
                    (System.nanoTime() - t0) / 1e9);
            for (String q : asked) {
                RagPipeline.Answer a = rag.ask(q);
                out.println();
                out.println("Q: " + q);
                out.println("A: " + a.text());
                for (RagPipeline.Source s : a.sources()) {
                    out.printf(Locale.ROOT, "   source %s (score %.3f)%s%n", s.file(), s.score(),
                            showPassages ? ": " + s.text() : "");
                }
                out.printf(Locale.ROOT, "   %d context tokens, time to first token %.0f ms%n", a.contextTokens(),
                        a.timeToFirstTokenMillis());
                out.flush();
            }
        }
        return 0;
    }

    static Mode parseMode(String mode) {
        return switch (mode.toLowerCase(Locale.ROOT)) {
            case "global" -> Mode.GLOBAL;
            case "star" -> Mode.STAR;
            default -> throw new IllegalArgumentException("--mode must be global or star, got '" + mode + "'");
        };
    }
}
