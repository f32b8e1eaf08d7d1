package io.github.starattention.jlama.model;

/**
 * A prefill would not fit the memory left: thrown before it starts, with what it needs and what there is, instead of
 * an {@link OutOfMemoryError} minutes into it.
 */
public final class NotEnoughMemoryException extends IllegalArgumentException {

    private final long needed;
    private final long available;

    public NotEnoughMemoryException(String message, long needed, long available) {
        super(message);
        this.needed = needed;
        this.available = available;
    }

    /** Bytes the prefill needs. */
    public long needed() {
        return needed;
    }

    /** Bytes free when it was checked. */
    public long available() {
        return available;
    }
}
