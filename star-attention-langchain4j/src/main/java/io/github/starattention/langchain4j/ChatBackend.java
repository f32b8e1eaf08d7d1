package io.github.starattention.langchain4j;

import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.Content;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.TextContent;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.exception.LangChain4jException;
import dev.langchain4j.exception.TimeoutException;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ResponseFormatType;
import dev.langchain4j.model.chat.request.ToolChoice;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.TokenUsage;
import io.github.starattention.jlama.ChatTurn;
import io.github.starattention.jlama.Generation;
import io.github.starattention.jlama.GenerationOptions;
import io.github.starattention.jlama.LocalEngine;
import io.github.starattention.jlama.PrefillListener;
import io.github.starattention.jlama.PromptSplit;
import io.github.starattention.jlama.PromptTooLongException;
import io.github.starattention.jlama.StarAttentionEngine;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.model.WeightFormat;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the blocking and the streaming chat model share: the engine and context cache, request validation, the
 * split into context and query, parameter mapping, generation and the response. Thread-safe.
 */
final class ChatBackend implements AutoCloseable {

    static final int DEFAULT_MAX_OUTPUT_TOKENS = 512;
    /** Default of how long {@link #close()} waits for running requests before it leaves the release to the last. */
    static final Duration CLOSE_WAIT = Duration.ofSeconds(30);
    private static final int LOG_CHARS = 300;

    private final StarAttentionEngine engine;
    private final StarAttentionModel model;
    private final boolean ownsEngine;
    private final boolean ownsModel;
    private final ContextCache cache;
    private final boolean ownsCache;
    private final String modelName;
    private final StarAttentionChatRequestParameters defaults;
    private final Duration timeout;
    private final Duration closeWait;
    private final boolean logRequests;
    private final boolean logResponses;
    private final Logger logger;
    private final List<ChatModelListener> listeners;
    private final PrefillListener prefillListener;
    private final Object lock = new Object();
    private int inFlight;
    /** Set by a {@link #close()} that found requests still running: the last one to end releases. */
    private boolean releaseOnLastExit;
    private volatile boolean closed;

    ChatBackend(StarAttentionModelBuilder<?, ?> b, Class<?> owner) {
        ChatRequestParameters common = b.defaultRequestParameters != null ? b.defaultRequestParameters
                : StarAttentionChatRequestParameters.EMPTY;
        Long commonSeed = common instanceof StarAttentionChatRequestParameters sp ? sp.seed() : null;
        StarAttentionChatRequestParameters sampling = StarAttentionChatRequestParameters.builder()
                .overrideWith(common)
                .temperature(first(b.temperature, common.temperature()))
                .topP(first(b.topP, common.topP()))
                .maxOutputTokens(first(b.maxOutputTokens, common.maxOutputTokens()))
                .stopSequences(b.stopSequences != null ? b.stopSequences : common.stopSequences())
                .seed(first(b.seed, commonSeed))
                .build();
        String served = servedModelName(b);
        validate(sampling, served); // before loading anything
        if (b.timeout != null && (b.timeout.isNegative() || b.timeout.isZero())) {
            throw new IllegalArgumentException("timeout must be positive, got " + b.timeout);
        }
        if (b.closeTimeout != null && b.closeTimeout.isNegative()) {
            throw new IllegalArgumentException("closeTimeout must not be negative, got " + b.closeTimeout);
        }
        StarAttentionModel loaded = null;
        StarAttentionEngine built = null;
        boolean ownModel = false;
        try {
            if (b.engine != null) {
                if (b.hasEngineOptions() || b.model != null || b.modelPath != null || b.weightFormat != null
                        || b.threads > 0) {
                    throw new IllegalArgumentException("engine(...) was given: configure mode, blocks, blockSize, "
                            + "anchorSize, device, kvPrecision, threads, model, modelPath and weightFormat on that "
                            + "engine, not on the chat model builder");
                }
                built = b.engine;
                loaded = built.model();
            } else {
                if (b.model != null) {
                    loaded = b.model;
                } else {
                    Path dir = b.modelPath;
                    if (dir == null && b.modelName != null) {
                        dir = ModelDownloads.resolve(b.modelCachePath != null ? b.modelCachePath : ModelDownloads.DEFAULT_CACHE,
                                b.modelName, b.authToken);
                    }
                    if (dir == null) {
                        throw new IllegalArgumentException("no model: set modelPath (a model folder), modelName (a "
                                + "Hugging Face id), model or engine");
                    }
                    loaded = StarAttentionModel.load(dir, b.weightFormat != null ? b.weightFormat : WeightFormat.F32,
                            b.threads);
                    ownModel = true;
                }
                built = LocalEngine.create(loaded, b.engineOptions());
            }
        } catch (RuntimeException e) {
            if (ownModel) {
                loaded.close();
            }
            throw e;
        }
        this.engine = built;
        this.model = loaded;
        this.ownsEngine = b.engine == null;
        this.ownsModel = ownModel;
        if (b.contextCache != null) {
            this.cache = b.contextCache;
            this.ownsCache = false;
        } else {
            this.cache = ContextCache.withMaxBytes(b.maxCacheBytes != null ? b.maxCacheBytes : ContextCache.defaultMaxBytes());
            this.ownsCache = true;
        }
        this.modelName = served;
        this.defaults = StarAttentionChatRequestParameters.builder().overrideWith(sampling).modelName(modelName).build();
        this.timeout = b.timeout;
        this.closeWait = b.closeTimeout != null ? b.closeTimeout : CLOSE_WAIT;
        this.logRequests = Boolean.TRUE.equals(b.logRequests);
        this.logResponses = Boolean.TRUE.equals(b.logResponses);
        this.logger = b.logger != null ? b.logger : LoggerFactory.getLogger(owner);
        this.listeners = b.listeners == null ? List.of() : List.copyOf(b.listeners);
        this.prefillListener = b.prefillListener != null ? b.prefillListener : PrefillListener.NONE;
    }

