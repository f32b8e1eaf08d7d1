package io.github.starattention.jlama.model;

import com.github.tjake.jlama.safetensors.Config;
import java.util.function.IntConsumer;

/**
 * The forward pass of a decoder as {@link ContextEncoder} runs it, on the CPU ({@link Decoder}) or with the whole
 * model on a GPU ({@link CudaDecoder}). Both compute the same layers in the same order; they differ in where the
 * weights and activations live. Implementations are thread-safe: passes of several sessions run at once.
 */
public sealed interface ForwardPass extends AutoCloseable permits Decoder, CudaDecoder {

    /** Jlama's parsed {@code config.json}. */
    Config config();

    /** The attention score scale ({@code 1/sqrt(headDim)} unless the config says otherwise). */
    float attentionScale();

    /** Bytes of the weights this pass reads. */
    long weightBytes();

    /** A short name for logs, e.g. {@code cpu} or {@code cuda:0}. */
    String name();

    /**
     * Runs {@code tokens} through every layer, attending as {@code attention} says, and returns the last token's
     * logits as {@code want} asks ({@code null} for {@link Logits.Want#NONE}: only the K/V written are kept).
     */
    Logits forward(int[] tokens, ChunkAttention attention, Logits.Want want);

    /**
     * Runs the chunks {@code chunks[i]} layer by layer through layers {@code 0..layers-1}: every chunk through layer
     * {@code l}, in order, before any through {@code l + 1}, chunk {@code i} attending as {@code attention[i]} says.
     * Each chunk sees the same keys and values at each layer as with one {@link #forward} per chunk in order, so the KV
     * written is the same; what changes is when each layer runs: a caller whose partitions arrive layer by layer (the
     * anchor from the host encoding block 0, what earlier blocks pass on) waits for one layer at most, and each
     * finished layer is handed to {@code afterLayer} early. With {@code layers} below the model's, only the first
     * layers' K/V are written (a passing-blocks scout, see {@link PassingPolicy}).
     */
    void forwardLayerMajor(int[][] chunks, ChunkAttention[] attention, int layers, IntConsumer afterLayer);

    @Override
    void close();
}
