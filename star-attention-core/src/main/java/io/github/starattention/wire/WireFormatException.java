package io.github.starattention.wire;

/** A frame that does not follow the wire format (bad magic, version, type, length or content). */
public final class WireFormatException extends IllegalArgumentException {

    public WireFormatException(String message) {
        super(message);
    }
}
