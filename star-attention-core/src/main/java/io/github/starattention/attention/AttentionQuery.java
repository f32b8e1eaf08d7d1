package io.github.starattention.attention;

/**
 * Query vectors for one layer, after RoPE.
 *
 * @param q {@code [tokens][heads][headDim]} fp32, row-major, already rotated
 * @param positions position id of each query token; a key is visible to a token iff its position is
 *     {@code <=} the token's position (causality decided by position ids)
 * @param tokens number of query tokens
 * @param heads number of query heads (a multiple of the store's KV heads: grouped-query attention)
 * @param headDim head dimension
 * @param scale score scale, usually {@code 1/sqrt(headDim)}; the returned LSE is of the scaled scores
 */
public record AttentionQuery(float[] q, int[] positions, int tokens, int heads, int headDim, float scale) {

    public AttentionQuery {
        if (q.length < tokens * heads * headDim) {
            throw new IllegalArgumentException("q has " + q.length + " floats, need " + tokens * heads * headDim);
        }
        if (positions.length < tokens) {
            throw new IllegalArgumentException("positions has " + positions.length + " entries, need " + tokens);
        }
    }

    /** A query with the default scale {@code 1/sqrt(headDim)}. */
    public static AttentionQuery of(float[] q, int[] positions, int tokens, int heads, int headDim) {
        return new AttentionQuery(q, positions, tokens, heads, headDim, (float) (1.0 / Math.sqrt(headDim)));
    }
}
