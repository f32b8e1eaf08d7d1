package io.github.starattention.jlama.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.starattention.attention.PartialAttention;
import io.github.starattention.wire.WireMessage;
import io.vertx.core.buffer.Buffer;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.Test;

class WireMessageCodecTest {

    private final WireMessageCodec codec = new WireMessageCodec();

    @Test
    void roundTripsThroughAVertxBufferAtAnOffset() {
        PartialAttention p = new PartialAttention(1, 2, 2, new float[] {1, 2, 3, 4}, new float[] {0.5f, Float.NEGATIVE_INFINITY});
        Buffer b = Buffer.buffer().appendString("envelope");
        int pos = b.length();
        codec.encodeToWire(b, new WireMessage.AttendReply(7, List.of(p)));
        Object back = codec.decodeFromWire(pos, b);
        assertThat(back).isInstanceOf(WireMessage.AttendReply.class);
        WireMessage.AttendReply r = (WireMessage.AttendReply) back;
        assertThat(r.hostNanos()).isEqualTo(7);
        assertThat(r.partials().getFirst().output()).containsExactly(1, 2, 3, 4);
        assertThat(r.partials().getFirst().lse()).containsExactly(0.5f, Float.NEGATIVE_INFINITY);
        assertThat(codec.systemCodecID()).isEqualTo((byte) -1);
    }

    @Test
    void garbageBecomesABadFrameNotAnException() {
        Buffer b = Buffer.buffer().appendInt(8).appendLong(42);
        assertThat(codec.decodeFromWire(0, b)).isInstanceOf(WireMessageCodec.BadFrame.class);
        Buffer tooLong = Buffer.buffer().appendInt(1 << 30).appendInt(0);
        assertThat(codec.decodeFromWire(0, tooLong)).isInstanceOf(WireMessageCodec.BadFrame.class);
        Buffer cut = Buffer.buffer();
        codec.encodeToWire(cut, new WireMessage.ReleaseRequest(UUID.randomUUID()));
        Buffer shorter = cut.getBuffer(0, cut.length() - 1);
        assertThat(codec.decodeFromWire(0, shorter)).isInstanceOf(WireMessageCodec.BadFrame.class);
    }
}
