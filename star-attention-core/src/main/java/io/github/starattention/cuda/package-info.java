/**
 * CUDA attention kernels through the JCuda driver API: a GPU KV store ({@link
 * io.github.starattention.cuda.CudaKvStore}), blockwise prefill and split-KV decode attention returning
 * output and log-sum-exp ({@link io.github.starattention.cuda.CudaAttentionKernel}), and the LSE merge on
 * the GPU. Kernels ship as PTX (compute_80) built from {@code src/main/cuda/*.cu}; nothing is compiled at run time.
 */
package io.github.starattention.cuda;
