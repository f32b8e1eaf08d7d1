package io.github.starattention.jlama;

import java.nio.file.Path;
import java.util.List;

/**
 * A Jlama model (Llama, Qwen2, Mistral families) whose attention is replaced by the Star Attention backend.
 * Jlama loads the weights and tokenizer, renders the chat template and runs projections, MLP and sampling math;
 * this project owns attention, positions and the KV cache. Thread-safe; one instance serves many engines.
 */
public final class StarAttentionModel implements AutoCloseable {

    private StarAttentionModel() {
    }

    /**
     * Loads the model folder {@code dir} ({@code config.json}, safetensors, {@code tokenizer.json}).
     *
     * @throws java.io.UncheckedIOException / IllegalArgumentException with a clear message for a missing folder,
     *     missing files or an unsupported {@code model_type}
     */
    public static StarAttentionModel load(Path dir) {
        throw new UnsupportedOperationException("engine not implemented yet");
    }

    /** The model folder. */
    public Path directory() {
        throw new UnsupportedOperationException("engine not implemented yet");
    }

    /** {@code max_position_embeddings}: the largest context + query + output length. */
    public int maxPositions() {
        throw new UnsupportedOperationException("engine not implemented yet");
    }

    /** Tokens of {@code text} without BOS. */
    public int[] encode(String text) {
        throw new UnsupportedOperationException("engine not implemented yet");
    }

    /** Text of {@code tokens} (special tokens skipped). */
    public String decode(int[] tokens) {
        throw new UnsupportedOperationException("engine not implemented yet");
    }

    /** Splits a rendered chat prompt: everything before the last user turn is the context. */
    public PromptSplit split(List<ChatTurn> messages) {
        throw new UnsupportedOperationException("engine not implemented yet");
    }

    /** {@code split(List.of(ChatTurn.system(context), ChatTurn.user(question)))}. */
    public PromptSplit split(String context, String question) {
        return split(List.of(ChatTurn.system(context), ChatTurn.user(question)));
    }

    @Override
    public void close() {
    }
}
