package io.github.starattention.jlama;

import io.github.starattention.jlama.generation.GenerationLoop;
import io.github.starattention.jlama.model.ContextEncoder;
import io.github.starattention.kv.KvStore;
import io.github.starattention.plan.BlockPlan;
import java.util.List;

/** A context prefilled by {@link LocalEngine}: one KV store per block; query and answer KV go after the last. */
final class LocalContextSession implements ContextSession {

    private final StarAttentionModel model;
    private final ContextEncoder encoder;
    private final BlockPlan plan;
    private final List<KvStore> stores;
    private final double prefillMillis;
    private boolean closed;

    LocalContextSession(StarAttentionModel model, ContextEncoder encoder, BlockPlan plan, List<KvStore> stores,
                        double prefillMillis) {
        this.model = model;
        this.encoder = encoder;
        this.plan = plan;
        this.stores = List.copyOf(stores);
        this.prefillMillis = prefillMillis;
    }

    @Override
    public BlockPlan plan() {
        return plan;
    }

    @Override
    public int contextTokens() {
        return plan.contextLength();
    }

    @Override
    public double prefillMillis() {
        return prefillMillis;
    }

    @Override
    public synchronized Generation generate(int[] queryTokens, GenerationOptions options, TokenListener listener) {
        if (closed) {
            throw new IllegalStateException("context session is closed");
        }
        if (queryTokens.length == 0) {
            throw new IllegalArgumentException("the query is empty");
        }
        int needed = plan.contextLength() + queryTokens.length + options.maxNewTokens();
        if (needed > model.maxPositions()) {
            throw new PromptTooLongException(needed, model.maxPositions());
        }
        KvStore last = stores.getLast();
        int mark = last.mark();
        try {
            GenerationLoop loop = new GenerationLoop(model.eosTokens(), model::decode);
            return loop.run(queryTokens, plan.contextLength(), options, listener, (tokens, start, want) ->
                    encoder.append(tokens, ContextEncoder.range(start, start + tokens.length), last,
                            stores.subList(0, stores.size() - 1), null, want, n -> { }));
        } finally {
            last.rollback(mark);
        }
    }

    @Override
    public long kvBytes() {
        return stores.stream().mapToLong(KvStore::bytes).sum();
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            stores.forEach(KvStore::close);
        }
    }
}
