package io.github.starattention.jlama.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufWriterTest {

    @TempDir
    Path tmp;

    private Path checkpoint(boolean tied) throws IOException {
        Path shape = TinyShape.write(tmp.resolve("shape"), tied, Map.of());
        return RandomCheckpoint.write(shape, tmp.resolve("ckpt"), 5, RandomCheckpoint.DType.F32, Map.of());
    }

    @Test
    void f32FileHasHeaderMetadataTensorInfosAndExactData() throws IOException {
        Path ckpt = checkpoint(false);
        Path gguf = tmp.resolve("m.gguf");
        GgufWriter.convert(ckpt, gguf, GgufWriter.Type.F32);
        GgufReader r = new GgufReader(gguf);

        assertThat(r.version).isEqualTo(3);
        Map<String, Object> m = r.metadata;
        assertThat(m.get("general.architecture")).isEqualTo("llama");
        assertThat(m.get("general.file_type")).isEqualTo(0L);
        assertThat(m.get("llama.context_length")).isEqualTo(256L);
        assertThat(m.get("llama.embedding_length")).isEqualTo(64L);
        assertThat(m.get("llama.feed_forward_length")).isEqualTo(96L);
        assertThat(m.get("llama.block_count")).isEqualTo(2L);
        assertThat(m.get("llama.attention.head_count")).isEqualTo(4L);
        assertThat(m.get("llama.attention.head_count_kv")).isEqualTo(2L);
        assertThat(m.get("llama.rope.freq_base")).isEqualTo(100000f);
        assertThat(m.get("llama.attention.layer_norm_rms_epsilon")).isEqualTo(1e-5f);
        assertThat(m.get("llama.rope.dimension_count")).isEqualTo(16L);
        assertThat(m.get("llama.vocab_size")).isEqualTo((long) TinyShape.VOCAB);
        assertThat(m.get("tokenizer.ggml.model")).isEqualTo("gpt2");
        assertThat(m.get("tokenizer.ggml.pre")).isEqualTo("smollm");
        List<Object> tokens = list(m, "tokenizer.ggml.tokens");
        List<Object> types = list(m, "tokenizer.ggml.token_type");
        assertThat(tokens).hasSize(TinyShape.VOCAB);
        assertThat(tokens.subList(0, 5)).containsExactly("<|endoftext|>", "<|im_start|>", "<|im_end|>", "a", "b");
        assertThat(tokens.getLast()).isEqualTo("[PAD47]");
        assertThat(types.subList(0, 4)).containsExactly(3, 3, 3, 1);
        assertThat(types.getLast()).isEqualTo(5);
        assertThat(list(m, "tokenizer.ggml.merges")).containsExactly("Ġ a", "Ġ b", "a b");
        assertThat(m.get("tokenizer.ggml.bos_token_id")).isEqualTo(1L);
        assertThat(m.get("tokenizer.ggml.eos_token_id")).isEqualTo(2L);
        assertThat(m.get("tokenizer.ggml.unknown_token_id")).isEqualTo(0L);
        assertThat(m.get("tokenizer.ggml.padding_token_id")).isEqualTo(2L);
        assertThat((String) m.get("tokenizer.chat_template")).startsWith("{% for m in messages %}");

        // 1 + 2 * 9 + 2 tensors, untied: output.weight present
        assertThat(r.tensors).hasSize(21);
        assertThat(r.tensors.keySet()).startsWith("token_embd.weight", "blk.0.attn_norm.weight", "blk.0.attn_q.weight")
                .endsWith("output_norm.weight", "output.weight");
        assertThat(r.tensors.get("token_embd.weight").ne()).containsExactly(64, TinyShape.VOCAB);
        assertThat(r.tensors.get("blk.1.attn_k.weight").ne()).containsExactly(64, 32);
        assertThat(r.tensors.get("blk.1.ffn_down.weight").ne()).containsExactly(96, 64);
        assertThat(r.tensors.get("blk.0.ffn_norm.weight").ne()).containsExactly(64);
        assertThat(r.dataStart % 32).isZero();
        long expected = 0;
        for (GgufReader.TensorInfo t : r.tensors.values()) {
            assertThat(t.type()).isZero();
            assertThat(t.offset()).as(t.name()).isEqualTo(expected);
            expected = (t.offset() + t.elements() * 4 + 31) / 32 * 32;
        }
        assertThat(r.fileSize).isEqualTo(r.dataStart + expected);

        Safetensors w = Safetensors.open(ckpt);
        assertThat(r.floats("token_embd.weight")).containsExactly(w.floats("model.embed_tokens.weight"));
        assertThat(r.floats("output.weight")).containsExactly(w.floats("lm_head.weight"));
        assertThat(r.floats("blk.1.attn_v.weight")).containsExactly(w.floats("model.layers.1.self_attn.v_proj.weight"));
        assertThat(r.floats("blk.1.ffn_norm.weight")).containsExactly(w.floats("model.layers.1.post_attention_layernorm.weight"));
        assertThat(unpermute(r.floats("blk.1.attn_q.weight"), 64, 64, 4))
                .containsExactly(w.floats("model.layers.1.self_attn.q_proj.weight"));
        assertThat(unpermute(r.floats("blk.1.attn_k.weight"), 32, 64, 2))
                .containsExactly(w.floats("model.layers.1.self_attn.k_proj.weight"));
        assertThat(r.floats("blk.1.attn_q.weight")).isNotEqualTo(w.floats("model.layers.1.self_attn.q_proj.weight"));
    }

    @SuppressWarnings("unchecked")
    private static List<Object> list(Map<String, Object> m, String key) {
        return (List<Object>) m.get(key);
    }

    @Test
    void q8FileDecodesWithinTheQuantizationError() throws IOException {
        Path ckpt = checkpoint(true);
        Path gguf = tmp.resolve("m.gguf");
        GgufWriter.convert(ckpt, gguf, GgufWriter.Type.Q8_0);
        GgufReader r = new GgufReader(gguf);
        assertThat(r.metadata.get("general.file_type")).isEqualTo(7L);
        assertThat(r.tensors).hasSize(20).doesNotContainKey("output.weight");
        assertThat(r.tensors.get("token_embd.weight").type()).isEqualTo(8);
        assertThat(r.tensors.get("blk.0.attn_norm.weight").type()).isZero();
        assertThat(r.tensors.get("output_norm.weight").type()).isZero();
        long expected = 0;
        for (GgufReader.TensorInfo t : r.tensors.values()) {
            assertThat(t.offset()).as(t.name()).isEqualTo(expected);
            long bytes = t.type() == 8 ? t.elements() / 32 * 34 : t.elements() * 4;
            expected = (t.offset() + bytes + 31) / 32 * 32;
        }
        assertThat(r.fileSize).isEqualTo(r.dataStart + expected);

        Safetensors w = Safetensors.open(ckpt);
        for (String[] pair : List.of(new String[] {"token_embd.weight", "model.embed_tokens.weight"},
                new String[] {"blk.1.ffn_down.weight", "model.layers.1.mlp.down_proj.weight"})) {
            float[] exact = w.floats(pair[1]);
            assertWithinQ8Error(r.floats(pair[0]), exact);
        }
        float[] k = unpermute(r.floats("blk.0.attn_k.weight"), 32, 64, 2);
        assertWithinQ8Error(k, w.floats("model.layers.0.self_attn.k_proj.weight"));
    }

    /** Each value within half a step of its block's scale (plus the scale's fp16 rounding). */
    private static void assertWithinQ8Error(float[] decoded, float[] exact) {
        assertThat(decoded).hasSameSizeAs(exact);
        for (int b = 0; b < exact.length; b += 32) {
            float amax = 0;
            for (int j = 0; j < 32; j++) {
                amax = Math.max(amax, Math.abs(exact[b + j]));
            }
            double d = amax / 127.0;
            for (int j = 0; j < 32; j++) {
                assertThat((double) decoded[b + j]).isCloseTo(exact[b + j],
                        org.assertj.core.data.Offset.offset(d / 2 + amax * 1e-3 + 1e-12));
            }
        }
    }

    @Test
    void quantizeBlockMatchesTheQ8_0Definition() {
        float[] x = new float[32];
        x[0] = 127f;    // d = 1: the steps are the values themselves
        x[1] = -0.5f;   // halves round away from zero
        x[2] = 2.5f;
        x[3] = -127f;
        x[4] = 0.49f;
        byte[] q = new byte[32];
        float d = GgufWriter.quantizeBlock(x, 0, q);
        assertThat(d).isEqualTo(1f);
        assertThat(q[0]).isEqualTo((byte) 127);
        assertThat(q[1]).isEqualTo((byte) -1);
        assertThat(q[2]).isEqualTo((byte) 3);
        assertThat(q[3]).isEqualTo((byte) -127);
        assertThat(q[4]).isZero();
        float[] zeros = new float[32];
        assertThat(GgufWriter.quantizeBlock(zeros, 0, q)).isZero();
        assertThat(q).containsOnly(0);
    }

    @Test
    void permutationInterleavesTheHalvesOfEachHead() {
        // 2 heads of head size 4, one column: head rows [r0 r1 | r2 r3] -> [r0 r2 r1 r3]
        float[] w = {0, 1, 2, 3, 10, 11, 12, 13};
        assertThat(GgufWriter.permuteRows(w, 8, 1, 2)).containsExactly(0, 2, 1, 3, 10, 12, 11, 13);
        float[] big = new float[64 * 3];
        for (int i = 0; i < big.length; i++) {
            big[i] = i;
        }
        assertThat(unpermute(GgufWriter.permuteRows(big, 64, 3, 4), 64, 3, 4)).containsExactly(big);
    }

    /** The inverse of {@link GgufWriter#permuteRows}, written independently: row 2i + part goes back to part * half + i. */
    private static float[] unpermute(float[] w, int rows, int cols, int heads) {
        int hd = rows / heads;
        float[] out = new float[w.length];
        for (int h = 0; h < heads; h++) {
            for (int r = 0; r < hd; r++) {
                int i = r / 2;
                int part = r % 2;
                System.arraycopy(w, (h * hd + r) * cols, out, (h * hd + part * hd / 2 + i) * cols, cols);
            }
        }
        return out;
    }

    @Test
    void preTokenizerRule() throws IOException {
        ObjectMapper json = new ObjectMapper();
        assertThat(GgufWriter.preTokenizer(json.readTree("""
                {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true},
                 {"type": "ByteLevel", "use_regex": true}]}}"""))).isEqualTo("smollm");
        assertThat(GgufWriter.preTokenizer(json.readTree("""
                {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false}}"""))).isEqualTo("gpt-2");
        String llama3 = json.writeValueAsString(Map.of("pre_tokenizer", Map.of("type", "Sequence", "pretokenizers", List.of(
                Map.of("type", "Split", "pattern", Map.of("Regex", GgufWriter.LLAMA3_SPLIT), "behavior", "Isolated"),
                Map.of("type", "ByteLevel", "use_regex", false)))));
        assertThat(GgufWriter.preTokenizer(json.readTree(llama3))).isEqualTo("llama-bpe");
        assertThat(GgufWriter.preTokenizer(json.readTree("{\"pre_tokenizer\": {\"type\": \"Whitespace\"}}")))
                .isEqualTo("default");
    }

    @Test
    void refusesOtherModelTypesAndTokenizers() throws IOException {
        Path ckpt = checkpoint(true);
        Path mistral = Files.createDirectories(tmp.resolve("mistral"));
        Files.writeString(mistral.resolve("config.json"), Files.readString(ckpt.resolve("config.json"))
                .replace("\"llama\"", "\"mistral\""));
        assertThatThrownBy(() -> GgufWriter.convert(mistral, tmp.resolve("x.gguf"), GgufWriter.Type.F32))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("only model_type llama")
                .hasMessageNotContaining("\n");
        Files.writeString(ckpt.resolve("tokenizer.json"), Files.readString(ckpt.resolve("tokenizer.json"))
                .replace("\"BPE\"", "\"Unigram\""));
        assertThatThrownBy(() -> GgufWriter.convert(ckpt, tmp.resolve("y.gguf"), GgufWriter.Type.F32))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("only byte-level BPE")
                .hasMessageNotContaining("\n");
    }
}
