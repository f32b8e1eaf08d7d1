// Standalone check + timing of gemm_sm90.cu against a naive fp64-accumulating GPU kernel and layers.cu's gemm_bf16
// (build.sh; run on the GPU machine next to torch_mm.py, the cuBLAS baseline on the same shapes).
#include <cuda_bf16.h>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <cmath>
extern "C" __global__ void gemm_bf16(const __nv_bfloat16*, const __nv_bfloat16*, float*, int, int, int, int);
extern "C" __global__ void gemm_bf16_sm90(const __nv_bfloat16*, const __nv_bfloat16*, float*, int, int, int, int);
__global__ void init(__nv_bfloat16* p, size_t n, unsigned seed, float scale) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    unsigned x = (unsigned)i * 2654435761u ^ seed; x ^= x >> 13; x *= 0x5bd1e995; x ^= x >> 15;
    p[i] = __float2bfloat16(((x & 0xffff) / 65535.f - 0.5f) * scale);
  }
}
__global__ void naive(const __nv_bfloat16* A, const __nv_bfloat16* W, float* C, int M, int N, int K) {
  int n = blockIdx.x * blockDim.x + threadIdx.x; int m = blockIdx.y;
  if (n >= N) return;
  double s = 0; for (int k = 0; k < K; k++) s += (double)__bfloat162float(A[(size_t)m*K+k]) * __bfloat162float(W[(size_t)n*K+k]);
  C[(size_t)m*N+n] = (float)s;
}
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA error %s at %d\n", cudaGetErrorString(e), __LINE__); exit(1);} } while(0)
int main(int argc, char** argv) {
  const char* variant = argc > 1 ? argv[1] : "?";
  int shapes[][3] = {{4096,3072,2048},{4096,2048,2048},{4096,16384,2048},{4096,2048,8192},
                     {4096,6144,4096},{4096,4096,4096},{4096,28672,4096},{4096,4096,14336},
                     {300,1000,576},{129,200,64},{1000,4864,896},{4096,256,128}};
  CK(cudaFuncSetAttribute(gemm_bf16_sm90, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM90));
  CK(cudaFuncSetAttribute(gemm_bf16, cudaFuncAttributeMaxDynamicSharedMemorySize, 3*256*40*2));
  for (auto& s : shapes) {
    int M = s[0], N = s[1], K = s[2];
    __nv_bfloat16 *A, *W; float *C, *R, *C2;
    CK(cudaMalloc(&A, (size_t)M*K*2)); CK(cudaMalloc(&W, (size_t)N*K*2));
    CK(cudaMalloc(&C, (size_t)M*N*4)); CK(cudaMalloc(&R, (size_t)M*N*4)); CK(cudaMalloc(&C2, (size_t)M*N*4));
    init<<<1024,256>>>(A, (size_t)M*K, 17, 2.f); init<<<1024,256>>>(W, (size_t)N*K, 91, 0.1f);
    dim3 g90((M+127)/128, (N+255)/256), g80((M+127)/128, (N+127)/128);
    // correctness: C = A W^T, then C += A W^T (accumulate) must be 2x; reference on a row subset (all rows if small)
    gemm_bf16_sm90<<<g90, 256, SMEM90>>>(A, W, C, M, N, K, 0);
    gemm_bf16_sm90<<<g90, 256, SMEM90>>>(A, W, C, M, N, K, 1);
    CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
    int rows = M < 512 ? M : 512;
    naive<<<dim3((N+127)/128, rows), 128>>>(A, W, R, rows, N, K);
    CK(cudaDeviceSynchronize());
    std::vector<float> hc((size_t)rows*N), hr((size_t)rows*N);
    // compare the first rows and the last rows (rows past 512 computed at the end)
    CK(cudaMemcpy(hc.data(), C, hc.size()*4, cudaMemcpyDeviceToHost)); CK(cudaMemcpy(hr.data(), R, hr.size()*4, cudaMemcpyDeviceToHost));
    double maxerr = 0, maxref = 0;
    for (size_t i = 0; i < hc.size(); i++) { maxerr = fmax(maxerr, fabs(hc[i] - 2*hr[i])); maxref = fmax(maxref, fabs(2*hr[i])); }
    if (M > rows) {  // the last rows too
      naive<<<dim3((N+127)/128, rows), 128>>>(A + (size_t)(M-rows)*K, W, R, rows, N, K); CK(cudaDeviceSynchronize());
      CK(cudaMemcpy(hc.data(), C + (size_t)(M-rows)*N, hc.size()*4, cudaMemcpyDeviceToHost)); CK(cudaMemcpy(hr.data(), R, hr.size()*4, cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < hc.size(); i++) { maxerr = fmax(maxerr, fabs(hc[i] - 2*hr[i])); maxref = fmax(maxref, fabs(2*hr[i])); }
    }
    cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
    int reps = 20; float ms90, ms80;
    for (int w = 0; w < 3; w++) gemm_bf16_sm90<<<g90, 256, SMEM90>>>(A, W, C, M, N, K, 0);
    cudaEventRecord(e0); for (int r = 0; r < reps; r++) gemm_bf16_sm90<<<g90, 256, SMEM90>>>(A, W, C, M, N, K, 0); cudaEventRecord(e1);
    CK(cudaEventSynchronize(e1)); cudaEventElapsedTime(&ms90, e0, e1); ms90 /= reps;
    for (int w = 0; w < 3; w++) gemm_bf16<<<g80, 256, 3*256*40*2>>>(A, W, C2, M, N, K, 0);
    cudaEventRecord(e0); for (int r = 0; r < reps; r++) gemm_bf16<<<g80, 256, 3*256*40*2>>>(A, W, C2, M, N, K, 0); cudaEventRecord(e1);
    CK(cudaEventSynchronize(e1)); cudaEventElapsedTime(&ms80, e0, e1); ms80 /= reps;
    CK(cudaGetLastError());
    double fl = 2.0*M*N*K;
    printf("{\"variant\":\"%s\",\"M\":%d,\"N\":%d,\"K\":%d,\"rel_err\":%.3e,\"sm90_ms\":%.4f,\"sm90_tflops\":%.1f,\"sm80_ms\":%.4f,\"sm80_tflops\":%.1f}\n",
      variant, M, N, K, maxerr / maxref, ms90, fl/ms90/1e9, ms80, fl/ms80/1e9);
    cudaFree(A); cudaFree(W); cudaFree(C); cudaFree(R); cudaFree(C2);
  }
}
