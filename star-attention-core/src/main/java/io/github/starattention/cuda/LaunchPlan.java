package io.github.starattention.cuda;

import static jcuda.driver.CUresult.CUDA_SUCCESS;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUDA_KERNEL_NODE_PARAMS;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUgraphNode;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The kernel launches of a repeated step (a decode step: about ten kernels a layer) kept as one CUDA graph, so that a
 * step costs one graph launch instead of a driver call per kernel ({@link CudaLayers#replay}).
 *
 * <p>Each replay collects the step's launches and compares them, in order, with the graph's nodes (a chain, so the
 * graph runs them in the order they were issued, as the stream would). The same kernels in the same order: only the
 * nodes whose grid or argument values changed are updated ({@code cuGraphExecKernelNodeSetParams}; in a decode step
 * the KV slot the step writes and, as the context grows, the attention's key split); another sequence of kernels
 * rebuilds the graph. A node keeps the argument values of its launch, so what changes between steps must be either
 * an argument (compared here) or device memory written before the graph runs (token ids, positions).
 *
 * <p>Used under the device lock only ({@link CudaRuntime#record}); {@link #close()} frees the graph.
 */
public final class LaunchPlan implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(LaunchPlan.class);

    /** JCuda's {@code equals} of device pointers ignores the byte offset: addresses are compared from both fields. */
    private static final VarHandle NATIVE_POINTER;
    private static final VarHandle BYTE_OFFSET;

    static {
        try {
            NATIVE_POINTER = MethodHandles.privateLookupIn(NativePointerObject.class, MethodHandles.lookup())
                    .findVarHandle(NativePointerObject.class, "nativePointer", long.class);
            BYTE_OFFSET = MethodHandles.privateLookupIn(Pointer.class, MethodHandles.lookup())
                    .findVarHandle(Pointer.class, "byteOffset", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** The legacy default stream, where all other work goes (JCuda takes no null stream here). */
    private static final CUstream LEGACY_STREAM = new CUstream();

    private final CudaRuntime rt;
    private final String what;
    private final List<Launch> pending = new ArrayList<>();
    private List<Launch> recorded = List.of();
    private CUgraphNode[] nodes = new CUgraphNode[0];
    private CUgraph graph;
    private CUgraphExec exec;
    // written under the device lock only, read by anyone
    private volatile long replays;
    private volatile long builds;
    private volatile long updates;

    LaunchPlan(CudaRuntime rt, String what) {
        this.rt = rt;
        this.what = what;
    }

    /** One kernel launch: the kernel, its grid, block and dynamic shared memory, and its argument values. */
    record Launch(String name, CUfunction function, int gx, int gy, int gz, int threads, int smem, Object[] args,
                  Supplier<String> shapes) {

        /** Whether {@code o} launches the same kernel with the same configuration and argument values. */
        boolean sameAs(Launch o) {
            if (!name.equals(o.name) || gx != o.gx || gy != o.gy || gz != o.gz || threads != o.threads
                    || smem != o.smem || args.length != o.args.length) {
                return false;
            }
            for (int i = 0; i < args.length; i++) {
                if (!sameValue(args[i], o.args[i])) {
                    return false;
                }
            }
            return true;
        }

        CUDA_KERNEL_NODE_PARAMS params() {
            CUDA_KERNEL_NODE_PARAMS p = new CUDA_KERNEL_NODE_PARAMS();
            p.func = function;
            p.gridDimX = gx;
            p.gridDimY = gy;
            p.gridDimZ = gz;
            p.blockDimX = threads;
            p.blockDimY = 1;
            p.blockDimZ = 1;
            p.sharedMemBytes = smem;
            p.kernelParams = CudaRuntime.kernelParams(args);
            return p;
        }
    }

    static boolean sameValue(Object a, Object b) {
        if (a instanceof CUdeviceptr p && b instanceof CUdeviceptr q) {
            return address(p) == address(q);
        }
        return a.getClass() == b.getClass() && a.equals(b);
    }

    /** The device address {@code p} points to, its byte offset included. */
    static long address(CUdeviceptr p) {
        return (long) NATIVE_POINTER.get(p) + (long) BYTE_OFFSET.get(p);
    }

    void add(Launch launch) {
        pending.add(launch);
    }

    /** Forgets the launches collected for a step that failed before its graph was launched. */
    void discard() {
        pending.clear();
    }

    /** Brings the graph up to date with the collected launches and launches it on the default stream. */
    void launch() {
        List<Launch> now = List.copyOf(pending);
        pending.clear();
        if (now.isEmpty()) {
            return;
        }
        if (!sameKernels(now)) {
            build(now);
        } else {
            for (int i = 0; i < now.size(); i++) {
                Launch l = now.get(i);
                if (!l.sameAs(recorded.get(i))) {
                    int rc = JCudaDriver.cuGraphExecKernelNodeSetParams(exec, nodes[i], l.params());
                    if (rc != CUDA_SUCCESS) {
                        log.debug("{}: the driver refused to update node {} ({}, error {}); rebuilding the graph",
                                what, i, l.name(), rc);
                        build(now);
                        break;
                    }
                    updates++;
                }
            }
        }
        recorded = now;
        int rc = JCudaDriver.cuGraphLaunch(exec, LEGACY_STREAM);
        if (rc != CUDA_SUCCESS) {
            throw new CudaAttentionException("launching the graph of " + what + " (" + now.size() + " kernels, first "
                    + now.getFirst().name() + ": " + now.getFirst().shapes().get() + ") on " + rt.deviceName, rc);
        }
        replays++;
    }

    private boolean sameKernels(List<Launch> now) {
        if (exec == null || now.size() != recorded.size()) {
            return false;
        }
        for (int i = 0; i < now.size(); i++) {
            if (!now.get(i).name().equals(recorded.get(i).name())) {
                return false;
            }
        }
        return true;
    }

    private void build(List<Launch> now) {
        destroy();
        CUgraph g = new CUgraph();
        CudaRuntime.check(JCudaDriver.cuGraphCreate(g, 0), "cuGraphCreate for " + what);
        graph = g;
        CUgraphNode[] n = new CUgraphNode[now.size()];
        for (int i = 0; i < n.length; i++) {
            n[i] = new CUgraphNode();
            CUgraphNode[] after = i == 0 ? new CUgraphNode[0] : new CUgraphNode[] {n[i - 1]};
            Launch l = now.get(i);
            int rc = JCudaDriver.cuGraphAddKernelNode(n[i], g, after, after.length, l.params());
            if (rc != CUDA_SUCCESS) {
                throw new CudaAttentionException("adding kernel " + l.name() + " (" + l.shapes().get() + ") to the graph of "
                        + what + " on " + rt.deviceName, rc);
            }
        }
        nodes = n;
        CUgraphExec e = new CUgraphExec();
        CudaRuntime.check(JCudaDriver.cuGraphInstantiate(e, g, 0), "cuGraphInstantiate for " + what + " ("
                + n.length + " kernels)");
        exec = e;
        builds++;
        log.debug("{}: built a graph of {} kernels on {}", what, n.length, rt.deviceName);
    }

    private void destroy() {
        if (exec != null) {
            JCudaDriver.cuGraphExecDestroy(exec);
            exec = null;
        }
        if (graph != null) {
            JCudaDriver.cuGraphDestroy(graph);
            graph = null;
        }
        nodes = new CUgraphNode[0];
        recorded = List.of();
    }

    /** Graph launches so far (one per step). */
    public long replays() {
        return replays;
    }

    /** Times the graph was built: the first step, and each step whose kernels differed from the graph's. */
    public long builds() {
        return builds;
    }

    /** Nodes updated in place so far (a grid or an argument that changed from the step before). */
    public long updates() {
        return updates;
    }

    /** Frees the graph; the plan may be used again (it then builds a new one). */
    @Override
    public void close() {
        if (rt.isClosed()) {
            return;
        }
        rt.enter();
        try {
            destroy();
        } finally {
            rt.exit();
        }
    }

    @Override
    public String toString() {
        return what + ": " + replays + " graph launches, " + builds + " builds, " + updates + " node updates";
    }
}
