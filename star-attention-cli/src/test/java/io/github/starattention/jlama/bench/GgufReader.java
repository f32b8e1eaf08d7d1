package io.github.starattention.jlama.bench;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** A small GGUF v3 reader for the tests: header, metadata, tensor infos and F32 / Q8_0 data. */
final class GgufReader {

    record TensorInfo(String name, long[] ne, int type, long offset) {
        long elements() {
            long n = 1;
            for (long d : ne) {
                n *= d;
            }
            return n;
        }
    }

    final int version;
    final Map<String, Object> metadata = new LinkedHashMap<>();
    final Map<String, TensorInfo> tensors = new LinkedHashMap<>();
    final long dataStart;
    final long fileSize;
    private final ByteBuffer b;

    GgufReader(Path file) throws IOException {
        b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        fileSize = b.capacity();
        if (b.getInt() != 0x46554747) {
            throw new IllegalStateException("not GGUF");
        }
        version = b.getInt();
        long nTensors = b.getLong();
        long nKv = b.getLong();
        for (long i = 0; i < nKv; i++) {
            String key = string();
            metadata.put(key, value(b.getInt()));
        }
        for (long i = 0; i < nTensors; i++) {
            String name = string();
            long[] ne = new long[b.getInt()];
            for (int d = 0; d < ne.length; d++) {
                ne[d] = b.getLong();
            }
            tensors.put(name, new TensorInfo(name, ne, b.getInt(), b.getLong()));
        }
        int alignment = ((Number) metadata.getOrDefault("general.alignment", 32)).intValue();
        dataStart = (b.position() + alignment - 1) / alignment * alignment;
    }

    private String string() {
        byte[] s = new byte[(int) b.getLong()];
        b.get(s);
        return new String(s, StandardCharsets.UTF_8);
    }

    private Object value(int type) {
        return switch (type) {
            case 0 -> b.get() & 0xFF;
            case 1 -> b.get();
            case 2 -> b.getShort() & 0xFFFF;
            case 3 -> b.getShort();
            case 4 -> Integer.toUnsignedLong(b.getInt());
            case 5 -> b.getInt();
            case 6 -> b.getFloat();
            case 7 -> b.get() != 0;
            case 8 -> string();
            case 9 -> {
                int elem = b.getInt();
                long n = b.getLong();
                List<Object> list = new ArrayList<>();
                for (long i = 0; i < n; i++) {
                    list.add(value(elem));
                }
                yield list;
            }
            case 10 -> b.getLong();
            case 11 -> b.getLong();
            case 12 -> b.getDouble();
            default -> throw new IllegalStateException("unknown GGUF type " + type);
        };
    }

    /** The tensor's values (F32 as stored, Q8_0 decoded as d * q). */
    float[] floats(String name) {
        TensorInfo t = tensors.get(name);
        float[] out = new float[(int) t.elements()];
        int at = (int) (dataStart + t.offset());
        if (t.type() == 0) {
            for (int i = 0; i < out.length; i++) {
                out[i] = b.getFloat(at + 4 * i);
            }
        } else if (t.type() == 8) {
            for (int blk = 0; blk < out.length / 32; blk++) {
                int base = at + blk * 34;
                float d = Float.float16ToFloat(b.getShort(base));
                for (int j = 0; j < 32; j++) {
                    out[blk * 32 + j] = d * b.get(base + 2 + j);
                }
            }
        } else {
            throw new IllegalStateException("type " + t.type());
        }
        return out;
    }
}
