package io.github.starattention.cuda;

import io.github.starattention.linear.Matrix;
import io.github.starattention.linear.WeightType;
import jcuda.Pointer;
import java.util.function.Supplier;
import jcuda.driver.CUdeviceptr;

/**
 * The layer kernels of a Llama-family forward pass on the GPU ({@code layers.cu}), next to the attention kernels of
 * the {@link CudaAttentionKernel} it is made from: the embedding gather, RMSNorm, matrix products (bf16 on tensor
 * cores, or fp32 on the CUDA cores for exact parity with the CPU), the Q/K/V split with RoPE and the KV store write,
 * SwiGLU and the argmax of the logits. It shares that kernel's device, context and lock; all work is queued in call
 * order on the device's one stream, so a pass waits only when it copies a result to the host.
 *
 * <p>Data layout: activations are row-major {@code [tokens][features]}, fp32, except the input of a matrix product,
 * which has the weights' type (fp32 or bf16); weights are {@code [out][in]} ({@link GpuMatrix}). Thread-safe: each
 * call takes the device lock while it queues its kernels; concurrent passes must use their own {@link DeviceArray}s.
 */
public final class CudaLayers {

    /** At most this many tokens go through the matrix-vector kernel ({@code GEMV_ROWS} in layers.cu). */
    static final int GEMV_ROWS = 8;
    /** Shared memory of {@code gemm_bf16}: 3 stages of 128x32 A and W tiles, rows padded to 40 elements. */
    private static final int GEMM_SMEM = 3 * (128 + 128) * 40 * 2;
    /** Shared memory of {@code gemm_bf16_sm90}: 4 stages of 128x64 A and 256x64 W tiles, plus 1 KiB to align them. */
    private static final int GEMM_SM90_SMEM = 4 * (128 + 256) * 64 * 2 + 1024;
    /** From this many tokens a Hopper GPU multiplies bf16 with {@code gemm_bf16_sm90} (one 128-row tile). */
    static final int GEMM_SM90_MIN_TOKENS = 128;
    /** Largest slice of a matrix copied to the GPU at once. */
    private static final int UPLOAD_ELEMENTS = 1 << 24;

    private final CudaAttentionKernel attention;
    private final CudaRuntime rt;

    /** The layer kernels on the device of {@code attention}. */
    public CudaLayers(CudaAttentionKernel attention) {
        this.attention = attention;
        this.rt = attention.runtime();
    }

    /** The attention kernel sharing this device. */
    public CudaAttentionKernel attention() {
        return attention;
    }

    /** An empty grow-only array on this device; {@code what} names it in out-of-memory errors. */
    public DeviceArray allocate(String what) {
        return new DeviceArray(rt, what);
    }

    /** {@code values} in a new array on this device. */
    public DeviceArray upload(float[] values, String what) {
        DeviceArray a = allocate(what);
        a.upload(values);
        return a;
    }

    /**
     * Uploads {@code m}, which must be {@link WeightType#F32} or {@link WeightType#BF16} (the GPU kernels read no
     * quantized weights), in slices of at most {@value #UPLOAD_ELEMENTS} elements.
     */
    public GpuMatrix upload(Matrix m, String what) {
        WeightType type = m.type();
        if (type != WeightType.F32 && type != WeightType.BF16) {
            throw new IllegalArgumentException(what + " is " + type + "; the GPU layers take F32 or BF16 weights");
        }
        long n = (long) m.rows() * m.cols();
        int elementBytes = elementBytes(type);
        DeviceArray a = allocate(what).ensure(n * elementBytes);
        try {
            float[] f = type == WeightType.F32 ? new float[(int) Math.min(n, UPLOAD_ELEMENTS)] : null;
            short[] b = type == WeightType.BF16 ? new short[(int) Math.min(n, UPLOAD_ELEMENTS)] : null;
            for (long from = 0; from < n; from += UPLOAD_ELEMENTS) {
                int len = (int) Math.min(UPLOAD_ELEMENTS, n - from);
                Pointer src;
                if (f != null) {
                    float[] part = len == f.length ? f : new float[len];
                    m.copyFloats(from, part);
                    src = Pointer.to(part);
                } else {
                    short[] part = len == b.length ? b : new short[len];
                    m.copyBf16(from, part);
                    src = Pointer.to(part);
                }
                rt.enter();
                try {
                    rt.copyHtoD(a.at(from * elementBytes), src, (long) len * elementBytes, what);
                } finally {
                    rt.exit();
                }
            }
        } catch (RuntimeException e) {
            a.close();
            throw e;
        }
        return new GpuMatrix(a, type, m.rows(), m.cols());
    }

