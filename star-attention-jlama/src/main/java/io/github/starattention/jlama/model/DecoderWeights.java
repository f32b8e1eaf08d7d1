package io.github.starattention.jlama.model;

import com.github.tjake.jlama.safetensors.Config;
import com.github.tjake.jlama.safetensors.DType;
import com.github.tjake.jlama.safetensors.WeightLoader;
import com.github.tjake.jlama.tensor.AbstractTensor;
import io.github.starattention.linear.Matrix;
import io.github.starattention.linear.WeightType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.stream.IntStream;

/**
 * The weights of a Llama-family decoder (Llama, Mistral, Qwen2) in our number formats, read through Jlama's
 * safetensors loader. Matrices are {@code [out][in]}; Q, K and V are fused into one matrix, as are gate and up:
 * <pre>
 *   embedding  [vocab][dim]                      type of the format (Q8 for the Q4 format: see WeightFormat)
 *   per layer: attnNorm [dim] fp32
 *              qkv  [heads*hd + 2*kvHeads*hd][dim]   rows: Q, then K, then V
 *              qkvBias [heads*hd + 2*kvHeads*hd] fp32 or null (Qwen2 has biases)
 *              o    [dim][heads*hd]
 *              mlpNorm [dim] fp32
 *              gateUp [2*ffn][dim]                  rows: gate, then up
 *              down [dim][ffn]
 *   finalNorm  [dim] fp32
 *   lmHead     [vocab][dim]                      the embedding itself when tied
 * </pre>
 */
final class DecoderWeights {

    record Layer(float[] attnNorm, Matrix qkv, float[] qkvBias, Matrix o, float[] mlpNorm, Matrix gateUp,
                 Matrix down) {
    }

    final Matrix embedding;
    final Layer[] layers;
    final float[] finalNorm;
    final Matrix lmHead;

    private DecoderWeights(Matrix embedding, Layer[] layers, float[] finalNorm, Matrix lmHead) {
        this.embedding = embedding;
        this.layers = layers;
        this.finalNorm = finalNorm;
        this.lmHead = lmHead;
    }

    static DecoderWeights load(WeightLoader weights, Config c, WeightFormat format) {
        Reader r = new Reader(weights, format);
        Layer[] layers = new Layer[c.numberOfLayers];
        boolean bias = weights.isWeightPresent("model.layers.0.self_attn.q_proj.bias");
        IntStream.range(0, c.numberOfLayers).parallel().forEach(i -> {
            String base = "model.layers." + i + ".";
            String attn = base + "self_attn.";
            String mlp = base + "mlp.";
            float[] qkvBias = null;
            if (bias) {
                float[] q = r.vector(attn + "q_proj.bias");
                float[] k = r.vector(attn + "k_proj.bias");
                float[] v = r.vector(attn + "v_proj.bias");
                qkvBias = new float[q.length + k.length + v.length];
                System.arraycopy(q, 0, qkvBias, 0, q.length);
                System.arraycopy(k, 0, qkvBias, q.length, k.length);
                System.arraycopy(v, 0, qkvBias, q.length + k.length, v.length);
            }
            layers[i] = new Layer(
                    r.vector(base + "input_layernorm.weight"),
                    Matrix.stack(r.matrix(attn + "q_proj.weight"), r.matrix(attn + "k_proj.weight"),
                            r.matrix(attn + "v_proj.weight")),
                    qkvBias,
                    r.matrix(attn + "o_proj.weight"),
                    r.vector(base + "post_attention_layernorm.weight"),
                    Matrix.stack(r.matrix(mlp + "gate_proj.weight"), r.matrix(mlp + "up_proj.weight")),
                    r.matrix(mlp + "down_proj.weight"));
        });
        Reader outer = format == WeightFormat.Q4 ? new Reader(weights, WeightFormat.Q8) : r;
        Matrix embedding = outer.matrix("model.embed_tokens.weight");
        Matrix lmHead = weights.isWeightPresent("lm_head.weight") ? outer.matrix("lm_head.weight") : embedding;
        return new DecoderWeights(embedding, layers, r.vector("model.norm.weight"), lmHead);
    }

    /** Bytes of all weights in memory (the tied head counted once). */
    long bytes() {
        long b = embedding.bytes() + 4L * finalNorm.length + (lmHead == embedding ? 0 : lmHead.bytes());
        for (Layer l : layers) {
            b += l.qkv.bytes() + l.o.bytes() + l.gateUp.bytes() + l.down.bytes()
                    + 4L * (l.attnNorm.length + l.mlpNorm.length + (l.qkvBias == null ? 0 : l.qkvBias.length));
        }
        return b;
    }

    /** Reads tensors in their stored dtype (F32, BF16, F16) into our formats. */
    private record Reader(WeightLoader weights, WeightFormat format) {

        float[] vector(String name) {
            AbstractTensor t = weights.load(name);
            try {
                return floats(t, name);
            } finally {
                t.close();
            }
        }

        Matrix matrix(String name) {
            AbstractTensor t = weights.load(name);
            try {
                if (t.shape().dims() != 2) {
                    throw new IllegalArgumentException(name + " has shape " + t.shape() + ", expected a matrix");
                }
                int rows = t.shape().first();
                int cols = t.shape().last();
                WeightType type = format.weightType(t.dType() == DType.BF16);
                if (type == WeightType.BF16 && t.dType() == DType.BF16) {
                    short[] bits = new short[Math.toIntExact(t.size())];
                    MemorySegment.copy(t.getMemorySegment(), ValueLayout.JAVA_SHORT_UNALIGNED, 0, bits, 0, bits.length);
                    return Matrix.ofBf16(bits, rows, cols);
                }
                return Matrix.of(type, floats(t, name), rows, cols);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(name + ": " + e.getMessage(), e);
            } finally {
                t.close();
            }
        }

        private static float[] floats(AbstractTensor t, String name) {
            int n = Math.toIntExact(t.size());
            float[] out = new float[n];
            MemorySegment s = t.getMemorySegment();
            switch (t.dType()) {
                case F32 -> MemorySegment.copy(s, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, out, 0, n);
                case BF16 -> {
                    for (int i = 0; i < n; i++) {
                        out[i] = Float.intBitsToFloat(s.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i) << 16);
                    }
                }
                case F16 -> {
                    for (int i = 0; i < n; i++) {
                        out[i] = Float.float16ToFloat(s.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
                    }
                }
                default -> throw new IllegalArgumentException(name + " is stored as " + t.dType()
                        + "; supported: F32, BF16, F16");
            }
            return out;
        }
    }
}
