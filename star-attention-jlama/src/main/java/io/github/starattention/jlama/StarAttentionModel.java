package io.github.starattention.jlama;

import com.github.tjake.jlama.safetensors.prompt.PromptSupport;
import com.github.tjake.jlama.safetensors.tokenizer.Tokenizer;
import com.github.tjake.jlama.util.PhysicalCoreExecutor;
import io.github.starattention.jlama.model.ModelFolder;
import io.github.starattention.jlama.model.StarLlamaModel;
import io.github.starattention.jlama.model.WeightFormat;
import io.github.starattention.rope.RotaryEmbedding;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Jlama model (Llama, Qwen2, Mistral families) whose attention is replaced by the Star Attention backend.
 * Jlama loads the weights and tokenizer, renders the chat template and runs projections, MLP and sampling math;
 * this project owns attention, positions and the KV cache. Thread-safe; one instance serves many engines.
 */
public final class StarAttentionModel implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(StarAttentionModel.class);

    private final ModelFolder folder;
    private final StarLlamaModel jlama;
    private final RotaryEmbedding rope;
    private final Tokenizer tokenizer;
    private final Set<Integer> eosTokens;

    private StarAttentionModel(ModelFolder folder, StarLlamaModel jlama) {
        this.folder = folder;
        this.jlama = jlama;
        this.rope = folder.rotaryEmbedding();
        this.tokenizer = jlama.getTokenizer();
        this.eosTokens = Set.copyOf(new HashSet<>(jlama.getConfig().eosTokens));
    }

    /** Loads {@code dir} with fp32 weights and Jlama's default thread count. */
    public static StarAttentionModel load(Path dir) {
        return load(dir, WeightFormat.F32, 0);
    }

    /**
     * Loads the model folder {@code dir} ({@code config.json}, safetensors, {@code tokenizer.json}).
     *
     * @param format number format of the weights in memory
     * @param threads threads of Jlama's process-wide matrix-product pool, 0 for its default; it can be set only before
     *     the first model runs in this JVM
     * @throws IllegalArgumentException with a clear message for a missing folder, missing files or an unsupported
     *     {@code model_type}
     */
    public static StarAttentionModel load(Path dir, WeightFormat format, int threads) {
        Objects.requireNonNull(dir, "dir");
        ModelFolder folder = ModelFolder.open(dir);
        if (threads > 0) {
            configureThreads(threads);
        }
        long t0 = System.nanoTime();
        StarLlamaModel jlama = folder.loadStar(format);
        log.info("loaded {} ({}, {} layers, {} weights) in {} ms", dir, folder.modelType(),
                jlama.getConfig().numberOfLayers, format, (System.nanoTime() - t0) / 1_000_000);
        return new StarAttentionModel(folder, jlama);
    }

    /** Sets Jlama's matrix-product thread pool size if it has not started yet (it is process-wide). */
    public static void configureThreads(int threads) {
        try {
            PhysicalCoreExecutor.overrideThreadCount(threads);
        } catch (IllegalStateException e) {
            int have = PhysicalCoreExecutor.instance.get().getCoreCount();
            if (have != threads) {
                log.warn("Jlama's thread pool already runs {} threads; cannot change it to {} in this JVM", have, threads);
            }
        }
    }

    /** The model folder. */
    public Path directory() {
        return folder.directory();
    }

    /** {@code max_position_embeddings}: the largest context + query + output length. */
    public int maxPositions() {
        return folder.maxPositions();
    }

    /** End-of-sequence token ids. */
    public Set<Integer> eosTokens() {
        return eosTokens;
    }

    /** Beginning-of-sequence token id. */
    public int bosToken() {
        return jlama.getConfig().bosToken;
    }

    /** Tokens of {@code text} without BOS. */
    public int[] encode(String text) {
        long[] ids = tokenizer.encode(text);
        int from = ids.length > 0 && ids[0] == bosToken() ? 1 : 0;
        return Arrays.stream(ids, from, ids.length).mapToInt(Math::toIntExact).toArray();
    }

    /** Text of {@code tokens} (special tokens skipped). */
    public String decode(int[] tokens) {
        long[] ids = Arrays.stream(tokens).filter(t -> !tokenizer.getModel().isSpecialToken(t)).asLongStream().toArray();
        return ids.length == 0 ? "" : tokenizer.decode(ids);
    }

    /**
     * Splits a chat prompt rendered with the model's chat template: everything before the last user turn is the
     * context (phase 1, BOS first), the last user turn and the assistant header are the query (phase 2). Whitespace
     * that ends the context text moves to the query, so a context can be reused by any question.
     *
     * @throws IllegalArgumentException if the last message is not a user turn or the model has no chat template
     */
    public PromptSplit split(List<ChatTurn> messages) {
        if (messages.isEmpty() || !messages.getLast().role().equals("user")) {
            throw new IllegalArgumentException("the last message must be a user turn (the question)");
        }
        PromptSupport prompts = jlama.promptSupport().orElseThrow(() ->
                new IllegalArgumentException("model " + directory() + " has no chat template (tokenizer_config.json)"));
        String full = render(prompts, messages, true);
        String prefix = messages.size() == 1 ? "" : render(prompts, messages.subList(0, messages.size() - 1), false);
        if (!full.startsWith(prefix)) {
            throw new IllegalArgumentException("the chat template of " + directory()
                    + " does not render earlier turns as a prefix of the whole conversation; cannot split it");
        }
        String context = prefix.stripTrailing();
        String query = full.substring(context.length());
        int[] contextIds = encode(context);
        int[] ids = new int[contextIds.length + 1];
        ids[0] = bosToken();
        System.arraycopy(contextIds, 0, ids, 1, contextIds.length);
        return new PromptSplit(ids, encode(query), context, query);
    }

    /** {@code split(List.of(ChatTurn.system(context), ChatTurn.user(question)))}. */
    public PromptSplit split(String context, String question) {
        return split(List.of(ChatTurn.system(context), ChatTurn.user(question)));
    }

    private static String render(PromptSupport prompts, List<ChatTurn> turns, boolean generationPrompt) {
        PromptSupport.Builder b = prompts.builder().addGenerationPrompt(generationPrompt);
        for (ChatTurn t : turns) {
            switch (t.role()) {
                case "system" -> b.addSystemMessage(t.content());
                case "user" -> b.addUserMessage(t.content());
                default -> b.addAssistantMessage(t.content());
            }
        }
        return b.build().getPrompt();
    }

    /** The Jlama model with Star Attention layers (for engines). */
    public StarLlamaModel jlama() {
        return jlama;
    }

    /** The rotary embedding from {@code config.json}. */
    public RotaryEmbedding rotaryEmbedding() {
        return rope;
    }

    @Override
    public void close() {
        jlama.close();
    }
}
