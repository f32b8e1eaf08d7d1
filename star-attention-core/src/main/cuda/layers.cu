// The decoder's layer kernels on the GPU (loaded as PTX through the JCuda driver API; see build-ptx.sh), used by
// CudaLayers: everything of a Llama-family forward pass except attention (attention.cu).
//
//  embed_<w>              x[t][:] = E[token[t]][:] as fp32                      (w = f32 | bf16, the weight type)
//  rmsnorm_<a>            y[t][:] = w * x[t][:] / sqrt(mean(x[t]^2) + eps)      (a = f32 | bf16, the activation type
//                                                                               the next matrix product reads)
//  gemm_bf16              C[M][N] (+)= A[M][K] . W[N][K]^T, tensor cores (mma.sync m16n8k16, fp32 accumulation),
//                         128x128x32 tiles, 8 warps, a 3-stage cp.async pipeline, ldmatrix; K % 32 == 0
//  gemm_f32               the same in fp32 on the CUDA cores, 64x64x16 tiles (the fp32 path, for parity with the CPU)
//  gemv_<w>               the same for at most GEMV_ROWS rows of A (decode): one warp per row of W, 16-byte loads
//  qkv_rope_<kv>          splits the fused projection [t][q | k | v] (+ bias), rotates q and k at the token's position
//                         (Hugging Face rotate-half, cos/sin from a table), writes q as fp32 and K, V into the KV
//                         store's head-major slots as <kv> (f16 | bf16); optionally K, V as fp32 too
//  swiglu_<a>             h[t][i] = silu(gate[t][i]) * up[t][i] from gateUp[t][gate | up]
//  to_bf16                fp32 -> bf16 (the attention output before the output projection)
//  argmax_f32             index of the first maximum (as torch.argmax for finite logits; a NaN never wins), one block
//
// Layouts (row-major): activations [tokens][features]; weights [out][in] as Hugging Face stores them; KV store
// element (kvHead, slot, d) at (kvHead * capacity + slot) * D + d; cos/sin tables [position][D/2].
// All arithmetic is fp32; bf16 is only a storage type (round to nearest even).
//
// Requires sm_80+ (mma.sync bf16, cp.async, ldmatrix).

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "common.cuh"

#define GEMV_ROWS 8
#define GEMV_LOADS 4  // 16-byte loads of a W row in flight per lane

// ---------------------------------------------------------------------------------------------------------------
// helpers

__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ float bf16_lo(uint32_t v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t v) { return __uint_as_float(v & 0xffff0000u); }

template <typename T> struct Store;
template <> struct Store<float> {
    static __device__ __forceinline__ void put(float* p, float v) { *p = v; }
};
template <> struct Store<__nv_bfloat16> {
    static __device__ __forceinline__ void put(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
};
template <> struct Store<__half> {
    static __device__ __forceinline__ void put(__half* p, float v) { *p = __float2half_rn(v); }
};

// sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result
__device__ float block_sum(float v) {
    __shared__ float warp_sums[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int lane = threadIdx.x & 31;
    int warp = threadIdx.x >> 5;
    __syncthreads();  // warp_sums may still be read by a previous call
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    int warps = blockDim.x >> 5;
    float s = lane < warps ? warp_sums[lane] : 0.f;
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    return s;
}

// ---------------------------------------------------------------------------------------------------------------
// embedding gather: grid = tokens, any block size

extern "C" __global__ void embed_f32(const float* __restrict__ table, const int* __restrict__ tokens,
                                     float* __restrict__ x, int dim) {
    const float* row = table + (size_t)tokens[blockIdx.x] * dim;
    float* out = x + (size_t)blockIdx.x * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) out[i] = row[i];
}

extern "C" __global__ void embed_bf16(const __nv_bfloat16* __restrict__ table, const int* __restrict__ tokens,
                                      float* __restrict__ x, int dim) {
    const __nv_bfloat16* row = table + (size_t)tokens[blockIdx.x] * dim;
    float* out = x + (size_t)blockIdx.x * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) out[i] = __bfloat162float(row[i]);
}

