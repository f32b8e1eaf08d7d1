package io.github.starattention.attention;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import io.github.starattention.kv.HeapKvStore;
import io.github.starattention.kv.KvLayout;
import io.github.starattention.kv.KvPrecision;
import io.github.starattention.kv.KvStore;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

class CpuAttentionKernelTest {

    private static final double TOLERANCE = 1e-4;

    /** Keys and queries of one random case; K/V are {@code [keys][kvHeads][d]}, q is {@code [tokens][heads][d]}. */
    record Case(String label, int d, int kvHeads, int heads, int[] kpos, float[] k, float[] v, int[] qpos, float[] q,
                int threads) {

        int keys() {
            return kpos.length;
        }

        int tokens() {
            return qpos.length;
        }

        NaiveAttention expected() {
            return NaiveAttention.compute(q, qpos, tokens(), heads, d, 1.0 / Math.sqrt(d), k, v, kpos, keys(), kvHeads, null);
        }

        AttentionQuery query() {
            return AttentionQuery.of(q, qpos, tokens(), heads, d);
        }

        /** The same case with K and V rounded to bfloat16: what a bf16 store holds, as exact floats. */
        Case roundedToBf16() {
            return new Case(label, d, kvHeads, heads, kpos, bf16(k), bf16(v), qpos, q, threads);
        }

        private static float[] bf16(float[] x) {
            float[] r = new float[x.length];
            for (int i = 0; i < x.length; i++) {
                r[i] = KvPrecision.fromBf16(KvPrecision.toBf16(x[i]));
            }
            return r;
        }

        /** A store filled in random chunks from a small initial capacity, so it grows on the way. */
        KvStore fill(AttentionKernel kernel, Random rnd) {
            KvStore store = kernel.createStore(new KvLayout(2, kvHeads, d, 0));
            int row = kvHeads * d;
            for (int at = 0; at < keys(); ) {
                int n = Math.min(keys() - at, 1 + rnd.nextInt(200));
                int first = store.reserve(Arrays.copyOfRange(kpos, at, at + n));
                // layer 0 gets noise: the kernel must read the layer it is asked for
                store.put(0, first, noise(rnd, n * row), noise(rnd, n * row), 0, n);
                store.put(1, first, k, v, at * row, n);
                at += n;
            }
            return store;
        }
    }

    static List<Case> randomCases() {
        List<Case> cases = new ArrayList<>();
        int[] dims = {32, 64, 128};
        int[] ratios = {1, 2, 4, 8};
        for (int seed = 0; seed < 16; seed++) {
            Random rnd = new Random(seed);
            int d = dims[seed % dims.length];
            int ratio = ratios[seed / dims.length % ratios.length];
            int kvHeads = 1 + rnd.nextInt(2);
            int[] kpos = switch (seed % 3) {
                case 0 -> starLayout(rnd, true);
                case 1 -> starLayout(rnd, false);
                default -> gappedPositions(rnd);
            };
            int tokens = seed % 4 == 0 ? 1 : 1 + rnd.nextInt(64);
            int[] qpos = seed % 2 == 0 ? continuing(kpos, tokens) : scattered(rnd, kpos, tokens);
            cases.add(randomCase("seed " + seed, rnd, d, kvHeads, kvHeads * ratio, kpos, qpos, 1 + seed % 3));
        }
        return cases;
    }

    /** A context host's keys: the anchor at 0..a-1 (none for block 0's host) and a block at its global positions. */
    private static int[] starLayout(Random rnd, boolean withAnchor) {
        int a = withAnchor ? 1 + rnd.nextInt(90) : 0;
        int start = a + rnd.nextInt(600);
        int len = 1 + rnd.nextInt(300);
        return IntStream.concat(IntStream.range(0, a), IntStream.range(start, start + len)).toArray();
    }

    private static int[] gappedPositions(Random rnd) {
        int[] p = new int[1 + rnd.nextInt(400)];
        int at = rnd.nextInt(20);
        for (int i = 0; i < p.length; i++) {
            p[i] = at;
            at += 1 + (rnd.nextInt(4) == 0 ? rnd.nextInt(30) : 0);
        }
        return p;
    }

    /** Query tokens continuing after the last key, like the query host's new tokens. */
    private static int[] continuing(int[] kpos, int tokens) {
        int last = kpos[kpos.length - 1];
        return IntStream.range(last + 1, last + 1 + tokens).toArray();
    }

    /** Query positions anywhere from below the first key to past the last one, in no order. */
    private static int[] scattered(Random rnd, int[] kpos, int tokens) {
        int hi = kpos[kpos.length - 1] + 10;
        return IntStream.range(0, tokens).map(i -> rnd.nextInt(hi + 1)).toArray();
    }