    /**
     * The name this chat model answers to: {@code modelName} if set, else the model folder's name (of the engine's
     * model, the loaded model or {@code modelPath}); null only when there is no model at all, which loading refuses.
     */
    private static String servedModelName(StarAttentionModelBuilder<?, ?> b) {
        if (b.modelName != null) {
            return b.modelName;
        }
        if (b.engine != null) {
            return String.valueOf(b.engine.model().directory().getFileName());
        }
        if (b.model != null) {
            return String.valueOf(b.model.directory().getFileName());
        }
        return b.modelPath != null ? String.valueOf(b.modelPath.toAbsolutePath().normalize().getFileName()) : null;
    }

    private static <T> T first(T a, T b) {
        return a != null ? a : b;
    }

    StarAttentionEngine engine() {
        return engine;
    }

    ContextCache cache() {
        return cache;
    }

    String modelName() {
        return modelName;
    }

    StarAttentionChatRequestParameters defaults() {
        return defaults;
    }

    List<ChatModelListener> listeners() {
        return listeners;
    }

    /** A request whose parameters and messages were checked (cheap: no tokenizing). */
    record Checked(ChatRequest request, StarAttentionChatRequestParameters parameters, List<ChatTurn> turns) {
    }

    /** A request checked and split, ready to run. */
    record Prepared(ChatRequest request, StarAttentionChatRequestParameters parameters, PromptSplit split) {
    }

    /**
     * Checks what can be checked without tokenizing: parameters, message types and content. Streaming calls it on
     * the caller's thread, so that unsupported features throw from {@code chat(...)} as LangChain4j's contract asks.
     *
     * @throws UnsupportedFeatureException for tools, JSON response formats, topK, penalties, non-text content and
     *     another model name
     * @throws InvalidRequestException for out-of-range parameters or a conversation that does not end with a user
     *     message
     */
    Checked check(ChatRequest request) {
        StarAttentionChatRequestParameters p = defaults.overrideWith(request.parameters());
        validate(p, modelName);
        return new Checked(request, p, turns(request.messages()));
    }

    /**
     * Splits a checked request's messages into context and query tokens.
     *
     * @throws InvalidRequestException for a prompt longer than the model's positions, or turns the chat template
     *     refuses
     */
    Prepared prepare(Checked checked) {
        PromptSplit split;
        try {
            split = model.split(checked.turns());
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException(e.getMessage(), e);
        }
        int prompt = split.contextTokens().length + split.queryTokens().length;
        if (prompt >= model.maxPositions()) {
            throw new InvalidRequestException("the prompt has " + prompt + " tokens (context "
                    + split.contextTokens().length + " + question " + split.queryTokens().length
                    + ") but the model has " + model.maxPositions() + " positions, none left for the answer");
        }
        return new Prepared(checked.request(), checked.parameters(), split);
    }