    /** {@code x[t][:] = table[tokenIds[t]][:]} as fp32, for {@code tokens} ids already on the GPU. */
    public void embed(GpuMatrix table, DeviceArray tokenIds, int tokens, DeviceArray x) {
        String fn = table.type() == WeightType.F32 ? "embed_f32" : "embed_bf16";
        launch(fn, tokens, 256, 0, () -> tokens + " tokens", table.data.ptr(), tokenIds.ptr(), x.ptr(),
                table.cols());
    }

    /**
     * RMSNorm of {@code tokens} rows of {@code x} starting at row {@code firstRow}: {@code out[t] = weight * x[t] /
     * sqrt(mean(x[t]^2) + eps)}, written as {@code type} (the weight type of the matrix product that reads it).
     */
    public void rmsNorm(DeviceArray x, int firstRow, DeviceArray weight, int tokens, int dim, float eps,
                        DeviceArray out, WeightType type) {
        String fn = type == WeightType.F32 ? "rmsnorm_f32" : "rmsnorm_bf16";
        launch(fn, tokens, 256, 0, () -> tokens + " x " + dim, x.at((long) firstRow * dim * Float.BYTES),
                weight.ptr(), out.ptr(), dim, eps);
    }

    /**
     * {@code out[t][r] (+)= sum_c x[t][c] w[r][c]} for {@code t < tokens}: {@code x} has the type of {@code w},
     * {@code out} is fp32 and is added to when {@code accumulate} (a residual connection). At most
     * {@value #GEMV_ROWS} tokens use the matrix-vector kernel (decode), more a tiled kernel ({@link #productKernel}).
     */
    public void multiply(GpuMatrix w, DeviceArray x, int tokens, DeviceArray out, boolean accumulate) {
        multiply(w, x, 0, tokens, out, accumulate);
    }

    /** {@link #multiply(GpuMatrix, DeviceArray, int, DeviceArray, boolean)} of rows {@code firstRow..} of {@code x}. */
    public void multiply(GpuMatrix w, DeviceArray x, int firstRow, int tokens, DeviceArray out, boolean accumulate) {
        int n = w.rows();
        int k = w.cols();
        Supplier<String> shapes = () -> tokens + " x " + k + " times " + w;
        CUdeviceptr a = x.at((long) firstRow * k * elementBytes(w.type()));
        int acc = accumulate ? 1 : 0;
        String kernel = productKernel(w.type(), tokens, k);
        switch (kernel) {
            case "gemv_bf16", "gemv_f32" -> {
                boolean bf16 = w.type() == WeightType.BF16;
                if (k % (bf16 ? 8 : 4) != 0) {
                    throw new UnsupportedOperationException("the GPU matrix-vector kernel needs a multiple of "
                            + (bf16 ? 8 : 4) + " columns: " + w);
                }
                launch(kernel, (n + 7) / 8, 256, 0, shapes, a, w.data.ptr(), out.ptr(), tokens, n, k, acc);
            }
            case "gemm_bf16_sm90" -> launchGrid(kernel, (tokens + 127) / 128, (n + 255) / 256, 256, GEMM_SM90_SMEM,
                    shapes, a, w.data.ptr(), out.ptr(), tokens, n, k, acc);
            case "gemm_bf16" -> {
                if (k % 32 != 0) {
                    throw new UnsupportedOperationException("the GPU bf16 matrix kernel needs a multiple of 32 columns: "
                            + w);
                }
                launchGrid(kernel, (tokens + 127) / 128, (n + 127) / 128, 256, GEMM_SMEM, shapes, a,
                        w.data.ptr(), out.ptr(), tokens, n, k, acc);
            }
            default -> launchGrid(kernel, (tokens + 63) / 64, (n + 63) / 64, 256, 0, shapes, a, w.data.ptr(),
                    out.ptr(), tokens, n, k, acc);
        }
    }

