// Star Attention CUDA kernels (loaded as PTX through the JCuda driver API; see build-ptx.sh).
//
//  attn_fwd_<t>_d<D>_w<W>[m2]  blockwise ("flash") attention, W warps x 16 (m2: 32) query rows per block, 64-key tiles in shared
//                           memory (cp.async double buffering, XOR-swizzled), tensor-core mma.sync m16n8k16 with fp32
//                           accumulation, online softmax in fp32 (base 2), output + natural-log LSE per (token, head).
//  attn_split_<t>_d<D>      the same for at most 16 query rows per KV head (decode): the 4 warps of a block split
//                           each 64-key tile between them and merge their states in shared memory at the end.
//  lse_merge_f32            merges partial (output, LSE) states, e.g. the key splits of the two kernels above.
//  convert_kv_<t>           fp32 [tokens][kvHeads][D] -> fp16/bf16 head-major KV slots (KV store writes).
//
// Data layout (all row-major):
//  q    fp32 [tokens][heads][D]          qpos int [tokens]
//  k, v <t>  [kvHeads][capacity][D]       kpos int [slots], strictly increasing (headStride = capacity * D)
//  out  fp32 [splits][tokens][heads][D]  lse  fp32 [splits][tokens][heads]
// Grid: x = (query-row tile, KV head) with the KV head fastest and the heaviest causal tile first, so blocks start
// longest-first across all heads and the last wave holds every head's lightest tiles; z = key split. The query rows
// of one KV head are packed GQA-style: row r -> token r / group, query head kvHead * group + r % group, so a K/V
// tile is loaded once for all query heads that share it. A key is visible to a row iff key position <= the row's
// token position; block z covers keys [z * chunk, (z + 1) * chunk). A row that sees no key gets out = 0, lse = -inf.
// The host, which knows every position, passes per row tile ranges[tile] = (keys visible to some row of the tile,
// keys visible to every row): tiles past the first bound are skipped, tiles before the second need no mask.
//
// Requires sm_80+ (mma.sync bf16, cp.async, ldmatrix). D in {64, 128}. The block coordinates, the Q tile load and a
// row's output are attention_common.cuh's, shared with attention_sm90.cu.

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>
#include <climits>

#include "attention_common.cuh"

#define BN 64

// ---------------------------------------------------------------------------------------------------------------
// PTX helpers (the rest in common.cuh)

__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

template <typename T> struct Mma;

template <> struct Mma<__half> {
    static __device__ __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};

template <> struct Mma<__nv_bfloat16> {
    static __device__ __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};

// Byte offset of 16-byte chunk `chunk` of row `row` in a tile of rows of ROWB bytes (XOR swizzle: the 8 rows an
// ldmatrix reads hit 8 different bank groups).
template <int ROWB>
__device__ __forceinline__ uint32_t swz(int row, int chunk) {
    return row * ROWB + ((chunk ^ (row & 7)) << 4);
}

// Dynamic shared memory in bytes for a block of BM rows (the host computes the same).
//   Q [BM][D] | K [2][BN][D] | V [2][BN][D] | qpos [BM] | 16 spare bytes

// ---------------------------------------------------------------------------------------------------------------
// Attention