    /**
     * Checks merged parameters against what a Star Attention chat model serving {@code servedModelName} can do; the
     * message says what to change. The wording follows LangChain4j's ("... is not supported").
     */
    static void validate(ChatRequestParameters p, String servedModelName) {
        if (p.toolChoice() == ToolChoice.REQUIRED) {
            throw new UnsupportedFeatureException("ToolChoice.REQUIRED is not supported by Star Attention chat "
                    + "models: they have no tools");
        }
        if (p.toolSpecifications() != null && !p.toolSpecifications().isEmpty()) {
            throw new UnsupportedFeatureException("tools are not supported by Star Attention chat models: the "
                    + "engine generates plain text and has no tool-calling format (remove the tool specifications; "
                    + "with AiServices, register no tools)");
        }
        if (p.responseFormat() != null && p.responseFormat().type() == ResponseFormatType.JSON) {
            throw new UnsupportedFeatureException("JSON response formats" + (p.responseFormat().jsonSchema() != null
                    ? " (JSON schema '" + p.responseFormat().jsonSchema().name() + "')" : "")
                    + " are not supported by Star Attention chat models: generation is not constrained to a "
                    + "schema; use ResponseFormat.TEXT (AiServices then adds format instructions to the prompt)");
        }
        if (p.topK() != null) {
            throw new UnsupportedFeatureException("topK is not supported by Star Attention chat models; use topP");
        }
        if (p.frequencyPenalty() != null && p.frequencyPenalty() != 0) {
            throw new UnsupportedFeatureException("frequencyPenalty is not supported by Star Attention chat models");
        }
        if (p.presencePenalty() != null && p.presencePenalty() != 0) {
            throw new UnsupportedFeatureException("presencePenalty is not supported by Star Attention chat models");
        }
        if (p.modelName() != null && servedModelName != null && !p.modelName().equals(servedModelName)) {
            throw new UnsupportedFeatureException("modelName '" + p.modelName() + "' is not supported: this chat "
                    + "model serves '" + servedModelName + "' only (leave modelName unset, or build another chat "
                    + "model for '" + p.modelName() + "')");
        }
        if (p.temperature() != null && !(p.temperature() >= 0 && p.temperature() <= 100)) {
            throw new InvalidRequestException("temperature must be >= 0, got " + p.temperature());
        }
        if (p.topP() != null && !(p.topP() > 0 && p.topP() <= 1)) {
            throw new InvalidRequestException("topP must be in (0, 1], got " + p.topP());
        }
        if (p.maxOutputTokens() != null && p.maxOutputTokens() < 1) {
            throw new InvalidRequestException("maxOutputTokens must be at least 1, got " + p.maxOutputTokens());
        }
        if (p.stopSequences() != null && p.stopSequences().stream().anyMatch(s -> s == null || s.isEmpty())) {
            throw new InvalidRequestException("stop sequences must not be empty");
        }
    }

    /** LangChain4j messages as chat-template turns. */
    static List<ChatTurn> turns(List<ChatMessage> messages) {
        if (messages == null || messages.isEmpty()) {
            throw new InvalidRequestException("the request has no messages");
        }
        List<ChatTurn> turns = new ArrayList<>(messages.size());
        for (ChatMessage m : messages) {
            switch (m) {
                case SystemMessage s -> turns.add(ChatTurn.system(s.text()));
                case UserMessage u -> turns.add(ChatTurn.user(text(u)));
                case AiMessage a -> {
                    if (a.hasToolExecutionRequests()) {
                        throw new UnsupportedFeatureException("AI messages with tool execution requests are not "
                                + "supported by Star Attention chat models (they have no tools)");
                    }
                    turns.add(ChatTurn.assistant(a.text() == null ? "" : a.text()));
                }
                default -> throw new UnsupportedFeatureException(m.type() + " messages are not supported by Star "
                        + "Attention chat models (only system, user and AI text messages)");
            }
        }
        if (!turns.getLast().role().equals("user")) {
            throw new InvalidRequestException("the last message must be a user message (the question, encoded in "
                    + "phase 2 after the context); got " + messages.getLast().type());
        }
        return turns;
    }

