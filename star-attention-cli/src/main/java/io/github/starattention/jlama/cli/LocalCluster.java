package io.github.starattention.jlama.cli;

import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.cluster.ClusterEngine;
import io.github.starattention.jlama.cluster.ClusterOptions;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Context hosts as child JVMs on {@code 127.0.0.1}, for {@code ask --hosts N}, the benchmark and the integration
 * tests; {@link #engine} starts them and joins them as the query host in one call ({@link #startServing} and
 * {@link #join} do it in two, for more than one query host on the same hosts). Each child runs
 * {@code StarAttentionCli host --config FILE} with this JVM's Java, class path and the launcher's flags, in a cluster
 * of its own (a random cluster name, free Hazelcast ports, all members listed explicitly). The
 * query host joins with {@link #queryHostOptions()}.
 *
 * <p>The children share this machine's cores, so a child of {@code host.threads = N} is started as a JVM of N
 * processors ({@code -XX:ActiveProcessorCount}): its garbage collector, JIT compilers and common ForkJoin pool (where
 * Jlama's parallel streams run) size themselves to its share instead of each claiming the whole machine.
 *
 * <p>Children never outlive this JVM: {@link #close()} stops them (SIGTERM, then {@code destroyForcibly}), a shutdown
 * hook does the same if this JVM exits without closing, and each child exits by itself when its parent process dies.
 */
public final class LocalCluster implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(LocalCluster.class);

    /** Printed by {@code host} once it can be reached; {@link #awaitReady} looks for it. */
    public static final String READY = "star-attention host ready";

    /** Hazelcast ports of local clusters are picked in {@code [FIRST_PORT, LAST_PORT)} (see {@link #freePorts}). */
    static final int FIRST_PORT = 20_000;
    static final int LAST_PORT = 32_000;

    private static final List<String> JVM_FLAGS = List.of("--add-modules", "jdk.incubator.vector",
            "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-Xss4m",
            "-Djava.net.preferIPv4Stack=true", "-Dhazelcast.phone.home.enabled=false", "-Dhazelcast.logging.type=slf4j",
            "-Dorg.slf4j.simpleLogger.showDateTime=true", "-Dorg.slf4j.simpleLogger.log.com.hazelcast=warn",
            "-Dorg.slf4j.simpleLogger.log.org.infinispan=warn", "-Dorg.slf4j.simpleLogger.log.org.jgroups=warn");

    private final ClusterOptions base;
    private final Path dir;
    private final boolean ownDir;
    private final List<String> jvmArgs;
    private final List<Process> processes = new ArrayList<>();
    private final List<Path> logs = new ArrayList<>();
    private final List<String> members = new ArrayList<>();
    private final int queryHostPort;
    private final Thread hook;
    private boolean closed;

    private LocalCluster(ClusterOptions base, Path dir, boolean ownDir, List<String> jvmArgs, int hosts) {
        this.base = base;
        this.dir = dir;
        this.ownDir = ownDir;
        this.jvmArgs = List.copyOf(jvmArgs);
        int[] ports = freePorts(hosts + 1);
        for (int p : ports) {
            members.add("127.0.0.1:" + p);
        }
        this.queryHostPort = ports[hosts];
        this.hook = new Thread(this::destroyAll, "star-attention-local-cluster-cleanup");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            for (int i = 0; i < hosts; i++) {
                spawn(i, ports[i]);
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /**
     * Spawns {@code hosts} context-host JVMs on {@code 127.0.0.1}, waits until they serve (at most
     * {@code -Dstar.attention.hostWaitMs}, default 180 s), and joins them as the query host; closing the
     * engine stops them. {@code -Dstar.attention.hostJvmArgs="..."} adds JVM options to every host (space-separated,
     * e.g. {@code -Xmx4g} or a flight recording).
     *
     * @param host what the hosts serve (model folder, threads, weights, device)
     */
    public static ClusterEngine engine(StarAttentionModel model, EngineOptions options, int hosts,
                                       ClusterOptions.Host host) {
        return engine(model, options, hosts, host, ClusterOptions.defaults().shareAnchor());
    }

    /**
     * {@link #engine(StarAttentionModel, EngineOptions, int, ClusterOptions.Host)} with the anchor shared
     * between hosts in phase 1 or not ({@link ClusterOptions#shareAnchor}).
     */
    public static ClusterEngine engine(StarAttentionModel model, EngineOptions options, int hosts,
                                       ClusterOptions.Host host, boolean shareAnchor) {
        LocalCluster local = startServing(hosts, host);
        try {
            ClusterEngine engine = local.join(model, options, local.queryHostOptions().withShareAnchor(shareAnchor),
                    hosts);
            engine.closeWith(local);
            return engine;
        } catch (RuntimeException e) {
            local.close();
            throw e;
        }
    }

    /**
     * Spawns {@code hosts} context-host JVMs as {@link #engine} does and waits until they serve, without joining them:
     * for a caller that joins them with more than one query host ({@link #join}). Closing it stops them.
     */
    public static LocalCluster startServing(int hosts, ClusterOptions.Host host) {
        ClusterOptions base = ClusterOptions.defaults().withHost(host);
        ClusterOptions.Timeouts t = base.timeouts();
        long wait = Long.getLong("star.attention.hostWaitMs", 180_000); // JVM start + model load + join
        base = base.withTimeouts(new ClusterOptions.Timeouts(t.requestMs(), t.prefillMs(), t.joinMs(), wait,
                t.sessionIdleMs()));
        // the hosts share this machine's cores: a heartbeat that is late by many seconds means a busy JVM (warming up,
        // encoding), not a dead one, and a killed host is noticed anyway when its connections close
        base = base.withFailureDetectionAtLeast(60);
        String extra = System.getProperty("star.attention.hostJvmArgs", "").strip();
        LocalCluster local = start(hosts, base, null, extra.isEmpty() ? List.of() : List.of(extra.split("\\s+")));
        try {
            local.awaitReady();
            return local;
        } catch (RuntimeException e) {
            local.close();
            throw e;
        }
    }

    /**
     * Joins this cluster as a query host and waits until it sees {@code hosts} context hosts; closing the engine
     * leaves the hosts running.
     *
     * @param node this query host's settings: {@link #queryHostOptions()}, or {@link #extraNodeOptions} for a second one
     */
    public ClusterEngine join(StarAttentionModel model, EngineOptions options, ClusterOptions node, int hosts) {
        ClusterEngine engine = ClusterEngine.start(model, options, node, hosts);
        try {
            engine.awaitHosts(hosts);
            return engine;
        } catch (RuntimeException e) {
            engine.close();
            throw e;
        }
    }

    /**
     * Starts {@code hosts} context-host JVMs (it does not wait for them; see {@link #awaitReady}).
     *
     * @param base cluster settings to start from (TLS, timeouts, failover, the {@code host} section: model, threads,
     *     weights, device); the cluster name, node names, ports and member list are replaced
     * @param dir folder for the generated configurations and the hosts' logs, {@code null} for a temporary folder
     *     deleted on {@link #close()}
     * @param jvmArgs extra JVM arguments for the children (e.g. {@code -Xmx2g})
     */
    public static LocalCluster start(int hosts, ClusterOptions base, Path dir, List<String> jvmArgs) {
        if (hosts < 1) {
            throw new IllegalArgumentException("--hosts must be at least 1, got " + hosts);
        }
        Objects.requireNonNull(base, "base");
        boolean own = dir == null;
        try {
            Path d = own ? Files.createTempDirectory("star-attention-hosts-") : Files.createDirectories(dir);
            ClusterOptions b = base.withClusterName("star-attention-local-" + UUID.randomUUID().toString().substring(0, 8));
            return new LocalCluster(b, d, own, jvmArgs, hosts);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a folder for the host logs", e);
        }
    }

    /** Settings for the query host (this JVM) to join the same cluster. */
    public ClusterOptions queryHostOptions() {
        return base.withNodeName("query-host").withHazelcast(new ClusterOptions.Hazelcast("127.0.0.1", queryHostPort,
                false, members, base.hazelcast().failureDetectionSeconds()));
    }

    /**
     * Settings for one more node in this JVM (a second query host, a test node) in the same cluster: a new free port,
     * the same member list.
     */
    public synchronized ClusterOptions extraNodeOptions(String name) {
        int port = freePorts(1)[0];
        return base.withNodeName(name).withHazelcast(new ClusterOptions.Hazelcast("127.0.0.1", port, false,
                List.copyOf(members), base.hazelcast().failureDetectionSeconds()));
    }

    /** Number of hosts started (dead ones included). */
    public synchronized int size() {
        return processes.size();
    }

    /** The process of host {@code i}. */
    public synchronized Process process(int i) {
        return processes.get(i);
    }

    /** The log file of host {@code i}. */
    public synchronized Path log(int i) {
        return logs.get(i);
    }

    /** Starts one more host in the same cluster and returns its index. */
    public synchronized int addHost() {
        int port = freePorts(1)[0];
        members.add("127.0.0.1:" + port);
        int i = processes.size();
        spawn(i, port);
        return i;
    }

    /**
     * Waits until every live host printed {@link #READY}, bounded by {@code timeouts.hostWaitMs}.
     *
     * @throws IllegalStateException when a host exits or does not get ready in time, with the end of its log
     */
    public void awaitReady() {
        long deadline = System.nanoTime() + base.timeouts().hostWaitMs() * 1_000_000L;
        for (int i = 0; i < size(); i++) {
            while (true) {
                Process p = process(i);
                if (ready(i)) {
                    break;
                }
                if (!p.isAlive()) {
                    throw new IllegalStateException("context host " + i + " exited with code " + p.exitValue()
                            + " before it was ready; its log (" + log(i) + ") ends with:\n" + logTail(i, 30));
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("context host " + i + " was not ready within "
                            + base.timeouts().hostWaitMs() + " ms; its log (" + log(i) + ") ends with:\n" + logTail(i, 30));
                }
                try {
                    Thread.sleep(100);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while waiting for the context hosts", e);
                }
            }
        }
    }

    private boolean ready(int i) {
        try {
            return Files.exists(log(i)) && Files.readString(log(i), StandardCharsets.UTF_8).contains(READY);
        } catch (IOException | UncheckedIOException e) {
            return false;
        }
    }

    /** Kills host {@code i} at once ({@code destroyForcibly}, like a crash) and waits for it to be gone. */
    public void kill(int i) {
        Process p = process(i);
        p.destroyForcibly();
        try {
            p.waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Stops host {@code i} gracefully (SIGTERM: it leaves the cluster), bounded by 15 s, then forcibly. */
    public void stop(int i) {
        stopAll(List.of(process(i)));
    }

    /** The last {@code lines} lines of host {@code i}'s log. */
    public String logTail(int i, int lines) {
        try {
            List<String> all = Files.readAllLines(log(i), StandardCharsets.UTF_8);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException | UncheckedIOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    private synchronized void spawn(int i, int port) {
        ClusterOptions o = base.withNodeName("host-" + i).withHazelcast(new ClusterOptions.Hazelcast("127.0.0.1", port,
                false, List.copyOf(members), base.hazelcast().failureDetectionSeconds()));
        Path config = dir.resolve("host-" + i + ".json");
        Path logFile = dir.resolve("host-" + i + ".log");
        try {
            Files.writeString(config, o.toJson());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + config, e);
        }
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(JVM_FLAGS);
        if (o.host().threads() > 0) {
            cmd.add("-XX:ActiveProcessorCount=" + o.host().threads());
        }
        String home = System.getProperty("star.attention.home");
        if (home != null) {
            cmd.add("-Dstar.attention.home=" + home);
        }
        cmd.addAll(jvmArgs);
        cmd.add("-cp");
        cmd.add(System.getProperty("star.attention.host.classpath", System.getProperty("java.class.path")));
        cmd.add("io.github.starattention.jlama.cli.StarAttentionCli");
        cmd.add("host");
        cmd.add("--config");
        cmd.add(config.toString());
        cmd.add("--exit-with-parent");
        cmd.add(Long.toString(ProcessHandle.current().pid()));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.to(logFile.toFile()));
        pb.environment().put("HZ_PHONE_HOME_ENABLED", "false");
        try {
            Process p = pb.start();
            processes.add(p);
            logs.add(logFile);
            log.info("started context host {} (pid {}, hazelcast 127.0.0.1:{}, log {})", i, p.pid(), port, logFile);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start a context host JVM: " + e.getMessage(), e);
        }
    }

    /**
     * {@code n} ports free on 127.0.0.1 now, for Hazelcast members that bind them seconds later. They are taken below
     * the ephemeral range (32768 and up on Linux, 49152 and up elsewhere): an ephemeral port that is free now can be
     * given to some outgoing connection (the hosts connect to each other meanwhile) before its member binds it. A
     * random start keeps clusters started one after another (or by parallel builds) from reusing each other's ports.
     */
    static int[] freePorts(int n) {
        int[] ports = new int[n];
        int found = 0;
        int start = FIRST_PORT + ThreadLocalRandom.current().nextInt(LAST_PORT - FIRST_PORT);
        for (int i = 0; i < LAST_PORT - FIRST_PORT && found < n; i++) {
            int port = FIRST_PORT + (start - FIRST_PORT + i) % (LAST_PORT - FIRST_PORT);
            try (ServerSocket s = new ServerSocket()) {
                s.setReuseAddress(false);
                s.bind(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), port), 1);
                ports[found++] = port;
            } catch (IOException e) {
                // taken; try the next one
            }
        }
        if (found < n) {
            throw new IllegalStateException("cannot find " + n + " free ports on 127.0.0.1 in [" + FIRST_PORT + ", "
                    + LAST_PORT + ")");
        }
        return ports;
    }

    private static void stopAll(List<Process> list) {
        for (Process p : list) {
            if (p.isAlive()) {
                p.destroy();
            }
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        for (Process p : list) {
            try {
                long left = deadline - System.nanoTime();
                if (left <= 0 || !p.waitFor(left, TimeUnit.NANOSECONDS)) {
                    p.destroyForcibly();
                    p.waitFor(5, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                p.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }

    private void destroyAll() {
        List<Process> list;
        synchronized (this) {
            list = List.copyOf(processes);
        }
        for (Process p : list) {
            p.destroyForcibly();
        }
    }

    @Override
    public void close() {
        List<Process> list;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            list = List.copyOf(processes);
        }
        stopAll(list);
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            // the JVM is already shutting down; the hook runs anyway
        }
        if (ownDir) {
            try (Stream<Path> files = Files.walk(dir)) {
                files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            } catch (IOException e) {
                log.debug("cannot delete {}", dir, e);
            }
        }
    }

    @Override
    public String toString() {
        return "LocalCluster[" + size() + " hosts, " + dir + "]";
    }
}