template <typename T, int D, int WARPS, int MT, bool KSPLIT>
__device__ __forceinline__ void attn_body(const float* __restrict__ q, const int* __restrict__ qpos,
                                          const T* __restrict__ k, const T* __restrict__ v,
                                          const int* __restrict__ kpos, const int2* __restrict__ ranges,
                                          float* __restrict__ out, float* __restrict__ lse, int tokens, int heads,
                                          int kvHeads, long long headStride, int chunk, float scaleLog2) {
    constexpr int NTHREADS = WARPS * 32;
    constexpr int BM = KSPLIT ? 16 : 16 * WARPS * MT;  // query rows per block
    constexpr int ROWB = D * 2;                         // bytes per smem row
    constexpr int NT = KSPLIT ? 2 : BN / 8;             // 8-key n-tiles of S per warp per key tile
    constexpr int KEYS_W = NT * 8;                      // keys per warp per key tile
    constexpr int DT = D / 8;                           // 8-column n-tiles of O
    constexpr bool QREG = MT == 1 || D <= 64;           // Q fragments kept in registers (else re-read from smem)
    using M = Mma<T>;

    extern __shared__ __align__(128) unsigned char smem[];
    unsigned char* sQp = smem;
    unsigned char* sKp = smem + BM * ROWB;
    unsigned char* sVp = sKp + 2 * BN * ROWB;
    int* qposS = reinterpret_cast<int*>(sVp + 2 * BN * ROWB);
    const uint32_t sQ = smem_u32(sQp), sK = smem_u32(sKp), sV = smem_u32(sVp);

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t4 = lane & 3, mi = lane >> 3;
    const AttnBlock b(BM, ranges, tokens, heads, kvHeads, chunk);
    const int rows = b.rows, row0 = b.row0, kBegin = b.kBegin, kEnd = b.kEnd, visAll = b.visAll;
    const T* __restrict__ kh = k + (size_t)b.kvh * headStride;
    const T* __restrict__ vh = v + (size_t)b.kvh * headStride;
    load_q_tile<T, D, BM, NTHREADS>(b, q, qpos, heads, sQp, qposS, [](int r, int c) { return swz<ROWB>(r, c); });
    __syncthreads();
    const int ntiles = b.tiles(BN);

    const int wrow = KSPLIT ? 0 : warp * 16 * MT;  // first row of this warp in the block
    const int kw = KSPLIT ? warp * KEYS_W : 0;      // first key of this warp in a key tile
    const bool active = row0 + wrow < rows;

    uint32_t qf[QREG ? MT : 1][QREG ? D / 16 : 1][4];
    if (QREG && active) {
#pragma unroll
        for (int mt = 0; mt < (QREG ? MT : 0); ++mt) {
#pragma unroll
            for (int kk = 0; kk < D / 16; ++kk) {
                ldsm_x4(qf[mt][kk], sQ + swz<ROWB>(wrow + mt * 16 + (lane & 7) + (mi & 1) * 8, kk * 2 + (mi >> 1)));
            }
        }
    }

    float o[MT][DT][4];
    float mrow[MT][2], lrow[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int n = 0; n < DT; ++n) o[mt][n][0] = o[mt][n][1] = o[mt][n][2] = o[mt][n][3] = 0.f;
        mrow[mt][0] = mrow[mt][1] = -INFINITY;
        lrow[mt][0] = lrow[mt][1] = 0.f;
    }

    auto load_tile = [&](int tile, int buf) {
        load_kv_tile<D, BN, NTHREADS>(kh, vh, kBegin + tile * BN, kEnd, sK, sV, buf * BN * ROWB, tid,
                                      [](int r, int c) { return swz<ROWB>(r, c); });
    };

    if (ntiles > 0) load_tile(0, 0);
    for (int it = 0; it < ntiles; ++it) {
        const int buf = it & 1;
        load_next_wait_this(it, ntiles, buf, load_tile);
        __syncthreads();
        const int n0 = kBegin + it * BN;
        if (active) {
            const uint32_t kb = sK + buf * BN * ROWB, vb = sV + buf * BN * ROWB;
            float s[MT][NT][4];
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                for (int j = 0; j < NT; ++j) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.f;
            // S = Q K^T
#pragma unroll
            for (int kk = 0; kk < D / 16; ++kk) {
                uint32_t qa[QREG ? 1 : MT][4];
                if (!QREG) {
#pragma unroll
                    for (int mt = 0; mt < (QREG ? 0 : MT); ++mt) {
                        ldsm_x4(qa[mt], sQ + swz<ROWB>(wrow + mt * 16 + (lane & 7) + (mi & 1) * 8, kk * 2 + (mi >> 1)));
                    }
                }
#pragma unroll
                for (int j = 0; j < NT; j += 2) {
                    uint32_t b[4];
                    ldsm_x4(b, kb + swz<ROWB>(kw + j * 8 + (mi >> 1) * 8 + (lane & 7), kk * 2 + (mi & 1)));
#pragma unroll
                    for (int mt = 0; mt < MT; ++mt) {
                        const uint32_t(&a)[4] = QREG ? qf[QREG ? mt : 0][QREG ? kk : 0] : qa[QREG ? 0 : mt];
                        M::run(s[mt][j], a, b[0], b[1]);
                        M::run(s[mt][j + 1], a, b[2], b[3]);
                    }
                }
            }
            // scale (to base 2) and mask
            const bool needMask = n0 + kw + KEYS_W > visAll;
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
                for (int j = 0; j < NT; ++j) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        float x = s[mt][j][e] * scaleLog2;
                        if (needMask) {
                            int key = n0 + kw + j * 8 + t4 * 2 + (e & 1);
                            if (key >= kEnd || kpos[key] > qposS[wrow + mt * 16 + g + (e >> 1) * 8]) x = -INFINITY;
                        }
                        s[mt][j][e] = x;
                    }
                }
            }
            // online softmax
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
                float mx[2] = {mrow[mt][0], mrow[mt][1]};