    /**
     * The kernel {@link #multiply} launches for {@code tokens} rows of {@code k} columns: the matrix-vector kernel up
     * to {@value #GEMV_ROWS} tokens; for BF16 Hopper's wgmma product ({@code gemm_sm90.cu}, 2x the {@code mma.sync}
     * one there) from {@value #GEMM_SM90_MIN_TOKENS} tokens when {@code k % 64 == 0}, else {@code gemm_bf16}; for F32
     * {@code gemm_f32}.
     */
    String productKernel(WeightType type, int tokens, int k) {
        boolean bf16 = type == WeightType.BF16;
        if (tokens <= GEMV_ROWS) {
            return bf16 ? "gemv_bf16" : "gemv_f32";
        }
        if (!bf16) {
            return "gemm_f32";
        }
        return rt.hopper && tokens >= GEMM_SM90_MIN_TOKENS && k % 64 == 0 ? "gemm_bf16_sm90" : "gemm_bf16";
    }

    /**
     * Splits the fused projection {@code qkv [tokens][heads*hd | kvHeads*hd | kvHeads*hd]} (adding {@code bias} when
     * not null), rotates q and k at {@code positions} (on the GPU, {@code int [tokens]}) with the tables of
     * {@code rope}, writes q to {@code q} ({@code fp32 [tokens][heads][hd]}) and K, V into layer {@code layer} of
     * {@code store} at slots {@code firstSlot..}; also K and V as fp32 {@code [tokens][kvHeads][hd]} into {@code kOut},
     * {@code vOut} when those are not null.
     */
    public void qkvRope(DeviceArray qkv, DeviceArray bias, DeviceArray positions, RopeTable rope, int tokens,
                        int heads, CudaKvStore store, int layer, int firstSlot, DeviceArray q, DeviceArray kOut,
                        DeviceArray vOut) {
        attention.checkStore(store);
        int hd = store.layout().headDim();
        if (rope.headDim() != hd) {
            throw new IllegalArgumentException("RoPE table of head dim " + rope.headDim() + " for " + store.layout());
        }
        if (firstSlot < 0 || firstSlot + tokens > store.size()) {
            throw new IndexOutOfBoundsException("slots [" + firstSlot + ", " + (firstSlot + tokens) + ") of "
                    + store.size());
        }
        String fn = "qkv_rope_" + store.dtype().suffix();
        launch(fn, tokens, 128, 0, () -> tokens + " tokens of " + store.layout(), qkv.ptr(), ptrOrNull(bias),
                positions.ptr(), rope.cos.ptr(), rope.sin.ptr(), q.ptr(), store.keys(layer), store.values(layer),
                ptrOrNull(kOut), ptrOrNull(vOut), heads, store.layout().kvHeads(), hd, (long) store.capacity(),
                firstSlot);
    }

    /** {@code h[t][i] = silu(gateUp[t][i]) * gateUp[t][ffn + i]}, written as {@code type}. */
    public void swiglu(DeviceArray gateUp, int tokens, int ffn, DeviceArray h, WeightType type) {
        swiglu(gateUp, tokens, ffn, h, 0, type);
    }

    /** {@link #swiglu(DeviceArray, int, int, DeviceArray, WeightType)} into rows {@code firstRow..} of {@code h}. */
    public void swiglu(DeviceArray gateUp, int tokens, int ffn, DeviceArray h, int firstRow, WeightType type) {
        long total = (long) tokens * ffn;
        long offset = (long) firstRow * ffn * elementBytes(type);
        launch(type == WeightType.F32 ? "swiglu_f32" : "swiglu_bf16", grid(total), 256, 0, () -> tokens + " x " + ffn,
                gateUp.ptr(), h.at(offset), total, ffn);
    }

    /**
     * Bytes of one element stored as {@code type} on the GPU: weights, and the activations a product reads (4 for
     * F32, 2 for BF16; the kernels read no quantized type).
     */
    public static int elementBytes(WeightType type) {
        return switch (type) {
            case F32 -> Float.BYTES;
            case BF16 -> 2;
            default -> throw new IllegalArgumentException("the GPU kernels read F32 or BF16, not " + type);
        };
    }