    private static Case randomCase(String label, Random rnd, int d, int kvHeads, int heads, int[] kpos, int[] qpos, int threads) {
        float[] k = gaussian(rnd, kpos.length * kvHeads * d, 1);
        float[] v = gaussian(rnd, kpos.length * kvHeads * d, 1);
        // a wide score spread gives peaked softmaxes, where rescaling bugs show
        float[] q = gaussian(rnd, qpos.length * heads * d, 2.5f);
        return new Case(label + " d=" + d + " kvHeads=" + kvHeads + " heads=" + heads + " keys=" + kpos.length
                + " tokens=" + qpos.length + " threads=" + threads, d, kvHeads, heads, kpos, k, v, qpos, q, threads);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("randomCases")
    void matchesNaiveFp64Attention(Case c) {
        Random rnd = new Random(c.label().hashCode());
        try (AttentionKernel kernel = new CpuAttentionKernel(c.threads()); KvStore store = c.fill(kernel, rnd)) {
            assertClose(kernel.attend(store, 1, c.query()), c.expected(), c.label());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("randomCases")
    void bf16KvMatchesNaiveFp64AttentionOverTheRoundedKeysAndValues(Case c) {
        Random rnd = new Random(c.label().hashCode());
        try (AttentionKernel kernel = new CpuAttentionKernel(c.threads(), KvPrecision.BF16);
             KvStore store = c.fill(kernel, rnd)) {
            assertThat(((HeapKvStore) store).precision()).isEqualTo(KvPrecision.BF16);
            assertClose(kernel.attend(store, 1, c.query()), c.roundedToBf16().expected(), c.label());
            try (AttentionKernel reference = new ReferenceAttentionKernel(1)) {
                assertClose(reference.attend(store, 1, c.query()), c.roundedToBf16().expected(), "reference " + c.label());
            }
        }
    }

    @ParameterizedTest(name = "threads={0}")
    @ValueSource(ints = {1, 3})
    void bf16DecodeOverLongContextSplitsKeysAndStillMatches(int threads) {
        Random rnd = new Random(threads);
        Case c = randomCase("decode", rnd, 64, 2, 4, IntStream.range(0, 4500).toArray(), new int[] {4600}, threads);
        try (AttentionKernel kernel = new CpuAttentionKernel(threads, KvPrecision.BF16); KvStore store = c.fill(kernel, rnd)) {
            assertClose(kernel.attend(store, 1, c.query()), c.roundedToBf16().expected(), c.label());
        }
    }

    @ParameterizedTest(name = "threads={0}, {1} query tokens")
    @CsvSource({"1, 1", "2, 1", "3, 1", "2, 40", "8, 7"})
    void attendAllOverSeveralStoresEqualsAttendOnEachBitForBit(int threads, int tokens) {
        Random rnd = new Random(31L * threads + tokens);
        int d = 64;
        int kvHeads = 2;
        int heads = 6;
        // three blocks at their global positions, the last one short, as a decode step over a star context sees them
        int[][] blocks = {IntStream.range(0, 3000).toArray(), IntStream.range(3000, 6000).toArray(),
                IntStream.range(6000, 6100).toArray()};
        int[] qpos = IntStream.range(6100, 6100 + tokens).toArray();
        float[] q = gaussian(rnd, tokens * heads * d, 2.5f);
        AttentionQuery query = AttentionQuery.of(q, qpos, tokens, heads, d);
        try (AttentionKernel kernel = new CpuAttentionKernel(threads)) {
            List<KvStore> stores = new ArrayList<>();
            for (int[] kpos : blocks) {
                stores.add(randomCase("block", rnd, d, kvHeads, heads, kpos, qpos, threads).fill(kernel, rnd));
            }
            List<PartialAttention> all = kernel.attendAll(stores, 1, query);
            assertThat(all).hasSize(3);
            for (int i = 0; i < stores.size(); i++) {
                PartialAttention one = kernel.attend(stores.get(i), 1, query);
                assertThat(all.get(i).output()).as("output of store %d", i).containsExactly(one.output());
                assertThat(all.get(i).lse()).as("lse of store %d", i).containsExactly(one.lse());
            }
            stores.forEach(KvStore::close);
        }
    }

    @ParameterizedTest(name = "threads={0}")
    @ValueSource(ints = {1, 2, 3, 8})
    void decodeOverLongContextSplitsKeysAndStillMatches(int threads) {
        // one token over thousands of keys: the kernel splits the keys and merges the splits
        Random rnd = new Random(threads);
        Case c = randomCase("decode", rnd, 64, 2, 4, IntStream.range(0, 4500).toArray(), new int[] {4600}, threads);
        try (AttentionKernel kernel = new CpuAttentionKernel(threads); KvStore store = c.fill(kernel, rnd)) {
            assertClose(kernel.attend(store, 1, c.query()), c.expected(), c.label());
        }
    }

    @ParameterizedTest(name = "{0} KV, {1} query tokens, {2} keys")
    @CsvSource({"F32, 1, 1", "F32, 1, 100", "F32, 2, 1037", "F32, 3, 4500", "F32, 1, 4500",
            "BF16, 1, 1", "BF16, 1, 100", "BF16, 2, 1037", "BF16, 3, 4500", "BF16, 1, 4500"})
    void groupedQueryDecodeMatches(KvPrecision precision, int tokens, int keys) {
        // SmolLM2-135M: 9 query heads over 3 KV heads of 64; the key counts end mid-tile and mid-split
        Random rnd = new Random(keys * 7L + tokens);
        Case c = randomCase("gqa decode", rnd, 64, 3, 9, IntStream.range(0, keys).toArray(),
                IntStream.range(keys, keys + tokens).toArray(), 2);
        try (AttentionKernel kernel = new CpuAttentionKernel(2, precision); KvStore store = c.fill(kernel, rnd)) {
            Case want = precision == KvPrecision.BF16 ? c.roundedToBf16() : c;
            assertClose(kernel.attend(store, 1, c.query()), want.expected(), c.label() + " " + precision);
        }
    }

    @ParameterizedTest(name = "{0} KV, {1} query tokens")
    @CsvSource({"F32, 1", "F32, 3", "F32, 40", "BF16, 1", "BF16, 3", "BF16, 40"})
    void aPartialDoesNotDependOnTheThreadCount(KvPrecision precision, int tokens) {
        // the key splits, and so the rounding of their merge, follow from the query and the store alone
        Random rnd = new Random(tokens);
        Case c = randomCase("threads", rnd, 64, 3, 9, IntStream.range(0, 4500).toArray(),
                IntStream.range(4500 - tokens / 2, 4500 - tokens / 2 + tokens).toArray(), 1);
        try (AttentionKernel one = new CpuAttentionKernel(1, precision); KvStore store = c.fill(one, rnd)) {
            PartialAttention expected = one.attend(store, 1, c.query());
            assertClose(expected, (precision == KvPrecision.BF16 ? c.roundedToBf16() : c).expected(), c.label());
            for (int threads : new int[] {2, 3, 8}) {
                try (AttentionKernel kernel = new CpuAttentionKernel(threads, precision)) {
                    PartialAttention got = kernel.attend(store, 1, c.query());
                    assertThat(got.output()).as("output with %d threads", threads).containsExactly(expected.output());
                    assertThat(got.lse()).as("lse with %d threads", threads).containsExactly(expected.lse());
                }
            }
        }
    }

    @ParameterizedTest(name = "d={0}")
    @ValueSource(ints = {8, 40, 80, 256})
    void headDimsThatAreNotAMultipleOfTheVectorBlockWork(int d) {
        Random rnd = new Random(d);
        Case c = randomCase("d", rnd, d, 2, 4, gappedPositions(rnd), scattered(rnd, new int[] {300}, 20), 2);
        try (AttentionKernel kernel = new CpuAttentionKernel(2); KvStore store = c.fill(kernel, rnd)) {
            assertClose(kernel.attend(store, 1, c.query()), c.expected(), c.label());
        }
    }

    @Test
    void tokensThatSeeNoKeyGetMinusInfinityAndZeroOutput() {
        Random rnd = new Random(7);
        int[] kpos = IntStream.range(100, 300).toArray();
        // tokens 0 and 2 sit before the first key, token 1 sees 51 keys
        Case c = randomCase("empty", rnd, 64, 2, 8, kpos, new int[] {3, 150, 99}, 2);
        try (AttentionKernel kernel = new CpuAttentionKernel(2); KvStore store = c.fill(kernel, rnd)) {
            PartialAttention out = kernel.attend(store, 1, c.query());
            assertClose(out, c.expected(), c.label());
            for (int h = 0; h < 8; h++) {
                assertThat(out.lse()[h]).isEqualTo(Float.NEGATIVE_INFINITY);
                assertThat(out.lse()[2 * 8 + h]).isEqualTo(Float.NEGATIVE_INFINITY);
                assertThat(out.lse()[8 + h]).isFinite();
            }
            assertThat(Arrays.copyOfRange(out.output(), 0, 8 * 64)).containsOnly(0f);
        }
    }

    @Test
    void emptyStoreAndEmptyQueryGiveEmptyPartials() {
        try (AttentionKernel kernel = new CpuAttentionKernel(2); KvStore store = kernel.createStore(new KvLayout(1, 1, 32, 0))) {
            PartialAttention out = kernel.attend(store, 0, AttentionQuery.of(new float[2 * 32], new int[] {0, 1}, 2, 1, 32));
            assertThat(out.lse()).containsOnly(Float.NEGATIVE_INFINITY);
            assertThat(out.output()).containsOnly(0f);
            assertThat(kernel.attend(store, 0, AttentionQuery.of(new float[0], new int[0], 0, 1, 32)).tokens()).isZero();
        }
    }

    @Test
    void staleSlotsAfterRollbackAreNeverRead() {
        // NaN K/V written after a mark and rolled back share the last key tile with live slots
        Random rnd = new Random(11);
        int d = 64;
        int[] kpos = IntStream.range(0, 60).toArray();
        Case c = randomCase("stale", rnd, d, 1, 2, kpos, new int[] {59, 100}, 1);
        try (AttentionKernel kernel = new CpuAttentionKernel(1); KvStore store = kernel.createStore(new KvLayout(1, 1, d, 0))) {
            store.put(0, store.reserve(Arrays.copyOfRange(kpos, 0, 50)), c.k(), c.v(), 0, 50);
            int mark = store.mark();
            float[] nan = new float[40 * d];
            Arrays.fill(nan, Float.NaN);
            store.put(0, store.reserve(IntStream.range(50, 90).toArray()), nan, nan, 0, 40);
            store.rollback(mark);
            store.put(0, store.reserve(Arrays.copyOfRange(kpos, 50, 60)), c.k(), c.v(), 50 * d, 10);
            assertClose(kernel.attend(store, 0, c.query()), c.expected(), c.label());
        }
    }

    @Test
    void referenceKernelMatchesNaiveToo() {
        Random rnd = new Random(3);
        Case c = randomCase("reference", rnd, 64, 2, 4, starLayout(rnd, true), scattered(rnd, new int[] {500}, 30), 2);
        try (AttentionKernel kernel = new ReferenceAttentionKernel(2); KvStore store = c.fill(kernel, rnd)) {
            assertClose(kernel.attend(store, 1, c.query()), c.expected(), c.label());
        }
    }

    @Test
    void concurrentCallsOnDifferentStoresDoNotInterfere() {
        Random rnd = new Random(5);
        List<Case> cases = IntStream.range(0, 6).mapToObj(i -> randomCase("concurrent " + i, rnd, 64, 2, 4,
                gappedPositions(rnd), scattered(rnd, new int[] {400}, 40), 2)).toList();
        try (AttentionKernel kernel = new CpuAttentionKernel(2)) {
            List<KvStore> stores = cases.stream().map(c -> c.fill(kernel, rnd)).toList();
            List<CompletableFuture<PartialAttention>> runs = IntStream.range(0, cases.size())
                    .mapToObj(i -> CompletableFuture.supplyAsync(() -> kernel.attend(stores.get(i), 1, cases.get(i).query())))
                    .toList();
            for (int i = 0; i < cases.size(); i++) {
                assertClose(runs.get(i).join(), cases.get(i).expected(), cases.get(i).label());
            }
        }
    }

    @Test
    void rejectsQueriesThatDoNotFitTheStore() {
        try (AttentionKernel kernel = new CpuAttentionKernel(1); KvStore store = kernel.createStore(new KvLayout(1, 2, 32, 0))) {
            assertThatThrownBy(() -> kernel.attend(store, 0, AttentionQuery.of(new float[3 * 32], new int[] {0}, 1, 3, 32)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("does not fit");
            assertThatThrownBy(() -> kernel.attend(store, 0, AttentionQuery.of(new float[2 * 64], new int[] {0}, 1, 2, 64)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("does not fit");
        }
        assertThatThrownBy(() -> new CpuAttentionKernel(0)).isInstanceOf(IllegalArgumentException.class);
    }

    static void assertClose(PartialAttention actual, NaiveAttention expected, String label) {
        int d = actual.headDim();
        for (int row = 0; row < expected.lse.length; row++) {
            String where = label + ": token " + row / actual.heads() + " head " + row % actual.heads();
            double want = expected.lse[row];
            float got = actual.lse()[row];
            if (want == Double.NEGATIVE_INFINITY) {
                if (got != Float.NEGATIVE_INFINITY) {
                    fail(where + ": lse " + got + ", expected -Infinity");
                }
            } else if (!(Math.abs(got - want) <= TOLERANCE * Math.max(1, Math.abs(want)))) {
                fail(where + ": lse " + got + ", expected " + want);
            }
            for (int i = 0; i < d; i++) {
                double w = expected.output[row * d + i];
                float g = actual.output()[row * d + i];
                if (!(Math.abs(g - w) <= TOLERANCE * Math.max(1, Math.abs(w)))) {
                    fail(where + ": output[" + i + "] " + g + ", expected " + w);
                }
            }
        }
    }

    static float[] gaussian(Random rnd, int n, float sigma) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian() * sigma;
        }
        return x;
    }

    private static float[] noise(Random rnd, int n) {
        return gaussian(rnd, n, 3);
    }
}
