package io.github.starattention.cuda;

import java.util.Locale;

/**
 * Element type of K and V in GPU memory. Queries are rounded to the same type for the tensor-core products;
 * scores, softmax, LSE, accumulation and outputs stay fp32.
 *
 * <ul>
 *   <li>{@link #FP16} (default): 11-bit significand, the closer match to the fp32 CPU kernel; values must stay
 *       below 65504 in magnitude (K after RoPE and V of real models are far below).</li>
 *   <li>{@link #BF16}: fp32's range with an 8-bit significand, the type Llama checkpoints are trained in.</li>
 * </ul>
 */
public enum KvDtype {
    FP16("f16"),
    BF16("bf16");

    /** System property that selects the default, {@code fp16} or {@code bf16}. */
    public static final String PROPERTY = "starattention.cuda.kvDtype";

    private final String suffix;

    KvDtype(String suffix) {
        this.suffix = suffix;
    }

    /** Bytes per element. */
    public int bytes() {
        return 2;
    }

    /** The kernel-name suffix in the PTX module. */
    String suffix() {
        return suffix;
    }

    /** The dtype named by {@link #PROPERTY}, {@link #FP16} when unset. */
    public static KvDtype fromSystemProperty() {
        String v = System.getProperty(PROPERTY, "fp16").trim().toLowerCase(Locale.ROOT);
        return switch (v) {
            case "fp16", "f16", "half", "float16" -> FP16;
            case "bf16", "bfloat16" -> BF16;
            default -> throw new IllegalArgumentException(PROPERTY + "=" + v + ": expected fp16 or bf16");
        };
    }
}
