package io.github.starattention.jlama.eval;

import io.github.starattention.attention.Device;
import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.Mode;
import io.github.starattention.jlama.model.PassingPolicy;
import io.github.starattention.plan.BlockPlan;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * One configuration an evaluation runs every example with: global attention, or Star Attention with a block and
 * anchor setting. The block size and anchor are resolved per example, because they depend on its context length.
 *
 * @param label name in reports: {@code global}, {@code star}, or {@code star anchor=0.25} in a sweep
 * @param mode global or star
 * @param setting the sweep setting ({@code anchor=0.25}), null outside sweeps
 * @param blocks number of blocks (block = ceil(context / blocks)), null to use {@code blockSize} or 4 blocks
 * @param blockSize block size in tokens, null to derive it from {@code blocks}
 * @param anchorSize anchor size in tokens (capped at the block), null for the default
 * @param anchorFraction anchor as a fraction of the block (0 = no anchor, 1 = the block), null for the default
 * @param passing phase-1 passing blocks (beyond the paper), null or {@link PassingPolicy#OFF} for none
 */
public record Variant(String label, Mode mode, String setting, Integer blocks, Integer blockSize, Integer anchorSize,
                      Double anchorFraction, PassingPolicy passing) {

    /** A variant without passing blocks. */
    public Variant(String label, Mode mode, String setting, Integer blocks, Integer blockSize, Integer anchorSize,
                   Double anchorFraction) {
        this(label, mode, setting, blocks, blockSize, anchorSize, anchorFraction, null);
    }

    public Variant {
        if (blocks != null && blocks < 1) {
            throw new IllegalArgumentException("blocks must be at least 1, got " + blocks);
        }
        if (blockSize != null && blockSize < 1) {
            throw new IllegalArgumentException("block size must be at least 1, got " + blockSize);
        }
        if (anchorSize != null && anchorSize < 0) {
            throw new IllegalArgumentException("anchor size must not be negative, got " + anchorSize);
        }
        if (anchorFraction != null && !(anchorFraction >= 0 && anchorFraction <= 1)) {
            throw new IllegalArgumentException("anchor fraction must be in [0, 1], got " + anchorFraction);
        }
        if (blocks != null && blockSize != null) {
            throw new IllegalArgumentException("give either blocks or a block size, not both");
        }
    }

    /** Global attention. */
    public static Variant global() {
        return new Variant("global", Mode.GLOBAL, null, null, null, null, null);
    }

    /** Star Attention with the given block flags (nulls = 4 blocks, anchor = block). */
    public static Variant star(Integer blocks, Integer blockSize, Integer anchorSize) {
        return new Variant("star", Mode.STAR, null, blocks, blockSize, anchorSize, null);
    }

    /** Star Attention with the given block flags and passing blocks ({@code null} = none). */
    public static Variant star(Integer blocks, Integer blockSize, Integer anchorSize, PassingPolicy passing) {
        return new Variant("star", Mode.STAR, null, blocks, blockSize, anchorSize, null, passing);
    }

    /** The mode's name in lower case. */
    public String modeName() {
        return mode.name().toLowerCase(Locale.ROOT);
    }

    /** Block size for a context of {@code contextTokens} tokens (the whole context in global mode). */
    public int blockSizeFor(int contextTokens) {
        if (mode == Mode.GLOBAL) {
            return contextTokens;
        }
        if (blockSize != null) {
            return blockSize;
        }
        int n = blocks != null ? blocks : 4;
        return Math.max(1, (contextTokens + n - 1) / n);
    }

    /** Anchor size for a context of {@code contextTokens} tokens: capped at the block size; 0 in global mode. */
    public int anchorSizeFor(int contextTokens) {
        if (mode == Mode.GLOBAL) {
            return 0;
        }
        int b = blockSizeFor(contextTokens);
        if (anchorFraction != null) {
            return (int) Math.round(anchorFraction * b);
        }
        return anchorSize != null ? Math.min(anchorSize, b) : b;
    }

    /** Whether {@code anchorSize} is larger than the block for this context (and is therefore capped). */
    public boolean anchorCapped(int contextTokens) {
        return mode == Mode.STAR && anchorFraction == null && anchorSize != null
                && anchorSize > blockSizeFor(contextTokens);
    }

    /** Engine options for a context of {@code contextTokens} tokens. */
    public EngineOptions options(int contextTokens, Device device, int threads) {
        EngineOptions.Builder b = EngineOptions.builder().mode(mode).device(device).threads(threads);
        if (mode == Mode.STAR) {
            b.blockSize(blockSizeFor(contextTokens)).anchorSize(anchorSizeFor(contextTokens));
            if (passing != null) {
                b.passing(passing);
            }
        }
        return b.build();
    }

    /**
     * Engine options with the plan of {@link #options} for a context of {@code contextTokens} tokens, written so that
     * they do not depend on the context where the plan allows: a block count rather than the block size it gives, the
     * anchor as "the block" or as tokens. Every context of the variant then gets the same options, so one engine (a
     * query host of a cluster) serves them all. An anchor that follows the block (a fraction other than 0 and 1, or
     * a size capped at a shorter block) still makes them per context.
     */
    public EngineOptions sharedOptions(int contextTokens, Device device, int threads) {
        if (mode == Mode.GLOBAL || blockSize != null) {
            return options(contextTokens, device, threads); // the block size is fixed already
        }
        int b = blockSizeFor(contextTokens);
        int a = anchorSizeFor(contextTokens);
        EngineOptions.Builder o = EngineOptions.builder().mode(mode).device(device).threads(threads)
                .blocks(blocks != null ? blocks : BlockPlan.DEFAULT_BLOCKS);
        if (passing != null) {
            o.passing(passing);
        }
        if (a == b) {
            return o.build(); // anchor = block, the default
        }
        if (anchorFraction == null && anchorSize != null && anchorSize == a) {
            return o.anchorSize(a).build(); // a size smaller than this block
        }
        if (a == 0) {
            return o.anchorSize(0).build(); // no anchor
        }
        return options(contextTokens, device, threads);
    }

    /**
     * This variant with {@code blocks} blocks (same label): how a cluster spreads it when its block count is raised
     * to a multiple of the hosts. A variant with a block size, or global, is returned as it is.
     */
    public Variant withBlocks(int blocks) {
        if (mode == Mode.GLOBAL || blockSize != null) {
            return this;
        }
        return new Variant(label, mode, setting, blocks, null, anchorSize, anchorFraction, passing);
    }

    /** The block count of a star variant without a block size (4 when not given), else null. */
    public Integer blockCount() {
        return mode == Mode.STAR && blockSize == null ? (blocks != null ? blocks : BlockPlan.DEFAULT_BLOCKS) : null;
    }

    /**
     * The Star Attention variants of a sweep {@code PARAM=V1,V2,...}: {@code blocks=1,2,4,8},
     * {@code block-size=512,1024}, {@code anchor=0,0.25,0.5,1} (fraction of the block) or
     * {@code anchor-size=0,64,256} (tokens, capped at the block) or {@code passing=0,16,64,256} (passing blocks:
     * tokens each block passes on, 0 = none; a value {@code 64:spread} also names the selection, else the
     * base's or {@code window}). Settings the sweep does not vary come from {@code base} (a star variant).
     */
    public static List<Variant> sweep(String spec, Variant base) {
        int eq = spec.indexOf('=');
        if (eq <= 0 || eq == spec.length() - 1) {
            throw new IllegalArgumentException("--sweep must look like blocks=1,2,4,8 or anchor=0,0.25,0.5,1, got '" + spec + "'");
        }
        String param = spec.substring(0, eq).trim().toLowerCase(Locale.ROOT);
        List<Variant> out = new ArrayList<>();
        for (String raw : spec.substring(eq + 1).split(",")) {
            String v = raw.trim();
            if (v.isEmpty()) {
                continue;
            }
            String setting = param + "=" + v;
            String label = "star " + setting;
            try {
                out.add(switch (param) {
                    case "blocks" -> new Variant(label, Mode.STAR, setting, Integer.parseInt(v), null,
                            base.anchorSize(), base.anchorFraction(), base.passing());
                    case "block-size" -> new Variant(label, Mode.STAR, setting, null, Integer.parseInt(v),
                            base.anchorSize(), base.anchorFraction(), base.passing());
                    case "anchor" -> new Variant(label, Mode.STAR, setting, base.blocks(), base.blockSize(), null,
                            Double.parseDouble(v), base.passing());
                    case "anchor-size" -> new Variant(label, Mode.STAR, setting, base.blocks(), base.blockSize(),
                            Integer.parseInt(v), null, base.passing());
                    case "passing" -> new Variant(label, Mode.STAR, setting, base.blocks(), base.blockSize(),
                            base.anchorSize(), base.anchorFraction(), passingValue(v, base.passing()));
                    default -> throw new IllegalArgumentException("--sweep parameter must be blocks, block-size, anchor "
                            + "(fraction of the block), anchor-size (tokens) or passing (tokens per block), got '"
                            + param + "'");
                });
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--sweep value '" + v + "' of " + param + " is not a number", e);
            }
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException("--sweep " + spec + " lists no values");
        }
        return out;
    }

    /** A passing sweep value: {@code N} (the base's selection, else window) or {@code N:window|spread}. */
    static PassingPolicy passingValue(String v, PassingPolicy base) {
        int colon = v.indexOf(':');
        String n = colon < 0 ? v : v.substring(0, colon).trim();
        PassingPolicy.Selection rule = colon >= 0 ? PassingPolicy.Selection.parse(v.substring(colon + 1))
                : base != null ? base.selection() : PassingPolicy.Selection.WINDOW;
        int tokens = Integer.parseInt(n);
        if (tokens < 0) {
            throw new IllegalArgumentException("--sweep passing values must be at least 0 (0 = none), got " + tokens);
        }
        return PassingPolicy.of(tokens, rule);
    }

    /** The sweep parameter of {@code setting} ({@code anchor} of {@code anchor=0.25}), or null. */
    public String sweepParameter() {
        return setting == null ? null : setting.substring(0, setting.indexOf('='));
    }

    /** The sweep value of {@code setting} as text ({@code 0.25} of {@code anchor=0.25}), or null. */
    public String sweepValue() {
        return setting == null ? null : setting.substring(setting.indexOf('=') + 1);
    }
}
