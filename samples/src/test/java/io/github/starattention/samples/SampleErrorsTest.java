package io.github.starattention.samples;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Wrong folders, files, models and flags end with exit code 2 and one clear line, before any model is loaded. */
class SampleErrorsTest {

    @TempDir
    Path tmp;

    private static void assertBadInput(SampleRunner r, String... fragments) {
        assertThat(r.exitCode()).isEqualTo(Samples.BAD_INPUT);
        assertThat(r.out()).isEmpty();
        assertThat(r.err()).contains(fragments).doesNotContain("Exception").doesNotContain("\tat ");
    }

    @Test
    void ragRefusesAMissingDocumentsFolder() {
        Path missing = tmp.resolve("no-such-folder");
        assertBadInput(SampleRunner.run("rag", "--docs", missing.toString(), "-q", "x"),
                "samples/run rag: ", "documents folder " + missing + " does not exist");
    }

    @Test
    void ragRefusesAFileInsteadOfAFolder() throws IOException {
        Path file = Files.writeString(tmp.resolve("a.txt"), "text");
        assertBadInput(SampleRunner.run("rag", "--docs", file.toString(), "-q", "x"), "is not a folder");
    }

    @Test
    void ragRefusesAFolderWithoutTextDocuments() throws IOException {
        Files.writeString(tmp.resolve("image.png"), "not text");
        assertBadInput(SampleRunner.run("rag", "--docs", tmp.toString(), "-q", "x"),
                "documents folder " + tmp + " has no .txt or .md files");
    }

    @Test
    void ragWithOwnDocumentsNeedsAQuestion() throws IOException {
        Files.writeString(tmp.resolve("a.txt"), "text");
        assertBadInput(SampleRunner.run("rag", "--docs", tmp.toString()), "pass one or more --question");
    }

    @Test
    void ragRefusesAFolderThatIsNotAModel() throws IOException {
        Files.writeString(tmp.resolve("a.txt"), "text");
        assertBadInput(SampleRunner.run("rag", "--model", tmp.toString(), "-q", "x"),
                "model folder " + tmp + " has no config.json");
    }

    @Test
    void ragRefusesAMissingModelFolder() {
        Path missing = tmp.resolve("Llama-3.2-1B-Instruct");
        assertBadInput(SampleRunner.run("rag", "--model", missing.toString(), "-q", "x"),
                "model folder " + missing + " does not exist");
    }

    @Test
    void ragRefusesAnUnsupportedModelType() throws IOException {
        Files.writeString(tmp.resolve("config.json"), "{\"model_type\": \"bert\"}");
        Files.writeString(tmp.resolve("tokenizer.json"), "{}");
        Files.writeString(tmp.resolve("model.safetensors"), "");
        assertBadInput(SampleRunner.run("rag", "--model", tmp.toString(), "-q", "x"), "unsupported model_type 'bert'");
    }

    @Test
    void ragRefusesBadNumbers() {
        assertBadInput(SampleRunner.run("rag", "--top-k", "0"), "--top-k must be at least 1");
        assertBadInput(SampleRunner.run("rag", "--mode", "fast"), "--mode must be global or star");
        assertBadInput(SampleRunner.run("rag", "--top-k", "many"), "--top-k");
    }

    @Test
    void docQaRefusesAMissingDocument() {
        Path missing = tmp.resolve("book.txt");
        assertBadInput(SampleRunner.run("doc-qa", "--document", missing.toString(), "-q", "x"),
                "samples/run doc-qa: ", "document " + missing + " does not exist");
    }

    @Test
    void docQaRefusesAFolderAsDocument() {
        assertBadInput(SampleRunner.run("doc-qa", "--document", tmp.toString(), "-q", "x"), "cannot read document");
    }

    @Test
    void docQaWithOwnDocumentNeedsAQuestion() throws IOException {
        Path doc = Files.writeString(tmp.resolve("book.txt"), "text");
        assertBadInput(SampleRunner.run("doc-qa", "--document", doc.toString()), "pass --question TEXT");
    }

    @Test
    void docQaRefusesAFolderThatIsNotAModel() throws IOException {
        Path doc = Files.writeString(tmp.resolve("book.txt"), "text");
        Path model = Files.createDirectory(tmp.resolve("model"));
        assertBadInput(SampleRunner.run("doc-qa", "--document", doc.toString(), "-q", "x", "--model", model.toString()),
                "model folder " + model + " has no config.json");
    }

    @Test
    void docQaRefusesAnUnknownMode() {
        assertBadInput(SampleRunner.run("doc-qa", "--modes", "global,fast"), "--mode must be global or star, got 'fast'");
    }

    @Test
    void clusterRefusesAMissingDocument() {
        Path missing = tmp.resolve("book.txt");
        assertBadInput(SampleRunner.run("cluster", "--document", missing.toString(), "-q", "x"),
                "samples/run cluster: ", "document " + missing + " does not exist");
    }

    @Test
    void clusterRefusesAMissingModelFolder() throws IOException {
        Path doc = Files.writeString(tmp.resolve("book.txt"), "text");
        Path missing = tmp.resolve("Llama-3.2-1B-Instruct");
        assertBadInput(SampleRunner.run("cluster", "--document", doc.toString(), "-q", "x", "--model", missing.toString()),
                "samples/run cluster: ", "model folder " + missing + " does not exist");
    }

    @Test
    void clusterRefusesBadNumbers() {
        assertBadInput(SampleRunner.run("cluster", "--hosts", "0"), "--hosts must be at least 1");
        assertBadInput(SampleRunner.run("cluster", "--threads", "0"), "--threads must be at least 1");
    }

    @Test
    void unknownSampleIsABadInput() {
        SampleRunner r = SampleRunner.run("chat");
        assertThat(r.exitCode()).isEqualTo(Samples.BAD_INPUT);
        assertThat(r.err()).contains("Unmatched argument");
    }
}
