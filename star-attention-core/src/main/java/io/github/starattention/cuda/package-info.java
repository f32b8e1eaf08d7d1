/**
 * The GPU backend through the JCuda driver API: a GPU KV store ({@link io.github.starattention.cuda.CudaKvStore}),
 * blockwise prefill and split-KV decode attention returning output and log-sum-exp, and the LSE merge
 * ({@link io.github.starattention.cuda.CudaAttentionKernel}); the layer kernels of a forward pass on GPU-resident
 * activations ({@link io.github.starattention.cuda.CudaLayers}: embedding, RMSNorm, matrix products on tensor cores,
 * RoPE with the KV write, SwiGLU, argmax). Kernels ship as PTX (compute_80) built from {@code src/main/cuda/*.cu};
 * the driver compiles them for the GPU at load time.
 */
package io.github.starattention.cuda;