    private static String text(UserMessage u) {
        if (u.hasSingleText()) {
            return u.singleText();
        }
        StringBuilder sb = new StringBuilder();
        for (Content c : u.contents()) {
            if (!(c instanceof TextContent t)) {
                throw new UnsupportedFeatureException(c.type().name().toLowerCase(Locale.ROOT) + " content is not "
                        + "supported by Star Attention chat models (text only)");
            }
            if (!sb.isEmpty()) {
                sb.append('\n');
            }
            sb.append(t.text());
        }
        return sb.toString();
    }

    /** Thrown by {@link #run} when the caller cancelled; streaming then stays silent. */
    static final class CancelledException extends LangChain4jException {
        CancelledException(String message) {
            super(message);
        }
    }

    /**
     * Runs a prepared request: context from the cache (or phase 1), then phase 2.
     *
     * @param partials receives text deltas that concatenate to the answer (null: blocking, no deltas)
     * @param cancelled polled between tokens; true stops generation and throws {@link CancelledException}
     * @throws TimeoutException when the request exceeds the timeout
     */
    ChatResponse run(Prepared prepared, Consumer<String> partials, BooleanSupplier cancelled) {
        long start = System.nanoTime();
        long deadline = timeout == null ? Long.MAX_VALUE : start + timeout.toNanos();
        enter();
        try {
            return generate(prepared, partials, cancelled, start, deadline);
        } finally {
            exit();
        }
    }

    private ChatResponse generate(Prepared prepared, Consumer<String> partials, BooleanSupplier cancelled, long start,
                                  long deadline) {
        PromptSplit split = prepared.split();
        StarAttentionChatRequestParameters p = prepared.parameters();
        String id = UUID.randomUUID().toString();
        if (logRequests) {
            logRequest(id, prepared);
        }
        ContextCache.Lease lease;
        try {
            lease = cache.acquire(engine, split.contextTokens(), prefillListener,
                    timeout == null ? -1 : Math.max(0, deadline - System.nanoTime()));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CancelledException("interrupted while waiting for the context to be encoded");
        } catch (java.util.concurrent.TimeoutException e) {
            throw new TimeoutException("the request exceeded its timeout of " + timeout
                    + " while waiting for another request to encode the same context");
        } catch (IllegalArgumentException e) { // PromptTooLongException, or a block plan that does not fit
            throw new InvalidRequestException(e.getMessage(), e);
        }
        try (lease) {
            long contextReady = System.nanoTime();
            if (contextReady > deadline) {
                throw new TimeoutException("the request exceeded its timeout of " + timeout + " while encoding the "
                        + "context (" + split.contextTokens().length + " tokens, " + millis(start, contextReady)
                        + " ms); the encoded context stays cached, so a retry starts with the question");
            }
            int left = model.maxPositions() - split.contextTokens().length - split.queryTokens().length;
            int maxNew = Math.min(p.maxOutputTokens() != null ? p.maxOutputTokens() : DEFAULT_MAX_OUTPUT_TOKENS, left);
            List<String> stops = p.stopSequences() == null ? List.of() : p.stopSequences();
            long[] firstToken = {0};
            StreamingText stream = partials == null ? null : new StreamingText(model::decode, stops, partials);
            GenerationOptions options = GenerationOptions.builder()
                    .maxNewTokens(maxNew)
                    .temperature(p.temperature() != null ? p.temperature().floatValue() : 0f)
                    .topP(p.topP() != null ? p.topP().floatValue() : 1f)
                    .seed(p.seed() != null ? p.seed() : ThreadLocalRandom.current().nextLong())
                    .stopStrings(stops)
                    .cancelled(() -> closed || cancelled.getAsBoolean() || System.nanoTime() > deadline
                            || Thread.currentThread().isInterrupted())
                    .build();
            Generation g;
            try {
                g = lease.session().generate(split.queryTokens(), options, (token, text) -> {
                    if (firstToken[0] == 0) {
                        firstToken[0] = System.nanoTime();
                    }
                    if (stream != null) {
                        stream.onToken(token);
                    }
                });
            } catch (PromptTooLongException e) {
                throw new InvalidRequestException(e.getMessage(), e);
            }
            long end = System.nanoTime();
            FinishReason reason = switch (g.finishReason()) {
                case STOP -> FinishReason.STOP;
                case LENGTH -> FinishReason.LENGTH;
                case CANCELLED -> throw cancellation(deadline, end);
            };
            if (stream != null) {
                stream.finish(g.text());
            }
            StarAttentionChatResponseMetadata metadata = StarAttentionChatResponseMetadata.builder()
                    .id(id)
                    .modelName(modelName)
                    .tokenUsage(new TokenUsage(split.contextTokens().length + split.queryTokens().length,
                            g.tokens().length))
                    .finishReason(reason)
                    .contextTokens(split.contextTokens().length)
                    .queryTokens(split.queryTokens().length)
                    .contextCached(lease.hit())
                    .prefillMillis(millis(start, contextReady))
                    .timeToFirstTokenMillis(millis(start, firstToken[0] != 0 ? firstToken[0] : end))
                    .decodeTokensPerSecond(g.decodeTokensPerSecond())
                    .build();
            ChatResponse response = ChatResponse.builder().aiMessage(AiMessage.from(g.text())).metadata(metadata).build();
            if (logResponses) {
                logger.info("Star Attention response {}: {} {}", id, abbreviate(g.text()), metadata);
            }
            return response;
        }
    }

