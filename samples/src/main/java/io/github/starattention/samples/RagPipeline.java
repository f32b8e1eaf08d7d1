package io.github.starattention.samples;

import dev.langchain4j.data.document.Document;
import dev.langchain4j.data.document.loader.FileSystemDocumentLoader;
import dev.langchain4j.data.document.parser.TextDocumentParser;
import dev.langchain4j.data.document.splitter.DocumentSplitters;
import dev.langchain4j.data.segment.TextSegment;
import dev.langchain4j.model.chat.response.ChatResponseMetadata;
import dev.langchain4j.model.embedding.EmbeddingModel;
import dev.langchain4j.model.embedding.onnx.allminilml6v2q.AllMiniLmL6V2QuantizedEmbeddingModel;
import dev.langchain4j.rag.content.Content;
import dev.langchain4j.rag.content.ContentMetadata;
import dev.langchain4j.rag.content.retriever.ContentRetriever;
import dev.langchain4j.rag.content.retriever.EmbeddingStoreContentRetriever;
import dev.langchain4j.rag.query.Query;
import dev.langchain4j.service.AiServices;
import dev.langchain4j.service.Result;
import dev.langchain4j.service.SystemMessage;
import dev.langchain4j.service.UserMessage;
import dev.langchain4j.service.V;
import dev.langchain4j.store.embedding.EmbeddingStoreIngestor;
import dev.langchain4j.store.embedding.inmemory.InMemoryEmbeddingStore;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.model.ModelFolder;
import io.github.starattention.langchain4j.StarAttentionChatModel;
import io.github.starattention.langchain4j.StarAttentionChatResponseMetadata;
import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Offline retrieval-augmented QA: the text documents of a folder are split into segments, embedded in-process
 * (quantized all-MiniLM-L6-v2 on ONNX Runtime) into an {@link InMemoryEmbeddingStore}; a question retrieves the most
 * similar segments, which go into the <em>system message</em> after an instruction, and a LangChain4j AI service on
 * a {@link StarAttentionChatModel} answers. The system message is the Star Attention context (encoded in blocks and
 * cached); the question is the query.
 *
 * <p>The retrieved segments go into the system message rather than through an AI service's
 * {@code retrievalAugmentor}, whose content injector rewrites the <em>user</em> message: then the passages would be
 * part of the query (not block-encoded, not cached) and the bundled model would see a prompt format it was not
 * trained on.
 */
public final class RagPipeline implements AutoCloseable {

    /** What the sample can be tuned with. */
    public record Settings(int topK, int segmentChars, int segmentOverlap, double minScore, int maxNewTokens,
                           Mode mode, int blocks, String instruction) {
        public Settings {
            if (topK < 1) {
                throw new IllegalArgumentException("--top-k must be at least 1, got " + topK);
            }
            if (segmentChars < 50) {
                throw new IllegalArgumentException("--segment-chars must be at least 50, got " + segmentChars);
            }
            if (segmentOverlap < 0 || segmentOverlap >= segmentChars) {
                throw new IllegalArgumentException("--segment-overlap must be between 0 and the segment size, got "
                        + segmentOverlap);
            }
            if (maxNewTokens < 1) {
                throw new IllegalArgumentException("--max-new-tokens must be at least 1, got " + maxNewTokens);
            }
            if (blocks < 1) {
                throw new IllegalArgumentException("--blocks must be at least 1, got " + blocks);
            }
        }

        public static Settings defaults() {
            return new Settings(4, 400, 0, 0.0, 64, Mode.STAR, 2, null);
        }
    }

    /** One retrieved segment: its file, similarity score and text. */
    public record Source(String file, double score, String text) {
    }

    /** An answer with the segments it was given and its timings. */
    public record Answer(String text, List<Source> sources, int contextTokens, double timeToFirstTokenMillis) {
    }

    /** The AI service: the instruction and retrieved passages are the system message, the question the user message. */
    interface Assistant {
        @SystemMessage("{{instruction}} {{passages}}")
        Result<String> answer(@V("instruction") String instruction, @V("passages") String passages,
                              @UserMessage String question);
    }

    /** Documents the sample reads: text files. */
    static final PathMatcher TEXT_FILES = FileSystems.getDefault().getPathMatcher("glob:*.{txt,md,text,markdown}");

    private final Settings settings;
    private final String instruction;
    private final EmbeddingModel embeddings;
    private final InMemoryEmbeddingStore<TextSegment> store;
    private final ContentRetriever retriever;
    private final StarAttentionChatModel chatModel;
    private final Assistant assistant;
    private final int documents;
    private final int segments;

