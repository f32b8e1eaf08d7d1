package io.github.starattention.jlama.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Writes a GGUF v3 file (llama.cpp's model format) from a Hugging Face folder of {@code model_type} llama with a
 * byte-level BPE tokenizer, in F32 or Q8_0, laid out as llama.cpp's own converter lays out a Llama model.
 *
 * <ul>
 *   <li>Tensors: {@code token_embd.weight}, {@code blk.N.attn_norm / attn_q / attn_k / attn_v / attn_output / ffn_norm /
 *   ffn_gate / ffn_up / ffn_down .weight}, {@code output_norm.weight}, and {@code output.weight} when the embeddings
 *   are not tied. GGUF lists dimensions fastest first, so a Hugging Face matrix {@code [rows, cols]} has
 *   {@code ne = [cols, rows]}; the bytes are the same row-major rows.</li>
 *   <li>Q and K projections: llama.cpp rotates interleaved pairs (dimensions 2i, 2i+1) where Hugging Face rotates the
 *   halves (i, i + headDim/2), so the rows of every head are reordered from {@code [2][headDim/2]} to
 *   {@code [headDim/2][2]} ({@link #permuteRows}; K with the KV head count).</li>
 *   <li>Q8_0 (llama.cpp's block format): blocks of 32 weights along a row, each an fp16 scale {@code d = amax / 127}
 *   and 32 int8 {@code q = round(x / d)} (34 bytes). Norms stay F32; a matrix whose row length is not a multiple of
 *   32 stays F32 too.</li>
 *   <li>Tokenizer: {@code tokenizer.ggml.model = gpt2} with the vocabulary and added tokens in id order (type 1 normal,
 *   3 control for special added tokens, 4 user-defined for other added tokens, 5 unused for ids no token has), the
 *   merges as "a b" strings, BOS/EOS/padding/unknown ids and the chat template. {@code tokenizer.ggml.pre} (which
 *   pre-tokenizer llama.cpp applies to text) is chosen by {@link #preTokenizer}.</li>
 * </ul>
 */
public final class GgufWriter {

    /** Tensor types of the written file. */
    public enum Type {
        F32(0, 0), Q8_0(8, 7);

        final int ggmlType;
        final int fileType;

        Type(int ggmlType, int fileType) {
            this.ggmlType = ggmlType;
            this.fileType = fileType;
        }
    }

    static final int MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
    static final int VERSION = 3;
    static final int ALIGNMENT = 32;
    static final int Q8_BLOCK = 32;
    static final int Q8_BLOCK_BYTES = 2 + Q8_BLOCK;

    // GGUF metadata value types
    static final int T_UINT32 = 4;
    static final int T_INT32 = 5;
    static final int T_FLOAT32 = 6;
    static final int T_BOOL = 7;
    static final int T_STRING = 8;
    static final int T_ARRAY = 9;

    static final int TOKEN_NORMAL = 1;
    static final int TOKEN_CONTROL = 3;
    static final int TOKEN_USER_DEFINED = 4;
    static final int TOKEN_UNUSED = 5;

    /** The pre-tokenizer regex of Llama 3's tokenizer.json (llama.cpp calls that pre-tokenizer "llama-bpe"). */
    static final String LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    private GgufWriter() {
    }

    /**
     * Converts the Hugging Face folder {@code hfDir} to {@code out}.
     *
     * @throws IllegalArgumentException for a model type other than llama, a tokenizer that is not byte-level BPE, or
     *     weights that do not match {@code config.json}
     */
    public static void convert(Path hfDir, Path out, Type type) {
        LlamaConfig c = LlamaConfig.read(hfDir);
        Vocabulary vocab = Vocabulary.read(hfDir, c);
        Safetensors weights = Safetensors.open(hfDir);
        List<TensorOut> tensors = tensors(c, weights, type);
        List<Kv> kvs = metadata(c, vocab, type, hfDir.getFileName() == null ? "model" : hfDir.getFileName().toString());
        try (LeSink s = new LeSink(out)) {
            s.u32(MAGIC).u32(VERSION).u64(tensors.size()).u64(kvs.size());
            for (Kv kv : kvs) {
                s.string(kv.key());
                kv.value().write(s);
            }
            long offset = 0;
            for (TensorOut t : tensors) {
                s.string(t.name());
                if (t.rows() == 1 && t.vector()) {
                    s.u32(1).u64(t.cols());
                } else {
                    s.u32(2).u64(t.cols()).u64(t.rows());
                }
                s.u32(t.type().ggmlType).u64(offset);
                offset = align(offset + t.bytes());
            }
            s.pad(ALIGNMENT);
            long dataStart = s.position();
            for (TensorOut t : tensors) {
                float[] w = weights.floats(t.source());
                if ((long) w.length != (long) t.rows() * t.cols()) {
                    throw new IllegalArgumentException("tensor " + t.source() + " has " + w.length + " values, config.json"
                            + " gives " + t.rows() + " x " + t.cols());
                }
                if (t.permuteHeads() > 0) {
                    w = permuteRows(w, t.rows(), t.cols(), t.permuteHeads());
                }
                if (t.type() == Type.Q8_0) {
                    writeQ8_0(s, w);
                } else {
                    for (float v : w) {
                        s.f32(v);
                    }
                }
                if (s.position() - dataStart != t.offset(tensors) + t.bytes()) {
                    throw new IllegalStateException("GGUF writer: tensor " + t.name() + " misplaced");
                }
                s.pad(ALIGNMENT);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + out, e);
        }
    }

    private static long align(long n) {
        return (n + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    /** One tensor of the output: GGUF name, Hugging Face source, shape, type, heads to permute (0: none). */
    private record TensorOut(String name, String source, int rows, int cols, Type type, int permuteHeads, boolean vector) {
        long bytes() {
            return type == Type.Q8_0 ? (long) rows * (cols / Q8_BLOCK) * Q8_BLOCK_BYTES : (long) rows * cols * 4;
        }

        long offset(List<TensorOut> all) {
            long o = 0;
            for (TensorOut t : all) {
                if (t == this) {
                    return o;
                }
                o = align(o + t.bytes());
            }
            throw new IllegalStateException();
        }
    }

    private static List<TensorOut> tensors(LlamaConfig c, Safetensors w, Type type) {
        List<TensorOut> out = new ArrayList<>();
        out.add(matrix(w, "token_embd.weight", "model.embed_tokens.weight", c.vocab(), c.hidden(), type, 0));
        for (int i = 0; i < c.layers(); i++) {
            String b = "blk." + i + ".";
            String p = "model.layers." + i + ".";
            out.add(vector(w, b + "attn_norm.weight", p + "input_layernorm.weight", c.hidden()));
            out.add(matrix(w, b + "attn_q.weight", p + "self_attn.q_proj.weight", c.qRows(), c.hidden(), type, c.heads()));
            out.add(matrix(w, b + "attn_k.weight", p + "self_attn.k_proj.weight", c.kvRows(), c.hidden(), type, c.kvHeads()));
            out.add(matrix(w, b + "attn_v.weight", p + "self_attn.v_proj.weight", c.kvRows(), c.hidden(), type, 0));
            out.add(matrix(w, b + "attn_output.weight", p + "self_attn.o_proj.weight", c.hidden(), c.qRows(), type, 0));
            out.add(vector(w, b + "ffn_norm.weight", p + "post_attention_layernorm.weight", c.hidden()));
            out.add(matrix(w, b + "ffn_gate.weight", p + "mlp.gate_proj.weight", c.intermediate(), c.hidden(), type, 0));
            out.add(matrix(w, b + "ffn_up.weight", p + "mlp.up_proj.weight", c.intermediate(), c.hidden(), type, 0));
            out.add(matrix(w, b + "ffn_down.weight", p + "mlp.down_proj.weight", c.hidden(), c.intermediate(), type, 0));
        }
        out.add(vector(w, "output_norm.weight", "model.norm.weight", c.hidden()));
        if (!c.tiedEmbeddings()) {
            out.add(matrix(w, "output.weight", "lm_head.weight", c.vocab(), c.hidden(), type, 0));
        }
        return out;
    }

    private static TensorOut matrix(Safetensors w, String name, String source, int rows, int cols, Type type, int heads) {
        expectShape(w, source, new long[] {rows, cols});
        Type t = type == Type.Q8_0 && cols % Q8_BLOCK == 0 ? Type.Q8_0 : Type.F32;
        return new TensorOut(name, source, rows, cols, t, heads, false);
    }

    private static TensorOut vector(Safetensors w, String name, String source, int n) {
        expectShape(w, source, new long[] {n});
        return new TensorOut(name, source, 1, n, Type.F32, 0, true);
    }

    private static void expectShape(Safetensors w, String source, long[] shape) {
        long[] have = w.shape(source);
        if (!Arrays.equals(have, shape)) {
            throw new IllegalArgumentException("tensor " + source + " is " + Arrays.toString(have) + ", config.json gives "
                    + Arrays.toString(shape));
        }
    }

    /**
     * Reorders the rows of a Q or K projection ({@code rows = heads * headDim}) from Hugging Face's rotate-half layout
     * to llama.cpp's interleaved-pairs layout: within each head, row {@code half * headDim/2 + i} moves to
     * {@code 2i + half}.
     */
    static float[] permuteRows(float[] w, int rows, int cols, int heads) {
        int headDim = rows / heads;
        int half = headDim / 2;
        float[] out = new float[w.length];
        for (int h = 0; h < heads; h++) {
            for (int part = 0; part < 2; part++) {
                for (int i = 0; i < half; i++) {
                    int from = h * headDim + part * half + i;
                    int to = h * headDim + 2 * i + part;
                    System.arraycopy(w, from * cols, out, to * cols, cols);
                }
            }
        }
        return out;
    }

    private static void writeQ8_0(LeSink s, float[] w) throws IOException {
        byte[] q = new byte[Q8_BLOCK];
        for (int b = 0; b < w.length; b += Q8_BLOCK) {
            float d = quantizeBlock(w, b, q);
            s.u16(Float.floatToFloat16(d));
            s.bytes(q);
        }
    }

    /**
     * Quantizes {@code w[from, from + 32)} to Q8_0: returns the scale {@code d = amax / 127} and writes
     * {@code round(x / d)} (halves away from zero) to {@code q}.
     */
    static float quantizeBlock(float[] w, int from, byte[] q) {
        float amax = 0;
        for (int j = 0; j < Q8_BLOCK; j++) {
            amax = Math.max(amax, Math.abs(w[from + j]));
        }
        float d = amax / 127f;
        float id = d != 0 ? 1f / d : 0f;
        for (int j = 0; j < Q8_BLOCK; j++) {
            float x = w[from + j] * id;
            q[j] = (byte) (x < 0 ? -Math.floor(-x + 0.5f) : Math.floor(x + 0.5f));
        }
        return d;
    }

    // ---- metadata ----

    /** A metadata value that writes its type tag and payload. */
    @FunctionalInterface
    interface Value {
        void write(LeSink s) throws IOException;
    }

    record Kv(String key, Value value) {
    }

    static Value u32(long v) {
        return s -> s.u32(T_UINT32).u32((int) v);
    }

    static Value f32(double v) {
        return s -> s.u32(T_FLOAT32).f32((float) v);
    }

    static Value bool(boolean v) {
        return s -> s.u32(T_BOOL).u8(v ? 1 : 0);
    }

    static Value str(String v) {
        return s -> s.u32(T_STRING).string(v);
    }

    static Value strings(List<String> v) {
        return s -> {
            s.u32(T_ARRAY).u32(T_STRING).u64(v.size());
            for (String x : v) {
                s.string(x);
            }
        };
    }

    static Value int32s(int[] v) {
        return s -> {
            s.u32(T_ARRAY).u32(T_INT32).u64(v.length);
            for (int x : v) {
                s.u32(x);
            }
        };
    }

    private static List<Kv> metadata(LlamaConfig c, Vocabulary v, Type type, String name) {
        List<Kv> m = new ArrayList<>();
        m.add(new Kv("general.architecture", str("llama")));
        m.add(new Kv("general.name", str(name)));
        m.add(new Kv("general.alignment", u32(ALIGNMENT)));
        m.add(new Kv("general.file_type", u32(type.fileType)));
        m.add(new Kv("general.quantization_version", u32(2)));
        m.add(new Kv("llama.context_length", u32(c.maxPositions())));
        m.add(new Kv("llama.embedding_length", u32(c.hidden())));
        m.add(new Kv("llama.feed_forward_length", u32(c.intermediate())));
        m.add(new Kv("llama.block_count", u32(c.layers())));
        m.add(new Kv("llama.attention.head_count", u32(c.heads())));
        m.add(new Kv("llama.attention.head_count_kv", u32(c.kvHeads())));
        m.add(new Kv("llama.rope.freq_base", f32(c.ropeTheta())));
        m.add(new Kv("llama.attention.layer_norm_rms_epsilon", f32(c.rmsEps())));
        m.add(new Kv("llama.rope.dimension_count", u32(c.headDim())));
        if (c.headDim() * c.heads() != c.hidden()) {
            m.add(new Kv("llama.attention.key_length", u32(c.headDim())));
            m.add(new Kv("llama.attention.value_length", u32(c.headDim())));
        }
        m.add(new Kv("llama.vocab_size", u32(c.vocab())));
        m.add(new Kv("tokenizer.ggml.model", str("gpt2")));
        m.add(new Kv("tokenizer.ggml.pre", str(v.pre())));
        m.add(new Kv("tokenizer.ggml.tokens", strings(v.tokens())));
        m.add(new Kv("tokenizer.ggml.token_type", int32s(v.types())));
        m.add(new Kv("tokenizer.ggml.merges", strings(v.merges())));
        if (v.bos() >= 0) {
            m.add(new Kv("tokenizer.ggml.bos_token_id", u32(v.bos())));
        }
        if (v.eos() >= 0) {
            m.add(new Kv("tokenizer.ggml.eos_token_id", u32(v.eos())));
        }
        if (v.unk() >= 0) {
            m.add(new Kv("tokenizer.ggml.unknown_token_id", u32(v.unk())));
        }
        if (v.pad() >= 0) {
            m.add(new Kv("tokenizer.ggml.padding_token_id", u32(v.pad())));
        }
        m.add(new Kv("tokenizer.ggml.add_bos_token", bool(v.addBos())));
        if (v.chatTemplate() != null) {
            m.add(new Kv("tokenizer.chat_template", str(v.chatTemplate())));
        }
        return m;
    }

    /**
     * {@code tokenizer.ggml.pre} for a tokenizer.json: llama.cpp picks its text pre-tokenizer by this name. Rule:
     * <ul>
     *   <li>{@code Sequence[Digits(individual_digits), ByteLevel(use_regex)]} (SmolLM2, SmolLM): {@code "smollm"}</li>
     *   <li>{@code Sequence[Split(Llama 3's regex), ByteLevel(use_regex = false)]}: {@code "llama-bpe"}</li>
     *   <li>a lone {@code ByteLevel(use_regex)} (GPT-2's): {@code "gpt-2"}</li>
     *   <li>anything else: {@code "default"}</li>
     * </ul>
     * Only the pre-tokenizing of text depends on it; token ids given to llama.cpp directly are used as they are.
     */
    static String preTokenizer(JsonNode tokenizerJson) {
        JsonNode pre = tokenizerJson.path("pre_tokenizer");
        List<JsonNode> steps = new ArrayList<>();
        if (pre.path("type").asText().equals("Sequence")) {
            pre.path("pretokenizers").forEach(steps::add);
        } else if (!pre.isMissingNode() && !pre.isNull()) {
            steps.add(pre);
        }
        if (steps.size() == 2 && type(steps.get(0)).equals("Digits") && steps.get(0).path("individual_digits").asBoolean()
                && type(steps.get(1)).equals("ByteLevel") && steps.get(1).path("use_regex").asBoolean(true)) {
            return "smollm";
        }
        if (steps.size() == 2 && type(steps.get(0)).equals("Split")
                && LLAMA3_SPLIT.equals(steps.get(0).path("pattern").path("Regex").asText())
                && type(steps.get(1)).equals("ByteLevel") && !steps.get(1).path("use_regex").asBoolean(true)) {
            return "llama-bpe";
        }
        if (steps.size() == 1 && type(steps.get(0)).equals("ByteLevel") && steps.get(0).path("use_regex").asBoolean(true)) {
            return "gpt-2";
        }
        return "default";
    }

    private static String type(JsonNode n) {
        return n.path("type").asText();
    }

    /** The tokenizer as GGUF wants it. */
    record Vocabulary(List<String> tokens, int[] types, List<String> merges, String pre, int bos, int eos, int unk,
                      int pad, boolean addBos, String chatTemplate) {

        static Vocabulary read(Path dir, LlamaConfig c) {
            ObjectMapper json = new ObjectMapper();
            JsonNode tj;
            JsonNode tc;
            try {
                Path tf = dir.resolve("tokenizer.json");
                if (!Files.isRegularFile(tf)) {
                    throw new IllegalArgumentException("model folder " + dir + " has no tokenizer.json");
                }
                tj = json.readTree(tf.toFile());
                Path cf = dir.resolve("tokenizer_config.json");
                tc = Files.isRegularFile(cf) ? json.readTree(cf.toFile()) : json.createObjectNode();
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot parse the tokenizer files of " + dir + ": " + e.getMessage());
            }
            JsonNode model = tj.path("model");
            boolean byteLevel = tj.path("pre_tokenizer").toString().contains("\"ByteLevel\"")
                    || tj.path("decoder").path("type").asText().equals("ByteLevel");
            if (!model.path("type").asText().equals("BPE") || !byteLevel) {
                throw new IllegalArgumentException("only byte-level BPE tokenizers can be written to GGUF here; "
                        + dir.resolve("tokenizer.json") + " has a " + model.path("type").asText("?") + " model"
                        + (byteLevel ? "" : " without a ByteLevel pre-tokenizer"));
            }
            String[] tokens = new String[c.vocab()];
            int[] types = new int[c.vocab()];
            for (Iterator<Map.Entry<String, JsonNode>> it = model.path("vocab").fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                put(tokens, types, e.getValue().asInt(), e.getKey(), TOKEN_NORMAL, dir);
            }
            for (JsonNode a : tj.path("added_tokens")) {
                put(tokens, types, a.path("id").asInt(), a.path("content").asText(),
                        a.path("special").asBoolean() ? TOKEN_CONTROL : TOKEN_USER_DEFINED, dir);
            }
            for (int i = 0; i < tokens.length; i++) {
                if (tokens[i] == null) {
                    tokens[i] = "[PAD" + i + "]";
                    types[i] = TOKEN_UNUSED;
                }
            }
            List<String> merges = new ArrayList<>();
            for (JsonNode m : model.path("merges")) {
                merges.add(m.isArray() ? m.get(0).asText() + " " + m.get(1).asText() : m.asText());
            }
            List<String> list = Arrays.asList(tokens);
            int bos = c.bosToken() >= 0 ? c.bosToken() : idOf(list, tc.path("bos_token"));
            int eos = c.eosToken() >= 0 ? c.eosToken() : idOf(list, tc.path("eos_token"));
            int pad = c.padToken() >= 0 ? c.padToken() : idOf(list, tc.path("pad_token"));
            int unk = idOf(list, tc.path("unk_token"));
            return new Vocabulary(list, types, merges, preTokenizer(tj), bos, eos, unk, pad,
                    tc.path("add_bos_token").asBoolean(false), chatTemplate(dir, tc));
        }

        private static void put(String[] tokens, int[] types, int id, String text, int type, Path dir) {
            if (id < 0 || id >= tokens.length) {
                throw new IllegalArgumentException("tokenizer.json of " + dir + " has token id " + id + " ('" + text
                        + "'), outside config.json's vocab_size " + tokens.length);
            }
            tokens[id] = text;
            types[id] = type;
        }

        private static int idOf(List<String> tokens, JsonNode token) {
            String text = token.isObject() ? token.path("content").asText(null) : token.asText(null);
            return text == null ? -1 : tokens.indexOf(text);
        }

        private static String chatTemplate(Path dir, JsonNode tc) {
            JsonNode t = tc.path("chat_template");
            if (t.isTextual()) {
                return t.asText();
            }
            if (t.isArray()) {
                for (JsonNode named : t) {
                    if (named.path("name").asText().equals("default")) {
                        return named.path("template").asText();
                    }
                }
            }
            Path jinja = dir.resolve("chat_template.jinja");
            try {
                return Files.isRegularFile(jinja) ? Files.readString(jinja) : null;
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + jinja, e);
            }
        }
    }
}