#pragma unroll
                for (int j = 0; j < NT; ++j) {
                    mx[0] = fmaxf(mx[0], fmaxf(s[mt][j][0], s[mt][j][1]));
                    mx[1] = fmaxf(mx[1], fmaxf(s[mt][j][2], s[mt][j][3]));
                }
                float mu[2], alpha[2], rs[2] = {0.f, 0.f};
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
                    mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
                    mu[i] = mx[i] == -INFINITY ? 0.f : mx[i];
                    alpha[i] = ex2(mrow[mt][i] - mu[i]);
                    mrow[mt][i] = mx[i];
                }
#pragma unroll
                for (int j = 0; j < NT; ++j) {
                    s[mt][j][0] = ex2(s[mt][j][0] - mu[0]);
                    s[mt][j][1] = ex2(s[mt][j][1] - mu[0]);
                    s[mt][j][2] = ex2(s[mt][j][2] - mu[1]);
                    s[mt][j][3] = ex2(s[mt][j][3] - mu[1]);
                    rs[0] += s[mt][j][0] + s[mt][j][1];
                    rs[1] += s[mt][j][2] + s[mt][j][3];
                }
                lrow[mt][0] = lrow[mt][0] * alpha[0] + rs[0];
                lrow[mt][1] = lrow[mt][1] * alpha[1] + rs[1];
#pragma unroll
                for (int n = 0; n < DT; ++n) {
                    o[mt][n][0] *= alpha[0];
                    o[mt][n][1] *= alpha[0];
                    o[mt][n][2] *= alpha[1];
                    o[mt][n][3] *= alpha[1];
                }
            }
            // O += P V
#pragma unroll
            for (int kk = 0; kk < NT / 2; ++kk) {
                uint32_t a[MT][4];
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    a[mt][0] = pack2<T>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
                    a[mt][1] = pack2<T>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
                    a[mt][2] = pack2<T>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
                    a[mt][3] = pack2<T>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
                }
#pragma unroll
                for (int n = 0; n < DT; n += 2) {
                    uint32_t b[4];
                    ldsm_x4_t(b, vb + swz<ROWB>(kw + kk * 16 + (mi & 1) * 8 + (lane & 7), n + (mi >> 1)));
#pragma unroll
                    for (int mt = 0; mt < MT; ++mt) {
                        M::run(o[mt][n], a[mt], b[0], b[1]);
                        M::run(o[mt][n + 1], a[mt], b[2], b[3]);
                    }
                }
            }
        }
        __syncthreads();
    }

