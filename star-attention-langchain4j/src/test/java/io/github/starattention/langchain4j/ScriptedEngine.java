package io.github.starattention.langchain4j;

import io.github.starattention.jlama.model.Logits;
import io.github.starattention.jlama.ContextSession;
import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.Generation;
import io.github.starattention.jlama.GenerationOptions;
import io.github.starattention.jlama.PrefillListener;
import io.github.starattention.jlama.StarAttentionEngine;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.TokenListener;
import io.github.starattention.jlama.generation.GenerationLoop;
import io.github.starattention.plan.BlockPlan;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An engine that runs no transformer: it uses the bundled model's tokenizer and the engine's real generation loop
 * (sampling, stop strings, max tokens, cancellation) over scripted logits that spell a fixed answer per context,
 * then EOS. Records the options of every generation.
 */
final class ScriptedEngine implements StarAttentionEngine {

    private static final Pattern NUMBER = Pattern.compile("\\d{7}");

    final StarAttentionModel model;
    final AtomicInteger prefills = new AtomicInteger();
    final AtomicInteger generatedTokens = new AtomicInteger();
    final List<GenerationOptions> options = new CopyOnWriteArrayList<>();
    final List<ScriptedSession> sessions = new CopyOnWriteArrayList<>();
    private final Function<String, String> answer;
    volatile long stepMillis;
    volatile long prefillMillis;

    /** Answers "The special magic number is N." with the first 7-digit number of the context. */
    ScriptedEngine(StarAttentionModel model) {
        this(model, context -> {
            Matcher m = NUMBER.matcher(context);
            return m.find() ? "The special magic number is " + m.group() + "." : "I do not know.";
        });
    }

    ScriptedEngine(StarAttentionModel model, Function<String, String> answer) {
        this.model = model;
        this.answer = answer;
    }

    @Override
    public StarAttentionModel model() {
        return model;
    }

    @Override
    public EngineOptions options() {
        return EngineOptions.defaults();
    }

    @Override
    public ContextSession prefill(int[] contextTokens, PrefillListener listener) {
        prefills.incrementAndGet();
        sleep(prefillMillis);
        ScriptedSession s = new ScriptedSession(contextTokens.clone());
        sessions.add(s);
        return s;
    }

    @Override
    public void close() {
    }

    private static void sleep(long ms) {
        if (ms > 0) {
            try {
                Thread.sleep(ms);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    final class ScriptedSession implements ContextSession {
        final int[] context;
        volatile boolean closed;

        ScriptedSession(int[] context) {
            this.context = context;
        }

        @Override
        public BlockPlan plan() {
            return BlockPlan.global(context.length);
        }

        @Override
        public int contextTokens() {
            return context.length;
        }

        @Override
        public double prefillMillis() {
            return 0;
        }

        @Override
        public synchronized Generation generate(int[] queryTokens, GenerationOptions opts, TokenListener listener) {
            if (closed) {
                throw new IllegalStateException("closed");
            }
            options.add(opts);
            int[] body = model.encode(answer.apply(model.decode(context)));
            int vocab = model.decoder().config().vocabularySize;
            int eos = model.eosTokens().iterator().next();
            int[] step = {0};
            return new GenerationLoop(model.eosTokens(), model::decode).run(queryTokens, context.length, opts,
                    (id, text) -> {
                        generatedTokens.incrementAndGet();
                        listener.onToken(id, text);
                    },
                    (tokens, start, want) -> {
                        sleep(stepMillis);
                        float[] logits = new float[vocab];
                        int i = step[0]++;
                        logits[i < body.length ? body[i] : eos] = 100f;
                        return Logits.of(logits);
                    });
        }

        @Override
        public long kvBytes() {
            return context.length * 1000L;
        }

        @Override
        public void close() {
            closed = true;
        }
    }
}
