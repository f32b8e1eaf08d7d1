package io.github.starattention.jlama.cluster;

import static io.github.starattention.jlama.cluster.ClusterFixture.SCALE;
import static io.github.starattention.jlama.cluster.ClusterFixture.context;
import static io.github.starattention.jlama.cluster.ClusterFixture.query;
import static io.github.starattention.jlama.cluster.ClusterFixture.reference;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.starattention.jlama.GenerationOptions;
import io.github.starattention.jlama.PrefillListener;
import io.github.starattention.jlama.TokenListener;
import io.github.starattention.jlama.cli.LocalCluster;
import io.github.starattention.wire.WireMessage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Certified membership ({@code membership: certified}) with event-bus mutual TLS: a cluster whose nodes hold
 * certificates signed by a test CA (made here with the JDK's keytool) answers like the in-process engine. A rogue
 * process on the same machine that knows the cluster name and every member port but holds a certificate the CA did
 * not sign gets no membership (it founds a cluster of its own), cannot see or change the cluster's subscriptions,
 * receives no context and cannot reach the hosts, and the cluster keeps answering.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@ExtendWith(HostLogs.class)
class ClusterTlsIT {

    private static final String PASSWORD = "test-only-password";

    @TempDir
    static Path certs;

    private static LocalCluster hosts;
    private static ClusterEngine engine;

    @BeforeAll
    static void startTlsCluster() throws Exception {
        makeCertificates(certs);
        ClusterOptions.Tls tls = new ClusterOptions.Tls(true, certs.resolve("node.p12"), PASSWORD,
                certs.resolve("trust.p12"), PASSWORD);
        ClusterFixture.model();
        // one TLS context host is enough to show the handshake works both ways and keeps the suite light on 2 cores
        hosts = LocalCluster.start(1, ClusterFixture.hostSettings(600_000).withTls(tls)
                .withMembership(ClusterOptions.Membership.CERTIFIED), null, List.of("-Xmx512m"));
        HostLogs.cluster = hosts;
        hosts.awaitReady();
        engine = ClusterEngine.start(ClusterFixture.model(), ClusterFixture.star(),
                ClusterFixture.queryHost(hosts.queryHostOptions()));
        assertThat(engine.awaitHosts(1)).hasSize(1);
    }

    @AfterAll
    static void stop() {
        try {
            if (engine != null) {
                engine.close();
            }
        } finally {
            if (hosts != null) {
                hosts.close();
            }
        }
    }

    @Test
    @Order(1)
    void aTlsClusterAnswersLikeTheInProcessEngine() {
        String id = "niah_single-1024-4";
        try (ClusterContextSession s = engine.prefillSession(context(id), PrefillListener.NONE)) {
            assertThat(s.hostCount()).isEqualTo(1);
            assertThat(s.generate(query(id), GenerationOptions.greedy(24), TokenListener.NONE).tokens())
                    .containsExactly(reference(id, id, 24));
        }
    }

    @Test
    @Order(2)
    void aProcessWithoutACertificateCanNeitherJoinNorDisturb() throws Exception {
        String tlsHost = engine.hosts().getFirst().nodeId();
        String hostAddress = ClusterNode.hostAddress(tlsHost);
        assertThat(engine.node().subscribers(hostAddress).get(30 * SCALE, TimeUnit.SECONDS)).containsExactly(tlsHost);
        // a context host with certified membership, the cluster's name, every member port, the right trust store and
        // a self-signed certificate
        ClusterOptions selfSigned = hosts.extraNodeOptions("rogue").withTls(new ClusterOptions.Tls(true,
                certs.resolve("rogue.p12"), PASSWORD, certs.resolve("trust.p12"), PASSWORD))
                .withHost(ClusterFixture.hostSettings(600_000).host());
        try (ContextHost rogue = ContextHost.start(ClusterFixture.model(), selfSigned)) {
            // the handshake fails, so it is alone in a cluster of its own and the cluster does not list it
            assertThat(rogue.node().members()).containsExactly(rogue.nodeId());
            assertThat(engine.node().members()).doesNotContain(rogue.nodeId()).contains(tlsHost, engine.nodeId());
            // it cannot read the cluster's subscriptions, so it cannot remove them either (open-source Hazelcast let
            // such a node delete the hosts' entries from __vertx.subs)
            assertThat(rogue.node().subscribers(hostAddress).get(30 * SCALE, TimeUnit.SECONDS)).isEmpty();
            assertThatThrownBy(() -> rogue.node().request(tlsHost, "tls host", new WireMessage.InfoRequest(), 5_000 * SCALE)
                    .get(30 * SCALE, TimeUnit.SECONDS))
                    .isInstanceOf(ExecutionException.class)
                    .cause().isInstanceOf(HostFailureException.class);
            // the query host never sees it as a context host, and the cluster still answers, with the rogue running
            assertThat(engine.hosts()).extracting(WireMessage.HostInfo::name).containsExactly("host-0");
            String id = "niah_single-1024-5";
            try (ClusterContextSession s = engine.prefillSession(context(id), PrefillListener.NONE)) {
                assertThat(s.placement()).containsOnlyKeys("host-0");
                assertThat(s.generate(query(id), GenerationOptions.greedy(16), TokenListener.NONE).tokens())
                        .containsExactly(reference(id, id, 16));
            }
            assertThat(rogue.sessions()).isZero();
            assertThat(engine.node().subscribers(hostAddress).get(30 * SCALE, TimeUnit.SECONDS)).containsExactly(tlsHost);
        }
    }

    /** A test CA, a node key pair it signs (for 127.0.0.1), a trust store with the CA, and a self-signed rogue key. */
    static void makeCertificates(Path dir) throws IOException, InterruptedException {
        String dname = "CN=star-attention-test";
        keytool(dir, "-genkeypair", "-alias", "ca", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", dname + "-ca",
                "-ext", "bc:c", "-validity", "2", "-keystore", "ca.p12", "-storetype", "PKCS12");
        keytool(dir, "-exportcert", "-alias", "ca", "-keystore", "ca.p12", "-rfc", "-file", "ca.pem");
        keytool(dir, "-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem", "-keystore", "trust.p12",
                "-storetype", "PKCS12");
        keytool(dir, "-genkeypair", "-alias", "node", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", dname + "-node",
                "-validity", "2", "-keystore", "node.p12", "-storetype", "PKCS12");
        keytool(dir, "-certreq", "-alias", "node", "-keystore", "node.p12", "-file", "node.csr");
        keytool(dir, "-gencert", "-alias", "ca", "-keystore", "ca.p12", "-infile", "node.csr", "-outfile", "node.pem",
                "-rfc", "-validity", "2", "-ext", "SAN=ip:127.0.0.1,dns:localhost",
                "-ext", "KU=digitalSignature,keyAgreement", "-ext", "EKU=serverAuth,clientAuth");
        keytool(dir, "-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem", "-keystore", "node.p12");
        keytool(dir, "-importcert", "-alias", "node", "-file", "node.pem", "-keystore", "node.p12");
        keytool(dir, "-genkeypair", "-alias", "rogue", "-keyalg", "EC", "-groupname", "secp256r1", "-dname",
                dname + "-rogue", "-validity", "2", "-keystore", "rogue.p12", "-storetype", "PKCS12");
    }

    private static void keytool(Path dir, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "keytool").toString());
        cmd.addAll(List.of(args));
        cmd.addAll(List.of("-storepass", PASSWORD));
        if (List.of(args).contains("-genkeypair")) {
            cmd.addAll(List.of("-keypass", PASSWORD));
        }
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IllegalStateException("keytool " + String.join(" ", args) + " failed: " + out);
        }
    }
}
