package io.github.starattention.jlama.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

/** {@code bench}: stock Jlama vs ours (global, star) on the same prompts. */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmark stock Jlama against Star Attention.")
public final class BenchCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        throw new UnsupportedOperationException("bench is being written");
    }
}
