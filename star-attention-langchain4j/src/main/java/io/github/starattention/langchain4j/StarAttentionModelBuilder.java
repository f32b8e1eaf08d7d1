package io.github.starattention.langchain4j;

import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import io.github.starattention.attention.Device;
import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.PrefillListener;
import io.github.starattention.jlama.StarAttentionEngine;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.model.WeightFormat;
import io.github.starattention.kv.KvPrecision;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.slf4j.Logger;

/**
 * The options shared by {@link StarAttentionChatModel.Builder} and {@link StarAttentionStreamingChatModel.Builder}.
 *
 * <p>Where the model comes from, first match wins: {@link #engine} (an engine you built, e.g. a distributed one;
 * not closed by the chat model), {@link #model} (a loaded model; the chat model builds a local engine over it),
 * {@link #modelPath} (a model folder), {@link #modelName} (a Hugging Face id, fetched by Jlama into
 * {@link #modelCachePath} unless already there). Engine options ({@code mode, blocks, blockSize, anchorSize, device,
 * threads}) configure the local engine and are refused together with {@link #engine}.
 *
 * <p>Sampling defaults ({@code temperature, topP, maxOutputTokens, stopSequences, seed}) override
 * {@link #defaultRequestParameters}; each request may override them again. Unset: temperature 0 (greedy), topP 1,
 * maxOutputTokens 512 (always capped by the positions the model has left),
 * no stop sequences, a random seed per request.
 */
public abstract class StarAttentionModelBuilder<C, B extends StarAttentionModelBuilder<C, B>> {

    Path modelPath;
    String modelName;
    Path modelCachePath;
    String authToken;
    WeightFormat weightFormat;
    int threads;
    StarAttentionModel model;
    StarAttentionEngine engine;
    Mode mode;
    Integer blocks;
    Integer blockSize;
    Integer anchorSize;
    Device device;
    KvPrecision kvPrecision;
    ContextCache contextCache;
    Long maxCacheBytes;
    Double temperature;
    Double topP;
    Integer maxOutputTokens;
    List<String> stopSequences;
    Long seed;
    Duration timeout;
    Duration closeTimeout;
    Boolean logRequests;
    Boolean logResponses;
    Logger logger;
    List<ChatModelListener> listeners;
    ChatRequestParameters defaultRequestParameters;
    PrefillListener prefillListener;

    protected StarAttentionModelBuilder() {
    }

    @SuppressWarnings("unchecked")
    protected B self() {
        return (B) this;
    }

    /** A model folder ({@code config.json}, safetensors, {@code tokenizer.json}, {@code tokenizer_config.json}). */
    public B modelPath(Path modelPath) {
        this.modelPath = modelPath;
        return self();
    }

    /**
     * A Hugging Face model id ({@code owner/name}), downloaded by Jlama into {@link #modelCachePath} when not there
     * yet. With {@link #modelPath}, {@link #model} or {@link #engine} it only names the model in responses.
     */
    public B modelName(String modelName) {
        this.modelName = modelName;
        return self();
    }

    /** Where Hugging Face models are kept (default {@code ~/.jlama/models}, as Jlama). */
    public B modelCachePath(Path modelCachePath) {
        this.modelCachePath = modelCachePath;
        return self();
    }

    /** Hugging Face token for gated models. */
    public B authToken(String authToken) {
        this.authToken = authToken;
        return self();
    }

    /** Number format of the weights in memory (default {@link WeightFormat#F32}). */
    public B weightFormat(WeightFormat weightFormat) {
        this.weightFormat = weightFormat;
        return self();
    }

    /** Threads of the attention kernels and (if it has not started yet) of Jlama's matrix-product pool. */
    public B threads(int threads) {
        this.threads = threads;
        return self();
    }

    /** A loaded model to build the local engine over (not closed by the chat model). */
    public B model(StarAttentionModel model) {
        this.model = model;
        return self();
    }

    /**
     * The engine to run on, e.g. a distributed (cluster) engine or a local engine shared by several chat models.
     * Not closed by the chat model.
     */
    public B engine(StarAttentionEngine engine) {
        this.engine = engine;
        return self();
    }

    /** {@link Mode#STAR} (default) or {@link Mode#GLOBAL}. */
    public B mode(Mode mode) {
        this.mode = mode;
        return self();
    }

    /** Number of context blocks (default 4); ignored when {@link #blockSize} is set. */
    public B blocks(Integer blocks) {
        this.blocks = blocks;
        return self();
    }

    /** Block size in tokens (default: context length / blocks). */
    public B blockSize(Integer blockSize) {
        this.blockSize = blockSize;
        return self();
    }