    /** Waits for the work queued on the device; a kernel fault is reported with {@code what}. */
    public void sync(String what) {
        rt.enter();
        try {
            rt.sync(() -> what);
        } finally {
            rt.exit();
        }
    }

    /** {@code out[i] = bf16(x[i])} for {@code n} values. */
    public void toBf16(DeviceArray x, long n, DeviceArray out) {
        launch("to_bf16", grid(n), 256, 0, () -> n + " values", x.ptr(), out.ptr(), n);
    }

    /**
     * The index of the first maximum of {@code n} floats of {@code x} (as {@code torch.argmax}), computed on the GPU;
     * only the index is copied back ({@code scratch} holds it). Waits for the GPU.
     */
    public int argmax(DeviceArray x, int n, DeviceArray scratch) {
        queueArgmax(x, n, scratch);
        return readArgmax(scratch);
    }

    /** {@link #argmax} queued: the index lands in {@code scratch} (an int), for {@link #readArgmax}. */
    public void queueArgmax(DeviceArray x, int n, DeviceArray scratch) {
        scratch.ensure(Integer.BYTES);
        launch("argmax_f32", 1, 1024, 0, () -> n + " logits", x.ptr(), n, scratch.ptr());
    }

    /** The index a {@link #queueArgmax} left in {@code scratch}, once the GPU is done with it (waits). */
    public int readArgmax(DeviceArray scratch) {
        int[] out = new int[1];
        scratch.download(0, out);
        return out[0];
    }

    /** An empty plan for {@link #replay}; {@code what} names the step in errors and logs. */
    public LaunchPlan newLaunchPlan(String what) {
        return new LaunchPlan(rt, what);
    }

    /**
     * Runs {@code step} (calls of this object and of {@link #attention()} that queue kernels) with its kernels
     * collected into {@code plan}, then launches them as one CUDA graph: the graph built by an earlier step with the
     * same kernels, updated where a grid or an argument changed, or a new one. The step holds the device lock
     * throughout and may allocate, but not copy to or from the GPU or wait for it (that fails); copy its inputs first
     * and its results after. Nothing waits for the graph.
     */
    public void replay(LaunchPlan plan, Runnable step) {
        rt.record(plan, step);
    }

    /** Cos and sin of RoPE on the GPU: {@code fp32 [positions][headDim/2]} each. */
    public RopeTable uploadRope(float[] cos, float[] sin, int headDim) {
        if (cos.length != sin.length || cos.length % (headDim / 2) != 0) {
            throw new IllegalArgumentException("RoPE tables of " + cos.length + "/" + sin.length + " values for head dim "
                    + headDim);
        }
        DeviceArray c = upload(cos, "RoPE cos table");
        try {
            return new RopeTable(c, upload(sin, "RoPE sin table"), headDim, cos.length / (headDim / 2));
        } catch (RuntimeException e) {
            c.close();
            throw e;
        }
    }

    /** RoPE's cos and sin per position on the GPU (see {@link #uploadRope}). */
    public static final class RopeTable implements AutoCloseable {
        private final DeviceArray cos;
        private final DeviceArray sin;
        private final int headDim;
        private final int positions;

        private RopeTable(DeviceArray cos, DeviceArray sin, int headDim, int positions) {
            this.cos = cos;
            this.sin = sin;
            this.headDim = headDim;
            this.positions = positions;
        }

        public int headDim() {
            return headDim;
        }

        /** Positions {@code 0..positions()-1} are covered. */
        public int positions() {
            return positions;
        }

        @Override
        public void close() {
            cos.close();
            sin.close();
        }
    }

    private int grid(long n) {
        return (int) Math.max(1, Math.min((n + 255) / 256, rt.smCount * 16L));
    }

    private static CUdeviceptr ptrOrNull(DeviceArray a) {
        return a == null ? new CUdeviceptr() : a.ptr();
    }

    private void launch(String fn, int grid, int threads, int smem, Supplier<String> shapes,
                        Object... args) {
        launchGrid(fn, grid, 1, threads, smem, shapes, args);
    }

    private void launchGrid(String fn, int gx, int gy, int threads, int smem, Supplier<String> shapes,
                         Object... args) {
        rt.enter();
        try {
            rt.launch(fn, gx, gy, 1, threads, smem, shapes, args);
        } finally {
            rt.exit();
        }
    }
}
