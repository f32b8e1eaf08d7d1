// What attention.cu's attn_fwd/attn_split and attention_sm90.cu's attn_fwd_wg share around their products: a block's
// place in the launch, the query tile in shared memory, the element packing and a row's output. The contract (data
// layout, grid, key ranges, splits) is attention.cu's header.

#pragma once

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>
#include <climits>

#include "common.cuh"

#define ATTN_LN2 0.6931471805599453f

template <typename T> __device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <> __device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
}
template <> __device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
}

// A block of BM packed query rows (row r -> token r / group, query head kvh * group + r % group) of one KV head and
// one key split: grid x = (row tile, KV head) with the KV head fastest and the heaviest causal tile first, z = split.
// Its keys are [kBegin, kEnd); keys below visAll are visible to every row (no mask needed).
struct AttnBlock {
    int mtile, kvh, split, group, rows, row0, kBegin, kEnd, visAll;

    __device__ __forceinline__ AttnBlock(int bm, const int2* __restrict__ ranges, int tokens, int heads, int kvHeads,
                                         int chunk) {
        mtile = gridDim.x / kvHeads - 1 - blockIdx.x / kvHeads;
        kvh = blockIdx.x % kvHeads;
        split = blockIdx.z;
        group = heads / kvHeads;
        rows = tokens * group;
        row0 = mtile * bm;
        const int2 range = ranges[mtile];  // (keys visible to some row, keys visible to every row), from the host
        kBegin = split * chunk;
        kEnd = min(range.x, kBegin + chunk);
        visAll = min(range.y, kEnd);
    }

    __device__ __forceinline__ int tiles(int bn) const { return kEnd > kBegin ? (kEnd - kBegin + bn - 1) / bn : 0; }

    // index of packed row gr's output in out [splits][tokens][heads] (times D) and lse
    __device__ __forceinline__ size_t outRow(int gr, int tokens, int heads) const {
        return (size_t)split * tokens * heads + (size_t)(gr / group) * heads + kvh * group + gr % group;
    }
};

// The query positions of the block's BM rows (INT_MIN past the last) into qposS, and its Q tile, converted to T, into
// shared memory at sQ: element (r, c) at byte swz(r, c / 8) + (c % 8) * 2.
template <typename T, int D, int BM, int NTHREADS, typename Swz>
__device__ __forceinline__ void load_q_tile(const AttnBlock& b, const float* __restrict__ q,
                                            const int* __restrict__ qpos, int heads, unsigned char* sQ, int* qposS,
                                            Swz swz) {
    const int tid = threadIdx.x;
    for (int r = tid; r < BM; r += NTHREADS) {
        int gr = b.row0 + r;
        qposS[r] = gr < b.rows ? qpos[gr / b.group] : INT_MIN;
    }
    for (int i = tid; i < BM * (D / 4); i += NTHREADS) {
        int r = i / (D / 4), c = (i % (D / 4)) * 4;
        int gr = b.row0 + r;
        float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
        if (gr < b.rows) {
            int t = gr / b.group, h = b.kvh * b.group + gr % b.group;
            x = *reinterpret_cast<const float4*>(q + ((size_t)t * heads + h) * D + c);
        }
        uint2 p = make_uint2(pack2<T>(x.x, x.y), pack2<T>(x.z, x.w));
        *reinterpret_cast<uint2*>(sQ + swz(r, c >> 3) + (c & 7) * 2) = p;
    }
}

// Keys n0.. of one KV head (kh, vh: [capacity][D]) into K and V tiles of KEYS rows at byte offset off of sK and sV,
// zero past kEnd: 16-byte chunk c of key r at byte off + swz(r, c). Commits one cp.async group.
template <int D, int KEYS, int NTHREADS, typename T, typename Swz>
__device__ __forceinline__ void load_kv_tile(const T* __restrict__ kh, const T* __restrict__ vh, int n0, int kEnd,
                                             uint32_t sK, uint32_t sV, uint32_t off, int tid, Swz swz) {
    constexpr int CH = D / 8;  // 16-byte chunks per row
    for (int i = tid; i < KEYS * CH; i += NTHREADS) {
        int r = i / CH, c = i % CH;
        int key = n0 + r;
        bool ok = key < kEnd;
        size_t g = (ok ? (size_t)key * D : 0) + c * 8;
        uint32_t so = off + swz(r, c);
        cp_async16(sK + so, kh + g, ok);
        cp_async16(sV + so, vh + g, ok);
    }
    cp_async_commit();
}

// Double buffering of key tiles: starts tile it + 1's copies into the other buffer (load(tile, buffer)), if there is a
// next tile, and waits for tile it's, leaving the newer group in flight.
template <typename Load>
__device__ __forceinline__ void load_next_wait_this(int it, int ntiles, int buf, Load load) {
    if (it + 1 < ntiles) {
        load(it + 1, buf ^ 1);
        cp_async_wait<1>();
    } else {
        cp_async_wait<0>();
    }
}

// Row gr's output, normalized by its softmax sum l, and its natural-log LSE (running max m in base 2). The 4 lanes of a
// quad t4 = 0..3 each hold columns n * 8 + t4 * 2 (+1) of the D / 8 column tiles: pair(n) gives them unnormalized.
template <int D, typename Pair>
__device__ __forceinline__ void store_row(const AttnBlock& b, float* __restrict__ out, float* __restrict__ lse,
                                          int tokens, int heads, int gr, float l, float m, int t4, Pair pair) {
    size_t orow = b.outRow(gr, tokens, heads);
    float inv = l > 0.f ? 1.f / l : 0.f;
    float* op = out + orow * D;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
        float2 v = pair(n);
        *reinterpret_cast<float2*>(op + n * 8 + t4 * 2) = make_float2(v.x * inv, v.y * inv);
    }
    if (t4 == 0) lse[orow] = l > 0.f ? (m + __log2f(l)) * ATTN_LN2 : -INFINITY;
}
