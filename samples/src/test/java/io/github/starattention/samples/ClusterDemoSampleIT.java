package io.github.starattention.samples;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cluster demo as {@code samples/run cluster} runs it: three context-host JVMs on 127.0.0.1, this JVM the query
 * host. A 4K-token dev-set document with one thread per node keeps it short (the default 16K document takes minutes
 * on two cores).
 */
class ClusterDemoSampleIT {

    private static final Pattern HOST_PID = Pattern.compile("(?m)^  host-(\\d+)  pid (\\d+)$");

    @TempDir
    Path tmp;

    @Test
    @Timeout(value = 20, unit = TimeUnit.MINUTES)
    void hostsEncodeTheDocumentAnswerAndAreStopped() throws IOException {
        JsonNode ex = DocumentQaSampleIT.devExample("niah_multikey-4096-0");
        String answer = ex.get("answers").get(0).asText();
        Path doc = Files.writeString(tmp.resolve("report.txt"), ex.get("context").asText());
        // The question comes from the .json beside the document, as for the default 16K demo document.
        ObjectMapper json = new ObjectMapper();
        json.writeValue(tmp.resolve("report.json").toFile(), json.createObjectNode()
                .put("question", ex.get("question").asText()).set("answers", json.createArrayNode().add(answer)));

        // Two hosts rather than the demo's three keep the test light on a 2-core CI machine; JVMs starting on shared
        // cores may need more than the default 180 s to join.
        String wait = System.setProperty("star.attention.hostWaitMs", "420000");
        SampleRunner r;
        try {
            r = SampleRunner.run("cluster", "--document", doc.toString(), "--hosts", "2", "--threads", "1");
        } finally {
            if (wait == null) {
                System.clearProperty("star.attention.hostWaitMs");
            } else {
                System.setProperty("star.attention.hostWaitMs", wait);
            }
        }
        assertThat(r.exitCode()).as(r.err()).isZero();

        assertThat(r.out()).containsPattern("Answer: .*" + answer + ".*\\[correct\\]");
        for (int i = 0; i < 2; i++) {
            assertThat(r.out()).as("host-%d encoded a block", i)
                    .containsPattern("(?m)^  host-" + i + " +blocks? [0-9,]+ +[1-9][0-9,]* tokens +[0-9,]+ ms$");
        }
        assertThat(r.out()).containsPattern("(?m)^  query host +block 2 ")
                .containsPattern("Time to first token: [0-9,]+ ms")
                .containsPattern("Phase 2 traffic: [1-9][0-9,]* bytes per token");

        List<Long> pids = new ArrayList<>();
        for (Matcher m = HOST_PID.matcher(r.out()); m.find(); ) {
            pids.add(Long.parseLong(m.group(2)));
        }
        assertThat(pids).hasSize(2);
        assertThat(pids).allSatisfy(pid -> assertThat(ProcessHandle.of(pid).filter(ProcessHandle::isAlive))
                .as("host process %d", pid).isEmpty());
        assertThat(r.out()).contains("Stopped 2 of 2 context hosts.");
    }
}
