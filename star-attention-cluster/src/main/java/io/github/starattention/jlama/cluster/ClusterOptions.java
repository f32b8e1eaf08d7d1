package io.github.starattention.jlama.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.github.starattention.kv.KvPrecision;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Configuration of one cluster node (a context host or the query host), usually read from a JSON file with
 * {@link #load(Path)}. Every node of a cluster uses the same cluster name, member list, TLS and membership setting.
 *
 * <p>The defaults keep everything on the loopback interface: Hazelcast on {@code 127.0.0.1:5701} (next free port up
 * to 5710), members {@code 127.0.0.1}, the event bus on {@code 127.0.0.1} with an ephemeral port, no TLS.
 * Multicast, auto-detection and Hazelcast's phone-home are always off; TLS never trusts all certificates.
 *
 * @param clusterName cluster name; nodes with another name never join
 * @param nodeName display name of this node in logs and errors
 * @param hazelcast membership transport (interface, ports, members, failure detection; also for JGroups)
 * @param eventBus message transport
 * @param tls event-bus TLS with mutual authentication
 * @param membership who may join: {@link Membership#OPEN} (Hazelcast, the default) or {@link Membership#CERTIFIED}
 *     (JGroups over mutual TLS with the {@code tls} stores; needs {@code tls.enabled})
 * @param timeouts every wait is bounded by one of these
 * @param failover re-prefill the blocks of a failed host on a surviving one (or the query host) and finish the
 *     request; when off, a failed host fails the request with a {@link HostFailureException}
 * @param shareAnchor phase 1: the host encoding block 0 sends the anchor's KV to the hosts encoding the other blocks,
 *     layer by layer, instead of each of them encoding the anchor again (the same KV, bit for bit). It saves
 *     {@code a / (a + block)} of their phase-1 compute for {@code a x layers x kvHeads x headDim x 8} bytes per host
 *     (8 MiB for the bundled model at a 1024-token anchor); turn it off where the network is slower than computing
 *     the anchor (large models on GPUs). Set on the query host, which plans phase 1.
 * @param host what a context host serves (ignored by the query host except for the model fingerprint)
 */
public record ClusterOptions(String clusterName, String nodeName, Hazelcast hazelcast, EventBus eventBus, Tls tls,
                             Membership membership, Timeouts timeouts, boolean failover, boolean shareAnchor,
                             Host host) {

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9._-]{1,64}");
    private static final Pattern HOST = Pattern.compile("[A-Za-z0-9.:\\[\\]-]{1,255}");

    public ClusterOptions {
        if (clusterName == null || !NAME.matcher(clusterName).matches()) {
            throw new IllegalArgumentException("clusterName must be 1-64 letters, digits, '.', '_' or '-', got '" + clusterName + "'");
        }
        if (nodeName == null || nodeName.isBlank() || nodeName.length() > 128) {
            throw new IllegalArgumentException("nodeName must be 1-128 characters, got '" + nodeName + "'");
        }
        Objects.requireNonNull(hazelcast, "hazelcast");
        Objects.requireNonNull(eventBus, "eventBus");
        Objects.requireNonNull(tls, "tls");
        Objects.requireNonNull(membership, "membership");
        if (membership == Membership.CERTIFIED && !tls.enabled()) {
            throw new IllegalArgumentException("membership certified needs tls.enabled with tls.keyStore and "
                    + "tls.trustStore: members prove themselves with those certificates");
        }
        Objects.requireNonNull(timeouts, "timeouts");
        Objects.requireNonNull(host, "host");
    }

    /**
     * Who may become a member of the cluster, and so read and change its shared state (the event-bus subscriptions
     * {@code __vertx.subs}, the node list).
     */
    public enum Membership {
        /**
         * Hazelcast: anyone who reaches a member port and knows the cluster name joins (open-source Hazelcast has no
         * member authentication). Event-bus TLS still keeps such a node from exchanging messages with the hosts, but
         * it can change the shared state. Keep the member ports on a private network.
         */
        OPEN,
        /**
         * JGroups (under the Vert.x Infinispan cluster manager) over TLS 1.2/1.3 with mutual authentication, using
         * the {@code tls} key store and trust store: a process without a certificate signed by a CA in the trust
         * store cannot open a connection to a member, so it can neither join nor read or change the shared state;
         * it forms a cluster of its own. The {@code hazelcast} section still names the interface, ports, members and
         * failure detection.
         */
        CERTIFIED;

        static Membership parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "open" -> OPEN;
                case "certified" -> CERTIFIED;
                default -> throw new IllegalArgumentException("membership must be open or certified, got '" + s + "'");
            };
        }
    }

    /**
     * The membership transport: Hazelcast's with {@link Membership#OPEN}, JGroups' with {@link Membership#CERTIFIED}.
     *
     * @param host interface Hazelcast binds to and announces (an address of this machine)
     * @param port first port to try
     * @param portAutoIncrement try the next ports (up to {@code port + 9}) when {@code port} is taken
     * @param members the explicit TCP-IP member list, {@code host} or {@code host:port}; a member without a port is
     *     tried on {@code port..port+9}
     * @param failureDetectionSeconds a member silent for this long is removed (Hazelcast's max-no-heartbeat,
     *     JGroups' FD_ALL3 timeout)
     */
    public record Hazelcast(String host, int port, boolean portAutoIncrement, List<String> members,
                            int failureDetectionSeconds) {
        public Hazelcast {
            checkHost(host, "hazelcast.host");
            checkPort(port, 1, "hazelcast.port");
            members = List.copyOf(Objects.requireNonNull(members, "members"));
            if (members.isEmpty()) {
                throw new IllegalArgumentException("hazelcast.members must list at least one member (host or host:port)");
            }
            for (String m : members) {
                checkMember(m);
            }
            if (failureDetectionSeconds < 2 || failureDetectionSeconds > 600) {
                throw new IllegalArgumentException("hazelcast.failureDetectionSeconds must be in [2, 600], got " + failureDetectionSeconds);
            }
        }
    }

    /**
     * The Vert.x event bus server of this node.
     *
     * @param host interface it binds to
     * @param port port, 0 for an ephemeral one
     * @param publicHost address other nodes connect to, {@code null} for {@code host}
     */
    public record EventBus(String host, int port, String publicHost) {
        public EventBus {
            checkHost(host, "eventBus.host");
            checkPort(port, 0, "eventBus.port");
            if (publicHost != null) {
                checkHost(publicHost, "eventBus.publicHost");
            }
        }
    }

    /**
     * Event-bus TLS with mutual authentication: every connection presents a certificate signed by a CA in the trust
     * store, or is refused. Stores are PKCS#12 ({@code .p12}, {@code .pfx}) or JKS ({@code .jks}).
     * A password written {@code env:NAME} is read from the environment variable {@code NAME}.
     */
    public record Tls(boolean enabled, Path keyStore, String keyStorePassword, Path trustStore,
                      String trustStorePassword) {
        public Tls {
            if (enabled) {
                checkStore(keyStore, "tls.keyStore");
                checkStore(trustStore, "tls.trustStore");
                Objects.requireNonNull(keyStorePassword, "tls.keyStorePassword is required with TLS");
                Objects.requireNonNull(trustStorePassword, "tls.trustStorePassword is required with TLS");
            }
        }

        public static Tls off() {
            return new Tls(false, null, null, null, null);
        }

        /** The key store password, resolved ({@code env:NAME} read from the environment). */
        public String resolvedKeyStorePassword() {
            return resolvePassword(keyStorePassword, "tls.keyStorePassword");
        }

        /** The trust store password, resolved. */
        public String resolvedTrustStorePassword() {
            return resolvePassword(trustStorePassword, "tls.trustStorePassword");
        }
    }

    /**
     * Bounds of every wait.
     *
     * @param requestMs a phase-2 request (one layer on one host) or an info probe
     * @param prefillMs phase 1 of one host's blocks
     * @param joinMs joining the cluster (starting Hazelcast and the event bus)
     * @param hostWaitMs waiting for context hosts to appear
     * @param sessionIdleMs a context unused for this long is released (on the hosts and the query host)
     */
    public record Timeouts(long requestMs, long prefillMs, long joinMs, long hostWaitMs, long sessionIdleMs) {
        public Timeouts {
            checkPositive(requestMs, "timeouts.requestMs");
            checkPositive(prefillMs, "timeouts.prefillMs");
            checkPositive(joinMs, "timeouts.joinMs");
            checkPositive(hostWaitMs, "timeouts.hostWaitMs");
            checkPositive(sessionIdleMs, "timeouts.sessionIdleMs");
        }
    }

    /**
     * What a context host serves.
     *
     * @param model model folder, {@code null} for the bundled model
     * @param threads worker threads, 0 for all cores
     * @param weights weight format in memory ({@code F32}, {@code BF16}, {@code AS_STORED}, {@code Q8}, {@code Q4}); part of the model
     *     fingerprint, so hosts and the query host must agree
     * @param device attention kernels ({@code cpu}, {@code cuda}, {@code auto})
     * @param maxSessions contexts a host holds at once; more are refused
     * @param kv K and V in CPU memory, {@code f32} (default) or {@code bf16}; part of the model fingerprint (through
     *     the kernel's numerics), so the query host's {@code kvPrecision} must agree
     */
    public record Host(Path model, int threads, String weights, String device, int maxSessions, String kv) {

        /** A host with fp32 KV. */
        public Host(Path model, int threads, String weights, String device, int maxSessions) {
            this(model, threads, weights, device, maxSessions, "f32");
        }

        public Host {
            if (threads < 0) {
                throw new IllegalArgumentException("host.threads must be >= 0 (0 = all cores), got " + threads);
            }
            weights = Objects.requireNonNullElse(weights, "F32").toUpperCase(Locale.ROOT);
            if (!Set.of("F32", "BF16", "AS_STORED", "Q8", "Q4").contains(weights)) {
                throw new IllegalArgumentException("host.weights must be F32, BF16, AS_STORED, Q8 or Q4, got '" + weights
                        + "'");
            }
            device = Objects.requireNonNullElse(device, "cpu").toLowerCase(Locale.ROOT);
            if (!Set.of("cpu", "cuda", "auto").contains(device)) {
                throw new IllegalArgumentException("host.device must be cpu, cuda or auto, got '" + device + "'");
            }
            if (maxSessions < 1) {
                throw new IllegalArgumentException("host.maxSessions must be at least 1, got " + maxSessions);
            }
            kv = Objects.requireNonNullElse(kv, "f32").toLowerCase(Locale.ROOT);
            if (!Set.of("f32", "bf16").contains(kv)) {
                throw new IllegalArgumentException("host.kv must be f32 or bf16, got '" + kv + "'");
            }
        }

        /** {@link #kv} as the kernel's KV precision. */
        public KvPrecision kvPrecision() {
            return kv.equals("bf16") ? KvPrecision.BF16 : KvPrecision.F32;
        }
    }

    /** Loopback defaults (see the class comment). */
    public static ClusterOptions defaults() {
        return new ClusterOptions("star-attention", defaultNodeName(),
                new Hazelcast("127.0.0.1", 5701, true, List.of("127.0.0.1"), 5),
                new EventBus("127.0.0.1", 0, null), Tls.off(), Membership.OPEN,
                new Timeouts(30_000, 600_000, 60_000, 60_000, 600_000), true, true,
                new Host(null, 0, "F32", "cpu", 16));
    }

    private static String defaultNodeName() {
        return "node-" + ProcessHandle.current().pid();
    }

    public ClusterOptions withNodeName(String name) {
        return new ClusterOptions(clusterName, name, hazelcast, eventBus, tls, membership, timeouts, failover, shareAnchor, host);
    }

    public ClusterOptions withClusterName(String name) {
        return new ClusterOptions(name, nodeName, hazelcast, eventBus, tls, membership, timeouts, failover, shareAnchor, host);
    }

    public ClusterOptions withHazelcast(Hazelcast h) {
        return new ClusterOptions(clusterName, nodeName, h, eventBus, tls, membership, timeouts, failover, shareAnchor, host);
    }

    /**
     * As these options with a failure detection of at least {@code seconds}: nodes that share one machine's cores
     * (local hosts, tests) miss heartbeats while busy, which must not read as death.
     */
    public ClusterOptions withFailureDetectionAtLeast(int seconds) {
        Hazelcast h = hazelcast;
        return withHazelcast(new Hazelcast(h.host(), h.port(), h.portAutoIncrement(), h.members(),
                Math.max(h.failureDetectionSeconds(), seconds)));
    }

    public ClusterOptions withEventBus(EventBus e) {
        return new ClusterOptions(clusterName, nodeName, hazelcast, e, tls, membership, timeouts, failover, shareAnchor, host);
    }

    public ClusterOptions withTls(Tls t) {
        return new ClusterOptions(clusterName, nodeName, hazelcast, eventBus, t, membership, timeouts, failover, shareAnchor, host);
    }

    /** As these options with {@code m}; {@link Membership#CERTIFIED} needs TLS, so set {@link #withTls} first. */
    public ClusterOptions withMembership(Membership m) {
        return new ClusterOptions(clusterName, nodeName, hazelcast, eventBus, tls, m, timeouts, failover, shareAnchor, host);
    }

    public ClusterOptions withTimeouts(Timeouts t) {
        return new ClusterOptions(clusterName, nodeName, hazelcast, eventBus, tls, membership, t, failover, shareAnchor, host);
    }

    public ClusterOptions withFailover(boolean f) {
        return new ClusterOptions(clusterName, nodeName, hazelcast, eventBus, tls, membership, timeouts, f, shareAnchor, host);
    }

    public ClusterOptions withShareAnchor(boolean share) {
        return new ClusterOptions(clusterName, nodeName, hazelcast, eventBus, tls, membership, timeouts, failover, share, host);
    }

    public ClusterOptions withHost(Host h) {
        return new ClusterOptions(clusterName, nodeName, hazelcast, eventBus, tls, membership, timeouts, failover, shareAnchor, h);
    }

    // ------------------------------------------------------------------------------------------ JSON

    /**
     * Reads a JSON configuration; absent keys keep {@link #defaults()}, unknown keys are errors (a misspelt
     * {@code "tls"} must not silently turn TLS off). Relative paths are resolved against the file's folder.
     *
     * @throws IllegalArgumentException with the file name for unreadable files, bad JSON or invalid values
     */
    public static ClusterOptions load(Path file) {
        if (!Files.isRegularFile(file) || !Files.isReadable(file)) {
            throw new IllegalArgumentException("cannot read cluster configuration " + file);
        }
        try {
            Path base = file.toAbsolutePath().getParent();
            return parse(Files.readString(file), base);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read cluster configuration " + file + ": " + e.getMessage(), e);
        } catch (IllegalArgumentException | NullPointerException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /** Parses a JSON configuration; relative paths are resolved against {@code base}. */
    public static ClusterOptions parse(String json, Path base) {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalArgumentException("not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException("the configuration must be a JSON object");
        }
        ClusterOptions d = defaults();
        allowOnly(root, "", "clusterName", "nodeName", "hazelcast", "eventBus", "tls", "membership", "timeouts", "failover",
                "shareAnchor", "host");

        JsonNode hz = section(root, "hazelcast", "port", "host", "portAutoIncrement", "members", "failureDetectionSeconds");
        Hazelcast h = d.hazelcast();
        h = new Hazelcast(text(hz, "host", h.host()), integer(hz, "port", h.port()),
                bool(hz, "portAutoIncrement", h.portAutoIncrement()), strings(hz, "members", h.members()),
                integer(hz, "failureDetectionSeconds", h.failureDetectionSeconds()));

        JsonNode eb = section(root, "eventBus", "host", "port", "publicHost");
        EventBus e = new EventBus(text(eb, "host", d.eventBus().host()), integer(eb, "port", d.eventBus().port()),
                text(eb, "publicHost", null));

        JsonNode tl = section(root, "tls", "enabled", "keyStore", "keyStorePassword", "trustStore", "trustStorePassword");
        Tls t = new Tls(bool(tl, "enabled", false), path(tl, "keyStore", base), text(tl, "keyStorePassword", null),
                path(tl, "trustStore", base), text(tl, "trustStorePassword", null));

        JsonNode to = section(root, "timeouts", "requestMs", "prefillMs", "joinMs", "hostWaitMs", "sessionIdleMs");
        Timeouts dt = d.timeouts();
        Timeouts tt = new Timeouts(longValue(to, "requestMs", dt.requestMs()), longValue(to, "prefillMs", dt.prefillMs()),
                longValue(to, "joinMs", dt.joinMs()), longValue(to, "hostWaitMs", dt.hostWaitMs()),
                longValue(to, "sessionIdleMs", dt.sessionIdleMs()));

        JsonNode ho = section(root, "host", "model", "threads", "weights", "device", "maxSessions", "kv");
        Host dh = d.host();
        Host hh = new Host(path(ho, "model", base), integer(ho, "threads", dh.threads()), text(ho, "weights", dh.weights()),
                text(ho, "device", dh.device()), integer(ho, "maxSessions", dh.maxSessions()), text(ho, "kv", dh.kv()));

        return new ClusterOptions(text(root, "clusterName", d.clusterName()), text(root, "nodeName", d.nodeName()),
                h, e, t, Membership.parse(text(root, "membership", "open")), tt, bool(root, "failover", d.failover()),
                bool(root, "shareAnchor", d.shareAnchor()), hh);
    }

    /** This configuration as JSON (absolute paths), readable by {@link #parse}. */
    public String toJson() {
        ObjectNode root = JSON.createObjectNode();
        root.put("clusterName", clusterName);
        root.put("nodeName", nodeName);
        ObjectNode hz = root.putObject("hazelcast");
        hz.put("host", hazelcast.host());
        hz.put("port", hazelcast.port());
        hz.put("portAutoIncrement", hazelcast.portAutoIncrement());
        ArrayNode members = hz.putArray("members");
        hazelcast.members().forEach(members::add);
        hz.put("failureDetectionSeconds", hazelcast.failureDetectionSeconds());
        ObjectNode eb = root.putObject("eventBus");
        eb.put("host", eventBus.host());
        eb.put("port", eventBus.port());
        if (eventBus.publicHost() != null) {
            eb.put("publicHost", eventBus.publicHost());
        }
        ObjectNode tl = root.putObject("tls");
        tl.put("enabled", tls.enabled());
        if (tls.keyStore() != null) {
            tl.put("keyStore", tls.keyStore().toAbsolutePath().toString());
        }
        if (tls.keyStorePassword() != null) {
            tl.put("keyStorePassword", tls.keyStorePassword());
        }
        if (tls.trustStore() != null) {
            tl.put("trustStore", tls.trustStore().toAbsolutePath().toString());
        }
        if (tls.trustStorePassword() != null) {
            tl.put("trustStorePassword", tls.trustStorePassword());
        }
        root.put("membership", membership.name().toLowerCase(Locale.ROOT));
        ObjectNode to = root.putObject("timeouts");
        to.put("requestMs", timeouts.requestMs());
        to.put("prefillMs", timeouts.prefillMs());
        to.put("joinMs", timeouts.joinMs());
        to.put("hostWaitMs", timeouts.hostWaitMs());
        to.put("sessionIdleMs", timeouts.sessionIdleMs());
        root.put("failover", failover);
        root.put("shareAnchor", shareAnchor);
        ObjectNode ho = root.putObject("host");
        if (host.model() != null) {
            ho.put("model", host.model().toAbsolutePath().toString());
        }
        ho.put("threads", host.threads());
        ho.put("weights", host.weights());
        ho.put("device", host.device());
        ho.put("maxSessions", host.maxSessions());
        ho.put("kv", host.kv());
        try {
            return JSON.writeValueAsString(root);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    // ------------------------------------------------------------------------------------------ helpers

    private static JsonNode section(JsonNode root, String name, String... keys) {
        JsonNode n = root.get(name);
        if (n == null || n.isNull()) {
            return JSON.createObjectNode();
        }
        if (!n.isObject()) {
            throw new IllegalArgumentException("'" + name + "' must be an object");
        }
        allowOnly(n, name + ".", keys);
        return n;
    }

    private static void allowOnly(JsonNode n, String prefix, String... keys) {
        Set<String> allowed = new LinkedHashSet<>(List.of(keys));
        for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!allowed.contains(k)) {
                throw new IllegalArgumentException("unknown key '" + prefix + k + "' (known: " + String.join(", ", allowed) + ")");
            }
        }
    }

    private static String text(JsonNode n, String key, String dflt) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) {
            return dflt;
        }
        if (!v.isTextual()) {
            throw new IllegalArgumentException("'" + key + "' must be a string, got " + v);
        }
        return v.asText();
    }

    private static int integer(JsonNode n, String key, int dflt) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) {
            return dflt;
        }
        if (!v.isIntegralNumber() || !v.canConvertToInt()) {
            throw new IllegalArgumentException("'" + key + "' must be an integer, got " + v);
        }
        return v.intValue();
    }

    private static long longValue(JsonNode n, String key, long dflt) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) {
            return dflt;
        }
        if (!v.isIntegralNumber() || !v.canConvertToLong()) {
            throw new IllegalArgumentException("'" + key + "' must be an integer, got " + v);
        }
        return v.longValue();
    }

    private static boolean bool(JsonNode n, String key, boolean dflt) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) {
            return dflt;
        }
        if (!v.isBoolean()) {
            throw new IllegalArgumentException("'" + key + "' must be true or false, got " + v);
        }
        return v.booleanValue();
    }

    private static List<String> strings(JsonNode n, String key, List<String> dflt) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) {
            return dflt;
        }
        if (!v.isArray()) {
            throw new IllegalArgumentException("'" + key + "' must be an array of strings, got " + v);
        }
        List<String> out = new ArrayList<>();
        for (JsonNode e : v) {
            if (!e.isTextual()) {
                throw new IllegalArgumentException("'" + key + "' must be an array of strings, got " + e);
            }
            out.add(e.asText());
        }
        return out;
    }

    private static Path path(JsonNode n, String key, Path base) {
        String s = text(n, key, null);
        if (s == null) {
            return null;
        }
        Path p = Path.of(s);
        return p.isAbsolute() || base == null ? p : base.resolve(p).normalize();
    }

    private static void checkHost(String host, String what) {
        if (host == null || !HOST.matcher(host).matches()) {
            throw new IllegalArgumentException(what + " must be a host name or IP address, got '" + host + "'");
        }
    }

    private static void checkPort(int port, int min, String what) {
        if (port < min || port > 65535) {
            throw new IllegalArgumentException(what + " must be in [" + min + ", 65535], got " + port);
        }
    }

    private static void checkMember(String m) {
        if (m == null || m.isBlank()) {
            throw new IllegalArgumentException("hazelcast.members has an empty entry");
        }
        int colon = m.lastIndexOf(':');
        if (colon > 0 && m.indexOf(':') == colon) {
            checkHost(m.substring(0, colon), "hazelcast.members entry '" + m + "'");
            try {
                checkPort(Integer.parseInt(m.substring(colon + 1)), 1, "hazelcast.members entry '" + m + "' port");
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("hazelcast.members entry '" + m + "' has a bad port");
            }
        } else {
            checkHost(m, "hazelcast.members entry");
        }
    }

    private static void checkPositive(long v, String what) {
        if (v <= 0) {
            throw new IllegalArgumentException(what + " must be positive, got " + v);
        }
    }

    private static void checkStore(Path p, String what) {
        if (p == null) {
            throw new IllegalArgumentException(what + " is required when tls.enabled is true");
        }
        if (!Files.isRegularFile(p) || !Files.isReadable(p)) {
            throw new IllegalArgumentException(what + " " + p + " is not a readable file");
        }
        String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
        if (!(n.endsWith(".p12") || n.endsWith(".pfx") || n.endsWith(".jks"))) {
            throw new IllegalArgumentException(what + " " + p + " must be a PKCS#12 (.p12, .pfx) or JKS (.jks) store");
        }
    }

    private static String resolvePassword(String value, String what) {
        if (value != null && value.startsWith("env:")) {
            String v = System.getenv(value.substring(4));
            if (v == null) {
                throw new IllegalArgumentException(what + " names the environment variable " + value.substring(4) + ", which is not set");
            }
            return v;
        }
        return value;
    }
}
