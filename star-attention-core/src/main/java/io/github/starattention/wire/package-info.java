/**
 * The binary wire format of distributed Star Attention: the messages between the query host and the context hosts,
 * encoded as little-endian frames over plain {@code byte[]}/{@link java.nio.ByteBuffer}. No transport here; the
 * Vert.x event bus carries the frames (see {@code io.github.starattention.jlama.cluster}).
 *
 * <p>Every frame is a 12-byte header followed by the payload:
 * <pre>
 * offset size  field
 *   0     4    magic 0x31574153 ("SAW1" as little-endian bytes 'S','A','W','1')
 *   4     1    protocol version ({@link io.github.starattention.wire.WireCodec#VERSION})
 *   5     1    message type (see {@link io.github.starattention.wire.WireMessage})
 *   6     2    reserved, 0
 *   8     4    payload length in bytes (the frame is exactly 12 + this long)
 * </pre>
 * All numbers are little-endian; floats are IEEE-754 binary32 (fp32, bit-exact: an answer computed from remote
 * partials equals the in-process one), ints int32, longs int64. Arrays are an int32 count followed by the elements;
 * strings an int16 byte count followed by UTF-8. Tensors are row-major: an {@code AttentionQuery} is
 * {@code tokens, heads, headDim, scale, positions[tokens], q[tokens][heads][headDim]}, a {@code PartialAttention}
 * {@code tokens, heads, headDim, lse[tokens][heads], output[tokens][heads][headDim]}, an anchor layer
 * ({@code AnchorReply}) {@code layer, tokens, kvHeads, headDim, k[tokens][kvHeads][headDim], v[same]}, what a block
 * passes on ({@code PassedReply}) {@code block, layer, kvHeads, headDim, positions[tokens], k[tokens][kvHeads][headDim],
 * v[same]}. A prefill request ends with its passing fields: {@code tokensPerBlock, selection, scoredLayers,
 * holders[blocks]} (0, "window", 1, none without passing).
 *
 * <p>Decoding is strict: a wrong magic or version, an unknown type, a length that does not match, a negative or
 * oversized count, or trailing bytes throw {@link io.github.starattention.wire.WireFormatException}; sizes are checked
 * against the bytes actually present before anything is allocated.
 */
package io.github.starattention.wire;
