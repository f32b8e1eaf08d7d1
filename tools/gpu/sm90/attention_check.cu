// Standalone check + timing of attention_sm90.cu against a naive fp32 GPU reference and attention.cu's w4m2 kernel
// (build.sh). Key tiles as attention_sm90.cu's DEF_WG lines: 128 keys for d=64, 64 for d=128.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <cmath>
#include <algorithm>
#include <climits>
typedef __nv_bfloat16 T;
#define ARGS const float*, const int*, const T*, const T*, const int*, const int2*, float*, float*, int, int, int, long long, int, float
extern "C" __global__ void attn_fwd_wg_bf16_d64(ARGS);
extern "C" __global__ void attn_fwd_wg_bf16_d128(ARGS);
extern "C" __global__ void attn_fwd_bf16_d64_w4m2(ARGS);
extern "C" __global__ void attn_fwd_bf16_d128_w4m2(ARGS);
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA error %s at %d\n", cudaGetErrorString(e), __LINE__); exit(1);} } while(0)
__global__ void initT(T* p, size_t n, unsigned seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    unsigned x = (unsigned)i * 2654435761u ^ seed; x ^= x >> 13; x *= 0x5bd1e995; x ^= x >> 15;
    p[i] = __float2bfloat16(((x & 0xffff) / 65535.f - 0.5f) * 2.f);
  }
}
__global__ void initF(float* p, size_t n, unsigned seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    unsigned x = (unsigned)i * 2654435761u ^ seed; x ^= x >> 13; x *= 0x5bd1e995; x ^= x >> 15;
    p[i] = ((x & 0xffff) / 65535.f - 0.5f) * 2.f;
  }
}
// one thread per (split, token, head): softmax over keys [z*chunk, min(z*chunk+chunk, nkeys)) with kpos <= qpos, fp32
__global__ void naive(const float* q, const int* qpos, const T* k, const T* v, const int* kpos, float* out, float* lse,
                      int tokens, int heads, int kvHeads, long long hs, int chunk, int nkeys, int splits, int D, float scale) {
  long idx = blockIdx.x * (long)blockDim.x + threadIdx.x;
  if (idx >= (long)splits * tokens * heads) return;
  int h = idx % heads; int t = (idx / heads) % tokens; int z = idx / heads / tokens;
  int kvh = h / (heads / kvHeads);
  const float* qr = q + ((size_t)t * heads + h) * D;
  const T* kh = k + kvh * hs; const T* vh = v + kvh * hs;
  int k0 = z * chunk, k1 = min(nkeys, k0 + chunk);
  float m = -INFINITY;
  for (int j = k0; j < k1; j++) { if (kpos[j] > qpos[t]) continue; float s = 0; for (int d = 0; d < D; d++) s += __bfloat162float(__float2bfloat16(qr[d])) * __bfloat162float(kh[(size_t)j*D+d]); m = fmaxf(m, s*scale); }
  float* o = out + idx * D; for (int d = 0; d < D; d++) o[d] = 0;
  float l = 0;
  if (m != -INFINITY) for (int j = k0; j < k1; j++) { if (kpos[j] > qpos[t]) continue; float s = 0; for (int d = 0; d < D; d++) s += __bfloat162float(__float2bfloat16(qr[d])) * __bfloat162float(kh[(size_t)j*D+d]); float p = expf(s*scale - m); l += p; for (int d = 0; d < D; d++) o[d] += p * __bfloat162float(vh[(size_t)j*D+d]); }
  for (int d = 0; d < D; d++) o[d] = l > 0 ? o[d] / l : 0;
  lse[idx] = l > 0 ? m + logf(l) : -INFINITY;
}
typedef void (*Kern)(ARGS);
struct Case { int tokens, heads, kv, D, nkeys, chunk; int kind; };  // kind 0 causal (q at the last positions), 1 star-like
int main() {
  std::vector<Case> checks = {{300,32,8,64,300,300,0},{300,32,8,128,300,300,0},{500,32,8,64,756,756,1},{500,32,8,128,756,756,1},
                              {700,16,16,64,1000,320,0},{700,12,4,128,1000,384,1},{5,32,8,64,40,40,0}};
  std::vector<Case> times = {{4096,32,8,64,4096,4096,0},{16384,32,8,64,16384,16384,0},{4096,32,8,64,65536,65536,0},
                             {4096,32,8,128,4096,4096,0},{16384,32,8,128,16384,16384,0},{4096,32,8,128,65536,65536,0}};
  for (int pass = 0; pass < 2; pass++) for (auto& c : (pass == 0 ? checks : times)) {
    int D = c.D, H = c.heads, KV = c.kv, tokens = c.tokens, nkeys = c.nkeys, chunk = c.chunk;
    int group = H / KV; long rows = (long)tokens * group;
    int splits = (nkeys + chunk - 1) / chunk;
    std::vector<int> qpos(tokens), kpos(nkeys);
    if (c.kind == 0) { for (int i = 0; i < nkeys; i++) kpos[i] = i; for (int t = 0; t < tokens; t++) qpos[t] = nkeys - tokens + t; }
    else { int a = nkeys - tokens; for (int i = 0; i < a; i++) kpos[i] = i; for (int i = a; i < nkeys; i++) kpos[i] = 5000 + i - a; for (int t = 0; t < tokens; t++) qpos[t] = 5000 + t; }
    int mtiles = (rows + 127) / 128;
    std::vector<int2> ranges(mtiles);
    for (int m = 0; m < mtiles; m++) { long r0 = (long)m * 128, r1 = std::min(rows, r0 + 128) - 1; int lo = INT_MAX, hi = INT_MIN;
      for (int t = r0 / group; t <= r1 / group; t++) { lo = std::min(lo, qpos[t]); hi = std::max(hi, qpos[t]); }
      int some = std::upper_bound(kpos.begin(), kpos.end(), hi) - kpos.begin(); int all = std::upper_bound(kpos.begin(), kpos.end(), lo) - kpos.begin();
      ranges[m] = make_int2(some, std::min(some, all)); }
    long long hs = (long long)nkeys * D;
    float *q, *o1, *l1, *o2, *l2; T *k, *v; int *dq, *dk; int2* dr;
    CK(cudaMalloc(&q, rows * KV * D * 4 / KV * KV)); // tokens*H*D floats
    CK(cudaMalloc(&k, (size_t)KV * hs * 2)); CK(cudaMalloc(&v, (size_t)KV * hs * 2));
    size_t on = (size_t)splits * tokens * H;
    CK(cudaMalloc(&o1, on * D * 4)); CK(cudaMalloc(&o2, on * D * 4)); CK(cudaMalloc(&l1, on * 4)); CK(cudaMalloc(&l2, on * 4));
    CK(cudaMalloc(&dq, tokens * 4)); CK(cudaMalloc(&dk, nkeys * 4)); CK(cudaMalloc(&dr, mtiles * 8));
    initF<<<1024,256>>>(q, (size_t)tokens * H * D, 3); initT<<<1024,256>>>(k, (size_t)KV * hs, 5); initT<<<1024,256>>>(v, (size_t)KV * hs, 7);
    CK(cudaMemcpy(dq, qpos.data(), tokens * 4, cudaMemcpyHostToDevice)); CK(cudaMemcpy(dk, kpos.data(), nkeys * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dr, ranges.data(), mtiles * 8, cudaMemcpyHostToDevice));
    float scale = 1.f / sqrtf((float)D), scaleLog2 = scale * 1.4426950408889634f;
    Kern wg = D == 64 ? attn_fwd_wg_bf16_d64 : attn_fwd_wg_bf16_d128;
    Kern old = D == 64 ? attn_fwd_bf16_d64_w4m2 : attn_fwd_bf16_d128_w4m2;
    int smemWg = 128 * D * 2 + 4 * (D == 64 ? 128 : 64) * D * 2 + 128 * 4 + 1024;
    int smemOld = 128 * D * 2 + 4 * 64 * D * 2 + 128 * 4 + 16;
    CK(cudaFuncSetAttribute(wg, cudaFuncAttributeMaxDynamicSharedMemorySize, smemWg));
    CK(cudaFuncSetAttribute(old, cudaFuncAttributeMaxDynamicSharedMemorySize, smemOld));
    dim3 grid(mtiles * KV, 1, splits);
    wg<<<grid, 256, smemWg>>>(q, dq, k, v, dk, dr, o1, l1, tokens, H, KV, hs, chunk, scaleLog2);
    CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
    if (pass == 0) {
      naive<<<(on + 127) / 128, 128>>>(q, dq, k, v, dk, o2, l2, tokens, H, KV, hs, chunk, nkeys, splits, D, scale);
      CK(cudaDeviceSynchronize());
      std::vector<float> a(on * D), b(on * D), la(on), lb(on);
      CK(cudaMemcpy(a.data(), o1, on * D * 4, cudaMemcpyDeviceToHost)); CK(cudaMemcpy(b.data(), o2, on * D * 4, cudaMemcpyDeviceToHost));
      CK(cudaMemcpy(la.data(), l1, on * 4, cudaMemcpyDeviceToHost)); CK(cudaMemcpy(lb.data(), l2, on * 4, cudaMemcpyDeviceToHost));
      double eo = 0, el = 0; long bad = 0;
      for (size_t i = 0; i < on * D; i++) { double e = fabs(a[i] - b[i]); if (!(e <= 1)) bad++; else eo = fmax(eo, e); }
      for (size_t i = 0; i < on; i++) { if (std::isinf(la[i]) || std::isinf(lb[i])) { if (la[i] != lb[i]) bad++; } else el = fmax(el, fabs(la[i] - lb[i])); }
      printf("{\"check\":\"tokens=%d heads=%d kv=%d d=%d keys=%d chunk=%d kind=%d\",\"max_abs_out\":%.3e,\"max_abs_lse\":%.3e,\"bad\":%ld}\n",
             tokens, H, KV, D, nkeys, chunk, c.kind, eo, el, bad);
    } else {
      double vis = 0; for (int t = 0; t < tokens; t++) vis += std::upper_bound(kpos.begin(), kpos.end(), qpos[t]) - kpos.begin();
      double fl = 4.0 * D * vis * H;
      cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1); float ms1, ms2; int reps = 10;
      for (int w = 0; w < 2; w++) wg<<<grid, 256, smemWg>>>(q, dq, k, v, dk, dr, o1, l1, tokens, H, KV, hs, chunk, scaleLog2);
      cudaEventRecord(e0); for (int r = 0; r < reps; r++) wg<<<grid, 256, smemWg>>>(q, dq, k, v, dk, dr, o1, l1, tokens, H, KV, hs, chunk, scaleLog2); cudaEventRecord(e1);
      CK(cudaEventSynchronize(e1)); cudaEventElapsedTime(&ms1, e0, e1); ms1 /= reps;
      for (int w = 0; w < 2; w++) old<<<grid, 128, smemOld>>>(q, dq, k, v, dk, dr, o2, l2, tokens, H, KV, hs, chunk, scaleLog2);
      cudaEventRecord(e0); for (int r = 0; r < reps; r++) old<<<grid, 128, smemOld>>>(q, dq, k, v, dk, dr, o2, l2, tokens, H, KV, hs, chunk, scaleLog2); cudaEventRecord(e1);
      CK(cudaEventSynchronize(e1)); cudaEventElapsedTime(&ms2, e0, e1); ms2 /= reps; CK(cudaGetLastError());
      // the two kernels agree?
      std::vector<float> a(on * D), b(on * D); CK(cudaMemcpy(a.data(), o1, on * D * 4, cudaMemcpyDeviceToHost)); CK(cudaMemcpy(b.data(), o2, on * D * 4, cudaMemcpyDeviceToHost));
      double e = 0; for (size_t i = 0; i < on * D; i++) e = fmax(e, fabs(a[i] - b[i]));
      printf("{\"time\":\"q=%d keys=%d d=%d\",\"wg_ms\":%.3f,\"wg_tflops\":%.1f,\"old_ms\":%.3f,\"old_tflops\":%.1f,\"max_abs_diff\":%.2e}\n",
             tokens, nkeys, D, ms1, fl / ms1 / 1e9, ms2, fl / ms2 / 1e9, e);
    }
    cudaFree(q); cudaFree(k); cudaFree(v); cudaFree(o1); cudaFree(o2); cudaFree(l1); cudaFree(l2); cudaFree(dq); cudaFree(dk); cudaFree(dr);
  }
}
