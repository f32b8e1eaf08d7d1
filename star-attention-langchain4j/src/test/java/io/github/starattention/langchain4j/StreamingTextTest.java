package io.github.starattention.langchain4j;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class StreamingTextTest {

    @Test
    void safeLengthHoldsBackPossibleStopSequences() {
        assertThat(StreamingText.safeLength("hello wor", List.of())).isEqualTo(9);
        assertThat(StreamingText.safeLength("hello wor", List.of("world"))).isEqualTo(6);
        assertThat(StreamingText.safeLength("hello world!", List.of("world"))).isEqualTo(6);
        assertThat(StreamingText.safeLength("hello w", List.of("xyz", "wx"))).isEqualTo(6);
        assertThat(StreamingText.safeLength("abc\uFFFD", List.of())).isEqualTo(3);
        assertThat(StreamingText.safeLength("END", List.of("END"))).isZero();
    }

    @Test
    void deltasConcatenateToTheFinalText() {
        // "tokens" are characters of a fixed string; the decoder maps a prefix length to the text
        String full = "The answer is 42. STOP here";
        List<String> deltas = new ArrayList<>();
        StreamingText s = new StreamingText(ids -> full.substring(0, ids.length), List.of("STOP"), deltas::add);
        int end = full.indexOf("STOP") + 2; // the engine stops once "STOP" is complete; here it ends 2 chars in
        for (int i = 0; i < end; i++) {
            s.onToken(i);
        }
        assertThat(String.join("", deltas)).isEqualTo("The answer is 42. ");
        s.finish("The answer is 42. ");
        assertThat(String.join("", deltas)).isEqualTo("The answer is 42. ");

        deltas.clear();
        StreamingText t = new StreamingText(ids -> full.substring(0, ids.length), List.of("ST!"), deltas::add);
        for (int i = 0; i < 20; i++) {
            t.onToken(i);
        }
        assertThat(String.join("", deltas)).isEqualTo("The answer is 42. "); // "ST" held back
        t.finish(full.substring(0, 20));
        assertThat(String.join("", deltas)).isEqualTo(full.substring(0, 20));
    }
}
