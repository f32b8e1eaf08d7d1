package io.github.starattention.jlama.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import io.github.starattention.kv.KvPrecision;
import io.vertx.core.eventbus.EventBusOptions;
import io.vertx.core.http.ClientAuth;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ClusterOptionsTest {

    @TempDir
    Path dir;

    @Test
    void defaultsStayOnLoopback() {
        ClusterOptions o = ClusterOptions.defaults();
        assertThat(o.hazelcast().host()).isEqualTo("127.0.0.1");
        assertThat(o.hazelcast().members()).containsExactly("127.0.0.1");
        assertThat(o.eventBus().host()).isEqualTo("127.0.0.1");
        assertThat(o.tls().enabled()).isFalse();
        assertThat(o.failover()).isTrue();
        assertThat(o.shareAnchor()).isTrue();
    }

    @Test
    void parsesAFullFileAndResolvesPathsAgainstIt() throws IOException {
        Path certs = Files.createDirectories(dir.resolve("certs"));
        Files.writeString(certs.resolve("node.p12"), "x");
        Files.writeString(certs.resolve("ca.p12"), "x");
        Path file = dir.resolve("cluster.json");
        Files.writeString(file, """
                {
                  "clusterName": "prod-sa",
                  "nodeName": "host-a",
                  "hazelcast": {"host": "10.0.0.5", "port": 5801, "portAutoIncrement": false,
                                "members": ["10.0.0.5:5801", "10.0.0.6:5801", "10.0.0.7"],
                                "failureDetectionSeconds": 8},
                  "eventBus": {"host": "10.0.0.5", "port": 6000},
                  "tls": {"enabled": true, "keyStore": "certs/node.p12", "keyStorePassword": "secret",
                          "trustStore": "certs/ca.p12", "trustStorePassword": "secret"},
                  "timeouts": {"requestMs": 5000, "prefillMs": 120000, "joinMs": 20000, "hostWaitMs": 30000,
                               "sessionIdleMs": 60000},
                  "failover": false,
                  "shareAnchor": false,
                  "host": {"model": "../models/m", "threads": 4, "weights": "q4", "device": "CPU", "maxSessions": 3}
                }
                """);
        ClusterOptions o = ClusterOptions.load(file);
        assertThat(o.clusterName()).isEqualTo("prod-sa");
        assertThat(o.nodeName()).isEqualTo("host-a");
        assertThat(o.hazelcast().port()).isEqualTo(5801);
        assertThat(o.hazelcast().portAutoIncrement()).isFalse();
        assertThat(o.hazelcast().members()).containsExactly("10.0.0.5:5801", "10.0.0.6:5801", "10.0.0.7");
        assertThat(o.hazelcast().failureDetectionSeconds()).isEqualTo(8);
        assertThat(o.eventBus().port()).isEqualTo(6000);
        assertThat(o.tls().enabled()).isTrue();
        assertThat(o.tls().keyStore()).isEqualTo(certs.resolve("node.p12"));
        assertThat(o.timeouts().requestMs()).isEqualTo(5000);
        assertThat(o.failover()).isFalse();
        assertThat(o.shareAnchor()).isFalse();
        assertThat(o.host().model()).isEqualTo(dir.resolve("../models/m").normalize());
        assertThat(o.host().weights()).isEqualTo("Q4");
        assertThat(o.host().device()).isEqualTo("cpu");
        assertThat(o.host().maxSessions()).isEqualTo(3);

        ClusterOptions back = ClusterOptions.parse(o.toJson(), null);
        assertThat(back).isEqualTo(o);
    }

    @Test
    void absentKeysKeepTheDefaults() {
        ClusterOptions o = ClusterOptions.parse("{\"clusterName\": \"c1\"}", dir);
        assertThat(o.clusterName()).isEqualTo("c1");
        assertThat(o.hazelcast()).isEqualTo(ClusterOptions.defaults().hazelcast());
        assertThat(o.timeouts()).isEqualTo(ClusterOptions.defaults().timeouts());
    }

    @Test
    void rejectsBadConfigurationsWithClearMessages() {
        assertThatThrownBy(() -> ClusterOptions.parse("{\"tsl\": {}}", dir))
                .hasMessageContaining("unknown key 'tsl'");
        assertThatThrownBy(() -> ClusterOptions.parse("{\"tls\": {\"enable\": true}}", dir))
                .hasMessageContaining("unknown key 'tls.enable'");
        assertThatThrownBy(() -> ClusterOptions.parse("{\"hazelcast\": {\"port\": 70000}}", dir))
                .hasMessageContaining("hazelcast.port");
        assertThatThrownBy(() -> ClusterOptions.parse("{\"hazelcast\": {\"members\": []}}", dir))
                .hasMessageContaining("at least one member");
        assertThatThrownBy(() -> ClusterOptions.parse("{\"hazelcast\": {\"members\": [\"host:port\"]}}", dir))
                .hasMessageContaining("bad port");
        assertThatThrownBy(() -> ClusterOptions.parse("{\"hazelcast\": {\"members\": [\"a b\"]}}", dir))
                .hasMessageContaining("host name or IP address");
        assertThatThrownBy(() -> ClusterOptions.parse("{\"clusterName\": \"has space\"}", dir))
                .hasMessageContaining("clusterName");
        assertThatThrownBy(() -> ClusterOptions.parse("{\"timeouts\": {\"requestMs\": 0}}", dir))
                .hasMessageContaining("timeouts.requestMs must be positive");
        assertThatThrownBy(() -> ClusterOptions.parse("{\"timeouts\": {\"requestMs\": \"5s\"}}", dir))
                .hasMessageContaining("must be an integer");
        assertThatThrownBy(() -> ClusterOptions.parse("{\"host\": {\"weights\": \"F16\"}}", dir))
                .hasMessageContaining("host.weights");
        assertThat(ClusterOptions.parse("{\"host\": {\"weights\": \"bf16\"}}", dir).host().weights()).isEqualTo("BF16");
        assertThat(ClusterOptions.parse("{\"host\": {\"kv\": \"BF16\"}}", dir).host().kvPrecision())
                .isEqualTo(KvPrecision.BF16);
        assertThatThrownBy(() -> ClusterOptions.parse("{\"host\": {\"kv\": \"fp8\"}}", dir))
                .hasMessageContaining("host.kv must be f32 or bf16");
        assertThatThrownBy(() -> ClusterOptions.parse("{\"failover\": \"yes\"}", dir))
                .hasMessageContaining("true or false");
        assertThatThrownBy(() -> ClusterOptions.parse("[1]", dir)).hasMessageContaining("JSON object");
        assertThatThrownBy(() -> ClusterOptions.parse("{", dir)).hasMessageContaining("not valid JSON");
        assertThatThrownBy(() -> ClusterOptions.load(dir.resolve("missing.json")))
                .hasMessageContaining("cannot read cluster configuration");
    }

    @Test
    void tlsNeedsReadableStoresAndPasswords() throws IOException {
        assertThatThrownBy(() -> ClusterOptions.parse("{\"tls\": {\"enabled\": true}}", dir))
                .hasMessageContaining("tls.keyStore is required");
        assertThatThrownBy(() -> ClusterOptions.parse("{\"tls\": {\"enabled\": true, \"keyStore\": \"nope.p12\","
                + " \"trustStore\": \"nope.p12\", \"keyStorePassword\": \"p\", \"trustStorePassword\": \"p\"}}", dir))
                .hasMessageContaining("is not a readable file");
        Files.writeString(dir.resolve("k.pem"), "x");
        assertThatThrownBy(() -> ClusterOptions.parse("{\"tls\": {\"enabled\": true, \"keyStore\": \"k.pem\","
                + " \"trustStore\": \"k.pem\", \"keyStorePassword\": \"p\", \"trustStorePassword\": \"p\"}}", dir))
                .hasMessageContaining("PKCS#12");
        Files.writeString(dir.resolve("k.p12"), "x");
        assertThatThrownBy(() -> ClusterOptions.parse("{\"tls\": {\"enabled\": true, \"keyStore\": \"k.p12\","
                + " \"trustStore\": \"k.p12\", \"trustStorePassword\": \"p\"}}", dir))
                .hasMessageContaining("keyStorePassword");
        ClusterOptions o = ClusterOptions.parse("{\"tls\": {\"enabled\": true, \"keyStore\": \"k.p12\","
                + " \"trustStore\": \"k.p12\", \"keyStorePassword\": \"env:SA_SURELY_UNSET_VARIABLE\","
                + " \"trustStorePassword\": \"p\"}}", dir);
        assertThat(o.tls().resolvedTrustStorePassword()).isEqualTo("p");
        assertThatThrownBy(() -> o.tls().resolvedKeyStorePassword())
                .hasMessageContaining("SA_SURELY_UNSET_VARIABLE, which is not set");
    }

    @Test
    void hazelcastGetsExplicitMembersBoundInterfacesAndNoDiscoveryOrPhoneHome() {
        ClusterOptions o = ClusterOptions.defaults().withClusterName("c2").withHazelcast(
                new ClusterOptions.Hazelcast("127.0.0.1", 5901, false, List.of("127.0.0.1:5901", "127.0.0.1:5902"), 6));
        Config c = OpenMembership.hazelcastConfig(o);
        assertThat(c.getClusterName()).isEqualTo("c2");
        assertThat(c.getProperty("hazelcast.phone.home.enabled")).isEqualTo("false");
        assertThat(c.getProperty("hazelcast.socket.bind.any")).isEqualTo("false");
        assertThat(c.getProperty("hazelcast.max.no.heartbeat.seconds")).isEqualTo("6");
        assertThat(c.getNetworkConfig().getPort()).isEqualTo(5901);
        assertThat(c.getNetworkConfig().isPortAutoIncrement()).isFalse();
        assertThat(c.getNetworkConfig().getInterfaces().isEnabled()).isTrue();
        assertThat(c.getNetworkConfig().getInterfaces().getInterfaces()).containsExactly("127.0.0.1");
        JoinConfig j = c.getNetworkConfig().getJoin();
        assertThat(j.getMulticastConfig().isEnabled()).isFalse();
        assertThat(j.getAutoDetectionConfig().isEnabled()).isFalse();
        assertThat(j.getTcpIpConfig().isEnabled()).isTrue();
        assertThat(j.getTcpIpConfig().getMembers()).containsExactly("127.0.0.1:5901", "127.0.0.1:5902");
        assertThat(c.getMultiMapConfig("__vertx.subs").getValueCollectionType().name()).isEqualTo("SET");
    }

    @Test
    void eventBusTlsIsMutualAndNeverTrustsAll() throws IOException {
        Files.writeString(dir.resolve("node.p12"), "x");
        Files.writeString(dir.resolve("trust.jks"), "x");
        ClusterOptions o = ClusterOptions.defaults().withTls(new ClusterOptions.Tls(true, dir.resolve("node.p12"), "a",
                dir.resolve("trust.jks"), "b"));
        EventBusOptions eb = ClusterNode.eventBusOptions(o);
        assertThat(eb.isSsl()).isTrue();
        assertThat(eb.isTrustAll()).isFalse();
        assertThat(eb.getClientAuth()).isEqualTo(ClientAuth.REQUIRED);
        assertThat(eb.getHost()).isEqualTo("127.0.0.1");
        assertThat(eb.getKeyCertOptions()).isInstanceOf(io.vertx.core.net.PfxOptions.class);
        assertThat(eb.getTrustOptions()).isInstanceOf(io.vertx.core.net.JksOptions.class);
        assertThat(ClusterNode.eventBusOptions(ClusterOptions.defaults()).isSsl()).isFalse();
    }

    @Test
    void membershipIsOpenByDefaultAndCertifiedNeedsTls() throws IOException {
        assertThat(ClusterOptions.defaults().membership()).isEqualTo(ClusterOptions.Membership.OPEN);
        assertThatThrownBy(() -> ClusterOptions.defaults().withMembership(ClusterOptions.Membership.CERTIFIED))
                .hasMessageContaining("membership certified needs tls.enabled");
        assertThatThrownBy(() -> ClusterOptions.parse("{\"membership\": \"closed\"}", dir))
                .hasMessage("membership must be open or certified, got 'closed'");
        assertThatThrownBy(() -> ClusterOptions.parse("{\"membership\": \"certified\"}", dir))
                .hasMessageContaining("membership certified needs tls.enabled");
        Files.writeString(dir.resolve("node.p12"), "x");
        Files.writeString(dir.resolve("trust.p12"), "x");
        ClusterOptions o = ClusterOptions.parse("""
                {"membership": "Certified",
                 "tls": {"enabled": true, "keyStore": "node.p12", "keyStorePassword": "a",
                         "trustStore": "trust.p12", "trustStorePassword": "b"}}
                """, dir);
        assertThat(o.membership()).isEqualTo(ClusterOptions.Membership.CERTIFIED);
        assertThat(ClusterOptions.parse(o.toJson(), dir).membership()).isEqualTo(ClusterOptions.Membership.CERTIFIED);
        assertThat(ClusterOptions.parse(ClusterOptions.defaults().toJson(), dir).membership())
                .isEqualTo(ClusterOptions.Membership.OPEN);
    }
}
