package io.github.starattention.jlama.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Reads tensors of the {@code *.safetensors} files of a model folder as fp32 (F32, BF16 and F16 are widened exactly).
 * Layout of a file: an 8-byte little-endian header length {@code n}, {@code n} bytes of JSON
 * ({@code name -> {dtype, shape, data_offsets}}, offsets relative to the end of the header), then the data.
 */
final class Safetensors {

    /** Where one tensor lies. */
    record Entry(Path file, String dtype, long[] shape, long begin, long end) {
        long elements() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    private final Map<String, Entry> entries;

    private Safetensors(Map<String, Entry> entries) {
        this.entries = entries;
    }

    /** Indexes every {@code *.safetensors} file in {@code dir}. */
    static Safetensors open(Path dir) {
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir, e);
        }
        if (files.isEmpty()) {
            throw new IllegalArgumentException("model folder " + dir + " has no .safetensors weights");
        }
        Map<String, Entry> all = new LinkedHashMap<>();
        ObjectMapper json = new ObjectMapper();
        for (Path f : files) {
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
                ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
                ch.read(len, 0);
                long n = len.getLong(0);
                if (ch.size() < 8 || n <= 0 || n > ch.size() - 8 || n > (100L << 20)) {
                    throw new IllegalArgumentException(f + " is not a safetensors file");
                }
                ByteBuffer header = ByteBuffer.allocate((int) n);
                ch.read(header, 8);
                JsonNode h = json.readTree(header.array());
                long data = 8 + n;
                for (Iterator<Map.Entry<String, JsonNode>> it = h.fields(); it.hasNext(); ) {
                    Map.Entry<String, JsonNode> e = it.next();
                    if (e.getKey().equals("__metadata__")) {
                        continue;
                    }
                    JsonNode t = e.getValue();
                    long[] shape = new long[t.path("shape").size()];
                    for (int i = 0; i < shape.length; i++) {
                        shape[i] = t.path("shape").get(i).asLong();
                    }
                    Entry entry = new Entry(f, t.path("dtype").asText(), shape,
                            data + t.path("data_offsets").get(0).asLong(), data + t.path("data_offsets").get(1).asLong());
                    if (entry.end() > ch.size()) {
                        throw new IllegalArgumentException(f + ": tensor " + e.getKey() + " ends after the file (truncated?)");
                    }
                    all.put(e.getKey(), entry);
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + f, e);
            }
        }
        return new Safetensors(all);
    }

    boolean has(String name) {
        return entries.containsKey(name);
    }

    /** The shape of {@code name}. */
    long[] shape(String name) {
        return entry(name).shape().clone();
    }

    private Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) {
            throw new IllegalArgumentException("the weights have no tensor " + name);
        }
        return e;
    }

    /** The tensor as fp32, row-major. */
    float[] floats(String name) {
        Entry e = entry(name);
        long n = e.elements();
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("tensor " + name + " is too large (" + n + " elements)");
        }
        int width = switch (e.dtype()) {
            case "F32" -> 4;
            case "BF16", "F16" -> 2;
            default -> throw new IllegalArgumentException("tensor " + name + " is " + e.dtype()
                    + "; only F32, BF16 and F16 weights are supported");
        };
        if (e.end() - e.begin() != n * width) {
            throw new IllegalArgumentException("tensor " + name + " holds " + (e.end() - e.begin()) + " bytes, not "
                    + n * width);
        }
        float[] out = new float[(int) n];
        try (FileChannel ch = FileChannel.open(e.file(), StandardOpenOption.READ)) {
            ByteBuffer b = ch.map(FileChannel.MapMode.READ_ONLY, e.begin(), e.end() - e.begin())
                    .order(ByteOrder.LITTLE_ENDIAN);
            switch (e.dtype()) {
                case "F32" -> b.asFloatBuffer().get(out);
                case "BF16" -> {
                    for (int i = 0; i < out.length; i++) {
                        out[i] = Float.intBitsToFloat((b.getShort(2 * i) & 0xFFFF) << 16);
                    }
                }
                default -> {
                    for (int i = 0; i < out.length; i++) {
                        out[i] = Float.float16ToFloat(b.getShort(2 * i));
                    }
                }
            }
        } catch (IOException ex) {
            throw new UncheckedIOException("cannot read " + e.file(), ex);
        }
        return out;
    }
}
