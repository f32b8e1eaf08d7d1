package io.github.starattention.jlama.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RandomCheckpointTest {

    @TempDir
    Path tmp;

    @Test
    void writesEveryLlamaTensorWithTheConfiguredShapes() throws IOException {
        Path shape = TinyShape.write(tmp.resolve("shape"), false, Map.of());
        Path out = RandomCheckpoint.write(shape, tmp.resolve("ckpt"), 7, RandomCheckpoint.DType.F32, Map.of());
        Safetensors w = Safetensors.open(out);
        assertThat(w.shape("model.embed_tokens.weight")).containsExactly(TinyShape.VOCAB, TinyShape.HIDDEN);
        assertThat(w.shape("lm_head.weight")).containsExactly(TinyShape.VOCAB, TinyShape.HIDDEN);
        assertThat(w.shape("model.norm.weight")).containsExactly(TinyShape.HIDDEN);
        for (int i = 0; i < TinyShape.LAYERS; i++) {
            String p = "model.layers." + i + ".";
            assertThat(w.shape(p + "self_attn.q_proj.weight")).containsExactly(64, 64);
            assertThat(w.shape(p + "self_attn.k_proj.weight")).containsExactly(32, 64);
            assertThat(w.shape(p + "self_attn.v_proj.weight")).containsExactly(32, 64);
            assertThat(w.shape(p + "self_attn.o_proj.weight")).containsExactly(64, 64);
            assertThat(w.shape(p + "mlp.gate_proj.weight")).containsExactly(96, 64);
            assertThat(w.shape(p + "mlp.up_proj.weight")).containsExactly(96, 64);
            assertThat(w.shape(p + "mlp.down_proj.weight")).containsExactly(64, 96);
            assertThat(w.floats(p + "input_layernorm.weight")).containsOnly(1f);
            assertThat(w.floats(p + "post_attention_layernorm.weight")).containsOnly(1f);
        }
        assertThat(w.has("model.layers.2.self_attn.q_proj.weight")).isFalse();
        float[] q = w.floats("model.layers.0.mlp.gate_proj.weight");
        double sum = 0;
        double sq = 0;
        for (float v : q) {
            sum += v;
            sq += v * v;
        }
        double mean = sum / q.length;
        double std = Math.sqrt(sq / q.length - mean * mean);
        assertThat(std).isBetween(0.045, 0.055); // initializer_range 0.05
        assertThat(Math.abs(mean)).isLessThan(0.005);
        assertThat(out.resolve("tokenizer.json")).exists();
        assertThat(out.resolve("tokenizer_config.json")).exists();
        assertThat(out.resolve("generation_config.json")).exists();
        assertThat(Files.readString(out.resolve("config.json"))).contains("\"torch_dtype\" : \"float32\"");
    }

    @Test
    void sameSeedSameBytesOtherSeedOtherWeights() throws IOException {
        Path shape = TinyShape.write(tmp.resolve("shape"), true, Map.of());
        Path a = RandomCheckpoint.write(shape, tmp.resolve("a"), 42, RandomCheckpoint.DType.BF16, Map.of());
        Path b = RandomCheckpoint.write(shape, tmp.resolve("b"), 42, RandomCheckpoint.DType.BF16, Map.of());
        Path c = RandomCheckpoint.write(shape, tmp.resolve("c"), 43, RandomCheckpoint.DType.BF16, Map.of());
        byte[] bytesA = Files.readAllBytes(a.resolve("model.safetensors"));
        assertThat(Files.readAllBytes(b.resolve("model.safetensors"))).isEqualTo(bytesA);
        assertThat(Files.readAllBytes(c.resolve("model.safetensors"))).isNotEqualTo(bytesA);
        Safetensors w = Safetensors.open(a);
        assertThat(w.has("lm_head.weight")).as("tied embeddings: no lm_head").isFalse();
        // bf16 widened back is a float whose low 16 bits are zero
        for (float v : w.floats("model.embed_tokens.weight")) {
            assertThat(Float.floatToRawIntBits(v) & 0xFFFF).isZero();
        }
    }

    @Test
    void configOverridesApply() throws IOException {
        Path shape = TinyShape.write(tmp.resolve("shape"), true, Map.of());
        Path out = RandomCheckpoint.write(shape, tmp.resolve("ckpt"), 1, RandomCheckpoint.DType.F32,
                Map.of("num_hidden_layers", 1, "max_position_embeddings", 128));
        LlamaConfig c = LlamaConfig.read(out);
        assertThat(c.layers()).isEqualTo(1);
        assertThat(c.maxPositions()).isEqualTo(128);
        assertThat(Safetensors.open(out).has("model.layers.1.input_layernorm.weight")).isFalse();
    }

    @Test
    void bf16RoundsToNearestEven() {
        assertThat(RandomCheckpoint.bf16(1f)).isEqualTo(0x3F80);
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties to even (1)
        assertThat(RandomCheckpoint.bf16(1f + 0x1p-8f)).isEqualTo(0x3F80);
        assertThat(RandomCheckpoint.bf16(1f + 0x1p-8f + 0x1p-20f)).isEqualTo(0x3F81);
    }

    @Test
    void refusesMissingFoldersAndOtherModelTypes() throws IOException {
        assertThatThrownBy(() -> RandomCheckpoint.write(tmp.resolve("nope"), tmp.resolve("o"), 1,
                RandomCheckpoint.DType.F32, Map.of())).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("does not exist");
        Path qwen = TinyShape.write(tmp.resolve("qwen"), true, Map.of("model_type", "qwen2"));
        assertThatThrownBy(() -> RandomCheckpoint.write(qwen, tmp.resolve("o2"), 1, RandomCheckpoint.DType.F32, Map.of()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("only model_type llama");
    }
}