#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            lrow[mt][i] += __shfl_xor_sync(0xffffffffu, lrow[mt][i], 1);
            lrow[mt][i] += __shfl_xor_sync(0xffffffffu, lrow[mt][i], 2);
        }
    }
    if (!KSPLIT) {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                int gr = row0 + wrow + mt * 16 + g + i * 8;
                if (gr >= rows) continue;
                store_row<D>(b, out, lse, tokens, heads, gr, lrow[mt][i], mrow[mt][i], t4,
                             [&](int n) { return make_float2(o[mt][n][2 * i], o[mt][n][2 * i + 1]); });
            }
        }
    } else {
        // Merge the 4 warps' states (each over its own keys) through shared memory (the K/V tiles are free now).
        float* redO = reinterpret_cast<float*>(sKp);  // [WARPS][16][D]
        float* redM = redO + WARPS * 16 * D;          // [WARPS][16]
        float* redL = redM + WARPS * 16;              // [WARPS][16]
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            int r = g + i * 8;
#pragma unroll
            for (int n = 0; n < DT; ++n) {
                *reinterpret_cast<float2*>(redO + (warp * 16 + r) * D + n * 8 + t4 * 2) =
                    make_float2(o[0][n][2 * i], o[0][n][2 * i + 1]);
            }
            if (t4 == 0) {
                redM[warp * 16 + r] = mrow[0][i];
                redL[warp * 16 + r] = lrow[0][i];
            }
        }
        __syncthreads();
        for (int idx = tid; idx < 16 * D; idx += NTHREADS) {
            int r = idx / D, c = idx % D;
            int gr = row0 + r;
            if (gr >= rows) continue;
            float mm = -INFINITY;
#pragma unroll
            for (int w = 0; w < WARPS; ++w) mm = fmaxf(mm, redM[w * 16 + r]);
            float L = 0.f, acc = 0.f;
            if (mm != -INFINITY) {
#pragma unroll
                for (int w = 0; w < WARPS; ++w) {
                    float f = ex2(redM[w * 16 + r] - mm);
                    L += redL[w * 16 + r] * f;
                    acc += redO[(w * 16 + r) * D + c] * f;
                }
            }
            size_t orow = b.outRow(gr, tokens, heads);
            out[orow * D + c] = L > 0.f ? acc / L : 0.f;
            if (c == 0) lse[orow] = L > 0.f ? (mm + __log2f(L)) * ATTN_LN2 : -INFINITY;
        }
    }
}

#define ATTN_ARGS(T)                                                                                        \
    const float *__restrict__ q, const int *__restrict__ qpos, const T *__restrict__ k,                    \
        const T *__restrict__ v, const int *__restrict__ kpos, const int2 *__restrict__ ranges,            \
        float *__restrict__ out, float *__restrict__ lse, int tokens, int heads, int kvHeads,              \
        long long headStride, int chunk, float scaleLog2
#define ATTN_PASS q, qpos, k, v, kpos, ranges, out, lse, tokens, heads, kvHeads, headStride, chunk, scaleLog2

#define DEF_FWD(NAME, T, D, W, MT, MINB)                                                                    \
    extern "C" __global__ void __launch_bounds__(W * 32, MINB) NAME(ATTN_ARGS(T)) {                         \
        attn_body<T, D, W, MT, false>(ATTN_PASS);                                                           \
    }
#define DEF_SPLIT(NAME, T, D)                                                                               \
    extern "C" __global__ void __launch_bounds__(128, 2) NAME(ATTN_ARGS(T)) {                               \
        attn_body<T, D, 4, 1, true>(ATTN_PASS);                                                             \
    }

DEF_FWD(attn_fwd_f16_d64_w4, __half, 64, 4, 1, 2)
DEF_FWD(attn_fwd_f16_d128_w4, __half, 128, 4, 1, 2)
DEF_FWD(attn_fwd_f16_d64_w8, __half, 64, 8, 1, 1)
DEF_FWD(attn_fwd_f16_d128_w8, __half, 128, 8, 1, 1)
DEF_FWD(attn_fwd_f16_d64_w4m2, __half, 64, 4, 2, 2)
DEF_FWD(attn_fwd_f16_d128_w4m2, __half, 128, 4, 2, 2)
DEF_FWD(attn_fwd_bf16_d64_w4, __nv_bfloat16, 64, 4, 1, 2)
DEF_FWD(attn_fwd_bf16_d128_w4, __nv_bfloat16, 128, 4, 1, 2)
DEF_FWD(attn_fwd_bf16_d64_w8, __nv_bfloat16, 64, 8, 1, 1)
DEF_FWD(attn_fwd_bf16_d128_w8, __nv_bfloat16, 128, 8, 1, 1)
DEF_FWD(attn_fwd_bf16_d64_w4m2, __nv_bfloat16, 64, 4, 2, 2)
DEF_FWD(attn_fwd_bf16_d128_w4m2, __nv_bfloat16, 128, 4, 2, 2)
DEF_SPLIT(attn_split_f16_d64, __half, 64)
DEF_SPLIT(attn_split_f16_d128, __half, 128)
DEF_SPLIT(attn_split_bf16_d64, __nv_bfloat16, 64)
DEF_SPLIT(attn_split_bf16_d128, __nv_bfloat16, 128)

