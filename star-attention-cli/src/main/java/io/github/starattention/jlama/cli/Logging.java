package io.github.starattention.jlama.cli;

/** Log levels of the command line's SLF4J simple provider: warnings only, or debug with {@code --verbose}. */
public final class Logging {

    private Logging() {
    }

    /** Sets the levels unless the user set them with system properties. */
    public static void configure(boolean verbose) {
        String key = "org.slf4j.simpleLogger.defaultLogLevel";
        if (System.getProperty(key) == null) {
            System.setProperty(key, verbose ? "debug" : "warn");
        }
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        // DJL probes CUDA for the tokenizer's native library flavour and warns on machines without a GPU; the
        // tokenizer runs on the CPU either way
        String djl = "org.slf4j.simpleLogger.log.ai.djl.util.cuda";
        if (System.getProperty(djl) == null && !verbose) {
            System.setProperty(djl, "error");
        }
    }
}
