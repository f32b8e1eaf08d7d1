package io.github.starattention.jlama;

/** Receives each generated token as soon as it is sampled (streaming). Called on the generating thread. */
@FunctionalInterface
public interface TokenListener {

    /**
     * @param tokenId the sampled token id
     * @param text its decoded text (may be empty for a partial UTF-8 sequence; stop strings are not withheld)
     */
    void onToken(int tokenId, String text);

    TokenListener NONE = (id, text) -> { };
}
