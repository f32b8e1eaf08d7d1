package io.github.starattention.samples;

import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Entry point of {@code samples/run}: {@code rag} (offline RAG with LangChain4j), {@code doc-qa} (a whole long
 * document in the context, global vs Star Attention) and {@code cluster} (the document encoded across context-host
 * JVMs on 127.0.0.1). Bad input prints one line on stderr and exits with 2.
 */
@Command(name = "samples/run", mixinStandardHelpOptions = true, version = "star-attention samples 0.1.0",
        description = "Star Attention sample applications.",
        subcommands = {RagSample.class, DocumentQaSample.class, ClusterDemoSample.class, CommandLine.HelpCommand.class})
public final class Samples {

    /** Exit code for bad input (a wrong folder, file or model). */
    public static final int BAD_INPUT = 2;

    private Samples() {
    }

    public static void main(String[] args) {
        System.exit(run(new PrintWriter(System.out, true), new PrintWriter(System.err, true), args));
    }

    /** Runs a sample with its output on {@code out} and errors on {@code err}; returns the exit code. */
    public static int run(PrintWriter out, PrintWriter err, String... args) {
        SampleHome.offline();
        CommandLine cli = new CommandLine(new Samples());
        cli.setOut(out);
        cli.setErr(err);
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            boolean verbose = parsed.subcommand() != null && parsed.subcommand().hasMatchedOption("--verbose");
            if (verbose) {
                e.printStackTrace(err);
            }
            boolean badInput = e instanceof IllegalArgumentException || e instanceof java.io.UncheckedIOException
                    || e instanceof java.io.IOException;
            String message = e.getMessage() != null ? e.getMessage() : e.toString();
            err.println(cmd.getCommandSpec().qualifiedName() + ": " + (badInput ? "" : "error: ") + message);
            err.flush();
            return badInput ? BAD_INPUT : 1;
        });
        cli.setParameterExceptionHandler((e, a) -> {
            e.getCommandLine().getErr().println(e.getCommandLine().getCommandSpec().qualifiedName() + ": " + e.getMessage());
            e.getCommandLine().getErr().println("see '" + e.getCommandLine().getCommandSpec().qualifiedName() + " --help'");
            return BAD_INPUT;
        });
        return cli.execute(args);
    }
}
