package io.github.starattention.jlama.cluster;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Key stores for the TLS tests, made with the JDK's keytool. */
final class TestStores {

    private TestStores() {
    }

    /**
     * Writes {@code node.p12} (a self-signed EC key pair named {@code cn}) and {@code trust.p12} (its certificate)
     * into {@code dir}, both with {@code password}.
     */
    static void selfSigned(Path dir, String cn, String password) throws IOException, InterruptedException {
        keytool(dir, password, "-genkeypair", "-alias", "node", "-keyalg", "EC", "-groupname", "secp256r1", "-dname",
                "CN=" + cn, "-validity", "2", "-keystore", "node.p12", "-storetype", "PKCS12", "-keypass", password);
        keytool(dir, password, "-exportcert", "-alias", "node", "-keystore", "node.p12", "-rfc", "-file", "node.pem");
        keytool(dir, password, "-importcert", "-noprompt", "-alias", "node", "-file", "node.pem", "-keystore",
                "trust.p12", "-storetype", "PKCS12");
    }

    private static void keytool(Path dir, String password, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "keytool")
                .toString()));
        cmd.addAll(List.of(args));
        cmd.addAll(List.of("-storepass", password));
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IllegalStateException("keytool failed: " + out);
        }
    }
}
