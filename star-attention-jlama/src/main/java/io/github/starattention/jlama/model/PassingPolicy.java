package io.github.starattention.jlama.model;

import java.util.Locale;
import java.util.Objects;

/**
 * Passing blocks (beyond the paper; after APB and Spava): an opt-in, training-free phase-1 policy that gives each
 * context block some of the keys and values of the blocks before it.
 *
 * <p>Each block's tokens are scored by the attention mass that the block's <em>observers</em> ({@link #OBSERVERS} of
 * its own tokens, chosen by {@link #selection()}) put on them in the block's plain phase-1 encoding (the anchor and the
 * block, nothing passed) at its first {@link #scoredLayers()} layers: per layer, observer and query head, the softmax
 * over the anchor's keys and the block's own up to the observer, summed over observers, heads and those layers. The
 * scores are max-pooled over {@link #POOL_RADIUS} neighbours on each side and the best {@link #tokensPerBlock()} tokens
 * (never the anchor's) are passed on: their K/V of every layer, from the block's real encoding, at their true
 * positions, become a partition that every later block attends to at that layer, next to the anchor and itself
 * (causal). Block {@code i} therefore sees up to {@code i * tokensPerBlock} extra keys per layer.
 *
 * <p>Why this rule: one set of positions serves every layer (choosing per layer was measured worse: variable tracking
 * 0.74 against 1.00 of global with 64 tokens on the development set, a statement passed at some layers and not at
 * others reaching the later blocks half-formed), and the set is known before the block is encoded, from a
 * {@code scoredLayers}-layer <em>scout</em> pass that needs nothing from other blocks. Hosts therefore encode their
 * blocks at the same time, layer by layer, each waiting only for the layer it is at, instead of one after another;
 * the scout costs {@code scoredLayers / layers} of a block. Two layers scored as well as all eight on the bundled
 * model (the README's ablation).
 *
 * <p>The selection is question-independent: one prefilled context still answers any number of questions. With
 * {@code tokensPerBlock = 0} nothing is passed (the paper's phase 1).
 *
 * @param tokensPerBlock tokens each block passes on, their K/V at every layer ({@code 0} = off)
 * @param selection which of a block's own tokens decide what it passes
 * @param scoredLayers the first layers whose attention mass scores a block's tokens (at least 1; capped at the
 *     model's layer count)
 */
public record PassingPolicy(int tokensPerBlock, Selection selection, int scoredLayers) {

    /** Observer tokens per block: the queries whose attention mass scores a block's tokens. */
    public static final int OBSERVERS = 32;

    /**
     * Half-width of the max-pooling of the scores before the top-k: a high-scoring token brings its neighbours (the
     * rest of its statement) with it, as SnapKV's pooling does.
     */
    public static final int POOL_RADIUS = 3;

    /** Default {@link #scoredLayers()}: as good as every layer on the bundled model, for a quarter of its scout. */
    public static final int DEFAULT_SCORED_LAYERS = 2;

    /** Largest selection accepted (per block). */
    public static final int MAX_TOKENS_PER_BLOCK = 1 << 16;

    /** The paper's phase 1: nothing passed. */
    public static final PassingPolicy OFF = new PassingPolicy(0, Selection.WINDOW, DEFAULT_SCORED_LAYERS);

    /** Which of a block's own tokens are the observers whose attention mass scores the block's tokens. */
    public enum Selection {
        /** The block's last {@link #OBSERVERS} tokens (SnapKV's observation window). */
        WINDOW,
        /** {@link #OBSERVERS} tokens spread evenly over the block, the last one included. */
        SPREAD;

        /** {@code window} or {@code spread}, case-insensitive. */
        public static Selection parse(String name) {
            try {
                return valueOf(name.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("passing selection must be window or spread, got '" + name + "'");
            }
        }

        /** Lower-case name, as on the command line. */
        public String label() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    public PassingPolicy {
        Objects.requireNonNull(selection, "selection");
        if (tokensPerBlock < 0 || tokensPerBlock > MAX_TOKENS_PER_BLOCK) {
            throw new IllegalArgumentException("passing tokens per block must be in [0, " + MAX_TOKENS_PER_BLOCK
                    + "] (0 = off), got " + tokensPerBlock);
        }
        if (scoredLayers < 1) {
            throw new IllegalArgumentException("passing blocks score at least 1 layer, got " + scoredLayers);
        }
    }

    /** {@code tokensPerBlock} tokens per block selected by {@code selection}, {@link #DEFAULT_SCORED_LAYERS} scored. */
    public static PassingPolicy of(int tokensPerBlock, Selection selection) {
        return new PassingPolicy(tokensPerBlock, selection, DEFAULT_SCORED_LAYERS);
    }

    /** This policy scoring the first {@code layers} layers. */
    public PassingPolicy withScoredLayers(int layers) {
        return new PassingPolicy(tokensPerBlock, selection, layers);
    }

    /** Whether anything is passed. */
    public boolean enabled() {
        return tokensPerBlock > 0;
    }

    /**
     * Whether the token at {@code position} of a block {@code [start, end)} is an observer: under {@link
     * Selection#WINDOW} the last {@link #OBSERVERS} positions, under {@link Selection#SPREAD} the last position of
     * each of {@link #OBSERVERS} equal strides.
     */
    public boolean isObserver(int position, int start, int end) {
        int len = end - start;
        int i = position - start;
        if (i < 0 || i >= len) {
            return false;
        }
        if (len <= OBSERVERS) {
            return true;
        }
        return switch (selection) {
            case WINDOW -> i >= len - OBSERVERS;
            case SPREAD -> {
                // observer k (1..OBSERVERS) sits at ceil(k * len / OBSERVERS) - 1
                long k = ((long) (i + 1) * OBSERVERS) / len;
                yield k >= 1 && i == (int) ((k * len + OBSERVERS - 1) / OBSERVERS) - 1;
            }
        };
    }

    @Override
    public String toString() {
        return enabled() ? tokensPerBlock + " tokens per block (" + selection.label() + ", " + scoredLayers
                + " layers scored)" : "off";
    }
}
