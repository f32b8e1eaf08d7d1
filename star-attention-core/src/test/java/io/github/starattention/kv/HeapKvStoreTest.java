package io.github.starattention.kv;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class HeapKvStoreTest {

    private static final KvLayout LAYOUT = new KvLayout(2, 3, 8, 0);

    /** K and V rows of {@code tokens} tokens, {@code [tokens][kvHeads][headDim]}, each value naming its origin. */
    private static float[] rows(int firstToken, int tokens, int layer, boolean value) {
        int row = LAYOUT.rowLength();
        float[] x = new float[tokens * row];
        for (int i = 0; i < x.length; i++) {
            x[i] = code(firstToken + i / row, layer, i % row, value);
        }
        return x;
    }

    private static float code(int token, int layer, int element, boolean value) {
        return token * 1000 + layer * 100 + element + (value ? 0.5f : 0);
    }

    /** Appends tokens {@code [from, from+n)} at positions {@code 2 * token + 1}. */
    private static void append(HeapKvStore store, int from, int n) {
        int first = store.reserve(IntStream.range(from, from + n).map(t -> 2 * t + 1).toArray());
        for (int l = 0; l < LAYOUT.layers(); l++) {
            store.put(l, first, rows(from, n, l, false), rows(from, n, l, true), 0, n);
        }
    }

    /** Checks that slot {@code slot} holds token {@code token} in every layer and head. */
    private static void assertSlot(HeapKvStore store, int slot, int token) {
        assertThat(store.position(slot)).as("position of slot %d", slot).isEqualTo(2 * token + 1);
        for (int l = 0; l < LAYOUT.layers(); l++) {
            for (int h = 0; h < LAYOUT.kvHeads(); h++) {
                for (int i = 0; i < LAYOUT.headDim(); i++) {
                    int e = h * LAYOUT.headDim() + i;
                    assertThat(store.keys(l)[store.keyIndex(h, slot, i)]).as("K slot %d layer %d head %d [%d]", slot, l, h, i)
                            .isEqualTo(code(token, l, e, false));
                    assertThat(store.values(l)[store.valueIndex(h, slot, i)]).as("V slot %d layer %d head %d [%d]", slot, l, h, i)
                            .isEqualTo(code(token, l, e, true));
                }
            }
        }
    }

    @Test
    void reservePutAndReadBack() {
        HeapKvStore store = new HeapKvStore(LAYOUT);
        assertThat(store.size()).isZero();
        assertThat(store.lastPosition()).isEqualTo(-1);
        int first = store.reserve(new int[] {1, 3, 5});
        assertThat(first).isZero();
        store.put(1, 0, rows(0, 3, 1, false), rows(0, 3, 1, true), 0, 3);
        store.put(0, 0, rows(0, 3, 0, false), rows(0, 3, 0, true), 0, 3);
        assertThat(store.size()).isEqualTo(3);
        assertThat(store.lastPosition()).isEqualTo(5);
        for (int t = 0; t < 3; t++) {
            assertSlot(store, t, t);
        }
        // put with an offset into the source arrays
        assertThat(store.reserve(new int[] {7})).isEqualTo(3);
        for (int l = 0; l < 2; l++) {
            store.put(l, 3, rows(2, 2, l, false), rows(2, 2, l, true), LAYOUT.rowLength(), 1);
        }
        assertSlot(store, 3, 3);
    }

    @Test
    void keysAreStoredInTransposedPanelsOfSixteenSlots() {
        HeapKvStore store = new HeapKvStore(LAYOUT);
        append(store, 0, 40);
        int d = LAYOUT.headDim();
        int cap = store.capacity();
        // slot 37 of head 2: panel 2 (slots 32..47), lane 5
        assertThat(store.keyIndex(2, 37, 4)).isEqualTo((2 * cap + 32) * d + 4 * 16 + 5);
        assertThat(store.valueIndex(2, 37, 4)).isEqualTo((2 * cap + 37) * d + 4);
        assertThat(store.keys(0)[(2 * cap + 32) * d + 4 * 16 + 5]).isEqualTo(code(37, 0, 2 * d + 4, false));
        assertThat(cap % HeapKvStore.CAPACITY_ALIGN).isZero();
    }

    @Test
    void growthPreservesEverything() {
        HeapKvStore store = new HeapKvStore(LAYOUT);
        Random rnd = new Random(4);
        int tokens = 0;
        int lastCapacity = store.capacity();
        int grew = 0;
        while (tokens < 700) {
            int n = 1 + rnd.nextInt(70);
            append(store, tokens, n);
            tokens += n;
            if (store.capacity() != lastCapacity) {
                grew++;
                lastCapacity = store.capacity();
            }
            assertThat(store.capacity()).isGreaterThanOrEqualTo(store.size());
            assertThat(store.capacity() % HeapKvStore.CAPACITY_ALIGN).isZero();
        }
        assertThat(grew).isGreaterThanOrEqualTo(3);
        for (int t = 0; t < tokens; t++) {
            assertSlot(store, t, t);
        }
        assertThat(store.bytes()).isEqualTo(2L * 2 * 3 * store.capacity() * 8 * 4 + 4L * store.capacity());
    }

    @ParameterizedTest(name = "dst has {0} slots, copy [{1}, {2})")
    @CsvSource({"0, 0, 300", "5, 37, 250", "16, 48, 200", "3, 19, 20", "8, 4, 4", "64, 40, 169", "7, 100, 290"})
    void appendFromCopiesSlotsWithTheirPositions(int dstSize, int from, int to) {
        HeapKvStore src = new HeapKvStore(LAYOUT);
        append(src, 0, 300);
        HeapKvStore dst = new HeapKvStore(new KvLayout(2, 3, 8, 16));
        // dst's own slots sit at positions 0.., below the first copied one (2 * from + 1); whole K panels are
        // copied when dstSize and from agree modulo 16, slot by slot otherwise
        int first = dst.reserve(IntStream.range(0, dstSize).toArray());
        for (int l = 0; l < 2; l++) {
            dst.put(l, first, rows(7, dstSize, l, false), rows(7, dstSize, l, true), 0, dstSize);
        }
        dst.appendFrom(src, from, to);
        assertThat(dst.size()).isEqualTo(dstSize + to - from);
        for (int j = 0; j < to - from; j++) {
            assertSlot(dst, dstSize + j, from + j);
        }
        if (dstSize > 0) {
            assertThat(dst.keys(1)[dst.keyIndex(2, dstSize - 1, 3)]).isEqualTo(code(7 + dstSize - 1, 1, 2 * 8 + 3, false));
        }
        assertThat(src.size()).isEqualTo(300);
    }

    @ParameterizedTest(name = "dst has {0} slots, copy [{1}, {2})")
    @CsvSource({"0, 0, 300", "5, 37, 250", "16, 48, 200", "7, 100, 290"})
    void bf16StoresHoldTheRoundedValuesThroughGrowthAndCopies(int dstSize, int from, int to) {
        HeapKvStore src = new HeapKvStore(LAYOUT, KvPrecision.BF16);
        append(src, 0, 300);
        HeapKvStore dst = new HeapKvStore(new KvLayout(2, 3, 8, 16), KvPrecision.BF16);
        append(dst, 0, dstSize);
        dst.appendFrom(src, from, to);
        for (int j = 0; j < dst.size(); j++) {
            int token = j < dstSize ? j : from + j - dstSize;
            assertThat(dst.position(j)).isEqualTo(2 * token + 1);
            for (int l = 0; l < LAYOUT.layers(); l++) {
                for (int h = 0; h < LAYOUT.kvHeads(); h++) {
                    for (int i = 0; i < LAYOUT.headDim(); i++) {
                        int e = h * LAYOUT.headDim() + i;
                        assertThat(dst.key(l, h, j, i)).isEqualTo(bf16(code(token, l, e, false)));
                        assertThat(dst.value(l, h, j, i)).isEqualTo(bf16(code(token, l, e, true)));
                    }
                }
            }
        }
        HeapKvStore f32 = new HeapKvStore(new KvLayout(2, 3, 8, src.capacity()));
        assertThat(src.bytes() - 4L * src.capacity()).isEqualTo((f32.bytes() - 4L * f32.capacity()) / 2);
        assertThatThrownBy(() -> src.keys(0)).isInstanceOf(IllegalStateException.class).hasMessageContaining("BF16");
        assertThatThrownBy(() -> f32.appendFrom(src, 0, 1)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void bf16RoundsToNearestEven() {
        assertThat(KvPrecision.fromBf16(KvPrecision.toBf16(1f))).isEqualTo(1f);
        assertThat(KvPrecision.fromBf16(KvPrecision.toBf16(1f + 0x1p-8f))).as("a tie goes to even").isEqualTo(1f);
        assertThat(KvPrecision.fromBf16(KvPrecision.toBf16(1f + 0x1p-8f + 0x1p-20f))).isEqualTo(1f + 0x1p-7f);
        assertThat(KvPrecision.fromBf16(KvPrecision.toBf16(1f + 3 * 0x1p-8f))).as("a tie goes to even").isEqualTo(1f + 0x1p-6f);
        assertThat(KvPrecision.fromBf16(KvPrecision.toBf16(-2.5f))).isEqualTo(-2.5f);
        assertThat(KvPrecision.fromBf16(KvPrecision.toBf16(Float.NaN))).isNaN();
        assertThat(KvPrecision.fromBf16(KvPrecision.toBf16(Float.POSITIVE_INFINITY))).isEqualTo(Float.POSITIVE_INFINITY);
    }

    private static float bf16(float x) {
        return KvPrecision.fromBf16(KvPrecision.toBf16(x));
    }

    @Test
    void appendFromRejectsBadInput() {
        HeapKvStore src = new HeapKvStore(LAYOUT);
        append(src, 0, 10);
        HeapKvStore dst = new HeapKvStore(LAYOUT);
        append(dst, 5, 1);
        assertThatThrownBy(() -> dst.appendFrom(src, 0, 10)).as("positions would not increase")
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("positions must increase");
        assertThat(dst.size()).isEqualTo(1);
        assertThatThrownBy(() -> dst.appendFrom(src, 8, 11)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> dst.appendFrom(src, 5, 4)).isInstanceOf(IndexOutOfBoundsException.class);
        HeapKvStore other = new HeapKvStore(new KvLayout(2, 3, 16, 0));
        assertThatThrownBy(() -> other.appendFrom(src, 0, 1)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("layouts differ");
    }

    @Test
    void rollbackDropsEverythingAfterTheMark() {
        HeapKvStore store = new HeapKvStore(LAYOUT);
        append(store, 0, 30);
        int mark = store.mark();
        append(store, 30, 50);
        assertThat(store.size()).isEqualTo(80);
        store.rollback(mark);
        assertThat(store.size()).isEqualTo(30);
        assertThat(store.lastPosition()).isEqualTo(2 * 29 + 1);
        assertThatThrownBy(() -> store.position(30)).isInstanceOf(IndexOutOfBoundsException.class);
        // positions after the mark may be reused
        append(store, 30, 5);
        for (int t = 0; t < 35; t++) {
            assertSlot(store, t, t);
        }
        assertThatThrownBy(() -> store.rollback(36)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> store.rollback(-1)).isInstanceOf(IllegalArgumentException.class);
        store.rollback(0);
        assertThat(store.size()).isZero();
        assertThat(store.lastPosition()).isEqualTo(-1);
    }

    @Test
    void positionsMustStrictlyIncrease() {
        HeapKvStore store = new HeapKvStore(LAYOUT);
        store.reserve(new int[] {4, 9});
        assertThatThrownBy(() -> store.reserve(new int[] {9})).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("positions must increase: 9 after 9");
        assertThatThrownBy(() -> store.reserve(new int[] {10, 12, 11})).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("positions must increase: 11 after 12");
        assertThat(store.size()).as("a failed reserve adds nothing").isEqualTo(2);
        assertThat(store.reserve(new int[] {10})).isEqualTo(2);
    }

    @Test
    void putOutsideTheReservedSlotsFails() {
        HeapKvStore store = new HeapKvStore(LAYOUT);
        store.reserve(new int[] {0, 1});
        float[] two = new float[2 * LAYOUT.rowLength()];
        assertThatThrownBy(() -> store.put(0, 1, two, two, 0, 2)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> store.put(0, -1, two, two, 0, 1)).isInstanceOf(IndexOutOfBoundsException.class);
    }

    @Test
    void aClosedStoreHoldsNothingAndRefusesWork() {
        HeapKvStore store = new HeapKvStore(LAYOUT);
        append(store, 0, 3);
        HeapKvStore other = new HeapKvStore(LAYOUT);
        append(other, 10, 3);
        assertThat(store.bytes()).isPositive();
        store.close();
        assertThat(store.bytes()).isZero();
        assertThat(store.size()).isZero();
        float[] row = new float[LAYOUT.rowLength()];
        assertThatThrownBy(() -> store.reserve(new int[] {100})).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> store.put(0, 0, row, row, 0, 1)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> store.rollback(0)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> store.keys(0)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> store.appendFrom(other, 0, 1)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> other.appendFrom(store, 0, 0)).isInstanceOf(IllegalStateException.class);
        assertThat(other.size()).isEqualTo(3);
    }
}
