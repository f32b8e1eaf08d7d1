package io.github.starattention.jlama.cluster;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A wrong TLS store, password or port fails before Hazelcast starts, with one line naming the setting. */
class StartupChecksTest {

    private static final String PASSWORD = "changeit-test";

    @TempDir
    static Path dir;

    @BeforeAll
    static void stores() throws Exception {
        TestStores.selfSigned(dir, "startup-checks", PASSWORD);
        Files.writeString(dir.resolve("garbage.p12"), "this is not a key store");
    }

    private static ClusterOptions tls(String keyStore, String password) {
        return ClusterOptions.defaults().withTls(new ClusterOptions.Tls(true, dir.resolve(keyStore), password,
                dir.resolve("trust.p12"), PASSWORD));
    }

    @Test
    void goodStoresAndAFreePortPass() {
        assertThatCode(() -> StartupChecks.check(tls("node.p12", PASSWORD))).doesNotThrowAnyException();
    }

    @Test
    void aFileThatIsNotAKeyStoreIsNamed() {
        assertThatThrownBy(() -> StartupChecks.check(tls("garbage.p12", PASSWORD)))
                .isExactlyInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("tls.keyStore " + dir.resolve("garbage.p12") + " is not a PKCS#12 key store");
    }

    @Test
    void aWrongPasswordIsNamed() {
        assertThatThrownBy(() -> StartupChecks.check(tls("node.p12", "not-the-password")))
                .isExactlyInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("does not open with tls.keyStorePassword (wrong password)");
    }

    @Test
    void aKeyStoreWithoutAPrivateKeyIsNamed() {
        assertThatThrownBy(() -> StartupChecks.check(tls("trust.p12", PASSWORD)))
                .isExactlyInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("holds no private key");
    }

    @Test
    void aHazelcastPortInUseIsNamed() throws IOException {
        try (ServerSocket taken = new ServerSocket()) {
            taken.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            int port = taken.getLocalPort();
            ClusterOptions o = ClusterOptions.defaults().withHazelcast(new ClusterOptions.Hazelcast("127.0.0.1", port,
                    false, List.of("127.0.0.1:" + port), 5));
            assertThatThrownBy(() -> StartupChecks.check(o)).isExactlyInstanceOf(IllegalArgumentException.class)
                    .hasMessage("hazelcast.port " + port + " on 127.0.0.1 is in use (another member or process); free "
                            + "it, choose another port or set hazelcast.portAutoIncrement");
        }
    }
}
