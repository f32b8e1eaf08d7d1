package io.github.starattention.jlama;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionKernels;
import io.github.starattention.jlama.model.ContextEncoder;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.BlockPlan;
import java.util.List;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Star Attention in one process: phase 1 encodes the blocks one after another (block 0 alone, the others behind the
 * anchor, whose KV is computed once and reused), phase 2 attends to every block through per-block partials merged
 * exactly. In {@link Mode#GLOBAL} the context is one block: ordinary causal attention with our kernels.
 */
public final class LocalEngine implements StarAttentionEngine {

    private static final Logger log = LoggerFactory.getLogger(LocalEngine.class);

    private final StarAttentionModel model;
    private final EngineOptions options;
    private final AttentionKernel kernel;
    private final ContextEncoder encoder;

    private LocalEngine(StarAttentionModel model, EngineOptions options) {
        this.model = Objects.requireNonNull(model, "model");
        this.options = Objects.requireNonNull(options, "options");
        this.kernel = AttentionKernels.open(options.device(), options.threads(), options.kvPrecision());
        try {
            this.encoder = ContextEncoder.open(model.decoder(), kernel);
        } catch (RuntimeException | Error e) {
            kernel.close();
            throw e;
        }
    }

    /** An engine running {@code model} with {@code options} (its kernel is opened now and closed with the engine). */
    public static LocalEngine create(StarAttentionModel model, EngineOptions options) {
        return new LocalEngine(model, options);
    }

    @Override
    public StarAttentionModel model() {
        return model;
    }

    @Override
    public EngineOptions options() {
        return options;
    }

    /** The attention kernel in use (e.g. {@code cpu}). */
    public String kernelName() {
        return kernel.name();
    }

    @Override
    public ContextSession prefill(int[] contextTokens, PrefillListener listener) {
        Objects.requireNonNull(contextTokens, "contextTokens");
        if (contextTokens.length > model.maxPositions()) {
            throw new PromptTooLongException(contextTokens.length, model.maxPositions());
        }
        BlockPlan plan = options.plan(contextTokens.length, 1);
        long t0 = System.nanoTime();
        List<KvStore> stores = encoder.encodeBlocks(plan, contextTokens, plan.blocks(), options.recomputeAnchor(),
                options.passing(), n -> listener.onProgress(n, contextTokens.length));
        double ms = (System.nanoTime() - t0) / 1e6;
        log.debug("prefilled {} tokens as {} in {} ms", contextTokens.length, plan, (long) ms);
        return new LocalContextSession(model, encoder, plan, stores, ms);
    }

    /** Where the forward pass runs: {@code cpu}, or {@code cuda:N} when the whole model is on a GPU. */
    public String passName() {
        return encoder.passName();
    }

    @Override
    public void close() {
        try {
            encoder.close();
        } finally {
            kernel.close();
        }
    }
}
