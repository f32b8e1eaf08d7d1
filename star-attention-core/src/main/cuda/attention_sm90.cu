// ptx-arch: compute_90a
// Prefill attention on Hopper's warpgroup tensor-core instructions (wgmma), loaded only on compute capability 9.0
// devices (arch-specific PTX) and used by CudaAttentionKernel there instead of attention.cu's attn_fwd (mma.sync):
//
//  attn_fwd_wg_<t>_d<D>   the same contract as attention.cu's attn_fwd_<t>_d<D>_<variant> (its header has the data
//                         layout, the GQA row packing, the grid, the key ranges and the splits), for 128 query rows per
//                         block of 256 threads: two warpgroups of 64 rows; key tiles of KN keys (below).
//
// Per key tile each warpgroup computes S = Q K^T (wgmma m64n128k16, Q and K from shared memory), masks and runs the
// online softmax on S in registers (fp32, base 2), and adds P V (wgmma m64nDk16 with P from registers as bf16/fp16
// and V from shared memory, transposed by the instruction). Q, K and V tiles are stored as wgmma reads them: rows of
// 64 elements (128 bytes) with the 128-byte swizzle (16-byte chunk c of row r at chunk c ^ (r % 8)), head dim 128 as
// two such column blocks one after the other. K/V tiles are double-buffered with cp.async.

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>
#include <climits>

#include "attention_common.cuh"
#include "wgmma.cuh"

#define WG_BM 128

namespace {

// Byte offset of 16-byte chunk c (0 .. D/8-1) of row r in a tile of R rows: column block c / 8, 128-byte swizzle.
template <int R>
__device__ __forceinline__ uint32_t sw(int r, int c) {
    return (c >> 3) * (R * 128) + sw128(r, c & 7);
}


// Dynamic shared memory: Q [128][D] | K [2][KN][D] | V [2][KN][D] (T) | qpos int [128] | 1024 bytes to align.
template <typename T, int D, int KN>
__device__ __forceinline__ void attn_wg(const float* __restrict__ q, const int* __restrict__ qpos,
                                        const T* __restrict__ k, const T* __restrict__ v, const int* __restrict__ kpos,
                                        const int2* __restrict__ ranges, float* __restrict__ out,
                                        float* __restrict__ lse, int tokens, int heads, int kvHeads,
                                        long long headStride, int chunk, float scaleLog2) {
    constexpr int TILE = KN * D * 2;    // bytes of one K or V tile
    constexpr int NT = KN / 8;          // 8-key column tiles of S
    constexpr int DT = D / 8;              // 8-column tiles of O
    T* const tag = nullptr;                // selects the element type of the wgmma helpers

    extern __shared__ unsigned char smem[];
    const uint32_t base = (smem_u32(smem) + 1023) & ~1023u;
    unsigned char* const sbase = smem + (base - smem_u32(smem));
    const uint32_t sQ = base, sK = sQ + WG_BM * D * 2, sV = sK + 2 * TILE;
    int* qposS = reinterpret_cast<int*>(sbase + WG_BM * D * 2 + 4 * TILE);

    const int tid = threadIdx.x, lane = tid & 31, wg = tid >> 7, warp = (tid >> 5) & 3;
    const int g = lane >> 2, t4 = lane & 3;
    const AttnBlock b(WG_BM, ranges, tokens, heads, kvHeads, chunk);
    const int rows = b.rows, row0 = b.row0, kBegin = b.kBegin, kEnd = b.kEnd, visAll = b.visAll;
    const T* __restrict__ kh = k + (size_t)b.kvh * headStride;
    const T* __restrict__ vh = v + (size_t)b.kvh * headStride;
    load_q_tile<T, D, WG_BM, 256>(b, q, qpos, heads, sbase, qposS, [](int r, int c) { return sw<WG_BM>(r, c); });
    const int ntiles = b.tiles(KN);
    const int wrow = wg * 64 + warp * 16;      // first row of this warp in the block
    const bool active = row0 + wg * 64 < rows;  // per warpgroup: wgmma needs all four warps

    float o[DT * 4];
    float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};
#pragma unroll
    for (int i = 0; i < DT * 4; ++i) o[i] = 0.f;

    auto load_tile = [&](int tile, int buf) {
        load_kv_tile<D, KN, 256>(kh, vh, kBegin + tile * KN, kEnd, sK, sV, buf * TILE, tid,
                                 [](int r, int c) { return sw<KN>(r, c); });
    };

