package io.github.starattention.jlama.cluster;

import io.github.starattention.wire.WireCodec;
import io.github.starattention.wire.WireFormatException;
import io.github.starattention.wire.WireMessage;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.MessageCodec;

/**
 * Carries {@link WireMessage}s on the Vert.x event bus in the binary frame format of {@link WireCodec}: on the wire a
 * message body is an int32 frame length followed by the frame. A frame that does not decode becomes a
 * {@link BadFrame} (the receiver answers it with an error) instead of an exception inside Vert.x.
 */
final class WireMessageCodec implements MessageCodec<WireMessage, Object> {

    /** Codec name, sent with every message. */
    static final String NAME = "saw1";

    /** The body of a message whose frame did not decode. */
    record BadFrame(String reason) {
    }

    @Override
    public void encodeToWire(Buffer buffer, WireMessage message) {
        byte[] frame = WireCodec.encode(message);
        buffer.appendInt(frame.length);
        buffer.appendBytes(frame);
    }

    @Override
    public Object decodeFromWire(int pos, Buffer buffer) {
        try {
            int length = buffer.getInt(pos);
            if (length < 0 || pos + 4L + length > buffer.length()) {
                return new BadFrame("frame length " + length + " does not fit the message");
            }
            return WireCodec.decode(buffer.getBytes(pos + 4, pos + 4 + length));
        } catch (WireFormatException e) {
            return new BadFrame(e.getMessage());
        } catch (RuntimeException e) {
            return new BadFrame(e.toString());
        }
    }

    @Override
    public Object transform(WireMessage message) {
        return message;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public byte systemCodecID() {
        return -1;
    }
}