// ---------------------------------------------------------------------------------------------------------------
// RMSNorm: grid = tokens, block = 256 (dim up to any size)

template <typename A>
__device__ void rmsnorm(const float* __restrict__ x, const float* __restrict__ w, A* __restrict__ y, int dim,
                        float eps) {
    const float* row = x + (size_t)blockIdx.x * dim;
    A* out = y + (size_t)blockIdx.x * dim;
    float ss = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += row[i] * row[i];
    float inv = rsqrtf(block_sum(ss) / dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) Store<A>::put(out + i, w[i] * (row[i] * inv));
}

extern "C" __global__ void rmsnorm_f32(const float* x, const float* w, float* y, int dim, float eps) {
    rmsnorm<float>(x, w, y, dim, eps);
}

extern "C" __global__ void rmsnorm_bf16(const float* x, const float* w, __nv_bfloat16* y, int dim, float eps) {
    rmsnorm<__nv_bfloat16>(x, w, y, dim, eps);
}

// ---------------------------------------------------------------------------------------------------------------
// bf16 GEMM on tensor cores: C[M][N] (+)= A[M][K] . W[N][K]^T. grid = (ceil(M/128), ceil(N/BN)), 256 threads (8 warps:
// 2 along M x 4 along N, each 64 x BN/4), dynamic shared memory 3 * (128 + BN) * 40 * 2 bytes. Tiles are staged in
// shared memory with rows padded to 40 elements (80 bytes), which makes the 8 rows of each ldmatrix phase hit distinct
// banks. gemm_bf16 has BN = 128 (warp tiles of 64x32): BN = 256 (64x64, one block per SM) measured 4% slower on
// Llama-3.2-1B's 8K prefill on an H200 (docs/results/gpu-whole-model/gemm-tile-ab).

#define GBM 128
#define GBK 32
#define GLD 40
#define GSTAGES 3

