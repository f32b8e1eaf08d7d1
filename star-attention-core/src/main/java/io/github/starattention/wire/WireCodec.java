package io.github.starattention.wire;

import io.github.starattention.attention.AttentionQuery;
import io.github.starattention.attention.PartialAttention;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * Encodes and decodes {@link WireMessage} frames (layout in the {@linkplain io.github.starattention.wire package
 * description}). Stateless and thread-safe. The pieces ({@link #writeQuery}, {@link #readPartial}, ...) are public so
 * that a transport can frame them differently if it needs to.
 */
public final class WireCodec {

    /** {@code 'S','A','W','1'} read as a little-endian int. */
    public static final int MAGIC = 0x31574153;
    /** Protocol version; a frame of another version is rejected. */
    public static final byte VERSION = 4;
    /** Header bytes before the payload. */
    public static final int HEADER_BYTES = 12;
    /** Longest string field, in UTF-8 bytes. */
    public static final int MAX_STRING_BYTES = 4096;
    /** Largest head count or head dimension accepted. */
    public static final int MAX_DIM = 1 << 16;
    /** Most elements of one array field: its 4-byte values must fit a frame (at most 2 GiB). */
    public static final int MAX_ELEMENTS = Integer.MAX_VALUE / 4;

    private WireCodec() {
    }

    // ---------------------------------------------------------------- frames

    /** The frame of {@code message}. */
    public static byte[] encode(WireMessage message) {
        int size = encodedSize(message);
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        encode(message, b);
        return b.array();
    }

    /** Writes the frame of {@code message} at {@code dst}'s position ({@link #encodedSize} bytes, little-endian). */
    public static void encode(WireMessage message, ByteBuffer dst) {
        ByteBuffer b = dst.order(ByteOrder.LITTLE_ENDIAN);
        int start = b.position();
        int size = encodedSize(message);
        b.putInt(MAGIC).put(VERSION).put(message.type()).putShort((short) 0).putInt(size - HEADER_BYTES);
        switch (message) {
            case WireMessage.InfoRequest r -> { }
            case WireMessage.HostInfo h -> {
                writeString(b, h.nodeId());
                writeString(b, h.name());
                writeString(b, h.modelId());
                writeString(b, h.kernel());
                b.putInt(h.threads()).putInt(h.sessions()).putLong(h.kvBytes());
            }
            case WireMessage.PrefillRequest p -> {
                writeUuid(b, p.session());
                writeString(b, p.owner());
                b.putInt(p.contextLength()).putLong(p.contextDigest());
                b.putInt(p.blockSize()).putInt(p.anchorSize()).putInt(p.hosts());
                writeInts(b, p.blocks());
                writeInts(b, p.ranges());
                writeInts(b, p.tokens());
                writeString(b, p.anchorFrom());
                b.putInt(p.passing().tokensPerBlock());
                writeString(b, p.passing().selection());
                b.putInt(p.passing().scoredLayers()).putInt(p.passing().holders().size());
                p.passing().holders().forEach(h -> writeString(b, h));
            }
            case WireMessage.PrefillReply p -> {
                writeUuid(b, p.session());
                writeInts(b, p.blocks());
                b.putLong(p.kvBytes()).putLong(p.nanos());
            }
            case WireMessage.AttendRequest a -> {
                writeUuid(b, a.session());
                b.putInt(a.layer());
                writeInts(b, a.blocks());
                writeQuery(b, a.query());
            }
            case WireMessage.AttendReply a -> {
                b.putLong(a.hostNanos()).putInt(a.partials().size());
                for (PartialAttention p : a.partials()) {
                    writePartial(b, p);
                }
            }
            case WireMessage.ReleaseRequest r -> writeUuid(b, r.session());
            case WireMessage.ReleaseReply r -> b.putLong(r.freedBytes()).putInt(r.sessions());
            case WireMessage.AnchorRequest r -> {
                writeUuid(b, r.session());
                b.putInt(r.layer());
            }
            case WireMessage.AnchorReply r -> {
                b.putInt(r.layer()).putInt(r.tokens()).putInt(r.kvHeads()).putInt(r.headDim());
                putFloats(b, r.k(), r.k().length);
                putFloats(b, r.v(), r.v().length);
            }
            case WireMessage.PassedRequest r -> {
                writeUuid(b, r.session());
                b.putInt(r.block()).putInt(r.layer());
            }
            case WireMessage.PassedReply r -> {
                b.putInt(r.block()).putInt(r.layer()).putInt(r.kvHeads()).putInt(r.headDim());
                writeInts(b, r.positions());
                putFloats(b, r.k(), r.k().length);
                putFloats(b, r.v(), r.v().length);
            }
        }
        if (b.position() - start != size) {
            throw new IllegalStateException("encoded " + (b.position() - start) + " bytes, expected " + size);
        }
    }

    /** Bytes of the frame of {@code message}, header included. */
    public static int encodedSize(WireMessage message) {
        long n = HEADER_BYTES + switch (message) {
            case WireMessage.InfoRequest r -> 0L;
            case WireMessage.HostInfo h -> stringSize(h.nodeId()) + stringSize(h.name()) + stringSize(h.modelId())
                    + stringSize(h.kernel()) + 4 + 4 + 8;
            case WireMessage.PrefillRequest p -> 16L + stringSize(p.owner()) + 12 + 12 + intsSize(p.blocks().length)
                    + intsSize(p.ranges().length) + intsSize(p.tokens().length) + stringSize(p.anchorFrom())
                    + 4 + stringSize(p.passing().selection()) + 8
                    + p.passing().holders().stream().mapToLong(WireCodec::stringSize).sum();
            case WireMessage.PrefillReply p -> 16L + intsSize(p.blocks().length) + 16;
            case WireMessage.AttendRequest a -> 16L + 4 + intsSize(a.blocks().length) + querySize(a.query());
            case WireMessage.AttendReply a -> {
                long s = 12;
                for (PartialAttention p : a.partials()) {
                    s += partialSize(p);
                }
                yield s;
            }
            case WireMessage.ReleaseRequest r -> 16L;
            case WireMessage.ReleaseReply r -> 12L;
            case WireMessage.AnchorRequest r -> 20L;
            case WireMessage.AnchorReply r -> 16L + 8L * r.k().length;
            case WireMessage.PassedRequest r -> 24L;
            case WireMessage.PassedReply r -> 16L + intsSize(r.positions().length) + 8L * r.k().length;
        };
        if (n > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("message too large for one frame: " + n + " bytes");
        }
        return (int) n;
    }

    /** Decodes one whole frame. */
    public static WireMessage decode(byte[] frame) {
        return decode(ByteBuffer.wrap(frame));
    }

    /**
     * Decodes the frame between {@code frame}'s position and limit, which must hold exactly one frame.
     *
     * @throws WireFormatException if the bytes are not a valid frame
     */
    public static WireMessage decode(ByteBuffer frame) {
        ByteBuffer b = frame.slice().order(ByteOrder.LITTLE_ENDIAN);
        try {
            if (b.remaining() < HEADER_BYTES) {
                throw new WireFormatException("frame of " + b.remaining() + " bytes is shorter than the "
                        + HEADER_BYTES + "-byte header");
            }
            int magic = b.getInt();
            if (magic != MAGIC) {
                throw new WireFormatException(String.format("bad magic 0x%08x (expected 0x%08x): not a Star Attention frame",
                        magic, MAGIC));
            }
            byte version = b.get();
            if (version != VERSION) {
                throw new WireFormatException("protocol version " + version + ", this build speaks " + VERSION
                        + ": run the same release on every host");
            }
            byte type = b.get();
            short reserved = b.getShort();
            if (reserved != 0) {
                throw new WireFormatException("reserved header bytes are " + reserved + ", expected 0");
            }
            int length = b.getInt();
            if (length != b.remaining()) {
                throw new WireFormatException("header says " + length + " payload bytes, frame has " + b.remaining());
            }
            WireMessage m = switch (type) {
                case WireMessage.INFO_REQUEST -> new WireMessage.InfoRequest();
                case WireMessage.HOST_INFO -> new WireMessage.HostInfo(readString(b), readString(b), readString(b),
                        readString(b), b.getInt(), b.getInt(), b.getLong());
                case WireMessage.PREFILL_REQUEST -> new WireMessage.PrefillRequest(readUuid(b), readString(b),
                        positive(b.getInt(), "context length"), b.getLong(), positive(b.getInt(), "block size"),
                        nonNegative(b.getInt(), "anchor size"), positive(b.getInt(), "hosts"), readInts(b),
                        readInts(b), readInts(b), readString(b), readPassing(b));
                case WireMessage.PREFILL_REPLY -> new WireMessage.PrefillReply(readUuid(b), readInts(b), b.getLong(),
                        b.getLong());
                case WireMessage.ATTEND_REQUEST -> new WireMessage.AttendRequest(readUuid(b),
                        nonNegative(b.getInt(), "layer"), readInts(b), readQuery(b));
                case WireMessage.ATTEND_REPLY -> {
                    long nanos = b.getLong();
                    int count = count(b, b.getInt(), 12, "partials");
                    List<PartialAttention> parts = new ArrayList<>(count);
                    for (int i = 0; i < count; i++) {
                        parts.add(readPartial(b));
                    }
                    yield new WireMessage.AttendReply(nanos, parts);
                }
                case WireMessage.RELEASE_REQUEST -> new WireMessage.ReleaseRequest(readUuid(b));
                case WireMessage.RELEASE_REPLY -> new WireMessage.ReleaseReply(b.getLong(), b.getInt());
                case WireMessage.ANCHOR_REQUEST -> new WireMessage.AnchorRequest(readUuid(b), nonNegative(b.getInt(), "layer"));
                case WireMessage.ANCHOR_REPLY -> {
                    int layer = nonNegative(b.getInt(), "layer");
                    int tokens = nonNegative(b.getInt(), "anchor tokens");
                    int heads = dim(b.getInt(), "KV heads");
                    int d = dim(b.getInt(), "head dimension");
                    String what = "anchor KV of " + tokens + " x " + heads + " x " + d;
                    int n = elements(what, tokens, heads, d);
                    need(b, 8L * n, what);
                    yield new WireMessage.AnchorReply(layer, tokens, heads, d, getFloats(b, n), getFloats(b, n));
                }
                case WireMessage.PASSED_REQUEST -> new WireMessage.PassedRequest(readUuid(b),
                        nonNegative(b.getInt(), "block"), nonNegative(b.getInt(), "layer"));
                case WireMessage.PASSED_REPLY -> {
                    int block = nonNegative(b.getInt(), "block");
                    int layer = nonNegative(b.getInt(), "layer");
                    int heads = dim(b.getInt(), "KV heads");
                    int d = dim(b.getInt(), "head dimension");
                    int[] positions = readInts(b);
                    String what = "passed KV of " + positions.length + " x " + heads + " x " + d;
                    int n = elements(what, positions.length, heads, d);
                    need(b, 8L * n, what);
                    yield new WireMessage.PassedReply(block, layer, heads, d, positions, getFloats(b, n),
                            getFloats(b, n));
                }
                default -> throw new WireFormatException("unknown message type " + type);
            };
            if (b.hasRemaining()) {
                throw new WireFormatException(b.remaining() + " trailing bytes after a " + m.getClass().getSimpleName());
            }
            return m;
        } catch (BufferUnderflowException e) {
            throw new WireFormatException("frame ends in the middle of a field");
        } catch (WireFormatException e) {
            throw e;
        } catch (IllegalArgumentException | IndexOutOfBoundsException e) {
            // a message's own invariants (e.g. a query whose arrays do not match its shape)
            throw new WireFormatException("malformed " + e.getMessage());
        }
    }

    // ---------------------------------------------------------------- pieces

    /** Bytes of an encoded {@link AttentionQuery}. */
    public static long querySize(AttentionQuery q) {
        return 16L + 4L * q.tokens() + 4L * q.tokens() * q.heads() * q.headDim();
    }

    /** Writes {@code tokens, heads, headDim, scale, positions[tokens], q[tokens*heads*headDim]}. */
    public static void writeQuery(ByteBuffer b, AttentionQuery q) {
        b.putInt(q.tokens()).putInt(q.heads()).putInt(q.headDim()).putFloat(q.scale());
        putInts(b, q.positions(), q.tokens());
        putFloats(b, q.q(), q.tokens() * q.heads() * q.headDim());
    }

    /** Reads what {@link #writeQuery} wrote, checking sizes against the bytes present. */
    public static AttentionQuery readQuery(ByteBuffer b) {
        int tokens = positive(b.getInt(), "query tokens");
        int heads = dim(b.getInt(), "heads");
        int d = dim(b.getInt(), "head dimension");
        float scale = b.getFloat();
        if (!(scale > 0) || Float.isInfinite(scale)) {
            throw new WireFormatException("query scale must be a positive finite number, got " + scale);
        }
        String what = "query of " + tokens + " x " + heads + " x " + d;
        int floats = elements(what, tokens, heads, d);
        need(b, 4L * tokens + 4L * floats, what);
        int[] positions = getInts(b, tokens);
        for (int p : positions) {
            if (p < 0) {
                throw new WireFormatException("negative position id " + p);
            }
        }
        float[] q = getFloats(b, floats);
        return new AttentionQuery(q, positions, tokens, heads, d, scale);
    }

    /** Bytes of an encoded {@link PartialAttention}. */
    public static long partialSize(PartialAttention p) {
        long rows = (long) p.tokens() * p.heads();
        return 12L + 4L * rows + 4L * rows * p.headDim();
    }

    /** Writes {@code tokens, heads, headDim, lse[tokens*heads], output[tokens*heads*headDim]}. */
    public static void writePartial(ByteBuffer b, PartialAttention p) {
        b.putInt(p.tokens()).putInt(p.heads()).putInt(p.headDim());
        putFloats(b, p.lse(), p.lse().length);
        putFloats(b, p.output(), p.output().length);
    }

    /** Reads what {@link #writePartial} wrote, checking sizes against the bytes present. */
    public static PartialAttention readPartial(ByteBuffer b) {
        int tokens = nonNegative(b.getInt(), "partial tokens");
        int heads = dim(b.getInt(), "heads");
        int d = dim(b.getInt(), "head dimension");
        String what = "partial of " + tokens + " x " + heads + " x " + d;
        int rows = elements(what, tokens, heads);
        int outputs = elements(what, tokens, heads, d);
        need(b, 4L * rows + 4L * outputs, what);
        float[] lse = getFloats(b, rows);
        float[] out = getFloats(b, outputs);
        return new PartialAttention(tokens, heads, d, out, lse);
    }

    /** Bytes of an encoded int array of {@code n} elements. */
    public static long intsSize(int n) {
        return 4L + 4L * n;
    }

    /** Writes {@code count, values[count]} (token ids, block indices). */
    public static void writeInts(ByteBuffer b, int[] values) {
        b.putInt(values.length);
        putInts(b, values, values.length);
    }

    /** Reads what {@link #writeInts} wrote. */
    public static int[] readInts(ByteBuffer b) {
        int n = count(b, b.getInt(), 4, "ints");
        return getInts(b, n);
    }

    // ---------------------------------------------------------------- helpers

    private static void putFloats(ByteBuffer b, float[] v, int n) {
        b.asFloatBuffer().put(v, 0, n);
        b.position(b.position() + 4 * n);
    }

    private static float[] getFloats(ByteBuffer b, int n) {
        float[] v = new float[n];
        b.asFloatBuffer().get(v);
        b.position(b.position() + 4 * n);
        return v;
    }

    private static void putInts(ByteBuffer b, int[] v, int n) {
        b.asIntBuffer().put(v, 0, n);
        b.position(b.position() + 4 * n);
    }

    private static int[] getInts(ByteBuffer b, int n) {
        int[] v = new int[n];
        b.asIntBuffer().get(v);
        b.position(b.position() + 4 * n);
        return v;
    }

    /** The passing fields of a prefill request: tokens per block, selection, layers scored, holder per block. */
    private static WireMessage.PrefillRequest.Passing readPassing(ByteBuffer b) {
        int tokens = nonNegative(b.getInt(), "passed tokens per block");
        String selection = readString(b);
        int layers = positive(b.getInt(), "scored layers");
        int count = count(b, b.getInt(), 2, "block holders");
        List<String> holders = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            holders.add(readString(b));
        }
        return new WireMessage.PrefillRequest.Passing(tokens, selection, layers, holders);
    }

    private static long stringSize(String s) {
        return 2L + s.getBytes(StandardCharsets.UTF_8).length;
    }

    private static void writeString(ByteBuffer b, String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        if (bytes.length > MAX_STRING_BYTES) {
            throw new IllegalArgumentException("string field of " + bytes.length + " bytes exceeds " + MAX_STRING_BYTES);
        }
        b.putShort((short) bytes.length).put(bytes);
    }

    private static String readString(ByteBuffer b) {
        int n = Short.toUnsignedInt(b.getShort());
        if (n > MAX_STRING_BYTES) {
            throw new WireFormatException("string field of " + n + " bytes exceeds " + MAX_STRING_BYTES);
        }
        need(b, n, "string");
        byte[] bytes = new byte[n];
        b.get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    private static void writeUuid(ByteBuffer b, UUID id) {
        b.putLong(id.getMostSignificantBits()).putLong(id.getLeastSignificantBits());
    }

    private static UUID readUuid(ByteBuffer b) {
        return new UUID(b.getLong(), b.getLong());
    }

    private static int count(ByteBuffer b, int n, int minBytesEach, String what) {
        if (n < 0) {
            throw new WireFormatException("negative count " + n + " of " + what);
        }
        need(b, (long) n * minBytesEach, n + " " + what);
        return n;
    }

    /**
     * The element count {@code a x b x ...} of an array field; a count whose floats could not fit one frame (more
     * than {@link #MAX_ELEMENTS}) is malformed. Keeps every size computation below in range: without it, a 116-byte
     * frame could claim 2^63 bytes and overflow the check against the bytes present.
     */
    private static int elements(String what, int... factors) {
        long n = 1;
        for (int f : factors) {
            n *= f; // each factor is in [0, 2^31) and n stays <= MAX_ELEMENTS before it: no overflow
            if (n > MAX_ELEMENTS) {
                throw new WireFormatException(what + " has more elements than a frame can hold");
            }
        }
        return (int) n;
    }

    private static void need(ByteBuffer b, long bytes, String what) {
        if (bytes > b.remaining()) {
            throw new WireFormatException(what + " needs " + bytes + " bytes, only " + b.remaining() + " left in the frame");
        }
    }

    private static int positive(int v, String what) {
        if (v <= 0) {
            throw new WireFormatException(what + " must be positive, got " + v);
        }
        return v;
    }

    private static int nonNegative(int v, String what) {
        if (v < 0) {
            throw new WireFormatException(what + " must not be negative, got " + v);
        }
        return v;
    }

    private static int dim(int v, String what) {
        if (v <= 0 || v > MAX_DIM) {
            throw new WireFormatException(what + " must be in [1, " + MAX_DIM + "], got " + v);
        }
        return v;
    }
}
