package io.github.starattention.jlama.model;

/** The anchor's KV could not be taken from the host encoding block 0; the caller encodes the anchor itself. */
final class AnchorUnavailableException extends RuntimeException {

    AnchorUnavailableException(int layer, Throwable cause) {
        super("the anchor's KV at layer " + layer + " could not be fetched: " + cause.getMessage(), cause);
    }
}
