#!/usr/bin/env bash
# Builds the standalone Hopper kernel checks (no Java needed on the GPU machine) into .device/sm90/ of the repository:
#   tools/gpu/sm90/build.sh            # needs nvcc 12.x/13.x here; then carry .device/sm90 in one device call:
#   run carry [".device/sm90"] command: cd .device/sm90 && ./gemm_check sm90 && python3 torch_mm.py && ./attention_check
# gemm_check: gemm_bf16_sm90 on the Llama-3.2-1B / 3.1-8B prefill shapes and odd ones, C = A W^T then C += A W^T
# against a naive kernel (relative error) and its time against gemm_bf16 (mma.sync); torch_mm.py times cuBLAS there.
# attention_check: attn_fwd_wg_bf16_d64/d128 against a naive fp32 kernel (causal, Star Attention positions, key
# splits, GQA) and its time against attn_fwd_bf16_d*_w4m2.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
cuda="$root/star-attention-core/src/main/cuda"
out="$root/.device/sm90"
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
NVCC=${NVCC:-nvcc}
"$NVCC" -O3 -std=c++17 -gencode arch=compute_80,code=sm_90 -c -o "$tmp/layers.o" "$cuda/layers.cu"
"$NVCC" -O3 -std=c++17 -gencode arch=compute_80,code=sm_90 -c -o "$tmp/attention.o" "$cuda/attention.cu"
"$NVCC" -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -DSMEM90=$((4 * 49152 + 1024)) -o "$out/gemm_check" \
  "$here/gemm_check.cu" "$cuda/gemm_sm90.cu" "$tmp/layers.o"
"$NVCC" -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -o "$out/attention_check" \
  "$here/attention_check.cu" "$cuda/attention_sm90.cu" "$tmp/attention.o"
cp "$here/torch_mm.py" "$out/"
echo "built $out: gemm_check attention_check torch_mm.py"
