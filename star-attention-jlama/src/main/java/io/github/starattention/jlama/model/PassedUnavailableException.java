package io.github.starattention.jlama.model;

/** What an earlier block passed on could not be taken from its host; the caller encodes the earlier blocks itself. */
final class PassedUnavailableException extends RuntimeException {

    PassedUnavailableException(int block, int layer, Throwable cause) {
        super("what block " + block + " passes on at layer " + layer + " could not be fetched: " + cause.getMessage(),
                cause);
    }
}
