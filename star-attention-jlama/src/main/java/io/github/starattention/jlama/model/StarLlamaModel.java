package io.github.starattention.jlama.model;

import com.github.tjake.jlama.math.VectorMath;
import com.github.tjake.jlama.model.MLPBlock;
import com.github.tjake.jlama.model.RMSNorm;
import com.github.tjake.jlama.model.TransformerBlock;
import com.github.tjake.jlama.model.llama.LlamaModel;
import com.github.tjake.jlama.safetensors.Config;
import com.github.tjake.jlama.safetensors.DType;
import com.github.tjake.jlama.safetensors.WeightLoader;
import com.github.tjake.jlama.safetensors.tokenizer.Tokenizer;
import com.github.tjake.jlama.tensor.AbstractTensor;
import com.github.tjake.jlama.tensor.operations.TensorOperationsProvider;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * A Jlama Llama-family model (Llama, Mistral, Qwen2: the same block structure, Qwen2 adding Q/K/V biases) whose
 * attention layers are {@link StarSelfAttention}. Jlama loads the weights and runs embeddings, norms, projections and
 * the MLP; attention, positions and the KV cache are ours. Forward passes go through {@link #forward(int[],
 * AttentionCall)}, never through Jlama's {@code generate}.
 *
 * <p><b>One pass at a time.</b> Jlama's {@code MLPBlock} keeps per-layer scratch arrays in fields, so two forward
 * passes in one layer's MLP at once mix their results (in parallel chats they crashed its native GEMMs). Passes
 * therefore take turns on this model; a pass that waits for remote partial attention ({@link #awaitRemote}) steps
 * aside meanwhile, so other sessions, and a failover that re-encodes blocks here, run while the network works.
 */
public final class StarLlamaModel extends LlamaModel {

    private final ReentrantLock passes = new ReentrantLock();

    public StarLlamaModel(InferenceType type, Config config, WeightLoader weights, Tokenizer tokenizer,
                          DType workingDType, DType workingQType, Optional<DType> modelQType) {
        super(type, config, weights, tokenizer, workingDType, workingQType, modelQType);
    }

    @Override
    protected TransformerBlock[] loadTransformerBlockWeights() {
        DType qType = modelQType.orElse(modelDType);
        boolean qkvBias = weights.isWeightPresent("model.layers." + c.dctx().layerStart + ".self_attn.q_proj.bias");
        TransformerBlock[] blocks = new TransformerBlock[c.dctx().numberOfLayers];
        IntStream.range(c.dctx().layerStart, c.dctx().layerEnd).parallel().forEach(i -> {
            int layer = i - c.dctx().layerStart;
            String base = "model.layers." + i + ".";
            String attn = base + "self_attn.";
            StarSelfAttention attention = new StarSelfAttention(this, layer,
                    bias(qkvBias, attn + "q_proj.bias", qType),
                    bias(qkvBias, attn + "k_proj.bias", qType),
                    bias(qkvBias, attn + "v_proj.bias", qType),
                    weights.load(attn + "q_proj.weight", c.dctx(), true, false).quantize(qType),
                    weights.load(attn + "k_proj.weight", c.dctx(), true, false).quantize(qType),
                    weights.load(attn + "v_proj.weight", c.dctx(), true, false).quantize(qType),
                    weights.load(attn + "o_proj.weight", c.dctx(), false, true).quantize(qType));
            String mlp = base + "mlp.";
            MLPBlock ff = new MLPBlock(this, c.activationFunction,
                    weights.load(mlp + "gate_proj.weight", c.dctx(), true, false).quantize(qType),
                    weights.load(mlp + "down_proj.weight", c.dctx(), false, true).quantize(qType),
                    weights.load(mlp + "up_proj.weight", c.dctx(), true, false).quantize(qType));
            blocks[layer] = new TransformerBlock(this, layer,
                    new RMSNorm(this, weights.load(base + "input_layernorm.weight").quantize(qType)),
                    attention,
                    new RMSNorm(this, weights.load(base + "post_attention_layernorm.weight").quantize(qType)),
                    ff);
        });
        return blocks;
    }

    private Optional<AbstractTensor> bias(boolean present, String name, DType qType) {
        return present ? Optional.of(weights.load(name).quantize(qType)) : Optional.empty();
    }

    /**
     * Runs {@code tokens} through every layer with {@code call} as the attention context and returns the final
     * hidden states {@code [tokens][embeddingLength]} (the caller closes the tensor).
     */
    public AbstractTensor forward(int[] tokens, AttentionCall call) {
        passes.lock();
        call.bind();
        try {
            return forward(embedInput.batchInputsToEmbeddings(tokens, 0), 0, null, Optional.empty());
        } finally {
            AttentionCall.unbind();
            passes.unlock();
        }
    }

    /**
     * Runs the chunks {@code chunks[i]} through every layer, layer by layer: every chunk at layer {@code l}, in order,
     * before any at layer {@code l + 1}, chunk {@code i} with {@code calls[i]} as its attention context. A chunk sees
     * the same keys and values at each layer as in one {@link #forward(int[], AttentionCall)} per chunk in order, so
     * the KV written is the same; what changes is when each layer's attention runs: a caller whose sources arrive
     * layer by layer (the anchor from the host encoding block 0) waits for one layer of them at most, instead of its
     * first chunk waiting for all of them. Only the KV is kept (phase 1); {@code afterLayer} gets each finished layer.
     * The model is taken per chunk and layer, so other passes run in between.
     */
    public void forwardLayerMajor(int[][] chunks, AttentionCall[] calls, IntConsumer afterLayer) {
        AbstractTensor[] hidden = new AbstractTensor[chunks.length];
        try {
            for (int i = 0; i < chunks.length; i++) {
                passes.lock();
                try {
                    hidden[i] = embedInput.batchInputsToEmbeddings(chunks[i], 0);
                } finally {
                    passes.unlock();
                }
            }
            for (int layer = 0; layer < transformerBlocks.length; layer++) {
                for (int i = 0; i < chunks.length; i++) {
                    passes.lock();
                    calls[i].bind();
                    try {
                        AbstractTensor next = transformerBlocks[layer].forward(hidden[i], 0, null, Optional.empty());
                        hidden[i].close();
                        hidden[i] = next;
                    } finally {
                        AttentionCall.unbind();
                        passes.unlock();
                    }
                }
                afterLayer.accept(layer);
            }
        } finally {
            for (AbstractTensor h : hidden) {
                if (h != null) {
                    h.close();
                }
            }
        }
    }

    /** Logits (before any softmax) of row {@code row} of the hidden states {@code hidden}. */
    public float[] logits(AbstractTensor hidden, int row) {
        passes.lock();
        try (AbstractTensor h = makeDenseTensor(1, c.embeddingLength)) {
            h.copyFrom(hidden, row * c.embeddingLength, 0, c.embeddingLength);
            return logitsOfRow(h);
        } finally {
            passes.unlock();
        }
    }

    /**
     * Waits for {@code remote} (called by an attention layer inside a pass) with the model free for other passes;
     * takes it back before returning. Safe at that point: no Jlama layer is half-way through its scratch state.
     */
    <T> T awaitRemote(CompletableFuture<T> remote) {
        int holds = passes.getHoldCount();
        for (int i = 0; i < holds; i++) {
            passes.unlock();
        }
        try {
            return remote.join();
        } finally {
            for (int i = 0; i < holds; i++) {
                passes.lock();
            }
        }
    }

    private float[] logitsOfRow(AbstractTensor h) {
        try (AbstractTensor normed = sampleOutput.getOutputLayerNorm().forward(h);
             AbstractTensor out = makeDenseTensor(1, c.vocabularySize)) {
            VectorMath.pchunk(0, c.vocabularySize, (start, len) -> TensorOperationsProvider.get()
                    .dotProductChunk(out, normed, sampleOutput.getOutputLogitsWeights(), 0, c.embeddingLength, start, len));
            float[] logits = new float[c.vocabularySize];
            MemorySegment.copy(out.getMemorySegment(), ValueLayout.JAVA_FLOAT, 0, logits, 0, logits.length);
            if (c.logitMultiplier != null) {
                for (int i = 0; i < logits.length; i++) {
                    logits[i] /= c.logitMultiplier;
                }
            }
            return logits;
        }
    }

    /** Jlama's activation quantization before a projection (a no-op copy when the working types agree). */
    AbstractTensor quantizeActivations(AbstractTensor t) {
        return maybeQuantize(t);
    }
}
