package io.github.starattention.jlama.bench;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** A buffered little-endian writer to a file that counts the bytes written (GGUF and safetensors writers). */
final class LeSink implements AutoCloseable {

    private final FileChannel channel;
    private final ByteBuffer buffer = ByteBuffer.allocateDirect(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
    private long position;

    LeSink(Path file) throws IOException {
        channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
    }

    /** Bytes written so far. */
    long position() {
        return position;
    }

    private void room(int bytes) throws IOException {
        if (buffer.remaining() < bytes) {
            flush();
        }
    }

    LeSink u8(int v) throws IOException {
        room(1);
        buffer.put((byte) v);
        position++;
        return this;
    }

    LeSink u16(int v) throws IOException {
        room(2);
        buffer.putShort((short) v);
        position += 2;
        return this;
    }

    LeSink u32(int v) throws IOException {
        room(4);
        buffer.putInt(v);
        position += 4;
        return this;
    }

    LeSink u64(long v) throws IOException {
        room(8);
        buffer.putLong(v);
        position += 8;
        return this;
    }

    LeSink f32(float v) throws IOException {
        room(4);
        buffer.putFloat(v);
        position += 4;
        return this;
    }

    LeSink f64(double v) throws IOException {
        room(8);
        buffer.putDouble(v);
        position += 8;
        return this;
    }

    LeSink bytes(byte[] b) throws IOException {
        int off = 0;
        while (off < b.length) {
            room(1);
            int n = Math.min(buffer.remaining(), b.length - off);
            buffer.put(b, off, n);
            off += n;
        }
        position += b.length;
        return this;
    }

    /** A GGUF string: its UTF-8 length as a uint64, then the bytes. */
    LeSink string(String s) throws IOException {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        u64(b.length);
        return bytes(b);
    }

    /** Zero bytes up to the next multiple of {@code alignment}. */
    LeSink pad(int alignment) throws IOException {
        while (position % alignment != 0) {
            u8(0);
        }
        return this;
    }

    void flush() throws IOException {
        buffer.flip();
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
        buffer.clear();
    }

    @Override
    public void close() throws IOException {
        try {
            flush();
        } finally {
            channel.close();
        }
    }
}
