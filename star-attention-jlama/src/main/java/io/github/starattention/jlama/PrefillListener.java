package io.github.starattention.jlama;

/** Progress of phase 1 (context encoding), for progress bars. Called from engine threads. */
@FunctionalInterface
public interface PrefillListener {

    /** {@code done} of {@code total} context tokens are encoded. */
    void onProgress(int done, int total);

    PrefillListener NONE = (done, total) -> { };
}
