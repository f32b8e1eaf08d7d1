package io.github.starattention.jlama.eval;

import io.github.starattention.attention.Device;
import io.github.starattention.jlama.ContextSession;
import io.github.starattention.jlama.Generation;
import io.github.starattention.jlama.GenerationOptions;
import io.github.starattention.jlama.LocalEngine;
import io.github.starattention.jlama.PrefillListener;
import io.github.starattention.jlama.PromptSplit;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.TokenListener;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs examples through the engine in each {@link Variant}: the prompt is split with the model's chat template
 * (system = context, user = question), each variant prefills the context with its own engine (greedy decoding, the
 * {@link TokenBudget}'s cap, stop at end of sequence) and the output is scored with
 * {@link Scorer#stringMatchAll}. The engines come from an {@link EngineSource}: a new in-process engine per run by
 * default, query hosts of a cluster with {@code eval --hosts N}. An example that fails to run (a prompt longer than the model's positions, say)
 * becomes a result with {@code error} set; the others go on.
 */
public final class EvalRunner {

    private static final Logger log = LoggerFactory.getLogger(EvalRunner.class);

    /**
     * What to run.
     *
     * @param variants the configurations, in order (e.g. global, star)
     * @param budget new-token cap per task
     * @param device attention kernels
     * @param threads attention worker threads
     */
    public record Config(List<Variant> variants, TokenBudget budget, Device device, int threads) {
        public Config {
            variants = List.copyOf(variants);
            if (variants.isEmpty()) {
                throw new IllegalArgumentException("nothing to run: no modes or sweep settings");
            }
            Objects.requireNonNull(budget, "budget");
            Objects.requireNonNull(device, "device");
        }
    }

    /** Progress of a run, called after each (example, variant). */
    @FunctionalInterface
    public interface Progress {
        /**
         * @param done runs finished (including skipped ones)
         * @param total runs in all
         * @param doneWork work finished, in context tokens (global attention is weighted by its quadratic cost)
         * @param totalWork all the work
         * @param last the result just finished, null for a skipped one
         */
        void update(int done, int total, double doneWork, double totalWork, EvalResult last);

        Progress NONE = (d, t, dw, tw, r) -> { };
    }

    private final StarAttentionModel model;
    private final Config config;
    private final EngineSource engines;
    private boolean warnedCap;

    /** Runs in process: a new {@link LocalEngine} per example and variant. */
    public EvalRunner(StarAttentionModel model, Config config) {
        this(model, config, EngineSource.inProcess(model));
    }

    /** Runs on the engines of {@code engines} (which the caller closes). */
    public EvalRunner(StarAttentionModel model, Config config, EngineSource engines) {
        this.model = Objects.requireNonNull(model, "model");
        this.config = Objects.requireNonNull(config, "config");
        this.engines = Objects.requireNonNull(engines, "engines");
    }

    /**
     * Runs every example in every variant, skipping the (example, variant) pairs whose {@link EvalResult#key()} is
     * in {@code skip}, and hands each result to {@code sink} as soon as it is known.
     *
     * @return the new results in run order
     */
    public List<EvalResult> run(List<EvalExample> examples, Set<String> skip, Consumer<EvalResult> sink,
                                Progress progress) {
        int total = examples.size() * config.variants().size();
        double totalWork = 0;
        for (EvalExample e : examples) {
            for (Variant v : config.variants()) {
                totalWork += work(e, v);
            }
        }
        List<EvalResult> out = new ArrayList<>();
        int done = 0;
        double doneWork = 0;
        for (EvalExample e : examples) {
            PromptSplit split = null;
            RuntimeException splitError = null;
            for (Variant v : config.variants()) {
                double w = work(e, v);
                if (skip.contains(e.id() + "\u0000" + v.label())) {
                    done++;
                    doneWork += w;
                    progress.update(done, total, doneWork, totalWork, null);
                    continue;
                }
                if (split == null && splitError == null) {
                    try {
                        split = model.split(e.context(), e.question());
                    } catch (RuntimeException ex) {
                        splitError = ex;
                    }
                }
                EvalResult r = splitError != null ? failure(e, v, 0, 0, splitError) : runOne(e, v, split);
                out.add(r);
                sink.accept(r);
                done++;
                doneWork += w;
                progress.update(done, total, doneWork, totalWork, r);
            }
        }
        return out;
    }

    /** Runs one example in one variant. */
    public EvalResult runOne(EvalExample e, Variant v, PromptSplit split) {
        int ctx = split.contextTokens().length;
        int maxNew = config.budget().maxNewTokens(e.task());
        if (v.anchorCapped(ctx) && !warnedCap) {
            warnedCap = true;
            log.warn("anchor size {} is larger than the block size {} for a {}-token context; it is capped at the block size",
                    v.anchorSize(), v.blockSizeFor(ctx), ctx);
        }
        try (EngineSource.Lease lease = engines.open(v, ctx, config.device(), config.threads());
             ContextSession session = lease.engine().prefill(split.contextTokens(), PrefillListener.NONE)) {
            Generation g = session.generate(split.queryTokens(), GenerationOptions.greedy(maxNew), TokenListener.NONE);
            double score = Scorer.stringMatchAll(g.text(), e.answers());
            var plan = session.plan();
            int anchor = plan.blockCount() == 1 ? 0 : plan.effectiveAnchor();
            return new EvalResult(e.id(), e.task(), e.length(), v.modeName(), v.label(), v.setting(), g.text(), score,
                    session.prefillMillis() + g.ttftMillis(), session.prefillMillis(), g.decodeTokensPerSecond(), ctx,
                    g.queryTokens(), g.tokens().length, maxNew, g.finishReason().name().toLowerCase(Locale.ROOT),
                    plan.blockCount(), plan.blockSize(), anchor, null, lease.contextHosts(session));
        } catch (RuntimeException ex) {
            log.debug("example {} failed in {}", e.id(), v.label(), ex);
            return failure(e, v, ctx, split.queryTokens().length, ex);
        }
    }

    private EvalResult failure(EvalExample e, Variant v, int ctx, int query, RuntimeException ex) {
        String msg = ex.getMessage() != null ? ex.getMessage() : ex.toString();
        int b = ctx > 0 ? v.blockSizeFor(ctx) : 0;
        return new EvalResult(e.id(), e.task(), e.length(), v.modeName(), v.label(), v.setting(), "", 0, 0, 0, 0, ctx,
                query, 0, config.budget().maxNewTokens(e.task()), "error", b > 0 ? (ctx + b - 1) / b : 0, b,
                ctx > 0 ? v.anchorSizeFor(ctx) : 0, msg, engines.contextHosts(v));
    }

    /**
     * Estimated cost of one run for the ETA, in token units: the MLP and projections grow with the tokens encoded
     * (anchor included), attention with their square (within a block for star).
     */
    static double work(EvalExample e, Variant v) {
        double n = e.length();
        double b = Math.min(n, v.blockSizeFor((int) n));
        double a = v.anchorSizeFor((int) n);
        double blocks = Math.ceil(n / b);
        double tokens = n + (blocks - 1) * a;
        double attention = blocks * (a + b) * (a + b) / 2;
        return tokens + attention / 1024.0;
    }
}