template <int BN>
__device__ __forceinline__ void gemm_bf16_tile(const __nv_bfloat16* __restrict__ A, const __nv_bfloat16* __restrict__ W,
                                               float* __restrict__ C, int M, int N, int K, int accumulate) {
    constexpr int WN = BN / 4;     // columns per warp
    constexpr int NT = WN / 8;     // n8 tiles per warp
    constexpr int BLOADS = BN / 64; // 16-byte chunks of W per thread and stage
    extern __shared__ __align__(128) unsigned char smem[];
    __nv_bfloat16* sA = reinterpret_cast<__nv_bfloat16*>(smem);
    __nv_bfloat16* sB = sA + GSTAGES * GBM * GLD;
    const int tid = threadIdx.x;
    const int lane = tid & 31;
    const int warp = tid >> 5;
    const int wm = warp >> 2;  // 0..1: 64 rows each
    const int wn = warp & 3;   // 0..3: WN columns each
    const int m0 = blockIdx.x * GBM;
    const int n0 = blockIdx.y * BN;
    const int ktiles = K / GBK;

    // chunk c of a tile: row c / 4, 8 elements at (c % 4) * 8
    auto load = [&](int stage, int kt) {
        const int k0 = kt * GBK;
#pragma unroll
        for (int i = 0; i < 2; i++) {
            int c = tid + i * 256;
            int r = c >> 2;
            int kc = (c & 3) * 8;
            int gm = m0 + r;
            const __nv_bfloat16* ga = A + (size_t)(gm < M ? gm : 0) * K + k0 + kc;
            cp_async16(smem_u32(sA + (stage * GBM + r) * GLD + kc), ga, gm < M);
        }
#pragma unroll
        for (int i = 0; i < BLOADS; i++) {
            int c = tid + i * 256;
            int r = c >> 2;
            int kc = (c & 3) * 8;
            int gn = n0 + r;
            const __nv_bfloat16* gb = W + (size_t)(gn < N ? gn : 0) * K + k0 + kc;
            cp_async16(smem_u32(sB + (stage * BN + r) * GLD + kc), gb, gn < N);
        }
    };

    float acc[4][NT][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;

#pragma unroll
    for (int s = 0; s < GSTAGES - 1; s++) {
        if (s < ktiles) load(s, s);
        cp_async_commit();
    }

    for (int kt = 0; kt < ktiles; kt++) {
        cp_async_wait<GSTAGES - 2>();
        __syncthreads();
        int next = kt + GSTAGES - 1;
        if (next < ktiles) load(next % GSTAGES, next);
        cp_async_commit();
        const int stage = kt % GSTAGES;
        const __nv_bfloat16* a = sA + stage * GBM * GLD;
        const __nv_bfloat16* b = sB + stage * BN * GLD;
#pragma unroll
        for (int ks = 0; ks < GBK; ks += 16) {
            uint32_t af[4][4];
            uint32_t bfr[NT / 2][4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                int row = wm * 64 + i * 16 + (lane & 15);
                int col = ks + (lane >> 4) * 8;
                ldsm_x4(af[i], smem_u32(a + row * GLD + col));
            }
            // one ldmatrix.x4 gives the (b0, b1) fragments of two n8 tiles: lanes 0-15 the first, 16-31 the second
#pragma unroll
            for (int j = 0; j < NT / 2; j++) {
                int row = wn * WN + j * 16 + (lane & 7) + ((lane >> 4) << 3);
                int col = ks + ((lane >> 3) & 1) * 8;
                ldsm_x4(bfr[j], smem_u32(b + row * GLD + col));
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < NT; j++)
                    mma_bf16(acc[i][j], af[i], bfr[j >> 1][(j & 1) * 2], bfr[j >> 1][(j & 1) * 2 + 1]);
        }
    }
    cp_async_wait<0>();

    // accumulator (i, j): rows wm*64 + i*16 + lane/4 (+8), columns wn*WN + j*8 + (lane%4)*2 (+1)
#pragma unroll
    for (int i = 0; i < 4; i++) {
#pragma unroll
        for (int half = 0; half < 2; half++) {
            int gm = m0 + wm * 64 + i * 16 + (lane >> 2) + half * 8;
            if (gm >= M) continue;
            float* crow = C + (size_t)gm * N;
#pragma unroll
            for (int j = 0; j < NT; j++) {
                int gn = n0 + wn * WN + j * 8 + (lane & 3) * 2;
                store_c2(crow, gn, N, acc[i][j][half * 2], acc[i][j][half * 2 + 1], accumulate);
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(256, 2)
gemm_bf16(const __nv_bfloat16* __restrict__ A, const __nv_bfloat16* __restrict__ W, float* __restrict__ C, int M,
          int N, int K, int accumulate) {
    gemm_bf16_tile<128>(A, W, C, M, N, K, accumulate);
}


// ---------------------------------------------------------------------------------------------------------------
// fp32 GEMM on the CUDA cores: grid = (ceil(M/64), ceil(N/64)), 256 threads, each a 4x4 block of C. Any M, N, K.

extern "C" __global__ void __launch_bounds__(256)
gemm_f32(const float* __restrict__ A, const float* __restrict__ W, float* __restrict__ C, int M, int N, int K,
         int accumulate) {
    __shared__ float sA[16][64 + 4];
    __shared__ float sW[16][64 + 4];
    const int tid = threadIdx.x;
    const int tm = tid >> 4;  // 0..15: rows tm*4 .. +3
    const int tn = tid & 15;  // 0..15: columns tn*4 .. +3
    const int m0 = blockIdx.x * 64;
    const int n0 = blockIdx.y * 64;
    float acc[4][4] = {};
    for (int k0 = 0; k0 < K; k0 += 16) {
        // 64 rows x 16 k of A and of W: 1024 values each, 4 per thread, stored transposed [k][row]
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int c = tid + i * 256;
            int r = c >> 4;
            int k = c & 15;
            int gk = k0 + k;
            sA[k][r] = (m0 + r < M && gk < K) ? A[(size_t)(m0 + r) * K + gk] : 0.f;
            sW[k][r] = (n0 + r < N && gk < K) ? W[(size_t)(n0 + r) * K + gk] : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < 16; k++) {
            float a[4];
            float w[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                a[i] = sA[k][tm * 4 + i];
                w[i] = sW[k][tn * 4 + i];
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], w[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int gm = m0 + tm * 4 + i;
        if (gm >= M) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int gn = n0 + tn * 4 + j;
            if (gn < N) {
                float* p = C + (size_t)gm * N + gn;
                *p = accumulate ? *p + acc[i][j] : acc[i][j];
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// GEMV for at most GEMV_ROWS rows of A (decode): grid = ceil(N / 8), 256 threads, warp w of block b computes
// C[:][b*8 + w]. Each lane reads 16 bytes of the weight row per step; K % 8 == 0 (bf16) or K % 4 == 0 (fp32).

// sums each row's lane partials over the warp; lane 0 writes C[m][n] (+)= the sum
__device__ __forceinline__ void gemv_store(float (&acc)[GEMV_ROWS], float* __restrict__ C, int M, int N, int n, int lane,
                                           int accumulate) {
#pragma unroll
    for (int m = 0; m < GEMV_ROWS; m++) {
        if (m < M) {
            float s = acc[m];
            for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
            if (lane == 0) {
                float* p = C + (size_t)m * N + n;
                *p = accumulate ? *p + s : s;
            }
        }
    }
}

// Chunks c0, c0 + 32, ... (GEMV_LOADS of them) of a W row, loaded before any is used; zero past the row's end.
template <typename V>
__device__ __forceinline__ void gemv_load_ahead(const V* __restrict__ wrow, int c0, int chunks, V (&wl)[GEMV_LOADS]) {
#pragma unroll
    for (int u = 0; u < GEMV_LOADS; u++) wl[u] = c0 + 32 * u < chunks ? __ldg(wrow + c0 + 32 * u) : V{};
}

extern "C" __global__ void __launch_bounds__(256)
gemv_bf16(const __nv_bfloat16* __restrict__ A, const __nv_bfloat16* __restrict__ W, float* __restrict__ C, int M,
          int N, int K, int accumulate) {
    const int lane = threadIdx.x & 31;
    const int n = blockIdx.x * 8 + (threadIdx.x >> 5);
    if (n >= N) return;
    const uint4* wrow = reinterpret_cast<const uint4*>(W + (size_t)n * K);
    float acc[GEMV_ROWS];
#pragma unroll
    for (int m = 0; m < GEMV_ROWS; m++) acc[m] = 0.f;
    const int chunks = K / 8;
    // GEMV_LOADS row loads in flight per lane before any is used (one at a time leaves HBM idle when N is small);
    // the sums still run over c = lane, lane + 32, ... in order
    for (int c0 = lane; c0 < chunks; c0 += 32 * GEMV_LOADS) {
        uint4 wl[GEMV_LOADS];
        gemv_load_ahead(wrow, c0, chunks, wl);
#pragma unroll
        for (int u = 0; u < GEMV_LOADS; u++) {
            const int c = c0 + 32 * u;
            if (c >= chunks) break;
            const uint4 w = wl[u];
            float wf[8] = {bf16_lo(w.x), bf16_hi(w.x), bf16_lo(w.y), bf16_hi(w.y),
                           bf16_lo(w.z), bf16_hi(w.z), bf16_lo(w.w), bf16_hi(w.w)};
#pragma unroll
            for (int m = 0; m < GEMV_ROWS; m++) {
                if (m < M) {
                    uint4 a = __ldg(reinterpret_cast<const uint4*>(A + (size_t)m * K) + c);
                    float s = acc[m];
                    s = fmaf(bf16_lo(a.x), wf[0], s);
                    s = fmaf(bf16_hi(a.x), wf[1], s);
                    s = fmaf(bf16_lo(a.y), wf[2], s);
                    s = fmaf(bf16_hi(a.y), wf[3], s);
                    s = fmaf(bf16_lo(a.z), wf[4], s);
                    s = fmaf(bf16_hi(a.z), wf[5], s);
                    s = fmaf(bf16_lo(a.w), wf[6], s);
                    s = fmaf(bf16_hi(a.w), wf[7], s);
                    acc[m] = s;
                }
            }
        }
    }
    gemv_store(acc, C, M, N, n, lane, accumulate);
}

extern "C" __global__ void __launch_bounds__(256)
gemv_f32(const float* __restrict__ A, const float* __restrict__ W, float* __restrict__ C, int M, int N, int K,
         int accumulate) {
    const int lane = threadIdx.x & 31;
    const int n = blockIdx.x * 8 + (threadIdx.x >> 5);
    if (n >= N) return;
    const float4* wrow = reinterpret_cast<const float4*>(W + (size_t)n * K);
    float acc[GEMV_ROWS];
#pragma unroll
    for (int m = 0; m < GEMV_ROWS; m++) acc[m] = 0.f;
    const int chunks = K / 4;
    for (int c0 = lane; c0 < chunks; c0 += 32 * GEMV_LOADS) {  // as gemv_bf16
        float4 wl[GEMV_LOADS];
        gemv_load_ahead(wrow, c0, chunks, wl);
#pragma unroll
        for (int u = 0; u < GEMV_LOADS; u++) {
            const int c = c0 + 32 * u;
            if (c >= chunks) break;
            const float4 w = wl[u];
#pragma unroll
            for (int m = 0; m < GEMV_ROWS; m++) {
                if (m < M) {
                    float4 a = __ldg(reinterpret_cast<const float4*>(A + (size_t)m * K) + c);
                    acc[m] = fmaf(a.w, w.w, fmaf(a.z, w.z, fmaf(a.y, w.y, fmaf(a.x, w.x, acc[m]))));
                }
            }
        }
    }
    gemv_store(acc, C, M, N, n, lane, accumulate);
}

// ---------------------------------------------------------------------------------------------------------------
// Q/K/V split, bias, RoPE and the KV store write: grid = tokens, 128 threads.
//   qkv   fp32 [T][H*D + 2*KV*D]      bias fp32 [H*D + 2*KV*D] or null     pos int [T]
//   cosT, sinT fp32 [positions][D/2]
//   q     fp32 [T][H][D] (rotated)    kStore, vStore <kv> [KV][capacity][D] written at slot firstSlot + t
//   kOut, vOut fp32 [T][KV][D] (rotated k, v) or null

template <typename KV>
__device__ void qkv_rope(const float* __restrict__ qkv, const float* __restrict__ bias, const int* __restrict__ pos,
                         const float* __restrict__ cosT, const float* __restrict__ sinT, float* __restrict__ q,
                         KV* __restrict__ kStore, KV* __restrict__ vStore, float* __restrict__ kOut,
                         float* __restrict__ vOut, int heads, int kvHeads, int D, long capacity, int firstSlot) {
    const int t = blockIdx.x;
    const int half = D / 2;
    const int qDim = heads * D;
    const int kvDim = kvHeads * D;
    const float* row = qkv + (size_t)t * (qDim + 2 * kvDim);
    const float* c = cosT + (size_t)pos[t] * half;
    const float* s = sinT + (size_t)pos[t] * half;
    const long slot = firstSlot + t;
    // rotated pairs (i, i + D/2) of every query head, then of every key head
    for (int p = threadIdx.x; p < (heads + kvHeads) * half; p += blockDim.x) {
        int h = p / half;
        int i = p - h * half;
        int base = h * D + i;  // into row, and into q for query heads
        float x1 = row[base];
        float x2 = row[base + half];
        if (bias) {
            x1 += bias[base];
            x2 += bias[base + half];
        }
        float y1 = x1 * c[i] - x2 * s[i];
        float y2 = x2 * c[i] + x1 * s[i];
        if (h < heads) {
            float* out = q + (size_t)t * qDim + base;
            out[0] = y1;
            out[half] = y2;
        } else {
            int kh = h - heads;
            KV* ks = kStore + ((size_t)kh * capacity + slot) * D + i;
            Store<KV>::put(ks, y1);
            Store<KV>::put(ks + half, y2);
            if (kOut) {
                float* ko = kOut + (size_t)t * kvDim + kh * D + i;
                ko[0] = y1;
                ko[half] = y2;
            }
        }
    }
    for (int e = threadIdx.x; e < kvDim; e += blockDim.x) {
        float v = row[qDim + kvDim + e];
        if (bias) v += bias[qDim + kvDim + e];
        int kh = e / D;
        int d = e - kh * D;
        Store<KV>::put(vStore + ((size_t)kh * capacity + slot) * D + d, v);
        if (vOut) vOut[(size_t)t * kvDim + e] = v;
    }
}

#define QKV_ROPE_ARGS(KV)                                                                                        \
    const float *qkv, const float *bias, const int *pos, const float *cosT, const float *sinT, float *q, KV *kStore, \
        KV *vStore, float *kOut, float *vOut, int heads, int kvHeads, int D, long capacity, int firstSlot

extern "C" __global__ void qkv_rope_f16(QKV_ROPE_ARGS(__half)) {
    qkv_rope<__half>(qkv, bias, pos, cosT, sinT, q, kStore, vStore, kOut, vOut, heads, kvHeads, D, capacity, firstSlot);
}

extern "C" __global__ void qkv_rope_bf16(QKV_ROPE_ARGS(__nv_bfloat16)) {
    qkv_rope<__nv_bfloat16>(qkv, bias, pos, cosT, sinT, q, kStore, vStore, kOut, vOut, heads, kvHeads, D, capacity,
                            firstSlot);
}

// ---------------------------------------------------------------------------------------------------------------
// SwiGLU: grid-stride over T*F, h[t][i] = silu(gu[t][i]) * gu[t][F + i], silu(g) = g / (1 + exp(-g))

template <typename A>
__device__ void swiglu(const float* __restrict__ gu, A* __restrict__ h, long total, int F) {
    for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < total; e += (long)gridDim.x * blockDim.x) {
        long t = e / F;
        long i = e - t * F;
        float g = gu[t * 2 * F + i];
        float u = gu[t * 2 * F + F + i];
        Store<A>::put(h + e, g / (1.f + expf(-g)) * u);
    }
}

extern "C" __global__ void swiglu_f32(const float* gu, float* h, long total, int F) { swiglu<float>(gu, h, total, F); }

extern "C" __global__ void swiglu_bf16(const float* gu, __nv_bfloat16* h, long total, int F) {
    swiglu<__nv_bfloat16>(gu, h, total, F);
}

extern "C" __global__ void to_bf16(const float* __restrict__ x, __nv_bfloat16* __restrict__ y, long n) {
    for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
        y[e] = __float2bfloat16_rn(x[e]);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// argmax: one block of 1024 threads; the first index of the maximum (NaN never wins)

extern "C" __global__ void __launch_bounds__(1024) argmax_f32(const float* __restrict__ x, int n, int* __restrict__ out) {
    __shared__ float bestV[32];
    __shared__ int bestI[32];
    float v = -INFINITY;
    int idx = n;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float y = x[i];
        if (y > v) {
            v = y;
            idx = i;
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, v, o);
        int oi = __shfl_xor_sync(0xffffffffu, idx, o);
        if (ov > v || (ov == v && oi < idx)) {
            v = ov;
            idx = oi;
        }
    }
    int lane = threadIdx.x & 31;
    int warp = threadIdx.x >> 5;
    if (lane == 0) {
        bestV[warp] = v;
        bestI[warp] = idx;
    }
    __syncthreads();
    if (warp == 0) {
        int warps = blockDim.x >> 5;
        v = lane < warps ? bestV[lane] : -INFINITY;
        idx = lane < warps ? bestI[lane] : n;
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, v, o);
            int oi = __shfl_xor_sync(0xffffffffu, idx, o);
            if (ov > v || (ov == v && oi < idx)) {
                v = ov;
                idx = oi;
            }
        }
        if (lane == 0) *out = idx < n ? idx : 0;
    }
}
