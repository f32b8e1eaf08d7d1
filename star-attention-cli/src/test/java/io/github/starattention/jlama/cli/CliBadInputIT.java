package io.github.starattention.jlama.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.github.starattention.cuda.CudaProbe;
import io.github.starattention.jlama.TestData;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Bad input: one clear line on stderr, exit code 2, no stack trace. */
class CliBadInputIT {

    @TempDir
    Path tmp;

    private record Result(int code, String out, String err) {
    }

    private static Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = StarAttentionCli.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Result(code, out.toString(), err.toString());
    }

    private Path context(String text) throws IOException {
        Path f = tmp.resolve("context.txt");
        Files.writeString(f, text);
        return f;
    }

    private static void assertOneLine(Result r, String expected) {
        assertThat(r.code()).as(r.err()).isEqualTo(StarAttentionCli.BAD_INPUT);
        assertThat(r.err()).contains(expected).doesNotContain("\tat ").doesNotContain("Exception");
        assertThat(r.err().strip().lines().count()).as(r.err()).isLessThanOrEqualTo(2);
    }

    @Test
    void missingModelFolder() throws IOException {
        Result r = run("ask", "--model", tmp.resolve("nope").toString(), "--context-file", context("x").toString(),
                "--question", "q");
        assertOneLine(r, "does not exist");
    }

    @Test
    void unsupportedModelType() throws IOException {
        Path m = Files.createDirectories(tmp.resolve("gpt2"));
        Files.writeString(m.resolve("config.json"), "{\"model_type\": \"gpt2\"}");
        Files.writeString(m.resolve("tokenizer.json"), "{}");
        Files.writeString(m.resolve("model.safetensors"), "");
        Result r = run("ask", "--model", m.toString(), "--context-file", context("x").toString(), "--question", "q");
        assertOneLine(r, "unsupported model_type 'gpt2'");
    }

    @Test
    void unreadableContextFile() {
        Result r = run("ask", "--model", TestData.modelDir().toString(), "--context-file", tmp.resolve("missing.txt").toString(),
                "--question", "q");
        assertOneLine(r, "cannot read context file");
    }

    @Test
    void anchorLargerThanBlock() throws IOException {
        Result r = run("ask", "--model", TestData.modelDir().toString(), "--context-file", context("some words here").toString(),
                "--question", "q", "--block-size", "64", "--anchor-size", "128");
        assertOneLine(r, "anchor size (128) must not exceed the block size (64)");
    }

    @Test
    void promptLongerThanTheModelsPositions() throws IOException {
        Result r = run("ask", "--model", TestData.modelDir().toString(),
                "--context-file", context("1 2 3 4 5 6 7 8 ".repeat(5_000)).toString(), "--question", "q");
        assertOneLine(r, "but the model has 32768");
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({
            "--blocks,      100000, is more than the context's",
            "--blocks,      0,      --blocks must be at least 1",
            "--block-size,  0,      --block-size must be at least 1",
            "--anchor-size, -1,     --anchor-size must be at least 0"})
    void blockFlagsThatDoNotMakeAPlanAreRefused(String flag, String value, String expected) throws IOException {
        Result r = run("ask", "--model", TestData.modelDir().toString(),
                "--context-file", context("some words here and there, a short context").toString(), "--question", "q",
                flag, value);
        assertOneLine(r, expected);
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "--weights Q5          | expected F32, BF16, AS_STORED, Q8 or Q4, got 'Q5'",
            "--kv fp8              | --kv must be f32 or bf16, got 'fp8'"})
    void numberFormatsThatDoNotExistHereAreRefused(String flags, String expected) throws IOException {
        List<String> args = new ArrayList<>(List.of("ask", "--model",
                TestData.modelDir().toString(), "--context-file", context("a short context").toString(),
                "--question", "q"));
        args.addAll(List.of(flags.split(" ")));
        assertOneLine(run(args.toArray(String[]::new)), expected);
    }

    @ParameterizedTest(name = "context \"{0}\"")
    @ValueSource(strings = {"", " \n\t "})
    void anEmptyContextFileIsRefused(String text) throws IOException {
        Result r = run("ask", "--model", TestData.modelDir().toString(), "--context-file", context(text).toString(),
                "--question", "q");
        assertOneLine(r, "is empty");
    }

    @Test
    void cudaWithoutAGpuIsRefusedNamingTheOptions() throws IOException {
        assumeFalse(CudaProbe.isAvailable(), "this machine has a usable GPU");
        Result r = run("ask", "--model", TestData.modelDir().toString(), "--context-file", context("x y z").toString(),
                "--question", "q", "--device", "cuda");
        assertOneLine(r, "--device cuda: CUDA is not usable here");
        assertThat(r.err()).contains("use --device auto or --device cpu");
    }

    @Test
    void theGpuBenchmarkWithoutAGpuIsRefused() {
        assumeFalse(CudaProbe.isAvailable(), "this machine has a usable GPU");
        assertOneLine(run("bench-gpu", "--model", TestData.modelDir().toString()), "bench-gpu: CUDA is not usable here");
        assertOneLine(run("bench-gpu", "--model", TestData.modelDir().toString(), "--decode-tokens", "1"),
                "--decode-tokens >= 2");
    }

    @Test
    void aHostWhoseHazelcastPortIsTakenSaysSoInOneLine() throws IOException {
        try (ServerSocket taken = new ServerSocket()) {
            taken.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            int port = taken.getLocalPort();
            Path config = Files.writeString(tmp.resolve("host.json"), "{\"hazelcast\": {\"port\": " + port
                    + ", \"portAutoIncrement\": false, \"members\": [\"127.0.0.1:" + port + "\"]}}");
            Result r = run("host", "--config", config.toString());
            assertOneLine(r, "hazelcast.port " + port + " on 127.0.0.1 is in use");
        }
    }

    @Test
    void aHostWhoseKeyStoreIsNotOneSaysSoInOneLine() throws IOException {
        Path junk = Files.writeString(tmp.resolve("node.p12"), "not a key store");
        Path config = Files.writeString(tmp.resolve("tls.json"), "{\"tls\": {\"enabled\": true, \"keyStore\": \""
                + junk.getFileName() + "\", \"keyStorePassword\": \"x\", \"trustStore\": \"" + junk.getFileName()
                + "\", \"trustStorePassword\": \"x\"}}");
        Result r = run("host", "--config", config.toString());
        assertOneLine(r, "tls.keyStore " + junk + " is not a PKCS#12 key store");
    }

    @Test
    void aBadPassingSettingSaysSoInOneLineAlsoBeforeAnyHostStarts() throws IOException {
        String model = TestData.modelDir().toString();
        String ctx = context("a b c d e f g h").toString();
        assertOneLine(run("ask", "--model", model, "--context-file", ctx, "--question", "q", "--passing", "-1"),
                "--passing must be in [0, 65536]");
        assertOneLine(run("ask", "--model", model, "--context-file", ctx, "--question", "q", "--passing", "8",
                "--passing-rule", "question"), "passing selection must be window or spread, got 'question'");
        // passing runs in the cluster too, but its settings are still checked here first
        assertOneLine(run("ask", "--model", model, "--context-file", ctx, "--question", "q", "--passing", "65537",
                "--hosts", "2"), "--passing must be in [0, 65536]");
        assertOneLine(run("bench-cluster", "--model", model, "--context-file", ctx, "--question", "q",
                "--passing", "8", "--passing-rule", "question", "--hosts", "1"),
                "passing selection must be window or spread, got 'question'");
    }

    @Test
    void passingOnTheGpuInTheClusterIsRefusedBeforeAnyHostStarts() throws IOException {
        assumeTrue(CudaProbe.isAvailable(), "this machine has no usable GPU (--device cuda is refused before passing)");
        Result r = run("ask", "--model", TestData.modelDir().toString(), "--context-file",
                context("a b c d e f g h").toString(), "--question", "q", "--passing", "8", "--hosts", "2",
                "--device", "cuda");
        assertOneLine(r, "--passing needs the CPU attention kernels: add --device cpu");
    }

    @Test
    void certifiedMembershipWithoutTlsOrAnUnknownMembershipSaysSoInOneLine() throws IOException {
        Path certified = Files.writeString(tmp.resolve("certified.json"), "{\"membership\": \"certified\"}");
        assertOneLine(run("host", "--config", certified.toString()), "membership certified needs tls.enabled");
        Path unknown = Files.writeString(tmp.resolve("unknown.json"), "{\"membership\": \"closed\"}");
        assertOneLine(run("host", "--config", unknown.toString()), "membership must be open or certified");
    }

    @Test
    void verbosePrintsTheStackTrace() {
        Result r = run("ask", "--verbose", "--model", tmp.resolve("nope").toString(), "--context-file", "x", "--question", "q");
        assertThat(r.code()).isEqualTo(StarAttentionCli.BAD_INPUT);
        assertThat(r.err()).contains("\tat ");
    }

    @Test
    void askAnswersInJson() throws IOException {
        var dev = TestData.devSet().values().stream().filter(e -> e.get("length").asInt() == 1024).findFirst().orElseThrow();
        Result r = run("ask", "--model", TestData.modelDir().toString(), "--context-file", context(dev.get("context").asText()).toString(),
                "--question", dev.get("question").asText(), "--json", "--threads", "2", "--device", "cpu");
        assertThat(r.code()).as(r.err()).isZero();
        var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.out().strip());
        assertThat(json.get("answer").asText()).contains(dev.get("answers").get(0).asText());
        assertThat(json.get("mode").asText()).isEqualTo("star");
        assertThat(json.get("blocks").asInt()).isEqualTo(4);
        assertThat(json.get("anchor_size").asInt()).isEqualTo(json.get("block_size").asInt());
        assertThat(json.get("context_tokens").asInt()).isBetween(900, 1024);
        for (String key : new String[] {"query_tokens", "generated_tokens", "ttft_ms", "decode_tokens_per_s",
                "tokenize_ms"}) {
            assertThat(json.get(key).asDouble()).as(key).isPositive();
        }
    }
}
