package io.github.starattention.jlama.eval;

import io.github.starattention.attention.Device;
import io.github.starattention.jlama.ContextSession;
import io.github.starattention.jlama.LocalEngine;
import io.github.starattention.jlama.StarAttentionEngine;
import io.github.starattention.jlama.StarAttentionModel;

/**
 * Where {@link EvalRunner} gets the engine of each run (an example in a variant): {@link #inProcess} makes a
 * {@link LocalEngine} per run; {@code eval --hosts N} gives one that runs star variants on query hosts of a cluster
 * started once for the whole evaluation. Closing the source closes what it keeps between runs.
 */
public interface EngineSource extends AutoCloseable {

    /**
     * The engine for variant {@code v} on a context of {@code contextTokens} tokens. Close the lease after the run: it
     * closes an engine made for this run alone, and leaves one the source keeps.
     */
    Lease open(Variant v, int contextTokens, Device device, int threads);

    /** Context hosts variant {@code v} is meant to run on: 0 in process (a failed run's {@code hosts}). */
    default int contextHosts(Variant v) {
        return 0;
    }

    /** Closes the engines (and hosts) kept between runs; nothing by default. */
    @Override
    default void close() {
    }

    /** An engine lent for one run. */
    interface Lease extends AutoCloseable {

        StarAttentionEngine engine();

        /** Context hosts that encoded {@code session}'s context, the query host not counted: 0 in process. */
        default int contextHosts(ContextSession session) {
            return 0;
        }

        @Override
        void close();
    }

    /** A {@link LocalEngine} per run with the variant's options for the context (how {@code eval} runs in process). */
    static EngineSource inProcess(StarAttentionModel model) {
        return (v, ctx, device, threads) -> {
            LocalEngine e = LocalEngine.create(model, v.options(ctx, device, threads));
            return new Lease() {
                @Override
                public StarAttentionEngine engine() {
                    return e;
                }

                @Override
                public void close() {
                    e.close();
                }
            };
        };
    }
}
