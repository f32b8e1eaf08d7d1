package io.github.starattention.jlama.model;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.github.starattention.jlama.TestData;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Broken model folders fail in {@link ModelFolder#open} with one line naming what is wrong. */
class SafetensorsCheckTest {

    @TempDir
    Path tmp;

    /** A copy of the bundled model folder whose config has {@code key = value}, weights linked, not copied. */
    private Path withConfig(String key, int value) throws IOException {
        Path bundled = TestData.modelDir();
        Path dir = Files.createDirectories(tmp.resolve("model-" + key));
        ObjectNode config = (ObjectNode) new ObjectMapper().readTree(bundled.resolve("config.json").toFile());
        config.put(key, value);
        new ObjectMapper().writeValue(dir.resolve("config.json").toFile(), config);
        Files.copy(bundled.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        Files.createSymbolicLink(dir.resolve("model.safetensors"), bundled.resolve("model.safetensors").toAbsolutePath());
        return dir;
    }

    /** A copy of the bundled model folder with {@code weights} as its safetensors file. */
    private Path withWeights(byte[] weights) throws IOException {
        Path bundled = TestData.modelDir();
        Path dir = Files.createTempDirectory(tmp, "weights");
        Files.copy(bundled.resolve("config.json"), dir.resolve("config.json"));
        Files.copy(bundled.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        Files.write(dir.resolve("model.safetensors"), weights);
        return dir;
    }

    @Test
    void theBundledModelPasses() {
        assertThatCode(() -> ModelFolder.open(TestData.modelDir())).doesNotThrowAnyException();
    }

    @ParameterizedTest(name = "{0} = {1}")
    @CsvSource({
            "num_attention_heads, 7,   q_proj.weight the shape [448, 256]",
            "hidden_size,         128, embed_tokens.weight the shape [12544, 128]",
            "num_key_value_heads, 4,   k_proj.weight the shape [256, 256]",
            "intermediate_size,   999, gate_proj.weight the shape [999, 256]",
            "vocab_size,          32000, embed_tokens.weight the shape [32000, 256]",
            "num_hidden_layers,   6,   says num_hidden_layers 6, but the weights have 8 layers",
            "num_hidden_layers,   12,  says num_hidden_layers 12, but the weights have 8 layers"})
    void aConfigThatDoesNotMatchTheWeightsIsRefused(String key, int value, String expected) throws IOException {
        Path dir = withConfig(key, value);
        assertThatThrownBy(() -> ModelFolder.open(dir)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(expected);
    }

    @Test
    void aGgufFileGetsAHintInsteadOfFolderNotFound() throws IOException {
        Path gguf = Files.write(tmp.resolve("model-q8_0.gguf"), new byte[] {'G', 'G', 'U', 'F'});
        assertThatThrownBy(() -> ModelFolder.open(gguf)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("is a GGUF file")
                .hasMessageContaining("gguf_file=FILE");
    }

    @Test
    void anEmptyFileIsRefused() throws IOException {
        Path dir = withWeights(new byte[0]);
        assertThatThrownBy(() -> ModelFolder.open(dir)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("model.safetensors is not a safetensors file: 0 bytes");
    }

    @Test
    void aTruncatedFileIsRefused() throws IOException {
        byte[] head = new byte[1 << 20];
        try (InputStream in = Files.newInputStream(TestData.modelDir().resolve("model.safetensors"))) {
            in.readNBytes(head, 0, head.length);
        }
        Path dir = withWeights(head);
        assertThatThrownBy(() -> ModelFolder.open(dir)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("(truncated file?)");
    }

    @Test
    void aGarbledHeaderIsRefused() throws IOException {
        byte[] json = "{\"model.embed_tokens.weight\": {\"dtype\": \"F32\", \"shape\": [1, ".getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + json.length + 16).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(json.length).put(json);
        Path dir = withWeights(b.array());
        assertThatThrownBy(() -> ModelFolder.open(dir)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("garbled safetensors header");

        ByteBuffer huge = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40);
        Path dir2 = withWeights(huge.array());
        assertThatThrownBy(() -> ModelFolder.open(dir2)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("header length 1099511627776 does not fit a file of 64 bytes");
    }

    @Test
    void aTensorWhoseBytesDoNotMatchItsShapeIsRefused() throws IOException {
        byte[] json = ("{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 16]}}")
                .getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + json.length + 16).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(json.length).put(json);
        Path dir = withWeights(b.array());
        assertThatThrownBy(() -> ModelFolder.open(dir)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("tensor w is [2, 3] F32 but holds 16 bytes");
    }
}
