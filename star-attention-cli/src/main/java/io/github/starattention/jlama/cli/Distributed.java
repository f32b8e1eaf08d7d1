package io.github.starattention.jlama.cli;

import io.github.starattention.attention.Device;
import io.github.starattention.cuda.CudaProbe;
import io.github.starattention.jlama.ContextSession;
import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.LocalEngine;
import io.github.starattention.jlama.StarAttentionEngine;
import io.github.starattention.jlama.StarAttentionModel;
import io.github.starattention.jlama.cluster.ClusterContextSession;
import io.github.starattention.jlama.cluster.ClusterEngine;
import io.github.starattention.jlama.cluster.ClusterOptions;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;

/**
 * The {@code --hosts} / {@code --cluster} options of {@code ask}: which engine, and what the JSON output gains. Passing
 * blocks ({@code --passing}) run there too: the hosts exchange what their blocks pass on.
 */
final class Distributed {

    private Distributed() {
    }

    /** The in-process engine, or the distributed one when {@code hosts} or {@code cluster} is given. */
    static StarAttentionEngine engine(StarAttentionModel model, EngineOptions options, CommonOptions common,
                                      Integer hosts, Path cluster) {
        if (hosts == null && cluster == null) {
            return LocalEngine.create(model, options);
        }
        if (hosts != null && hosts < 1) {
            throw new IllegalArgumentException("--hosts must be at least 1, got " + hosts);
        }
        refusePassingOnGpu(options);
        if (cluster != null) {
            return ClusterEngine.join(model, options, cluster, hosts == null ? 0 : hosts, common.weights.name());
        }
        ClusterOptions.Host host = new ClusterOptions.Host(common.modelDir().toAbsolutePath(), common.threadCount(),
                common.weights.name(), common.device, ClusterOptions.defaults().host().maxSessions(),
                options.kvPrecision().name().toLowerCase(Locale.ROOT));
        return LocalCluster.engine(model, options, hosts, host);
    }

    /**
     * Refuses passing blocks on the CUDA kernels before any host is started: they pass blocks on the CPU kernels only,
     * and in a cluster the query host (and a host spawned here) would find out only in phase 1, after the hosts are up.
     * {@code --device auto} counts as CUDA when a GPU is usable here, as it would pick it.
     */
    static void refusePassingOnGpu(EngineOptions options) {
        if (options.passing().enabled() && (options.device() == Device.CUDA
                || options.device() == Device.AUTO && CudaProbe.isAvailable())) {
            throw new IllegalArgumentException("--passing needs the CPU attention kernels: add --device cpu (--device "
                    + options.device().name().toLowerCase(Locale.ROOT) + " runs attention on the GPU here)");
        }
    }

    /** Adds {@code hosts} (context hosts used, 0 in-process) and phase-2 {@code bytes_per_token}. */
    static void addResult(Map<String, Object> r, ContextSession s) {
        if (s instanceof ClusterContextSession c) {
            ClusterContextSession.Traffic t = c.lastTraffic();
            r.put("hosts", c.hostCount());
            r.put("bytes_per_token", AskCommand.round(t.bytesPerToken()));
            r.put("bytes_per_layer_per_token", AskCommand.round(t.bytesPerLayerPerToken()));
        } else {
            r.put("hosts", 0);
            r.put("bytes_per_token", 0.0);
        }
    }
}
