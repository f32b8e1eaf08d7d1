package io.github.starattention.jlama.cli;

import com.github.tjake.jlama.model.llama.LlamaTokenizer;
import io.github.starattention.jlama.model.HfTokenizer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code bench-tokenizer}: our tokenizer (Hugging Face tokenizers through DJL) against stock Jlama's BPE tokenizer on
 * the same text of growing length, in one JVM, printing both times, their ratio and whether the ids agree.
 */
@Command(name = "bench-tokenizer", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Tokenizing time: ours (Hugging Face tokenizers) vs stock Jlama's, same text, same JVM.")
public final class TokenizerBenchCommand implements Callable<Integer> {

    /** Prose, code, numbers, whitespace runs, accents, CJK and emoji, repeated to the wanted length. */
    static final String TEXT = """
            Star Attention splits a long context into blocks; every block after the first is encoded behind the \
            anchor. The secret number is 48213, and the café in Zürich opens at 07:30 — «ça va très bien».
            def merge(outputs, lse):
                m = max(lse)
                return sum(math.exp(x - m) * o for x, o in zip(lse, outputs))
            日本語のテキストと中文的句子，还有한국어 문장도 있습니다 🙂🚀.   Tabs\tand   spaces    stay.
            """;

    @Option(names = "--model", paramLabel = "DIR", description = "Model folder with tokenizer.json (default: the bundled tiny-ruler-llama).")
    Path model;

    @Option(names = "--tokens", split = ",", defaultValue = "1024,4096,16384,65536", paramLabel = "N,...",
            description = "Text lengths in our tokens. Default: ${DEFAULT-VALUE}.")
    List<Integer> tokens;

    @Option(names = "--stock-max", defaultValue = "4096", paramLabel = "N",
            description = "Longest text (in --tokens) given to stock Jlama's tokenizer, whose time grows faster than the length. Default: ${DEFAULT-VALUE}.")
    int stockMax;

    @Option(names = "--verbose", description = "Print stack traces and debug logs.")
    boolean verbose;

    @Override
    public Integer call() throws Exception {
        Logging.configure(verbose);
        Path dir = model != null ? model : CommonOptions.bundledModel();
        for (int n : tokens) {
            if (n < 1) {
                throw new IllegalArgumentException("--tokens must be positive, got " + n);
            }
        }
        try (HfTokenizer ours = HfTokenizer.open(dir)) {
            LlamaTokenizer stock = new LlamaTokenizer(dir);
            int perCopy = ours.encode(TEXT).length;
            System.out.printf("%-8s %-9s %-11s %-11s %-10s %s%n", "tokens", "chars", "ours ms", "stock ms", "stock/ours",
                    "ids equal");
            ours.encode(TEXT.repeat(8)); // load the native library and warm up before timing
            for (int n : tokens) {
                String text = TEXT.repeat(Math.max(1, (n + perCopy - 1) / perCopy));
                long t0 = System.nanoTime();
                int[] ids = ours.encode(text);
                double oursMs = (System.nanoTime() - t0) / 1e6;
                String stockMs = "skipped";
                String ratio = "-";
                String equal = "-";
                if (n <= stockMax) {
                    t0 = System.nanoTime();
                    long[] theirs = stock.encode(text);
                    double ms = (System.nanoTime() - t0) / 1e6;
                    stockMs = String.format("%.1f", ms);
                    ratio = String.format("%.0fx", ms / oursMs);
                    equal = Arrays.equals(Arrays.stream(theirs).mapToInt(Math::toIntExact).toArray(), ids) ? "yes" : "no";
                }
                System.out.printf("%-8d %-9d %-11.1f %-11s %-10s %s%n", ids.length, text.length(), oursMs, stockMs, ratio,
                        equal);
            }
        }
        return 0;
    }
}
