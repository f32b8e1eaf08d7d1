// Device helpers shared by the kernel sources of this folder (each .cu is its own PTX module and includes this).
// build-ptx.sh and PtxFreshnessTest hash a source together with the headers it includes.

#pragma once

#include <stdint.h>

// shared-memory address of a generic pointer, as PTX's 32-bit shared operands take it
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(uint32_t saddr, const void* g, bool valid) {
    int n = valid ? 16 : 0;  // src-size 0 zero-fills the 16 bytes
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(saddr), "l"(g), "r"(n));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

// Byte offset of 16-byte chunk c (0..7) of row r in rows of 128 bytes with the 128-byte swizzle that wgmma reads (and
// that keeps the 8 rows an ldmatrix reads in distinct banks): chunk c ^ (r % 8), groups of 8 rows 1024 bytes apart.
__device__ __forceinline__ uint32_t sw128(int r, int c) {
    return r * 128 + ((c ^ (r & 7)) << 4);
}

__device__ __forceinline__ float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

// C[row][gn], C[row][gn + 1] (+)= v0, v1 of a GEMM's fp32 output row crow of N columns: one 8-byte store when both
// columns exist and N is even, else column by column
__device__ __forceinline__ void store_c2(float* crow, int gn, int N, float v0, float v1, int accumulate) {
    if (gn + 1 < N && (N & 1) == 0) {
        float2* p = reinterpret_cast<float2*>(crow + gn);
        if (accumulate) {
            float2 old = *p;
            v0 += old.x;
            v1 += old.y;
        }
        *p = make_float2(v0, v1);
    } else {
        if (gn < N) crow[gn] = accumulate ? crow[gn] + v0 : v0;
        if (gn + 1 < N) crow[gn + 1] = accumulate ? crow[gn + 1] + v1 : v1;
    }
}
