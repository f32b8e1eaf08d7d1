package io.github.starattention.jlama.bench;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.starattention.jlama.cli.StarAttentionCli;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad input to {@code bench-llamacpp}: one line on stderr, exit 2, before anything is loaded. */
class LlamaCppBenchCommandTest {

    @TempDir
    Path tmp;

    private static void assertBadInput(String expected, String... args) {
        StringWriter err = new StringWriter();
        int code = StarAttentionCli.run(new PrintWriter(new StringWriter(), true), new PrintWriter(err, true), args);
        assertThat(code).as(err.toString()).isEqualTo(StarAttentionCli.BAD_INPUT);
        assertThat(err.toString()).contains(expected).doesNotContain("\tat ");
        assertThat(err.toString().strip().lines().count()).as(err.toString()).isLessThanOrEqualTo(2);
    }

    @Test
    void badInput() throws IOException {
        Path shape = TinyShape.write(tmp.resolve("shape"), true, Map.of());
        assertBadInput("does not exist", "bench-llamacpp", "--model", tmp.resolve("nope").toString());
        assertBadInput("give either --model DIR or --shape DIR", "bench-llamacpp");
        assertBadInput("give either --model DIR or --shape DIR", "bench-llamacpp", "--model", shape.toString(),
                "--shape", shape.toString());
        assertBadInput("--weights takes F32 and/or Q8, got 'Q5'", "bench-llamacpp", "--shape", shape.toString(),
                "--weights", "F32,Q5");
        assertBadInput("exceeds the model's 256 positions", "bench-llamacpp", "--shape", shape.toString(),
                "--lengths", "250", "--new-tokens", "32");
        assertBadInput("--threads must be at least 1", "bench-llamacpp", "--shape", shape.toString(), "--threads", "0");
        assertBadInput("is not an executable file", "bench-llamacpp", "--shape", shape.toString(), "--lengths", "100", "--node",
                tmp.resolve("bin/node").toString());
        assertBadInput("Invalid value", "bench-llamacpp", "--shape", shape.toString(), "--lengths", "x");
        Path mistral = TinyShape.write(tmp.resolve("mistral"), true, Map.of("model_type", "mistral"));
        assertBadInput("only model_type llama", "bench-llamacpp", "--shape", mistral.toString());
    }

    @Test
    void agreementCountsTheCommonPrefix() {
        assertThat(LlamaCppBenchCommand.agreement(new int[] {1, 2, 3}, new int[] {1, 2, 3})).isEqualTo("3/3");
        assertThat(LlamaCppBenchCommand.agreement(new int[] {1, 2, 3}, new int[] {1, 5, 3})).isEqualTo("1/3");
        assertThat(LlamaCppBenchCommand.agreement(new int[] {1, 2}, new int[] {1, 2, 3})).isEqualTo("2/3");
    }
}