    private RagPipeline(Path modelDir, Path docsDir, Settings settings) {
        this.settings = settings;
        ModelFolder.open(modelDir); // a wrong model folder fails here, before anything is loaded
        List<Document> docs = loadDocuments(docsDir);
        SampleHome.offline();
        this.embeddings = new AllMiniLmL6V2QuantizedEmbeddingModel();
        this.store = new InMemoryEmbeddingStore<>();
        var splitter = DocumentSplitters.recursive(settings.segmentChars(), settings.segmentOverlap());
        EmbeddingStoreIngestor.builder().documentSplitter(splitter).embeddingModel(embeddings).embeddingStore(store)
                .build().ingest(docs);
        this.documents = docs.size();
        this.segments = splitter.splitAll(docs).size();
        this.retriever = EmbeddingStoreContentRetriever.builder().embeddingStore(store).embeddingModel(embeddings)
                .maxResults(settings.topK()).minScore(settings.minScore()).build();
        this.instruction = settings.instruction() != null ? settings.instruction()
                : SampleHome.isBundled(modelDir) ? SampleHome.NIAH_INSTRUCTION
                : "Answer the question using only the following text.";
        this.chatModel = StarAttentionChatModel.builder().modelPath(modelDir).mode(settings.mode())
                .blocks(settings.blocks()).maxOutputTokens(settings.maxNewTokens()).temperature(0.0).build();
        this.assistant = AiServices.create(Assistant.class, chatModel);
    }

    /**
     * Loads the model, reads and embeds the documents of {@code docsDir}. Throws {@link IllegalArgumentException}
     * (with a message for the user) for a missing or empty folder or a model folder Jlama cannot load.
     */
    public static RagPipeline open(Path modelDir, Path docsDir, Settings settings) {
        return new RagPipeline(modelDir, docsDir, settings);
    }

    static List<Document> loadDocuments(Path dir) {
        if (!Files.exists(dir)) {
            throw new IllegalArgumentException("documents folder " + dir + " does not exist");
        }
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException(dir + " is not a folder; --docs takes a folder of .txt or .md files");
        }
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(p -> Files.isRegularFile(p) && TEXT_FILES.matches(p.getFileName())).sorted().toList();
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot list documents folder " + dir + ": " + e.getMessage(), e);
        }
        if (files.isEmpty()) {
            throw new IllegalArgumentException("documents folder " + dir + " has no .txt or .md files");
        }
        List<Document> docs = new ArrayList<>();
        for (Path f : files) {
            Document d = FileSystemDocumentLoader.loadDocument(f, new TextDocumentParser());
            if (!d.text().isBlank()) {
                docs.add(d);
            }
        }
        if (docs.isEmpty()) {
            throw new IllegalArgumentException("the documents in " + dir + " are all empty");
        }
        return docs;
    }

    /** Retrieves the top segments for {@code question} and answers it from them. */
    public Answer ask(String question) {
        if (question == null || question.isBlank()) {
            throw new IllegalArgumentException("the question is empty");
        }
        List<Content> contents = retriever.retrieve(Query.from(question));
        List<Source> sources = new ArrayList<>();
        StringBuilder passages = new StringBuilder();
        for (Content c : contents) {
            TextSegment seg = c.textSegment();
            String file = seg.metadata().getString(Document.FILE_NAME);
            Object score = c.metadata().get(ContentMetadata.SCORE);
            String text = seg.text().replaceAll("\\s+", " ").strip();
            sources.add(new Source(file, score instanceof Number n ? n.doubleValue() : Double.NaN, text));
            if (!passages.isEmpty()) {
                passages.append(' ');
            }
            passages.append(text);
        }
        if (sources.isEmpty()) {
            return new Answer("(no segment of the documents matches the question)", List.of(), 0, 0);
        }
        Result<String> result = assistant.answer(instruction, passages.toString(), question);
        ChatResponseMetadata meta = result.finalResponse() != null ? result.finalResponse().metadata() : null;
        int contextTokens = 0;
        double ttft = Double.NaN;
        if (meta instanceof StarAttentionChatResponseMetadata m) {
            contextTokens = m.contextTokens();
            ttft = m.timeToFirstTokenMillis();
        }
        return new Answer(result.content().strip(), List.copyOf(sources), contextTokens, ttft);
    }

    public int documentCount() {
        return documents;
    }

    public int segmentCount() {
        return segments;
    }

    public String instruction() {
        return instruction;
    }

    public Settings settings() {
        return settings;
    }

    public String modelName() {
        return chatModel.modelName();
    }

    @Override
    public void close() {
        chatModel.close();
    }
}
