package io.github.starattention.jlama.cli;

import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.eval.PromptTokenizer;
import io.github.starattention.jlama.eval.RulerTaskGenerator;
import io.github.starattention.jlama.model.WeightFormat;
import java.io.BufferedWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code generate}: a RULER-style JSONL set whose lengths are counted in the model's own tokens. */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Generate a RULER-style evaluation set (niah, vt) for a model: lengths are counted with the model's "
                + "tokenizer and chat template (context + question + answer + EOS, as the bundled model's dev sets).",
            "The templates are the ones the bundled tiny-ruler-llama was trained on, which are RULER's."})
public final class GenerateCommand implements Callable<Integer> {

    @Option(names = "--model", paramLabel = "DIR", description = "Model folder whose tokenizer counts the tokens (default: the bundled tiny-ruler-llama).")
    Path model;

    @Option(names = "--tasks", split = ",", paramLabel = "TASK[,TASK...]",
            defaultValue = "niah_single,niah_multikey,niah_multivalue,niah_multiquery,vt",
            description = "Tasks: niah_single, niah_multikey, niah_multivalue, niah_multiquery, vt, fact_qa. Default: ${DEFAULT-VALUE}.")
    List<String> tasks;

    @Option(names = "--lengths", split = ",", required = true, paramLabel = "N[,N...]", description = "Lengths in tokens, e.g. 1024,4096,16384.")
    List<Integer> lengths;

    @Option(names = "--per-task", defaultValue = "10", paramLabel = "N", description = "Examples per task and length. Default: ${DEFAULT-VALUE}.")
    int perTask;

    @Option(names = "--seed", defaultValue = "42", paramLabel = "S", description = "Random seed (same seed, same set). Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--values", defaultValue = "numbers", paramLabel = "numbers|words|mixed",
            description = "Needle values: 7-digit numbers, words, or 2:1 mixed. Default: ${DEFAULT-VALUE}.")
    String values;

    @Option(names = "--words", paramLabel = "FILE",
            description = "Word list for keys and filler (default: words.txt of the model folder, else the bundled list).")
    Path wordsFile;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "Output JSONL.")
    Path out;

    @Option(names = "--verbose", description = "Print stack traces and debug logs.")
    boolean verbose;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        Logging.configure(verbose);
        for (int l : lengths) {
            if (l < 64) {
                throw new IllegalArgumentException("--lengths must be at least 64 tokens, got " + l);
            }
        }
        RulerTaskGenerator.ValueType type = switch (values.toLowerCase(Locale.ROOT)) {
            case "numbers" -> RulerTaskGenerator.ValueType.NUMBERS;
            case "words" -> RulerTaskGenerator.ValueType.WORDS;
            case "mixed" -> RulerTaskGenerator.ValueType.MIXED;
            default -> throw new IllegalArgumentException("--values must be numbers, words or mixed, got '" + values + "'");
        };
        Path dir = model != null ? model : CommonOptions.bundledModel();
        List<String> words;
        if (wordsFile != null) {
            words = RulerTaskGenerator.readWords(wordsFile);
        } else if (Files.isRegularFile(dir.resolve("words.txt"))) {
            words = RulerTaskGenerator.readWords(dir.resolve("words.txt"));
        } else {
            words = RulerTaskGenerator.bundledWords();
        }
        int total = lengths.size() * tasks.size() * perTask;
        ProgressBar bar = new ProgressBar("generate", System.err);
        int exact = 0;
        int n = 0;
        // weights as stored: only the tokenizer and chat template are used
        try (StarAttentionModel m = StarAttentionModel.load(dir, WeightFormat.AS_STORED, 0)) {
            for (int l : lengths) {
                if (l > m.maxPositions()) {
                    throw new IllegalArgumentException("length " + l + " exceeds the model's max_position_embeddings " + m.maxPositions());
                }
            }
            RulerTaskGenerator gen = new RulerTaskGenerator(PromptTokenizer.of(m), words, seed, type);
            if (out.toAbsolutePath().getParent() != null) {
                Files.createDirectories(out.toAbsolutePath().getParent());
            }
            try (BufferedWriter w = Files.newBufferedWriter(out, StandardCharsets.UTF_8)) {
                for (int l : lengths) {
                    for (String t : tasks) {
                        for (int k = 0; k < perTask; k++) {
                            RulerTaskGenerator.Example ex = gen.example(t, l, t + "-" + l + "-" + k);
                            w.write(Json.write(ex.toJson()));
                            w.write('\n');
                            exact += ex.tokens() == ex.length() ? 1 : 0;
                            bar.update(++n, total);
                        }
                    }
                }
            }
        } finally {
            bar.done();
        }
        spec.commandLine().getOut().printf("wrote %d examples to %s (%d with exactly the requested length, the others within %d tokens)%n",
                n, out, exact, RulerTaskGenerator.tolerance(lengths.stream().mapToInt(Integer::intValue).max().orElse(0)));
        return 0;
    }
}
