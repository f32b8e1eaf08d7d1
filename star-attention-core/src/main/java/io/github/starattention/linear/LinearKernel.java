package io.github.starattention.linear;

/**
 * Matrix products of the layers (projections, MLP, LM head): {@code out[t][r] = sum_c x[t][c] W[r][c]} for
 * {@code tokens} rows of fp32 activations. Implementations are thread-safe; several passes may call them at once.
 */
public interface LinearKernel extends AutoCloseable {

    /** A short name for logs, e.g. {@code cpu}. */
    String name();

    /**
     * {@code out[t * w.rows() + r] = sum_c x[t * w.cols() + c] * w(r, c)} for {@code t < tokens}, {@code r < w.rows()}.
     * Accumulates in fp32; {@code out} is overwritten.
     */
    void multiply(Matrix w, float[] x, int tokens, float[] out);

    @Override
    default void close() {
    }
}
