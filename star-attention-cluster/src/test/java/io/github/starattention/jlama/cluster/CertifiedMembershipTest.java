package io.github.starattention.jlama.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.ext.cluster.infinispan.InfinispanClusterManager;
import java.io.File;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.MethodModel;
import java.lang.classfile.instruction.InvokeInstruction;
import java.lang.constant.MethodTypeDesc;
import java.lang.invoke.MethodHandles;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.InetSocketAddress;
import java.net.URL;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import org.jgroups.JChannel;
import org.jgroups.protocols.FD_ALL3;
import org.jgroups.protocols.TCP;
import org.jgroups.stack.Protocol;
import org.jgroups.util.TLSClientAuth;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The JGroups stack of certified membership: one transport, TCP over TLS with client authentication required, and
 * no protocol that listens or talks outside it (no UDP, multicast discovery, FD_SOCK ports or diagnostics).
 * {@code ClusterTlsIT} shows a rogue node failing to join a running cluster.
 */
class CertifiedMembershipTest {

    private static final String PASSWORD = "changeit-test";

    @TempDir
    static Path dir;

    @BeforeAll
    static void stores() throws Exception {
        TestStores.selfSigned(dir, "certified-membership", PASSWORD);
    }

    private static ClusterOptions certified(ClusterOptions.Hazelcast h) {
        return ClusterOptions.defaults().withHazelcast(h)
                .withTls(new ClusterOptions.Tls(true, dir.resolve("node.p12"), PASSWORD, dir.resolve("trust.p12"),
                        PASSWORD))
                .withMembership(ClusterOptions.Membership.CERTIFIED);
    }

    @Test
    void theOnlyTransportIsTcpOverMutualTls() throws Exception {
        ClusterOptions o = certified(new ClusterOptions.Hazelcast("127.0.0.1", 5901, false, List.of("127.0.0.1"), 7));
        try (JChannel ch = CertifiedMembership.channel(o, "n1")) {
            List<String> names = ch.getProtocolStack().getProtocols().reversed().stream().map(Protocol::getName)
                    .toList();
            assertThat(names).containsExactly("TCP", "TCPPING", "MERGE3", "FD_ALL3", "VERIFY_SUSPECT2", "NAKACK2",
                    "UNICAST3", "STABLE", "GMS", "UFC", "MFC", "FRAG4");
            TCP tcp = ch.getProtocolStack().findProtocol(TCP.class);
            assertThat(tcp.tls().enabled()).isTrue();
            assertThat(tcp.tls().getClientAuth()).isEqualTo(TLSClientAuth.NEED);
            assertThat(tcp.tls().getProtocols()).containsExactly("TLSv1.3", "TLSv1.2");
            assertThat(tcp.getBindPort()).isEqualTo(5901);
            assertThat(tcp.getPortRange()).isZero();
            assertThat(tcp.getDiagnosticsHandler() == null || !tcp.getDiagnosticsHandler().isEnabled()).isTrue();
            assertThat(ch.getProtocolStack().<FD_ALL3>findProtocol(FD_ALL3.class).getTimeout()).isEqualTo(7_000);
        }
    }

    @Test
    void membersWithoutAPortAreTriedOnTheWholeRange() throws Exception {
        List<InetSocketAddress> hosts = CertifiedMembership.initialHosts(new ClusterOptions.Hazelcast("127.0.0.1", 5701,
                true, List.of("127.0.0.1:6001", "127.0.0.2"), 5));
        assertThat(hosts).hasSize(1 + CertifiedMembership.PORT_RANGE + 1);
        assertThat(hosts.getFirst()).isEqualTo(new InetSocketAddress("127.0.0.1", 6001));
        assertThat(hosts.subList(1, hosts.size())).extracting(InetSocketAddress::getPort)
                .containsExactly(5701, 5702, 5703, 5704, 5705, 5706, 5707, 5708, 5709, 5710);
        assertThat(hosts.get(1).getHostString()).isEqualTo("127.0.0.2");
    }

    /**
     * vertx-infinispan 5.0 was compiled against Infinispan 14 and runs here on 15: every Infinispan method it calls
     * must still link (exist and be public), except {@code DefaultCacheManager.getTransport()}, which became private
     * and which {@link CertifiedMembership.Infinispan15ClusterManager} keeps it from reaching.
     */
    @Test
    void vertxInfinispanLinksAgainstThisInfinispanApartFromWhatTheSubclassReplaces() throws Exception {
        Map<String, Set<String>> callers = new TreeMap<>(); // unlinkable method -> vertx-infinispan methods calling it
        Map<String, Set<String>> callersOfHelper = new TreeMap<>();
        URL jar = InfinispanClusterManager.class.getProtectionDomain().getCodeSource().getLocation();
        try (JarFile jf = new JarFile(new File(jar.toURI()))) {
            for (JarEntry e : Collections.list(jf.entries())) {
                if (!e.getName().endsWith(".class")) {
                    continue;
                }
                ClassModel cm = ClassFile.of().parse(jf.getInputStream(e).readAllBytes());
                for (MethodModel m : cm.methods()) {
                    String caller = cm.thisClass().asInternalName() + "." + m.methodName().stringValue();
                    m.code().ifPresent(code -> code.forEach(el -> {
                        if (el instanceof InvokeInstruction i) {
                            String owner = i.owner().asInternalName();
                            String ref = owner + "." + i.name().stringValue() + i.type().stringValue();
                            if (owner.startsWith("org/infinispan/") && !links(owner, i.name().stringValue(), i.typeSymbol())) {
                                callers.computeIfAbsent(ref, k -> new TreeSet<>()).add(caller);
                            }
                            if (i.name().stringValue().equals("getHostFromTransportProtocol")) {
                                callersOfHelper.computeIfAbsent(ref, k -> new TreeSet<>()).add(caller);
                            }
                        }
                    }));
                }
            }
        }
        String icm = "io/vertx/ext/cluster/infinispan/InfinispanClusterManager";
        assertThat(callers).containsOnlyKeys(
                "org/infinispan/manager/DefaultCacheManager.getTransport()Lorg/infinispan/remoting/transport/Transport;");
        assertThat(callers.values().iterator().next())
                .containsExactlyInAnyOrder(icm + ".getNodes", icm + ".getHostFromTransportProtocol");
        assertThat(callersOfHelper.values()).flatMap(v -> v)
                .containsOnly(icm + ".clusterHost", icm + ".clusterPublicHost");
        for (String overridden : List.of("getNodes", "clusterHost", "clusterPublicHost")) {
            assertThat(CertifiedMembership.Infinispan15ClusterManager.class.getDeclaredMethod(overridden)).isNotNull();
        }
    }

    private static boolean links(String owner, String name, MethodTypeDesc type) {
        try {
            Class<?> c = Class.forName(owner.replace('/', '.'), false, CertifiedMembershipTest.class.getClassLoader());
            Class<?>[] params = new Class<?>[type.parameterCount()];
            for (int i = 0; i < params.length; i++) {
                params[i] = type.parameterType(i).resolveConstantDesc(MethodHandles.lookup());
            }
            if (name.equals("<init>")) {
                return Modifier.isPublic(c.getDeclaredConstructor(params).getModifiers());
            }
            for (Class<?> k = c; k != null; k = k.getSuperclass()) {
                try {
                    Method m = k.getDeclaredMethod(name, params);
                    return Modifier.isPublic(m.getModifiers());
                } catch (NoSuchMethodException e) {
                    // look further up
                }
            }
            c.getMethod(name, params); // an interface's (default) method
            return true;
        } catch (ReflectiveOperationException e) {
            return false;
        }
    }
}
