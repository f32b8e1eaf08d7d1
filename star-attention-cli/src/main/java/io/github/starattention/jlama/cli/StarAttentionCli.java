package io.github.starattention.jlama.cli;

import io.github.starattention.jlama.bench.GpuBenchCommand;
import io.github.starattention.jlama.bench.LlamaCppBenchCommand;
import io.github.starattention.jlama.model.WeightFormat;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code ./star-attention} command line. Bad input (a missing model, an unreadable file, a block plan that does not
 * fit) prints one line on stderr and exits with 2; {@code --verbose} adds the stack trace.
 */
@Command(name = "star-attention", mixinStandardHelpOptions = true, version = "star-attention 0.1.0",
        description = "Star Attention (arXiv 2411.17116) on Jlama: long-context inference with blockwise context encoding.",
        subcommands = {DemoCommand.class, AskCommand.class, BenchCommand.class, HostCommand.class,
                ClusterBenchCommand.class, EvalCommand.class, GenerateCommand.class, TokenizerBenchCommand.class,
                LlamaCppBenchCommand.class, GpuBenchCommand.class, CommandLine.HelpCommand.class})
public final class StarAttentionCli {

    /** Exit code for bad input. */
    public static final int BAD_INPUT = 2;

    private StarAttentionCli() {
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns the exit code. */
    public static int run(String... args) {
        return run(new PrintWriter(System.out, true), new PrintWriter(System.err, true), args);
    }

    /** Runs the command line with picocli's messages on {@code out} and {@code err}; returns the exit code. */
    public static int run(PrintWriter out, PrintWriter err, String... args) {
        CommandLine cli = new CommandLine(new StarAttentionCli());
        cli.registerConverter(WeightFormat.class, CommonOptions::weightFormat);
        cli.setOut(out);
        cli.setErr(err);
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (parsed.subcommand() != null && parsed.subcommand().hasMatchedOption("--verbose")) {
                e.printStackTrace(err);
            }
            boolean badInput = e instanceof IllegalArgumentException || e instanceof java.io.UncheckedIOException
                    || e instanceof java.io.IOException;
            String message = e.getMessage() != null ? e.getMessage() : e.toString();
            err.println("star-attention: " + (badInput ? "" : "error: ") + message);
            err.flush();
            return badInput ? BAD_INPUT : 1;
        });
        cli.setParameterExceptionHandler((e, a) -> {
            e.getCommandLine().getErr().println("star-attention: " + e.getMessage());
            e.getCommandLine().getErr().println("see '" + e.getCommandLine().getCommandSpec().qualifiedName() + " --help'");
            return BAD_INPUT;
        });
        return cli.execute(args);
    }
}
