// Hopper's warpgroup matrix instructions (wgmma) for the compute_90a sources of this folder (gemm_sm90.cu,
// attention_sm90.cu): shared-memory descriptors, the async fences, and the products they use.

#pragma once

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>

// wgmma shared-memory descriptor, 128-byte swizzle (common.cuh's sw128 layout): start >> 4 (bits 0-13), leading
// byte offset >> 4 (16-29), stride byte offset >> 4 (32-45), layout 1 (62-63). K-major operands: stride = 1024 bytes
// between groups of 8 rows, leading unused (16). An N-major operand (transposed by the instruction): stride = 1024
// bytes between groups of 8 rows along K, leading = between 64-column blocks along N.
__device__ __forceinline__ uint64_t wgmma_desc(uint32_t addr, uint32_t leading) {
    return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)(leading >> 4) << 16) | ((uint64_t)(1024 >> 4) << 32) |
           ((uint64_t)1 << 62);
}

template <int N>
__device__ __forceinline__ void keep(float (&d)[N]) {  // orders the accumulators around asynchronous wgmma
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(d[i])::"memory");
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }

#define D4(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3])
#define D16(i) D4(i), D4(i + 4), D4(i + 8), D4(i + 12)

// The products for element type T (".f16" / ".bf16", chosen by the type of the first argument, a null T*), fp32
// accumulators of a 64-row tile:
//   wgmma_ss     d[64 x N] (+)= a[64 x 16] . b[N x 16]^T, a and b K-major in shared memory (N = 128, 64); without
//                accumulate d is overwritten
//   wgmma_rs_tb  d[64 x N] += a[64 x 16] . b[16 x N], a in registers (the m16n8k16 A fragments of each warp's 16
//                rows), b N-major in shared memory, transposed by the instruction (N = 64, 128)
#define WG_OPS(T, TS)                                                                                                  \
    __device__ __forceinline__ void wgmma_ss(T*, float (&d)[64], uint64_t a, uint64_t b, int accumulate) {                \
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                                     \
                     "wgmma.mma_async.sync.aligned.m64n128k16.f32" TS TS " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n" \
                     : D16(0), D16(16), D16(32), D16(48)                                                               \
                     : "l"(a), "l"(b), "r"(accumulate));                                                               \
    }                                                                                                                  \
    __device__ __forceinline__ void wgmma_ss(T*, float (&d)[32], uint64_t a, uint64_t b, int accumulate) {                \
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                                     \
                     "wgmma.mma_async.sync.aligned.m64n64k16.f32" TS TS " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n" \
                     : D16(0), D16(16)                                                                                 \
                     : "l"(a), "l"(b), "r"(accumulate));                                                               \
    }                                                                                                                  \
    __device__ __forceinline__ void wgmma_rs_tb(T*, float (&d)[32], const uint32_t (&a)[4], uint64_t b) {                    \
        asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32" TS TS                                                \
                     " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, 1, 1, 1, 1;\n"                                          \
                     : D16(0), D16(16)                                                                                 \
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));                                            \
    }                                                                                                                  \
    __device__ __forceinline__ void wgmma_rs_tb(T*, float (&d)[64], const uint32_t (&a)[4], uint64_t b) {                    \
        asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32" TS TS                                               \
                     " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, 1, 1, 1, 1;\n"                                          \
                     : D16(0), D16(16), D16(32), D16(48)                                                               \
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));                                            \
    }

WG_OPS(__half, ".f16")
WG_OPS(__nv_bfloat16, ".bf16")
