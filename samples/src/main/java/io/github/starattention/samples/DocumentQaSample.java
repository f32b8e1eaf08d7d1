package io.github.starattention.samples;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.model.ModelFolder;
import io.github.starattention.langchain4j.StarAttentionChatModel;
import io.github.starattention.langchain4j.StarAttentionChatResponseMetadata;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code samples/run doc-qa}: the whole long document is the system message (no retrieval) and the question the user
 * message; the document is encoded with global attention and with Star Attention, and the answers are printed with
 * their time to first token.
 */
@Command(name = "doc-qa", mixinStandardHelpOptions = true,
        description = {"Whole-document QA: put an entire long document into the context and ask a question,",
                "with global attention and with Star Attention; prints each answer and its time to first token.",
                "Default: the bundled model and data/demo/haystack-16k.txt (16K tokens) with its question."})
public final class DocumentQaSample implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--document", paramLabel = "FILE", description = "UTF-8 text file (default: data/demo/haystack-16k.txt).")
    Path document;

    @Option(names = {"-q", "--question"}, paramLabel = "TEXT", description = "The question (default: the demo document's).")
    String question;

    @Option(names = "--model", paramLabel = "DIR", description = "Jlama model folder (default: the bundled tiny-ruler-llama).")
    Path model;

    @Option(names = "--modes", defaultValue = "global,star", split = ",", paramLabel = "global|star",
            description = "Modes to run, in order. Default: ${DEFAULT-VALUE}.")
    List<String> modes;

    @Option(names = "--blocks", defaultValue = "4", paramLabel = "N", description = "Star Attention context blocks. Default: ${DEFAULT-VALUE}.")
    int blocks;

    @Option(names = "--max-new-tokens", defaultValue = "64", paramLabel = "N", description = "Output tokens. Default: ${DEFAULT-VALUE}.")
    int maxNewTokens;

    @Option(names = "--verbose", description = "Print stack traces.")
    boolean verbose;

    /** One mode's answer and timings. */
    public record Run(Mode mode, String answer, int contextTokens, double prefillMillis, double timeToFirstTokenMillis,
                      double decodeTokensPerSecond) {
    }

    /** A question and its expected answers (empty when unknown). */
    public record Question(String text, List<String> answers) {
    }

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        Path doc = document != null ? document : SampleHome.resolve("data/demo/haystack-16k.txt");
        Question q = question(doc, question, document == null);
        if (maxNewTokens < 1) {
            throw new IllegalArgumentException("--max-new-tokens must be at least 1, got " + maxNewTokens);
        }
        if (blocks < 1) {
            throw new IllegalArgumentException("--blocks must be at least 1, got " + blocks);
        }
        Set<Mode> ms = new LinkedHashSet<>();
        for (String m : modes) {
            ms.add(RagSample.parseMode(m.strip()));
        }
        String text = readDocument(doc);
        Path modelDir = model != null ? model : SampleHome.bundledModel();
        ModelFolder.open(modelDir); // a wrong model folder fails here, before anything is loaded
        out.printf("Document: %s (%,d characters)%nQuestion: %s%n", doc, text.length(), q.text());
        out.flush();
        try (StarAttentionModel loaded = StarAttentionModel.load(modelDir)) {
            List<Run> runs = new ArrayList<>();
            for (Mode m : ms) {
                Run r = ask(loaded, m, blocks, maxNewTokens, text, q.text());
                runs.add(r);
                String check = q.answers().isEmpty() ? ""
                        : q.answers().stream().allMatch(r.answer()::contains) ? "  [correct]" : "  [expected " + String.join(", ", q.answers()) + "]";
                out.printf(Locale.ROOT, "%n%-22s %s%s%n", label(m, blocks) + ":", r.answer(), check);
                out.printf(Locale.ROOT, "%-22s %,d context tokens, time to first token %,.0f ms (prefill %,.0f ms), %.1f tokens/s%n",
                        "", r.contextTokens(), r.timeToFirstTokenMillis(), r.prefillMillis(), r.decodeTokensPerSecond());
                out.flush();
            }
            Run global = runs.stream().filter(r -> r.mode() == Mode.GLOBAL).findFirst().orElse(null);
            Run star = runs.stream().filter(r -> r.mode() == Mode.STAR).findFirst().orElse(null);
            if (global != null && star != null && star.timeToFirstTokenMillis() > 0) {
                out.printf(Locale.ROOT, "%nStar Attention: time to first token %.1fx that of global attention (%,.0f ms vs %,.0f ms)%n",
                        global.timeToFirstTokenMillis() / star.timeToFirstTokenMillis(),
                        star.timeToFirstTokenMillis(), global.timeToFirstTokenMillis());
            }
        }
        return 0;
    }

    static String label(Mode m, int blocks) {
        return m == Mode.STAR ? "star (" + blocks + " blocks)" : "global";
    }

    /** Asks {@code question} about {@code document} with a chat model of mode {@code mode} over {@code model}. */
    public static Run ask(StarAttentionModel model, Mode mode, int blocks, int maxNewTokens, String document,
                          String question) {
        try (StarAttentionChatModel chat = StarAttentionChatModel.builder().model(model).mode(mode).blocks(blocks)
                .maxOutputTokens(maxNewTokens).temperature(0.0).maxCacheBytes(0L).build()) {
            ChatResponse r = chat.chat(ChatRequest.builder()
                    .messages(SystemMessage.from(document), UserMessage.from(question)).build());
            var meta = (StarAttentionChatResponseMetadata) r.metadata();
            return new Run(mode, r.aiMessage().text().strip(), meta.contextTokens(), meta.prefillMillis(),
                    meta.timeToFirstTokenMillis(), meta.decodeTokensPerSecond());
        }
    }

    /** The question: {@code --question}, else the demo document's (from the .json beside it). */
    static Question question(Path doc, String question, boolean defaultDocument) {
        Path json = doc.resolveSibling(doc.getFileName().toString().replaceFirst("\\.[^.]*$", "") + ".json");
        List<String> answers = new ArrayList<>();
        String demoQuestion = null;
        if (Files.isRegularFile(json)) {
            try {
                JsonNode n = new ObjectMapper().readTree(json.toFile());
                demoQuestion = n.path("question").asText(null);
                n.path("answers").forEach(a -> answers.add(a.asText()));
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot read " + json + ": " + e.getMessage(), e);
            }
        }
        if (question != null) {
            if (question.isBlank()) {
                throw new IllegalArgumentException("the question is empty");
            }
            return new Question(question, question.equals(demoQuestion) ? answers : List.of());
        }
        if (demoQuestion == null) {
            throw new IllegalArgumentException(defaultDocument
                    ? "the demo question " + json + " is missing; pass --question TEXT"
                    : "pass --question TEXT (there is no " + json.getFileName() + " beside " + doc + ")");
        }
        return new Question(demoQuestion, answers);
    }

    static String readDocument(Path file) {
        if (!Files.exists(file)) {
            throw new IllegalArgumentException("document " + file + " does not exist");
        }
        if (!Files.isRegularFile(file) || !Files.isReadable(file)) {
            throw new IllegalArgumentException("cannot read document " + file + " (--document takes a UTF-8 text file)");
        }
        try {
            String text = Files.readString(file);
            if (text.isBlank()) {
                throw new IllegalArgumentException("document " + file + " is empty");
            }
            return text;
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read document " + file + ": " + e.getMessage(), e);
        }
    }
}
