package io.github.starattention.jlama.cli;

import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.cluster.ClusterOptions;
import io.github.starattention.jlama.cluster.ContextHost;
import io.github.starattention.jlama.model.WeightFormat;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code host}: a context host of distributed Star Attention, serving until it is stopped. */
@Command(name = "host", mixinStandardHelpOptions = true,
        description = {"Start a context host: join the cluster, hold a model replica, encode the context blocks the "
                + "query host assigns (phase 1) and answer its per-layer attention requests (phase 2).",
                "Without --config it listens on 127.0.0.1 only (Hazelcast 5701-5710, cluster 'star-attention')."})
public final class HostCommand implements Callable<Integer> {

    @Option(names = "--config", paramLabel = "FILE", description = "Cluster configuration (JSON; see README).")
    Path config;

    @Option(names = "--exit-with-parent", paramLabel = "PID", hidden = true,
            description = "Exit when process PID ends (set for hosts spawned by 'ask --hosts').")
    Long parentPid;

    @Option(names = "--verbose", description = "Print stack traces and debug logs.")
    boolean verbose;

    @Override
    public Integer call() throws InterruptedException {
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", verbose ? "debug" : "info");
        }
        // the membership layers (Hazelcast, or Infinispan and JGroups) report joins and rebalances at info
        for (String lib : List.of("com.hazelcast", "org.infinispan", "org.jgroups")) {
            if (System.getProperty("org.slf4j.simpleLogger.log." + lib) == null) {
                System.setProperty("org.slf4j.simpleLogger.log." + lib, "warn");
            }
        }
        Logging.configure(verbose);
        ClusterOptions options = config == null ? ClusterOptions.defaults() : ClusterOptions.load(config);
        ClusterOptions.Host h = options.host();
        Path modelDir = h.model() != null ? h.model() : CommonOptions.bundledModel();
        int threads = h.threads() > 0 ? h.threads() : Runtime.getRuntime().availableProcessors();
        StarAttentionModel model = StarAttentionModel.load(modelDir, WeightFormat.valueOf(h.weights()), threads);
        ContextHost host;
        try {
            host = ContextHost.start(model, options);
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            host.close();
            model.close();
            stopped.countDown();
        }, "star-attention-host-shutdown"));
        if (parentPid != null) {
            ProcessHandle.of(parentPid).ifPresentOrElse(
                    parent -> parent.onExit().thenRun(() -> System.exit(0)),
                    () -> System.exit(0));
        }
        System.out.println(LocalCluster.READY + ": " + options.nodeName() + ", node " + host.nodeId() + ", event bus "
                + host.eventBusAddress() + ", cluster '" + options.clusterName() + "'"
                + (options.tls().enabled() ? ", mutual TLS" : "") + ", model " + host.modelId());
        System.out.flush();
        stopped.await();
        return 0;
    }
}
