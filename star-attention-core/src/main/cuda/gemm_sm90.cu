// ptx-arch: compute_90a
// The bf16 matrix product on Hopper's warpgroup tensor-core instructions (wgmma), loaded only on compute capability
// 9.0 devices (H100, H200: arch-specific PTX, which later architectures cannot run) and used by CudaLayers instead of
// layers.cu's gemm_bf16 (mma.sync) when K % 64 == 0 and there are at least 128 tokens:
//
//  gemm_bf16_sm90         C[M][N] (+)= A[M][K] . W[N][K]^T, fp32 accumulation, 128 x 256 x 64 tiles
//
// One block of 256 threads (two warpgroups, 64 rows of C each) computes a 128 x 256 tile of C; grid = (ceil(M/128),
// ceil(N/256)). Every thread copies A and W tiles into shared memory with cp.async, 4 stages deep, in the layout
// wgmma reads without a transpose: K-major rows of 64 bf16 (128 bytes) with the 128-byte swizzle (16-byte chunk c of
// row r stored at chunk c ^ (r % 8); groups of 8 rows 1024 bytes apart, tiles 1024-byte aligned). A k-step of 16
// advances the descriptors' start address by 32 bytes inside the swizzled rows. One tile's wgmmas stay in flight while
// the next tile's barrier passes; rows past M and columns past N are zero-filled and never stored.
// Layouts as in layers.cu: A [M][K] and W [N][K] row-major bf16, C [M][N] row-major fp32.

#include <cuda_bf16.h>
#include <stdint.h>

#include "common.cuh"
#include "wgmma.cuh"

#define G9_BM 128
#define G9_BN 256
#define G9_BK 64
#define G9_STAGES 4
#define G9_INFLIGHT 2                                   // wgmma groups in flight across a barrier
#define G9_PREFETCH (G9_STAGES - G9_INFLIGHT)           // tiles copied ahead of the one being multiplied
#define G9_A_BYTES (G9_BM * G9_BK * 2)
#define G9_B_BYTES (G9_BN * G9_BK * 2)
#define G9_STAGE_BYTES (G9_A_BYTES + G9_B_BYTES)
// CudaLayers.GEMM_SM90_SMEM: the stages plus 1024 bytes to align them
#define G9_SMEM (G9_STAGES * G9_STAGE_BYTES + 1024)


extern "C" __global__ void __launch_bounds__(256, 1)
gemm_bf16_sm90(const __nv_bfloat16* __restrict__ A, const __nv_bfloat16* __restrict__ W, float* __restrict__ C, int M,
               int N, int K, int accumulate) {
    constexpr int NSUB = G9_BN / 128;
    __nv_bfloat16* const tag = nullptr;  // selects the bf16 wgmma
    extern __shared__ unsigned char smem[];
    const uint32_t base = (smem_u32(smem) + 1023) & ~1023u;
    const int tid = threadIdx.x;
    const int wg = tid >> 7;  // warpgroup: rows wg * 64 .. +63 of the tile
    const int m0 = blockIdx.x * G9_BM;
    const int n0 = blockIdx.y * G9_BN;
    const int ktiles = K / G9_BK;

    // 16-byte chunk c of a tile: row c / 8, chunk c % 8 of the row, stored swizzled
    auto load = [&](int stage, int kt) {
        const uint32_t sa = base + stage * G9_STAGE_BYTES;
        const uint32_t sb = sa + G9_A_BYTES;
        const int k0 = kt * G9_BK;
#pragma unroll
        for (int i = 0; i < G9_BM * 8 / 256; i++) {
            int c = tid + i * 256;
            int gm = m0 + (c >> 3);
            cp_async16(sa + sw128(c >> 3, c & 7), A + (size_t)(gm < M ? gm : 0) * K + k0 + (c & 7) * 8, gm < M);
        }
#pragma unroll
        for (int i = 0; i < G9_BN * 8 / 256; i++) {
            int c = tid + i * 256;
            int gn = n0 + (c >> 3);
            cp_async16(sb + sw128(c >> 3, c & 7), W + (size_t)(gn < N ? gn : 0) * K + k0 + (c & 7) * 8, gn < N);
        }
    };

    float acc[NSUB][64];
#pragma unroll
    for (int s = 0; s < NSUB; s++)
#pragma unroll
        for (int i = 0; i < 64; i++) acc[s][i] = 0.f;

#pragma unroll
    for (int s = 0; s < G9_PREFETCH; s++) {
        if (s < ktiles) load(s, s);
        cp_async_commit();
    }

    for (int kt = 0; kt < ktiles; kt++) {
        // tile kt has landed for every thread; make the copies visible to wgmma (the async proxy)
        cp_async_wait<G9_PREFETCH - 1>();
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        __syncthreads();
        const int stage = kt % G9_STAGES;
        const uint32_t sa = base + stage * G9_STAGE_BYTES + wg * 64 * 128;
        const uint32_t sb = base + stage * G9_STAGE_BYTES + G9_A_BYTES;
#pragma unroll
        for (int s = 0; s < NSUB; s++) keep(acc[s]);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < G9_BK / 16; kk++)
#pragma unroll
            for (int s = 0; s < NSUB; s++)
                wgmma_ss(tag, acc[s], wgmma_desc(sa + kk * 32, 16), wgmma_desc(sb + s * 128 * 128 + kk * 32, 16),
                         1);
        wgmma_commit();
        // the stage of tile kt - G9_INFLIGHT is free: every warpgroup waited for it before this iteration's barrier
        int next = kt + G9_PREFETCH;
        if (next < ktiles) load(next % G9_STAGES, next);
        cp_async_commit();
        wgmma_wait<G9_INFLIGHT - 1>();
#pragma unroll
        for (int s = 0; s < NSUB; s++) keep(acc[s]);
    }
    wgmma_wait<0>();
#pragma unroll
    for (int s = 0; s < NSUB; s++) keep(acc[s]);
    cp_async_wait<0>();

    // accumulator element 4j + e of warp w, lane l: row 16w + l/4 (+8 for e >= 2), column 8j + 2(l%4) + e%2
    const int lane = tid & 31;
    const int warp = (tid >> 5) & 3;
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const int gm = m0 + wg * 64 + warp * 16 + (lane >> 2) + half * 8;
        if (gm >= M) continue;
        float* crow = C + (size_t)gm * N;
#pragma unroll
        for (int s = 0; s < NSUB; s++) {
#pragma unroll
            for (int j = 0; j < 16; j++) {
                const int gn = n0 + s * 128 + j * 8 + (lane & 3) * 2;
                store_c2(crow, gn, N, acc[s][j * 4 + half * 2], acc[s][j * 4 + half * 2 + 1], accumulate);
            }
        }
    }
}
