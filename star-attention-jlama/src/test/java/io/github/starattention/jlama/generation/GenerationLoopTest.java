package io.github.starattention.jlama.generation;

import io.github.starattention.jlama.model.Logits;
import static org.assertj.core.api.Assertions.assertThat;

import io.github.starattention.jlama.FinishReason;
import io.github.starattention.jlama.Generation;
import io.github.starattention.jlama.GenerationOptions;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The loop with a scripted model: logits that make a given token sequence greedy. */
class GenerationLoopTest {

    private static final int EOS = 0;
    /** Token t decodes to the letter 'a' + t - 1, so 1 2 3 -> "abc". */
    private static final GenerationLoop LOOP = new GenerationLoop(Set.of(EOS), ids -> {
        StringBuilder sb = new StringBuilder();
        for (int id : ids) {
            sb.append((char) ('a' + id - 1));
        }
        return sb.toString();
    });

    /** A step that emits {@code script} and records the positions it was called at. */
    private static GenerationLoop.Step scripted(int[] script, List<Integer> positions) {
        AtomicInteger i = new AtomicInteger();
        return (tokens, start, want) -> {
            positions.add(start);
            float[] logits = new float[27];
            logits[script[Math.min(i.getAndIncrement(), script.length - 1)]] = 10f;
            return Logits.of(logits);
        };
    }

    @Test
    void stopsAtEndOfSequenceWithoutEmittingIt() {
        List<Integer> positions = new ArrayList<>();
        List<String> streamed = new ArrayList<>();
        Generation g = LOOP.run(new int[] {5, 6, 7}, 100, GenerationOptions.greedy(10), (id, t) -> streamed.add(t),
                scripted(new int[] {1, 2, 3, EOS}, positions));
        assertThat(g.text()).isEqualTo("abc");
        assertThat(g.tokens()).containsExactly(1, 2, 3);
        assertThat(g.finishReason()).isEqualTo(FinishReason.STOP);
        assertThat(g.queryTokens()).isEqualTo(3);
        assertThat(streamed).containsExactly("a", "b", "c");
        assertThat(positions).containsExactly(100, 103, 104, 105);
    }

    @Test
    void maxNewTokensCountsOutputOnly() {
        List<Integer> positions = new ArrayList<>();
        Generation g = LOOP.run(new int[] {5, 6, 7, 8, 9}, 0, GenerationOptions.greedy(2), (id, t) -> { },
                scripted(new int[] {1, 2, 3, 4}, positions));
        assertThat(g.tokens()).containsExactly(1, 2);
        assertThat(g.finishReason()).isEqualTo(FinishReason.LENGTH);
        assertThat(positions).as("no forward pass for a token that will not be used").hasSize(2);
    }

    @Test
    void stopStringCutsTheText() {
        GenerationOptions o = GenerationOptions.builder().maxNewTokens(10).stopStrings(List.of("cd")).build();
        Generation g = LOOP.run(new int[] {1}, 0, o, (id, t) -> { }, scripted(new int[] {1, 2, 3, 4, 5, 6}, new ArrayList<>()));
        assertThat(g.text()).isEqualTo("ab");
        assertThat(g.finishReason()).isEqualTo(FinishReason.STOP);
    }

    @Test
    void cancellationStopsBetweenTokens() {
        AtomicInteger polls = new AtomicInteger();
        GenerationOptions o = GenerationOptions.builder().maxNewTokens(10).cancelled(() -> polls.incrementAndGet() >= 2).build();
        Generation g = LOOP.run(new int[] {1}, 0, o, (id, t) -> { }, scripted(new int[] {1, 2, 3, 4, 5, 6}, new ArrayList<>()));
        assertThat(g.finishReason()).isEqualTo(FinishReason.CANCELLED);
        assertThat(g.tokens()).containsExactly(1, 2);
    }

    @Test
    void aCharacterSplitOverTokensIsStreamedOnceWhole() {
        // UTF-8 bytes as tokens (id = byte + 1): "é" is C3 A9, "🙂" is F0 9F 99 82; a prefix decodes with U+FFFD
        GenerationLoop loop = new GenerationLoop(Set.of(EOS), ids -> {
            byte[] bytes = new byte[ids.length];
            for (int i = 0; i < ids.length; i++) {
                bytes[i] = (byte) (ids[i] - 1);
            }
            return new String(bytes, java.nio.charset.StandardCharsets.UTF_8);
        });
        int[] script = {'a' + 1, 0xC3 + 1, 0xA9 + 1, 0xF0 + 1, 0x9F + 1, 0x99 + 1, 0x82 + 1, EOS};
        AtomicInteger i = new AtomicInteger();
        List<String> pieces = new ArrayList<>();
        Generation g = loop.run(new int[] {1}, 0, GenerationOptions.greedy(16), (id, text) -> pieces.add(text),
                (tokens, start, want) -> {
                    float[] logits = new float[257];
                    logits[script[i.getAndIncrement()]] = 10f;
                    return Logits.of(logits);
                });
        assertThat(g.text()).isEqualTo("aé🙂");
        assertThat(pieces).containsExactly("a", "", "é", "", "", "", "🙂");
        assertThat(String.join("", pieces)).doesNotContain("\uFFFD");
    }
}
