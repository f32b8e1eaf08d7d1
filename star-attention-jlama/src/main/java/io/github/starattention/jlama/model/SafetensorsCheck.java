package io.github.starattention.jlama.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Checks safetensors files against themselves and against {@code config.json} before Jlama maps them, so that a
 * broken folder fails with one line naming what is wrong instead of an index error deep inside a forward pass.
 *
 * <p>Layout of a safetensors file: an 8-byte little-endian header length {@code n}, {@code n} bytes of JSON
 * ({@code name -> {dtype, shape, data_offsets: [begin, end]}}, offsets relative to the end of the header), then the
 * data. Checked: the header fits the file and parses; every tensor's bytes lie inside the file (a truncated download
 * fails here) and match its shape and dtype; the embedding, the layer count and the first layer's projections have
 * the shapes {@code config.json} gives.
 */
final class SafetensorsCheck {

    /** Larger headers are not safetensors (the format's own readers cap it at 100 MB). */
    private static final long MAX_HEADER_BYTES = 100L << 20;
    private static final Pattern LAYER = Pattern.compile("^model\\.layers\\.(\\d+)\\.");
    private static final Map<String, Integer> DTYPE_BYTES = Map.ofEntries(
            Map.entry("F64", 8), Map.entry("I64", 8), Map.entry("U64", 8),
            Map.entry("F32", 4), Map.entry("I32", 4), Map.entry("U32", 4),
            Map.entry("F16", 2), Map.entry("BF16", 2), Map.entry("I16", 2), Map.entry("U16", 2),
            Map.entry("I8", 1), Map.entry("U8", 1), Map.entry("BOOL", 1),
            Map.entry("F8_E4M3", 1), Map.entry("F8_E5M2", 1));

    private SafetensorsCheck() {
    }

    /**
     * Checks {@code files} (the folder's safetensors) against {@code config}.
     *
     * @throws IllegalArgumentException naming the file or tensor and what is wrong
     */
    static void check(List<Path> files, JsonNode config) {
        Map<String, long[]> shapes = new HashMap<>();
        for (Path f : files) {
            shapes.putAll(tensors(f));
        }
        int hidden = config.path("hidden_size").asInt();
        int heads = config.path("num_attention_heads").asInt();
        int kvHeads = config.path("num_key_value_heads").asInt(heads);
        int headDim = config.hasNonNull("head_dim") ? config.get("head_dim").asInt() : heads == 0 ? 0 : hidden / heads;
        expect(shapes, "model.embed_tokens.weight", config.path("vocab_size").asLong(), hidden, "vocab_size x hidden_size");
        expect(shapes, "model.layers.0.self_attn.q_proj.weight", (long) heads * headDim, hidden,
                "num_attention_heads x head_dim, hidden_size");
        expect(shapes, "model.layers.0.self_attn.k_proj.weight", (long) kvHeads * headDim, hidden,
                "num_key_value_heads x head_dim, hidden_size");
        expect(shapes, "model.layers.0.mlp.gate_proj.weight", config.path("intermediate_size").asLong(), hidden,
                "intermediate_size, hidden_size");
        int layers = -1;
        for (String name : shapes.keySet()) {
            Matcher m = LAYER.matcher(name);
            if (m.find()) {
                layers = Math.max(layers, Integer.parseInt(m.group(1)));
            }
        }
        int configured = config.path("num_hidden_layers").asInt();
        if (layers >= 0 && layers + 1 != configured) {
            throw new IllegalArgumentException("config.json says num_hidden_layers " + configured + ", but the weights "
                    + "have " + (layers + 1) + " layers");
        }
    }

    private static void expect(Map<String, long[]> shapes, String name, long rows, long cols, String what) {
        long[] shape = shapes.get(name);
        if (shape != null && !Arrays.equals(shape, new long[] {rows, cols})) {
            throw new IllegalArgumentException("config.json gives " + name + " the shape [" + rows + ", " + cols
                    + "] (" + what + "), but the weights have " + Arrays.toString(shape)
                    + ": config.json does not belong to these weights");
        }
    }

    /** Tensor name -> shape of one file, after checking its header and extents. */
    static Map<String, long[]> tensors(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            String name = file.getFileName().toString();
            if (size < 8) {
                throw new IllegalArgumentException(name + " is not a safetensors file: " + size + " bytes (empty or "
                        + "truncated)");
            }
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(len, 0);
            long n = len.getLong(0);
            if (n <= 0 || n > MAX_HEADER_BYTES || n > size - 8) {
                throw new IllegalArgumentException(name + " is not a safetensors file: its header length " + n
                        + " does not fit a file of " + size + " bytes (garbled or truncated)");
            }
            ByteBuffer header = ByteBuffer.allocate((int) n);
            ch.read(header, 8);
            JsonNode json;
            try {
                json = new ObjectMapper().readTree(header.array());
            } catch (IOException e) {
                throw new IllegalArgumentException(name + " has a garbled safetensors header: " + e.getMessage());
            }
            if (json == null || !json.isObject()) {
                throw new IllegalArgumentException(name + " has a garbled safetensors header: not a JSON object");
            }
            long data = size - 8 - n;
            Map<String, long[]> out = new HashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = json.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (e.getKey().equals("__metadata__")) {
                    continue;
                }
                out.put(e.getKey(), tensor(name, e.getKey(), e.getValue(), data));
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    private static long[] tensor(String file, String tensor, JsonNode t, long dataBytes) {
        JsonNode shapeNode = t.path("shape");
        JsonNode offsets = t.path("data_offsets");
        if (!shapeNode.isArray() || !offsets.isArray() || offsets.size() != 2) {
            throw new IllegalArgumentException(file + ": tensor " + tensor + " has no shape or data_offsets");
        }
        long[] shape = new long[shapeNode.size()];
        long elements = 1;
        for (int i = 0; i < shape.length; i++) {
            shape[i] = shapeNode.get(i).asLong(-1);
            if (shape[i] < 0) {
                throw new IllegalArgumentException(file + ": tensor " + tensor + " has a negative dimension");
            }
            try {
                elements = Math.multiplyExact(elements, shape[i]);
            } catch (ArithmeticException e) {
                elements = Long.MAX_VALUE; // no file holds that many bytes: the size check below refuses it
            }
        }
        long begin = offsets.get(0).asLong(-1);
        long end = offsets.get(1).asLong(-1);
        if (begin < 0 || end < begin || end > dataBytes) {
            throw new IllegalArgumentException(file + ": tensor " + tensor + " lies at bytes [" + begin + ", " + end
                    + ") of " + dataBytes + " data bytes (truncated file?)");
        }
        Integer bytes = DTYPE_BYTES.get(t.path("dtype").asText());
        if (bytes != null && (elements > Long.MAX_VALUE / bytes || elements * bytes != end - begin)) {
            throw new IllegalArgumentException(file + ": tensor " + tensor + " is " + Arrays.toString(shape) + " "
                    + t.path("dtype").asText() + " but holds " + (end - begin) + " bytes");
        }
        return shape;
    }
}