    /** Anchor size in tokens (default: the block size; 0 disables the anchor). */
    public B anchorSize(Integer anchorSize) {
        this.anchorSize = anchorSize;
        return self();
    }

    /** Where attention runs (default {@link Device#AUTO}: CUDA when usable, else CPU). */
    public B device(Device device) {
        this.device = device;
        return self();
    }

    /**
     * Element type of K and V in CPU memory (default {@link KvPrecision#F32}; {@link KvPrecision#BF16} halves the
     * memory of long contexts).
     */
    public B kvPrecision(KvPrecision kvPrecision) {
        this.kvPrecision = kvPrecision;
        return self();
    }

    /** A context cache to use (e.g. shared with other chat models); not closed by the chat model. */
    public B contextCache(ContextCache contextCache) {
        this.contextCache = contextCache;
        return self();
    }

    /**
     * Budget of the chat model's own context cache in bytes of KV (default {@link ContextCache#defaultMaxBytes()};
     * 0 disables reuse).
     */
    public B maxCacheBytes(Long maxCacheBytes) {
        this.maxCacheBytes = maxCacheBytes;
        return self();
    }

    public B temperature(Double temperature) {
        this.temperature = temperature;
        return self();
    }

    public B topP(Double topP) {
        this.topP = topP;
        return self();
    }

    /** Maximum output tokens (the prompt is not counted). */
    public B maxOutputTokens(Integer maxOutputTokens) {
        this.maxOutputTokens = maxOutputTokens;
        return self();
    }

    public B stopSequences(List<String> stopSequences) {
        this.stopSequences = stopSequences;
        return self();
    }

    public B stopSequences(String... stopSequences) {
        return stopSequences(Arrays.asList(stopSequences));
    }

    /** Sampler seed, for reproducible sampling at a temperature above 0. */
    public B seed(Long seed) {
        this.seed = seed;
        return self();
    }

    /**
     * Time limit of a request, from the call to the last token; exceeding it throws (or reports, when streaming)
     * {@link dev.langchain4j.exception.TimeoutException}. Checked after phase 1 and between tokens; an encoded
     * context stays cached, so a retry starts at phase 2.
     */
    public B timeout(Duration timeout) {
        this.timeout = timeout;
        return self();
    }

    /**
     * How long {@code close()} waits for running requests (default 30 s). Requests still running then (a phase 1
     * cannot be interrupted) keep the engine, model and cache until the last of them ends, which releases them.
     */
    public B closeTimeout(Duration closeTimeout) {
        this.closeTimeout = closeTimeout;
        return self();
    }

    public B logRequests(Boolean logRequests) {
        this.logRequests = logRequests;
        return self();
    }

    public B logResponses(Boolean logResponses) {
        this.logResponses = logResponses;
        return self();
    }

    /** Logger for {@link #logRequests} and {@link #logResponses} (default: the chat model class's logger). */
    public B logger(Logger logger) {
        this.logger = logger;
        return self();
    }

    public B listeners(List<ChatModelListener> listeners) {
        this.listeners = listeners;
        return self();
    }

    public B listeners(ChatModelListener... listeners) {
        return listeners(Arrays.asList(listeners));
    }

    /**
     * Default request parameters (a {@link StarAttentionChatRequestParameters} may carry a seed); the individual
     * sampling options of this builder take precedence over them.
     */
    public B defaultRequestParameters(ChatRequestParameters defaultRequestParameters) {
        this.defaultRequestParameters = defaultRequestParameters;
        return self();
    }

    /** Progress of phase 1 (context encoding), e.g. for a progress bar. */
    public B prefillListener(PrefillListener prefillListener) {
        this.prefillListener = prefillListener;
        return self();
    }

    /** The engine options for a local engine, from the builder's engine settings. */
    EngineOptions engineOptions() {
        EngineOptions.Builder b = EngineOptions.builder();
        if (mode != null) {
            b.mode(mode);
        }
        if (blocks != null) {
            b.blocks(blocks);
        }
        if (blockSize != null) {
            b.blockSize(blockSize);
        }
        if (anchorSize != null) {
            b.anchorSize(anchorSize);
        }
        if (device != null) {
            b.device(device);
        }
        if (threads > 0) {
            b.threads(threads);
        }
        if (kvPrecision != null) {
            b.kvPrecision(kvPrecision);
        }
        return b.build();
    }

    boolean hasEngineOptions() {
        return mode != null || blocks != null || blockSize != null || anchorSize != null || device != null
                || kvPrecision != null;
    }

    public abstract C build();
}
