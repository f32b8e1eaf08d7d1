package io.github.starattention.wire;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.starattention.attention.AttentionQuery;
import io.github.starattention.attention.PartialAttention;
import io.github.starattention.plan.BlockPlan;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class WireCodecTest {

    private static final UUID SESSION = UUID.fromString("00112233-4455-6677-8899-aabbccddeeff");

    private static AttentionQuery query(int tokens, int heads, int d, long seed) {
        Random r = new Random(seed);
        float[] q = new float[tokens * heads * d];
        for (int i = 0; i < q.length; i++) {
            q[i] = (float) r.nextGaussian();
        }
        int[] pos = new int[tokens];
        Arrays.setAll(pos, i -> 1000 + i);
        return AttentionQuery.of(q, pos, tokens, heads, d);
    }

    private static PartialAttention partial(int tokens, int heads, int d, long seed) {
        Random r = new Random(seed);
        float[] o = new float[tokens * heads * d];
        float[] l = new float[tokens * heads];
        for (int i = 0; i < o.length; i++) {
            o[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < l.length; i++) {
            l[i] = (float) (r.nextGaussian() * 10);
        }
        if (l.length > 0) {
            l[0] = Float.NEGATIVE_INFINITY; // a token that sees no key
        }
        return new PartialAttention(tokens, heads, d, o, l);
    }

    @SuppressWarnings("unchecked")
    private static <T extends WireMessage> T roundTrip(T m) {
        byte[] frame = WireCodec.encode(m);
        assertThat(frame).hasSize(WireCodec.encodedSize(m));
        return (T) WireCodec.decode(frame);
    }

    @Test
    void attendRequestRoundTripsBitExactly() {
        AttentionQuery q = query(7, 4, 64, 1);
        var back = roundTrip(new WireMessage.AttendRequest(SESSION, 5, new int[] {0, 2}, q));
        assertThat(back.session()).isEqualTo(SESSION);
        assertThat(back.layer()).isEqualTo(5);
        assertThat(back.blocks()).containsExactly(0, 2);
        assertThat(back.query().tokens()).isEqualTo(7);
        assertThat(back.query().heads()).isEqualTo(4);
        assertThat(back.query().headDim()).isEqualTo(64);
        assertThat(back.query().scale()).isEqualTo(q.scale());
        assertThat(back.query().positions()).isEqualTo(q.positions());
        assertThat(back.query().q()).isEqualTo(q.q());
    }

    @Test
    void attendReplyRoundTripsBitExactlyIncludingMinusInfinity() {
        List<PartialAttention> parts = List.of(partial(3, 4, 8, 2), partial(3, 4, 8, 3), partial(0, 4, 8, 4));
        var back = roundTrip(new WireMessage.AttendReply(12345L, parts));
        assertThat(back.hostNanos()).isEqualTo(12345L);
        assertThat(back.partials()).hasSize(3);
        for (int i = 0; i < parts.size(); i++) {
            PartialAttention a = parts.get(i);
            PartialAttention b = back.partials().get(i);
            assertThat(b.tokens()).isEqualTo(a.tokens());
            assertThat(b.output()).isEqualTo(a.output());
            assertThat(b.lse()).isEqualTo(a.lse());
        }
        assertThat(back.partials().getFirst().lse()[0]).isEqualTo(Float.NEGATIVE_INFINITY);
    }

    @Test
    void controlMessagesRoundTrip() {
        var info = roundTrip(new WireMessage.HostInfo("node-é", "host-1", "llama:abc", "cpu", 4, 2, 1L << 40));
        assertThat(info).isEqualTo(new WireMessage.HostInfo("node-é", "host-1", "llama:abc", "cpu", 4, 2, 1L << 40));
        assertThat(roundTrip(new WireMessage.InfoRequest())).isInstanceOf(WireMessage.InfoRequest.class);
        var prefill = roundTrip(new WireMessage.PrefillRequest(SESSION, "owner", 1000, 0x1234_5678_9abc_def0L, 256,
                128, 3, new int[] {1, 2}, new int[] {0, 1, 300, 303}, new int[] {1, 5, 6, 7}, "host-0-id"));
        assertThat(prefill.owner()).isEqualTo("owner");
        assertThat(prefill.contextLength()).isEqualTo(1000);
        assertThat(prefill.contextDigest()).isEqualTo(0x1234_5678_9abc_def0L);
        assertThat(prefill.ranges()).containsExactly(0, 1, 300, 303);
        assertThat(prefill.blockSize()).isEqualTo(256);
        assertThat(prefill.anchorSize()).isEqualTo(128);
        assertThat(prefill.hosts()).isEqualTo(3);
        assertThat(prefill.blocks()).containsExactly(1, 2);
        assertThat(prefill.tokens()).containsExactly(1, 5, 6, 7);
        assertThat(prefill.anchorFrom()).isEqualTo("host-0-id");
        var done = roundTrip(new WireMessage.PrefillReply(SESSION, new int[] {1}, 99, 7));
        assertThat(done.blocks()).containsExactly(1);
        assertThat(done.kvBytes()).isEqualTo(99);
        assertThat(roundTrip(new WireMessage.ReleaseRequest(SESSION)).session()).isEqualTo(SESSION);
        assertThat(roundTrip(new WireMessage.ReleaseReply(10, 1))).isEqualTo(new WireMessage.ReleaseReply(10, 1));
    }

    @Test
    void passingBlocksMessagesRoundTripBitExactly() {
        var prefill = roundTrip(new WireMessage.PrefillRequest(SESSION, "owner", 12, 5, 4, 4, 3, new int[] {1},
                new int[] {0, 8}, new int[] {1, 2, 3, 4, 5, 6, 7, 8}, "node-0", new WireMessage.PrefillRequest.Passing(
                        64, "window", 2, List.of("node-0", "node-1", ""))));
        assertThat(prefill.passing().tokensPerBlock()).isEqualTo(64);
        assertThat(prefill.passing().selection()).isEqualTo("window");
        assertThat(prefill.passing().scoredLayers()).isEqualTo(2);
        assertThat(prefill.passing().holders()).containsExactly("node-0", "node-1", "");
        assertThat(roundTrip(new WireMessage.PrefillRequest(SESSION, "o", 9, 7, 4, 4, 2, new int[] {0},
                new int[] {0, 4}, new int[] {5, 6, 7, 8}, "")).passing()).isEqualTo(WireMessage.PrefillRequest.Passing.NONE);

        // with passing, a request carries every token up to its last block (a host may encode the earlier ones)
        BlockPlan plan = BlockPlan.builder(12).blockSize(4).anchorSize(2).hosts(3).build();
        int[] context = IntStream.range(100, 112).toArray();
        var third = WireMessage.PrefillRequest.of(SESSION, "q", plan, context, new int[] {2}, "node-0",
                new WireMessage.PrefillRequest.Passing(8, "spread", 1, List.of("a", "b", "")));
        assertThat(third.ranges()).containsExactly(0, 12);
        assertThat(third.tokens()).containsExactly(context);
        assertThat(WireMessage.PrefillRequest.of(SESSION, "q", plan, context, new int[] {2}, "node-0").ranges())
                .containsExactly(0, 2, 8, 12);

        assertThat(roundTrip(new WireMessage.PassedRequest(SESSION, 2, 7)))
                .isEqualTo(new WireMessage.PassedRequest(SESSION, 2, 7));
        float[] k = {1.5f, -0f, Float.MIN_VALUE, 3e38f};
        float[] v = {Float.NaN, 2f, -3f, 4f};
        var reply = roundTrip(new WireMessage.PassedReply(1, 3, 1, 2, new int[] {17, 40}, k, v));
        assertThat(reply.block()).isEqualTo(1);
        assertThat(reply.layer()).isEqualTo(3);
        assertThat(reply.positions()).containsExactly(17, 40);
        for (int i = 0; i < k.length; i++) {
            assertThat(Float.floatToRawIntBits(reply.k()[i])).isEqualTo(Float.floatToRawIntBits(k[i]));
            assertThat(Float.floatToRawIntBits(reply.v()[i])).isEqualTo(Float.floatToRawIntBits(v[i]));
        }
        assertThat(roundTrip(new WireMessage.PassedReply(0, 0, 2, 4, new int[0], new float[0], new float[0]))
                .positions()).isEmpty();
        assertThatThrownBy(() -> new WireMessage.PassedReply(0, 0, 1, 2, new int[] {1}, k, v))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("1 x 1 x 2");

        byte[] frame = WireCodec.encode(reply);
        // a position count the frame cannot hold
        ByteBuffer.wrap(frame).order(ByteOrder.LITTLE_ENDIAN).putInt(WireCodec.HEADER_BYTES + 16, 1 << 20);
        assertThatThrownBy(() -> WireCodec.decode(frame)).isInstanceOf(WireFormatException.class);
    }

    @Test
    void anchorMessagesRoundTripBitExactly() {
        var request = roundTrip(new WireMessage.AnchorRequest(SESSION, 7));
        assertThat(request).isEqualTo(new WireMessage.AnchorRequest(SESSION, 7));
        float[] k = {1.5f, -0f, Float.MIN_VALUE, 3e38f, -7.25f, 0.1f};
        float[] v = {Float.NaN, 2f, -3f, 4f, 5f, 6f};
        var reply = roundTrip(new WireMessage.AnchorReply(3, 3, 1, 2, k, v));
        assertThat(reply.layer()).isEqualTo(3);
        assertThat(reply.tokens()).isEqualTo(3);
        assertThat(reply.kvHeads()).isEqualTo(1);
        assertThat(reply.headDim()).isEqualTo(2);
        for (int i = 0; i < k.length; i++) {
            assertThat(Float.floatToRawIntBits(reply.k()[i])).isEqualTo(Float.floatToRawIntBits(k[i]));
            assertThat(Float.floatToRawIntBits(reply.v()[i])).isEqualTo(Float.floatToRawIntBits(v[i]));
        }
        assertThat(WireCodec.encode(reply)).hasSize(WireCodec.HEADER_BYTES + 16 + 2 * 4 * 6);
        assertThatThrownBy(() -> new WireMessage.AnchorReply(0, 2, 1, 2, k, v))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("2 x 1 x 2");

        byte[] frame = WireCodec.encode(reply);
        ByteBuffer.wrap(frame).order(ByteOrder.LITTLE_ENDIAN).putInt(WireCodec.HEADER_BYTES + 4, 1 << 20);
        assertThatThrownBy(() -> WireCodec.decode(frame)).isInstanceOf(WireFormatException.class)
                .hasMessageContaining("anchor KV");
    }

    @Test
    void aPrefillRequestCarriesOnlyTheTokensItsBlocksNeed() {
        int[] context = new java.util.Random(3).ints(1000, 3, 12000).toArray();
        BlockPlan plan = BlockPlan.builder(1000).blocks(4).anchorSize(100).hosts(3).build();
        var first = WireMessage.PrefillRequest.of(SESSION, "q", plan, context, new int[] {0}, "");
        assertThat(first.ranges()).containsExactly(0, 250);
        var third = WireMessage.PrefillRequest.of(SESSION, "q", plan, context, new int[] {2}, "node-0");
        assertThat(third.ranges()).as("the anchor, then block 2").containsExactly(0, 100, 500, 750);
        assertThat(third.tokens()).hasSize(350);
        int[] seen = roundTrip(third).scatter();
        assertThat(Arrays.copyOfRange(seen, 500, 750)).containsExactly(Arrays.copyOfRange(context, 500, 750));
        assertThat(Arrays.copyOfRange(seen, 0, 100)).containsExactly(Arrays.copyOfRange(context, 0, 100));
        assertThat(Arrays.copyOfRange(seen, 100, 500)).containsOnly(0); // block 1 never left the query host
        assertThat(third.covers(500, 750)).isTrue();
        assertThat(third.covers(250, 500)).isFalse();
        assertThat(third.contextDigest()).isEqualTo(WireMessage.PrefillRequest.digest(context))
                .isNotEqualTo(WireMessage.PrefillRequest.digest(Arrays.copyOf(context, 999)));
        var merged = WireMessage.PrefillRequest.of(SESSION, "q", plan, context, new int[] {0, 1}, "");
        assertThat(merged.ranges()).as("adjacent ranges merge").containsExactly(0, 500);
    }

    @Test
    void prefillRangesThatDoNotMatchTheTokensAreRejected() {
        byte[] frame = WireCodec.encode(new WireMessage.PrefillRequest(SESSION, "o", 10, 0, 5, 0, 1, new int[] {0},
                new int[] {0, 3}, new int[] {1, 2, 3}, ""));
        ByteBuffer le = ByteBuffer.wrap(frame).order(ByteOrder.LITTLE_ENDIAN);
        int rangesAt = WireCodec.HEADER_BYTES + 16 + 2 + 1 + 12 + 12 + 4 + 4; // after blocks {0}
        le.putInt(rangesAt + 4, 7); // [7, 3): backwards
        assertThatThrownBy(() -> WireCodec.decode(frame)).isExactlyInstanceOf(WireFormatException.class)
                .hasMessageContaining("range [7, 3)");
        le.putInt(rangesAt + 4, 0).putInt(rangesAt + 8, 11); // [0, 11): past the 10-token context
        assertThatThrownBy(() -> WireCodec.decode(frame)).isExactlyInstanceOf(WireFormatException.class)
                .hasMessageContaining("inside the 10-token context");
        le.putInt(rangesAt + 8, 4); // [0, 4): 4 tokens claimed, 3 sent
        assertThatThrownBy(() -> WireCodec.decode(frame)).isExactlyInstanceOf(WireFormatException.class)
                .hasMessageContaining("ranges cover 4 tokens, 3 sent");
    }

    @Test
    void layoutIsLittleEndian() {
        float[] lse = {1.5f};
        float[] out = {-2.25f, 3.0f};
        byte[] frame = WireCodec.encode(new WireMessage.AttendReply(0x0102030405060708L,
                List.of(new PartialAttention(1, 1, 2, out, lse))));
        assertThat(Arrays.copyOf(frame, 4)).containsExactly('S', 'A', 'W', '1');
        assertThat(frame[4]).isEqualTo(WireCodec.VERSION);
        assertThat(frame[5]).isEqualTo(WireMessage.ATTEND_REPLY);
        ByteBuffer le = ByteBuffer.wrap(frame).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(le.getInt(8)).isEqualTo(frame.length - WireCodec.HEADER_BYTES);
        assertThat(frame[12]).isEqualTo((byte) 0x08); // least significant byte of the long first
        assertThat(le.getLong(12)).isEqualTo(0x0102030405060708L);
        assertThat(le.getInt(20)).isEqualTo(1); // one partial
        assertThat(le.getInt(24)).isEqualTo(1); // tokens
        assertThat(le.getInt(28)).isEqualTo(1); // heads
        assertThat(le.getInt(32)).isEqualTo(2); // head dim
        assertThat(le.getFloat(36)).isEqualTo(1.5f); // lse first
        assertThat(le.getFloat(40)).isEqualTo(-2.25f);
        assertThat(le.getFloat(44)).isEqualTo(3.0f);
        int bits = Float.floatToRawIntBits(1.5f);
        assertThat(frame[36]).isEqualTo((byte) bits);
        assertThat(frame[39]).isEqualTo((byte) (bits >>> 24));
        assertThat(frame).hasSize(48);
    }

    @Test
    void decodeFromAnOffsetInALargerBuffer() {
        byte[] frame = WireCodec.encode(new WireMessage.ReleaseRequest(SESSION));
        ByteBuffer big = ByteBuffer.allocate(frame.length + 10);
        big.position(5);
        big.put(frame);
        big.position(5).limit(5 + frame.length);
        assertThat(((WireMessage.ReleaseRequest) WireCodec.decode(big)).session()).isEqualTo(SESSION);
    }

    @Test
    void badFramesAreRejected() {
        byte[] good = WireCodec.encode(new WireMessage.AttendRequest(SESSION, 1, new int[] {0}, query(2, 4, 8, 5)));

        assertThatThrownBy(() -> WireCodec.decode(new byte[5])).isInstanceOf(WireFormatException.class)
                .hasMessageContaining("header");

        byte[] magic = good.clone();
        magic[0] = 'X';
        assertThatThrownBy(() -> WireCodec.decode(magic)).isInstanceOf(WireFormatException.class)
                .hasMessageContaining("magic");

        byte[] version = good.clone();
        version[4] = 9;
        assertThatThrownBy(() -> WireCodec.decode(version)).isInstanceOf(WireFormatException.class)
                .hasMessageContaining("version 9");

        byte[] type = good.clone();
        type[5] = 42;
        assertThatThrownBy(() -> WireCodec.decode(type)).isInstanceOf(WireFormatException.class)
                .hasMessageContaining("unknown message type 42");

        byte[] truncated = Arrays.copyOf(good, good.length - 3);
        assertThatThrownBy(() -> WireCodec.decode(truncated)).isInstanceOf(WireFormatException.class)
                .hasMessageContaining("payload bytes");

        byte[] trailing = Arrays.copyOf(good, good.length + 4);
        ByteBuffer.wrap(trailing).order(ByteOrder.LITTLE_ENDIAN).putInt(8, good.length + 4 - WireCodec.HEADER_BYTES);
        assertThatThrownBy(() -> WireCodec.decode(trailing)).isInstanceOf(WireFormatException.class)
                .hasMessageContaining("trailing");

        // consistent header, but the payload is cut: the decoder must not read past it
        byte[] cut = Arrays.copyOf(good, good.length - 8);
        ByteBuffer.wrap(cut).order(ByteOrder.LITTLE_ENDIAN).putInt(8, cut.length - WireCodec.HEADER_BYTES);
        assertThatThrownBy(() -> WireCodec.decode(cut)).isInstanceOf(WireFormatException.class);
    }

    @Test
    void hostileCountsAreRejectedBeforeAllocating() {
        byte[] frame = WireCodec.encode(new WireMessage.PrefillRequest(SESSION, "o", 3, 0, 4, 4, 1, new int[] {0},
                new int[] {0, 3}, new int[] {1, 2, 3}, ""));
        ByteBuffer le = ByteBuffer.wrap(frame).order(ByteOrder.LITTLE_ENDIAN);
        int blocksCountAt = WireCodec.HEADER_BYTES + 16 + 2 + 1 + 12 + 12;
        assertThat(le.getInt(blocksCountAt)).isEqualTo(1);
        le.putInt(blocksCountAt, Integer.MAX_VALUE);
        assertThatThrownBy(() -> WireCodec.decode(frame)).isInstanceOf(WireFormatException.class)
                .hasMessageContaining("only");
        le.putInt(blocksCountAt, -1);
        assertThatThrownBy(() -> WireCodec.decode(frame)).isInstanceOf(WireFormatException.class)
                .hasMessageContaining("negative count");

        byte[] q = WireCodec.encode(new WireMessage.AttendRequest(SESSION, 0, new int[0], query(1, 2, 2, 6)));
        ByteBuffer qb = ByteBuffer.wrap(q).order(ByteOrder.LITTLE_ENDIAN);
        int queryAt = WireCodec.HEADER_BYTES + 16 + 4 + 4;
        qb.putInt(queryAt, 1 << 20); // tokens: 4 MiB of floats claimed, a few bytes present
        assertThatThrownBy(() -> WireCodec.decode(q)).isInstanceOf(WireFormatException.class)
                .hasMessageContaining("needs");
        qb.putInt(queryAt, 1);
        qb.putInt(queryAt + 4, 0); // heads
        assertThatThrownBy(() -> WireCodec.decode(q)).isInstanceOf(WireFormatException.class)
                .hasMessageContaining("heads");
        qb.putInt(queryAt + 4, 2);
        qb.putFloat(queryAt + 12, Float.NaN); // scale
        assertThatThrownBy(() -> WireCodec.decode(q)).isInstanceOf(WireFormatException.class)
                .hasMessageContaining("scale");
    }

    @Test
    void shapesWhoseSizeOverflowsAreRejectedBeforeAllocating() {
        // each of these once passed the size check (the byte count overflowed a long) and allocated gigabytes
        byte[] q = WireCodec.encode(new WireMessage.AttendRequest(SESSION, 0, new int[0], query(1, 2, 2, 6)));
        ByteBuffer qb = ByteBuffer.wrap(q).order(ByteOrder.LITTLE_ENDIAN);
        int queryAt = WireCodec.HEADER_BYTES + 16 + 4 + 4;
        qb.putInt(queryAt, Integer.MAX_VALUE).putInt(queryAt + 4, WireCodec.MAX_DIM)
                .putInt(queryAt + 8, WireCodec.MAX_DIM);
        assertThatThrownBy(() -> WireCodec.decode(q)).isExactlyInstanceOf(WireFormatException.class)
                .hasMessageContaining("more elements than a frame can hold");

        byte[] r = WireCodec.encode(new WireMessage.AttendReply(1, List.of(partial(1, 1, 2, 3))));
        ByteBuffer rb = ByteBuffer.wrap(r).order(ByteOrder.LITTLE_ENDIAN);
        int partialAt = WireCodec.HEADER_BYTES + 12;
        rb.putInt(partialAt, Integer.MAX_VALUE).putInt(partialAt + 4, WireCodec.MAX_DIM)
                .putInt(partialAt + 8, WireCodec.MAX_DIM);
        assertThatThrownBy(() -> WireCodec.decode(r)).isExactlyInstanceOf(WireFormatException.class)
                .hasMessageContaining("more elements than a frame can hold");

        byte[] a = WireCodec.encode(new WireMessage.AnchorReply(0, 1, 1, 1, new float[] {1}, new float[] {2}));
        ByteBuffer ab = ByteBuffer.wrap(a).order(ByteOrder.LITTLE_ENDIAN);
        int anchorAt = WireCodec.HEADER_BYTES + 4;
        ab.putInt(anchorAt, Integer.MAX_VALUE).putInt(anchorAt + 4, WireCodec.MAX_DIM)
                .putInt(anchorAt + 8, WireCodec.MAX_DIM);
        assertThatThrownBy(() -> WireCodec.decode(a)).isExactlyInstanceOf(WireFormatException.class)
                .hasMessageContaining("more elements than a frame can hold");
    }

    /**
     * Random, truncated and bit-flipped frames of every message type (seeded, bounded): each decodes to a message or
     * fails with a {@link WireFormatException}, never another exception, and never allocates more than the frame.
     */
    @Test
    void fuzzedFramesDecodeOrFailWithWireFormatException() {
        List<byte[]> seeds = List.of(
                WireCodec.encode(new WireMessage.InfoRequest()),
                WireCodec.encode(new WireMessage.HostInfo("n", "host-0", "m", "cpu", 2, 1, 3)),
                WireCodec.encode(new WireMessage.PrefillRequest(SESSION, "o", 9, 7, 4, 4, 2, new int[] {0, 1},
                        new int[] {0, 2, 6, 7}, new int[] {5, 6, 7}, "node")),
                WireCodec.encode(new WireMessage.PrefillReply(SESSION, new int[] {1}, 10, 20)),
                WireCodec.encode(new WireMessage.AttendRequest(SESSION, 3, new int[] {0}, query(2, 2, 4, 1))),
                WireCodec.encode(new WireMessage.AttendReply(5, List.of(partial(2, 2, 4, 2), partial(1, 2, 4, 3)))),
                WireCodec.encode(new WireMessage.ReleaseRequest(SESSION)),
                WireCodec.encode(new WireMessage.ReleaseReply(7, 1)),
                WireCodec.encode(new WireMessage.AnchorRequest(SESSION, 2)),
                WireCodec.encode(new WireMessage.AnchorReply(1, 2, 1, 2, new float[] {1, 2, 3, 4},
                        new float[] {5, 6, 7, 8})),
                WireCodec.encode(new WireMessage.PrefillRequest(SESSION, "o", 9, 7, 4, 4, 2, new int[] {1},
                        new int[] {0, 8}, new int[] {1, 2, 3, 4, 5, 6, 7, 8}, "node",
                        new WireMessage.PrefillRequest.Passing(4, "window", 2, List.of("a", "")))),
                WireCodec.encode(new WireMessage.PassedRequest(SESSION, 1, 2)),
                WireCodec.encode(new WireMessage.PassedReply(1, 2, 1, 2, new int[] {5, 6}, new float[] {1, 2, 3, 4},
                        new float[] {5, 6, 7, 8})));
        Random r = new Random(20261203);
        int decoded = 0;
        int rejected = 0;
        for (int i = 0; i < 60_000; i++) {
            byte[] seed = seeds.get(r.nextInt(seeds.size()));
            byte[] frame = switch (i % 4) {
                case 0 -> { // flip 1-4 bits
                    byte[] f = seed.clone();
                    for (int k = 1 + r.nextInt(4); k > 0; k--) {
                        f[r.nextInt(f.length)] ^= (byte) (1 << r.nextInt(8));
                    }
                    yield f;
                }
                case 1 -> { // overwrite one int of the payload with a hostile value, header length kept consistent
                    byte[] f = seed.clone();
                    if (f.length >= WireCodec.HEADER_BYTES + 4) {
                        int at = WireCodec.HEADER_BYTES + r.nextInt(f.length - WireCodec.HEADER_BYTES - 3);
                        int[] hostile = {-1, 0, Integer.MAX_VALUE, Integer.MIN_VALUE, 1 << 30, WireCodec.MAX_DIM,
                                r.nextInt()};
                        ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN)
                                .putInt(at, hostile[r.nextInt(hostile.length)]);
                    }
                    yield f;
                }
                case 2 -> { // truncate, header length adjusted to match
                    byte[] f = Arrays.copyOf(seed,
                            WireCodec.HEADER_BYTES + r.nextInt(seed.length - WireCodec.HEADER_BYTES + 1));
                    ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN).putInt(8, f.length - WireCodec.HEADER_BYTES);
                    yield f;
                }
                default -> { // a valid header over random bytes
                    byte[] f = new byte[WireCodec.HEADER_BYTES + r.nextInt(200)];
                    r.nextBytes(f);
                    ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN).putInt(0, WireCodec.MAGIC)
                            .put(4, WireCodec.VERSION).put(5, seed[5]).putShort(6, (short) 0)
                            .putInt(8, f.length - WireCodec.HEADER_BYTES);
                    yield f;
                }
            };
            try {
                assertThat(WireCodec.decode(frame)).isNotNull();
                decoded++;
            } catch (WireFormatException e) {
                rejected++;
            }
        }
        assertThat(decoded).isPositive();
        assertThat(rejected).isPositive();
    }

    @Test
    void sizesMatchTheDocumentedTraffic() {
        // decode step of a 4-head x 64 model: 1 token, one block per host
        AttentionQuery q = query(1, 4, 64, 7);
        int request = WireCodec.encodedSize(new WireMessage.AttendRequest(SESSION, 0, new int[] {0}, q));
        int reply = WireCodec.encodedSize(new WireMessage.AttendReply(0, List.of(partial(1, 4, 64, 8))));
        assertThat(request).isEqualTo(12 + 16 + 4 + 8 + 16 + 4 + 4 * 4 * 64);
        assertThat(reply).isEqualTo(12 + 12 + 12 + 4 * 4 + 4 * 4 * 64);
    }
}