    private LangChain4jException cancellation(long deadline, long now) {
        if (now > deadline) {
            return new TimeoutException("the request exceeded its timeout of " + timeout + " while generating");
        }
        if (closed) {
            return new CancelledException("the chat model was closed during generation");
        }
        return new CancelledException("generation was cancelled");
    }

    private static double millis(long from, long to) {
        return (to - from) / 1e6;
    }

    private void logRequest(String id, Prepared prepared) {
        String messages = prepared.request().messages().stream()
                .map(m -> m.type() + "(" + abbreviate(switch (m) {
                    case SystemMessage s -> s.text();
                    case UserMessage u -> text(u);
                    case AiMessage a -> String.valueOf(a.text());
                    default -> String.valueOf(m);
                }) + ")")
                .collect(Collectors.joining(", ", "[", "]"));
        logger.info("Star Attention request {}: messages={}, parameters={}, contextTokens={}, queryTokens={}", id,
                messages, prepared.parameters(), prepared.split().contextTokens().length,
                prepared.split().queryTokens().length);
    }

    private static String abbreviate(String s) {
        String flat = s.replace("\n", "\\n");
        return flat.length() <= LOG_CHARS ? flat
                : flat.substring(0, LOG_CHARS / 2) + " ... (" + flat.length() + " chars) ... "
                        + flat.substring(flat.length() - LOG_CHARS / 2);
    }

    private void enter() {
        synchronized (lock) {
            if (closed) {
                throw new IllegalStateException("the chat model is closed");
            }
            inFlight++;
        }
    }

    private void exit() {
        boolean release;
        synchronized (lock) {
            inFlight--;
            lock.notifyAll();
            release = inFlight == 0 && releaseOnLastExit;
            releaseOnLastExit &= !release;
        }
        if (release) {
            releaseOwned();
        }
    }

    boolean isClosed() {
        return closed;
    }

    /**
     * Stops running generations (at their next token), waits for them (at most the close timeout), then releases
     * what this backend owns: its cache, and the engine and model it built. A request still running then (a phase 1
     * cannot be interrupted) keeps them: they are released when the last one ends, never under a running request.
     */
    @Override
    public void close() {
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
            long until = System.nanoTime() + closeWait.toNanos();
            while (inFlight > 0 && System.nanoTime() < until) {
                try {
                    lock.wait(100);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            if (inFlight > 0) {
                releaseOnLastExit = true;
                logger.info("closing with {} request(s) still encoding their context; the engine, model and cache are "
                        + "released when the last one ends", inFlight);
                return;
            }
        }
        releaseOwned();
    }

    private void releaseOwned() {
        if (ownsCache) {
            cache.close();
        } else if (ownsEngine) {
            cache.clear(engine);
        }
        if (ownsEngine) {
            engine.close();
        }
        if (ownsModel) {
            model.close();
        }
    }

    @Override
    public String toString() {
        return "model=" + modelName + ", engine=" + engine.options() + ", cache=" + cache;
    }
}
