package io.github.starattention.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Runs without a GPU: every {@code src/main/cuda/*.cu} has a committed PTX whose header records the SHA-256 of the
 * current source followed by the headers it includes, theirs included (carriage returns removed), i.e. {@code
 * build-ptx.sh} was run after the last kernel change, and targets the architecture the source names ({@code //
 * ptx-arch:}, else compute_80).
 */
class PtxFreshnessTest {

    private static final Path CUDA_SOURCES = Path.of("src/main/cuda");
    /** A source's first line may name its PTX architecture (build-ptx.sh); compute_80 otherwise. */
    private static final Pattern ARCH = Pattern.compile("// ptx-arch: compute_([0-9a-z]+)\r?\n");
    /** The headers of this folder a file includes, hashed after it (build-ptx.sh). */
    private static final Pattern INCLUDE = Pattern.compile("^#include \"([^\"]+)\"\r?$", Pattern.MULTILINE);
    private static final Pattern SHA = Pattern.compile("^// source-sha256: ([0-9a-f]{64})$", Pattern.MULTILINE);

    @Test
    void committedPtxMatchesKernelSources() throws IOException, NoSuchAlgorithmException {
        List<Path> sources;
        try (Stream<Path> s = Files.list(CUDA_SOURCES)) {
            sources = s.filter(p -> p.toString().endsWith(".cu")).sorted().toList();
        }
        assertThat(sources).as("kernel sources in %s", CUDA_SOURCES.toAbsolutePath()).isNotEmpty();
        for (Path cu : sources) {
            String name = cu.getFileName().toString().replaceFirst("\\.cu$", "");
            String resource = "/io/github/starattention/cuda/" + name + ".ptx";
            String header;
            try (InputStream in = PtxFreshnessTest.class.getResourceAsStream(resource)) {
                assertThat(in).as("PTX resource %s for %s", resource, cu).isNotNull();
                header = new String(in.readNBytes(1024), StandardCharsets.US_ASCII);
            }
            Matcher m = SHA.matcher(header);
            assertThat(m.find()).as("%s has a '// source-sha256:' header line", resource).isTrue();
            String src = Files.readString(cu, StandardCharsets.ISO_8859_1);
            StringBuilder hashed = new StringBuilder();
            appendWithIncludes(cu.getFileName().toString(), new HashSet<>(), hashed);
            byte[] noCr = hashed.toString().replace("\r", "").getBytes(StandardCharsets.ISO_8859_1);
            String actual = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(noCr));
            assertThat(m.group(1))
                    .as("%s is stale: %s or a header it includes changed; regenerate with "
                            + "star-attention-core/src/main/cuda/build-ptx.sh", resource, cu)
                    .isEqualTo(actual);
            Matcher arch = ARCH.matcher(src);
            String target = arch.lookingAt() ? "sm_" + arch.group(1) : "sm_80";
            assertThat(header).as("%s targets %s PTX", resource, target).contains(".target " + target + "\n");
        }
    }

    /** {@code file}, then every header it includes, depth-first and each once: what build-ptx.sh hashes. */
    private static void appendWithIncludes(String file, Set<String> seen, StringBuilder out) throws IOException {
        if (!seen.add(file)) {
            return;
        }
        String text = Files.readString(CUDA_SOURCES.resolve(file), StandardCharsets.ISO_8859_1);
        out.append(text);
        Matcher include = INCLUDE.matcher(text);
        while (include.find()) {
            appendWithIncludes(include.group(1), seen, out);
        }
    }

    @Test
    void kernelRuntimeLoadsEveryKernelSource() throws IOException {
        List<String> expected;
        try (Stream<Path> s = Files.list(CUDA_SOURCES)) {
            expected = s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".cu")).sorted()
                    .map(n -> "/io/github/starattention/cuda/" + n.replaceFirst("\\.cu$", ".ptx")).toList();
        }
        assertThat(CudaRuntime.PTX_RESOURCES).containsExactlyInAnyOrderElementsOf(expected);
    }
}
