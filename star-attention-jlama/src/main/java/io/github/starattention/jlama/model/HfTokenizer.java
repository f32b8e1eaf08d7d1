package io.github.starattention.jlama.model;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.CharSpan;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.OptionalInt;

/**
 * A model folder's {@code tokenizer.json} run by Hugging Face tokenizers, the Rust library transformers uses, through
 * DJL: the same ids as transformers, lossless decoding and linear time. Jlama's own BPE tokenizer gives other ids for
 * byte-level vocabularies and is superlinear (issue 15's measurements), so it is not used for text.
 *
 * <p>Special tokens follow transformers: the tokenizer's post-processor adds what {@code tokenizer.json} says, and
 * {@code "add_bos_token": true} in {@code tokenizer_config.json} (Llama and Mistral's SentencePiece tokenizers) adds
 * BOS where the post-processor does not. A text that already starts with BOS (chat templates that write it) keeps one.
 *
 * <p>Thread-safe. DJL's usage report is turned off ({@code OPT_OUT_TRACKING=true}) unless the application set it.
 */
public final class HfTokenizer implements AutoCloseable {

    /** Token ids with the end of each token in the text (UTF-16 index, exclusive; 0 for added special tokens). */
    public record Encoded(int[] ids, int[] ends) {
    }

    private static final String OPT_OUT = "OPT_OUT_TRACKING";
    /**
     * DJL picks the native library's flavor from the machine: where CUDA is installed it wants a CUDA build that the
     * jar does not contain and tries to download it, which fails offline. Tokenizing runs on the CPU, so the CPU build
     * bundled in the jar is the one to load unless the user chose otherwise.
     */
    private static final String FLAVOR = "RUST_FLAVOR";

    private final HuggingFaceTokenizer tokenizer;
    private final OptionalInt bos;
    private final boolean addBos;

    private HfTokenizer(HuggingFaceTokenizer tokenizer, OptionalInt bos, boolean addBos) {
        this.tokenizer = tokenizer;
        this.bos = bos;
        this.addBos = addBos;
    }

    /**
     * Opens {@code dir/tokenizer.json}; BOS comes from {@code config.json}'s {@code bos_token_id}, whether to add it from
     * {@code tokenizer_config.json}'s {@code add_bos_token}.
     *
     * @throws IllegalArgumentException if a file is missing or not valid
     */
    public static HfTokenizer open(Path dir) {
        if (System.getProperty(OPT_OUT) == null && System.getenv(OPT_OUT) == null) {
            System.setProperty(OPT_OUT, "true");
        }
        if (System.getProperty(FLAVOR) == null && System.getenv(FLAVOR) == null) {
            System.setProperty(FLAVOR, "cpu");
        }
        Path file = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("model folder " + dir + " has no tokenizer.json");
        }
        ObjectMapper json = new ObjectMapper();
        OptionalInt bos = OptionalInt.empty();
        boolean addBos = false;
        try {
            JsonNode config = json.readTree(dir.resolve("config.json").toFile()).path("bos_token_id");
            if (config.isInt()) {
                bos = OptionalInt.of(config.asInt());
            }
            Path tc = dir.resolve("tokenizer_config.json");
            if (Files.isRegularFile(tc)) {
                addBos = json.readTree(tc.toFile()).path("add_bos_token").asBoolean(false);
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read the configuration of " + dir + ": " + e.getMessage(), e);
        }
        try {
            HuggingFaceTokenizer t = HuggingFaceTokenizer.newInstance(file,
                    Map.of("truncation", "false", "padding", "false", "addSpecialTokens", "true"));
            return new HfTokenizer(t, bos, addBos && bos.isPresent());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(file + " is not a tokenizer Hugging Face tokenizers can load: "
                    + e.getMessage(), e);
        }
    }

    /** Ids of {@code text} with no special tokens added (a special token written in the text is still one token). */
    public int[] encode(String text) {
        return toInts(tokenizer.encode(text, false, false).getIds());
    }

    /** Ids of a whole prompt, with the special tokens transformers adds and exactly one leading BOS where it adds one. */
    public Encoded encodePrompt(String text) {
        Encoding e = tokenizer.encode(text, true, false);
        int[] ids = toInts(e.getIds());
        int[] ends = ends(text, e.getCharTokenSpans());
        if (bos.isPresent()) {
            int b = bos.getAsInt();
            if (addBos && (ids.length == 0 || ids[0] != b)) {
                ids = prepend(b, ids);
                ends = prepend(0, ends);
            } else if (ids.length > 1 && ids[0] == b && ids[1] == b && ends[0] == 0) {
                ids = Arrays.copyOfRange(ids, 1, ids.length);
                ends = Arrays.copyOfRange(ends, 1, ends.length);
            }
        }
        return new Encoded(ids, ends);
    }

    /** Text of {@code ids}, special tokens left out; byte-level tokens are joined before UTF-8 decoding. */
    public String decode(int[] ids) {
        return ids.length == 0 ? "" : tokenizer.decode(Arrays.stream(ids).asLongStream().toArray(), true);
    }

    @Override
    public void close() {
        tokenizer.close();
    }

    /** Token ends as UTF-16 indices: the library reports them in Unicode code points. */
    private static int[] ends(String text, CharSpan[] spans) {
        int points = text.codePointCount(0, text.length());
        int[] utf16 = null;
        if (points != text.length()) {
            utf16 = new int[points + 1];
            for (int p = 0, i = 0; p < points; p++) {
                utf16[p] = i;
                i += Character.charCount(text.codePointAt(i));
            }
            utf16[points] = text.length();
        }
        int[] ends = new int[spans.length];
        for (int i = 0; i < spans.length; i++) {
            int end = spans[i] == null ? 0 : Math.min(spans[i].getEnd(), points);
            ends[i] = utf16 == null ? end : utf16[end];
        }
        return ends;
    }

    private static int[] toInts(long[] ids) {
        int[] r = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            r[i] = Math.toIntExact(ids[i]);
        }
        return r;
    }

    private static int[] prepend(int first, int[] rest) {
        int[] r = new int[rest.length + 1];
        r[0] = first;
        System.arraycopy(rest, 0, r, 1, rest.length);
        return r;
    }
}