    if (ntiles > 0) load_tile(0, 0);
    for (int it = 0; it < ntiles; ++it) {
        const int buf = it & 1;
        load_next_wait_this(it, ntiles, buf, load_tile);
        // the copies (and the Q tile's stores) must be visible to wgmma, which reads through the async proxy
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        __syncthreads();
        const int n0 = kBegin + it * KN;
        if (active) {
            const uint32_t kb = sK + buf * TILE, vb = sV + buf * TILE;
            float s[NT * 4];
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < D / 16; ++kk) {
                const uint32_t col = (kk & 3) * 32;  // the 16 columns inside a 128-byte row
                wgmma_ss(tag, s, wgmma_desc(sQ + (kk >> 2) * (WG_BM * 128) + wg * 64 * 128 + col, 16),
                      wgmma_desc(kb + (kk >> 2) * (KN * 128) + col, 16), kk > 0);
            }
            wgmma_commit();
            wgmma_wait<0>();
            keep(s);
            // scale (to base 2) and mask: element 4j + e is row wrow + g (+8 for e >= 2), key n0 + 8j + 2 t4 + e % 2
            if (n0 + KN > visAll) {
#pragma unroll
                for (int j = 0; j < NT; ++j)
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        int key = n0 + j * 8 + t4 * 2 + (e & 1);
                        float x = s[j * 4 + e] * scaleLog2;
                        if (key >= kEnd || kpos[key] > qposS[wrow + g + (e >> 1) * 8]) x = -INFINITY;
                        s[j * 4 + e] = x;
                    }
            } else {
#pragma unroll
                for (int i = 0; i < NT * 4; ++i) s[i] *= scaleLog2;
            }
            float mx[2] = {mrow[0], mrow[1]};
#pragma unroll
            for (int j = 0; j < NT; ++j) {
                mx[0] = fmaxf(mx[0], fmaxf(s[j * 4], s[j * 4 + 1]));
                mx[1] = fmaxf(mx[1], fmaxf(s[j * 4 + 2], s[j * 4 + 3]));
            }
            float mu[2], alpha[2], rs[2] = {0.f, 0.f};
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
                mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
                mu[i] = mx[i] == -INFINITY ? 0.f : mx[i];
                alpha[i] = ex2(mrow[i] - mu[i]);
                mrow[i] = mx[i];
            }
            uint32_t p[NT / 2][4];  // P as the A fragments of the 16-key steps
#pragma unroll
            for (int j = 0; j < NT; ++j) {
                float p0 = ex2(s[j * 4] - mu[0]), p1 = ex2(s[j * 4 + 1] - mu[0]);
                float p2 = ex2(s[j * 4 + 2] - mu[1]), p3 = ex2(s[j * 4 + 3] - mu[1]);
                rs[0] += p0 + p1;
                rs[1] += p2 + p3;
                p[j >> 1][(j & 1) * 2] = pack2<T>(p0, p1);
                p[j >> 1][(j & 1) * 2 + 1] = pack2<T>(p2, p3);
            }
            lrow[0] = lrow[0] * alpha[0] + rs[0];
            lrow[1] = lrow[1] * alpha[1] + rs[1];
#pragma unroll
            for (int n = 0; n < DT; ++n) {
                o[n * 4] *= alpha[0];
                o[n * 4 + 1] *= alpha[0];
                o[n * 4 + 2] *= alpha[1];
                o[n * 4 + 3] *= alpha[1];
            }
            keep(o);
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < KN / 16; ++kk) wgmma_rs_tb(tag, o, p[kk], wgmma_desc(vb + kk * 16 * 128, KN * 128));
            wgmma_commit();
            wgmma_wait<0>();
            keep(o);
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < 2; ++i) {
        lrow[i] += __shfl_xor_sync(0xffffffffu, lrow[i], 1);
        lrow[i] += __shfl_xor_sync(0xffffffffu, lrow[i], 2);
        int gr = row0 + wrow + g + i * 8;
        if (gr >= rows) continue;
        store_row<D>(b, out, lse, tokens, heads, gr, lrow[i], mrow[i], t4,
                     [&](int n) { return make_float2(o[n * 4 + 2 * i], o[n * 4 + 2 * i + 1]); });
    }
}

}  // namespace

#define ATTN_WG_ARGS(T)                                                                                     \
    const float *__restrict__ q, const int *__restrict__ qpos, const T *__restrict__ k,                    \
        const T *__restrict__ v, const int *__restrict__ kpos, const int2 *__restrict__ ranges,            \
        float *__restrict__ out, float *__restrict__ lse, int tokens, int heads, int kvHeads,              \
        long long headStride, int chunk, float scaleLog2
#define DEF_WG(NAME, T, D, KN, MINB)                                                                        \
    extern "C" __global__ void __launch_bounds__(256, MINB) NAME(ATTN_WG_ARGS(T)) {                         \
        attn_wg<T, D, KN>(q, qpos, k, v, kpos, ranges, out, lse, tokens, heads, kvHeads, headStride, chunk,     \
                      scaleLog2);                                                                           \
    }

// Two blocks per SM, so that one block's softmax overlaps the other's products. Head dim 64 takes 128-key tiles and
// head dim 128 64-key tiles (register-bound at 128 per thread); on an H200 these measured 1.26x and 1.4x the 64-key /
// 128-key alternatives (docs/results/gpu-whole-model/attention-sm90). CudaAttentionKernel.wgKeys is the same choice.
DEF_WG(attn_fwd_wg_f16_d64, __half, 64, 128, 2)
DEF_WG(attn_fwd_wg_f16_d128, __half, 128, 64, 2)
DEF_WG(attn_fwd_wg_bf16_d64, __nv_bfloat16, 64, 128, 2)
DEF_WG(attn_fwd_wg_bf16_d128, __nv_bfloat16, 128, 64, 2)
