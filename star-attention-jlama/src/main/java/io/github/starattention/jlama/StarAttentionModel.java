package io.github.starattention.jlama;

import com.github.tjake.jlama.safetensors.prompt.PromptSupport;
import com.github.tjake.jlama.util.PhysicalCoreExecutor;
import io.github.starattention.jlama.model.HfTokenizer;
import io.github.starattention.jlama.model.ModelFolder;
import io.github.starattention.jlama.model.Decoder;
import io.github.starattention.jlama.model.WeightFormat;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Llama-family model (Llama, Qwen2, Mistral) run by our {@link Decoder}: Jlama parses the config, reads the
 * safetensors and renders the chat template; Hugging Face tokenizers ({@link HfTokenizer}) turns text into ids; the
 * forward pass, its matrix products, attention, positions and the KV cache are ours. Thread-safe; one instance
 * serves many engines.
 */
public final class StarAttentionModel implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(StarAttentionModel.class);

    /** A question no chat template changes (a private-use character) to find where the question starts. */
    private static final String OTHER_QUESTION = "\uE000";

    private final ModelFolder folder;
    private final Decoder decoder;
    private final Optional<PromptSupport> prompts;
    private final HfTokenizer tokenizer;
    private final Set<Integer> eosTokens;

    private StarAttentionModel(ModelFolder folder, Decoder decoder, HfTokenizer tokenizer) {
        this.folder = folder;
        this.decoder = decoder;
        this.prompts = folder.promptSupport();
        this.tokenizer = tokenizer;
        this.eosTokens = Set.copyOf(new HashSet<>(decoder.config().eosTokens));
    }

    /** Loads {@code dir} with fp32 weights and a thread per available processor. */
    public static StarAttentionModel load(Path dir) {
        return load(dir, WeightFormat.F32, 0);
    }

    /**
     * Loads the model folder {@code dir} ({@code config.json}, safetensors, {@code tokenizer.json}).
     *
     * @param format number format of the weights in memory
     * @param threads threads of the matrix products, 0 for one per available processor
     * @throws IllegalArgumentException with a clear message for a missing folder, missing files or an unsupported
     *     {@code model_type}
     */
    public static StarAttentionModel load(Path dir, WeightFormat format, int threads) {
        Objects.requireNonNull(dir, "dir");
        ModelFolder folder = ModelFolder.open(dir);
        long t0 = System.nanoTime();
        HfTokenizer tokenizer = HfTokenizer.open(dir);
        Decoder decoder;
        try {
            decoder = folder.loadDecoder(format, threads > 0 ? threads : Runtime.getRuntime().availableProcessors());
        } catch (RuntimeException | Error e) {
            tokenizer.close();
            throw e;
        }
        log.info("loaded {} ({}, {} layers, {} weights, {} MiB) in {} ms", dir, folder.modelType(),
                decoder.config().numberOfLayers, format, decoder.weightBytes() >> 20, (System.nanoTime() - t0) / 1_000_000);
        try {
            return new StarAttentionModel(folder, decoder, tokenizer);
        } catch (RuntimeException | Error e) {
            decoder.close();
            tokenizer.close();
            throw e;
        }
    }

    /**
     * Sets stock Jlama's process-wide matrix-product pool size if it has not started yet (for baselines run in the
     * same JVM; our decoder has its own workers).
     */
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
        return decoder.config().bosToken;
    }

    /** Tokens of {@code text}, no special tokens added (special tokens written in the text are single tokens). */
    public int[] encode(String text) {
        return tokenizer.encode(text);
    }

    /** Text of {@code tokens} (special tokens skipped). */
    public String decode(int[] tokens) {
        return tokenizer.decode(tokens);
    }

    /**
     * Renders a chat with the model's chat template, tokenizes it as transformers does (the tokenizer's special
     * tokens, one BOS), and splits the ids: the context (phase 1) ends where the earlier turns end, the last user turn
     * and the assistant header are the query (phase 2). A template that moves earlier turns into the last one (Mistral
     * writes the system prompt inside the last {@code [INST]}) has its context end where the rendering stops depending
     * on the question. Whitespace that ends the context moves to the query, so a context can be reused by any
     * question. The ids are always those of the whole prompt; the split only decides where phase 1 ends.
     *
     * @throws IllegalArgumentException if the last message is not a user turn, the model has no chat template, or
     *     nothing is left for the context
     */
    public PromptSplit split(List<ChatTurn> messages) {
        if (messages.isEmpty() || !messages.getLast().role().equals("user")) {
            throw new IllegalArgumentException("the last message must be a user turn (the question)");
        }
        PromptSupport prompts = this.prompts.orElseThrow(() ->
                new IllegalArgumentException("model " + directory() + " has no chat template (tokenizer_config.json)"));
        String full = render(prompts, messages, true);
        int boundary = contextEnd(prompts, messages, full);
        HfTokenizer.Encoded prompt = tokenizer.encodePrompt(full);
        int[] ids = prompt.ids();
        int k = 0;
        while (k < ids.length && prompt.ends()[k] <= boundary) {
            k++;
        }
        if (k == 0 || k == ids.length) {
            throw new IllegalArgumentException("the chat template of " + directory() + " leaves " + (k == 0
                    ? "no context before the question" : "no question after the context") + "; cannot split it");
        }
        int textEnd = prompt.ends()[k - 1];
        return new PromptSplit(Arrays.copyOf(ids, k), Arrays.copyOfRange(ids, k, ids.length),
                full.substring(0, textEnd), full.substring(textEnd));
    }

    private static int contextEnd(PromptSupport prompts, List<ChatTurn> messages, String full) {
        int n = messages.size();
        if (n > 1) {
            try {
                String prefix = render(prompts, messages.subList(0, n - 1), false);
                if (full.startsWith(prefix) && prefix.contains(messages.get(n - 2).content().strip())) {
                    return prefix.stripTrailing().length();
                }
            } catch (RuntimeException e) {
                log.debug("the chat template does not render the earlier turns alone ({}); splitting where the "
                        + "question starts", e.toString());
            }
        }
        List<ChatTurn> other = new ArrayList<>(messages.subList(0, n - 1));
        other.add(ChatTurn.user(OTHER_QUESTION));
        String alt = render(prompts, other, true);
        int b = 0;
        while (b < full.length() && b < alt.length() && full.charAt(b) == alt.charAt(b)) {
            b++;
        }
        return full.substring(0, b).stripTrailing().length();
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

    /** The forward pass (for engines). */
    public Decoder decoder() {
        return decoder;
    }

    @Override
    public void close() {
        try {
            decoder.close();
        } finally {
            tokenizer.close();
        }
    }
}
