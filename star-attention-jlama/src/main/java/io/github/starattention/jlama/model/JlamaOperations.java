package io.github.starattention.jlama.model;

import com.github.tjake.jlama.tensor.operations.TensorOperationsProvider;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Picks Jlama's tensor operations (a process-wide choice Jlama makes once): its Panama Vector API implementation,
 * not its native SIMD library, unless the user chose with {@value #FORCE_PANAMA}.
 *
 * <p>Why: Jlama 0.8.4's native F32 matrix product ({@code gemm()} in {@code vector_simd.c}) tiles an M x N output
 * with up-to-5 x 5 tiles and recurses into the remainders as {@code gemm(mp, m, n0, np)} and
 * {@code gemm(m0, mp, np, n)}, so the corner {@code [mp, m) x [np, n)} is never written. Whenever M (tokens in a
 * forward chunk) and N (output features) both leave a remainder, a few outputs keep whatever the buffer held: for
 * example 13 prompt tokens through a 256-wide projection, or 6 tokens through SmolLM2's 192-wide K/V projections.
 * Decode (M = 1) and chunks whose length is a multiple of the tile are unaffected, which is why short tests passed.
 * {@code JlamaNativeGemmTest} reproduces it; the fix upstream is {@code gemm(m0, m, np, n)}.
 */
public final class JlamaOperations {

    /** Jlama's system property; when the user sets it either way, we respect it. */
    public static final String FORCE_PANAMA = "jlama.force_panama_tensor_operations";

    private static final Logger log = LoggerFactory.getLogger(JlamaOperations.class);
    private static volatile String chosen;

    private JlamaOperations() {
    }

    /**
     * Makes Jlama use its Panama operations unless {@value #FORCE_PANAMA} was set, and returns the name of the
     * operations in use. Call before Jlama computes anything; later calls return the same.
     */
    public static String select() {
        String c = chosen;
        if (c == null) {
            synchronized (JlamaOperations.class) {
                c = chosen;
                if (c == null) {
                    if (System.getProperty(FORCE_PANAMA) == null) {
                        System.setProperty(FORCE_PANAMA, "true");
                    }
                    c = TensorOperationsProvider.get().name();
                    if (c.toLowerCase(java.util.Locale.ROOT).contains("native")) {
                        log.warn("Jlama uses its native SIMD operations ({}), whose F32 matrix product leaves outputs "
                                + "unwritten for some shapes (see JlamaOperations); results may be wrong. Remove "
                                + "-D{}=false, or load this model before anything else uses Jlama.", c, FORCE_PANAMA);
                    }
                    chosen = c;
                }
            }
        }
        return c;
    }
}