// ---------------------------------------------------------------------------------------------------------------
// LSE merge: parts p = 0..parts-1 of po [parts][rows][D], pl [parts][rows] -> out [rows][D], lse [rows].
// lse = -inf or NaN means "no key" (weight 0). One block of 256 threads per row: D/4 threads cover the row with
// float4s and the 256 / (D/4) groups of them take every G-th part, then reduce through shared memory.
// D % 4 == 0, D <= 1024.

extern "C" __global__ void __launch_bounds__(256) lse_merge_f32(const float* __restrict__ po,
                                                                const float* __restrict__ pl, int parts,
                                                                int rows, int D, float* __restrict__ out,
                                                                float* __restrict__ lse) {
    __shared__ float4 redO[256];
    __shared__ float redL[256];
    const int tpr = D / 4;
    const int G = blockDim.x / tpr;
    const int r = blockIdx.x;
    const int c = (threadIdx.x % tpr) * 4;
    const int grp = threadIdx.x / tpr;
    float m = -INFINITY;
    for (int p = 0; p < parts; ++p) {
        float x = pl[(size_t)p * rows + r];
        if (x > m) m = x;  // NaN compares false
    }
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    float L = 0.f;
    if (grp < G && m != -INFINITY) {
        for (int p = grp; p < parts; p += G) {
            float x = pl[(size_t)p * rows + r];
            if (!(x > -INFINITY)) continue;
            float w = expf(x - m);
            float4 y = *reinterpret_cast<const float4*>(po + ((size_t)p * rows + r) * D + c);
            L += w;
            acc.x += w * y.x;
            acc.y += w * y.y;
            acc.z += w * y.z;
            acc.w += w * y.w;
        }
    }
    redO[threadIdx.x] = acc;
    redL[threadIdx.x] = L;
    __syncthreads();
    if (grp != 0) return;
    for (int g2 = 1; g2 < G; ++g2) {
        float4 y = redO[g2 * tpr + threadIdx.x];
        acc.x += y.x;
        acc.y += y.y;
        acc.z += y.z;
        acc.w += y.w;
        L += redL[g2 * tpr + threadIdx.x];
    }
    if (m != -INFINITY) {
        float inv = 1.f / L;
        acc.x *= inv;
        acc.y *= inv;
        acc.z *= inv;
        acc.w *= inv;
    }
    *reinterpret_cast<float4*>(out + (size_t)r * D + c) = acc;
    if (c == 0) lse[r] = m == -INFINITY ? -INFINITY : m + logf(L);
}

// ---------------------------------------------------------------------------------------------------------------
// KV writes: fp32 src [tokens][kvHeads][D] -> fp16/bf16 dst [kvHeads][capacity][D] at slots firstSlot.. (d4 = D / 4).

template <typename T>
__device__ __forceinline__ void convert_kv(const float4* __restrict__ src, uint2* __restrict__ dst, int tokens,
                                           int kvHeads, int d4, long long capacity, int firstSlot) {
    const long long n = (long long)tokens * kvHeads * d4;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        int c = (int)(i % d4);
        long long th = i / d4;
        int h = (int)(th % kvHeads);
        long long t = th / kvHeads;
        float4 x = src[i];
        dst[((long long)h * capacity + firstSlot + t) * d4 + c] = make_uint2(pack2<T>(x.x, x.y), pack2<T>(x.z, x.w));
    }
}

extern "C" __global__ void convert_kv_f16(const float4* __restrict__ src, uint2* __restrict__ dst, int tokens,
                                          int kvHeads, int d4, long long capacity, int firstSlot) {
    convert_kv<__half>(src, dst, tokens, kvHeads, d4, capacity, firstSlot);
}

extern "C" __global__ void convert_kv_bf16(const float4* __restrict__ src, uint2* __restrict__ dst, int tokens,
                                           int kvHeads, int d4, long long capacity, int firstSlot) {
    convert_kv<__nv_bfloat16>(src, dst, tokens, kvHeads, d4, capacity, firstSlot);
}
