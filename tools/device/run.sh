#!/usr/bin/env bash
# On the GPU machine (from the repository root): unpacks the parts made by tools/device-bundle.sh (.device/p*/) into
# /tmp/sa once, then runs one of:
#   gpu-tests               the GPU kernel tests (CudaFallbackTest, CudaAttentionKernelTest) with JUnit (bundle --gpu)
#   kernel-bench [ARGS]     CudaKernelBenchmark, then PyTorch SDPA on the same shapes and the ratios (bench_sdpa.py)
#   cli COMMAND [ARGS]      the star-attention command line (ask, bench, eval, bench-cluster, ...)
# Results that should come back go to $OUT (set by the device tool).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ ! -x /tmp/sa/jre/bin/java ]; then
  cat "$root"/.device/p*/bundle.tar.xz.* | xz -dc | tar xf - -C /tmp
fi
export JAVA_HOME=/tmp/sa/jre PATH=/tmp/sa/jre/bin:$PATH HZ_PHONE_HOME_ENABLED=false CUDA_CACHE_PATH=/tmp/nvcache
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/jtmp
flags=(--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow
  -Xss4m -Djava.io.tmpdir=/tmp/jtmp -Djava.net.preferIPv4Stack=true -Dhazelcast.phone.home.enabled=false
  -Dstar.attention.home="$root")
what=${1:?usage: run.sh gpu-tests | kernel-bench [ARGS] | cli COMMAND [ARGS]}
shift
cd "$root"
case "$what" in
  gpu-tests)
    exec java "${flags[@]}" -cp '/tmp/sa/lib/*:/tmp/sa/test/*:/tmp/sa/test' DeviceJUnit \
      io.github.starattention.attention.cuda.CudaFallbackTest io.github.starattention.attention.cuda.CudaAttentionKernelTest ;;
  kernel-bench)
    java "${flags[@]}" -cp '/tmp/sa/lib/*' io.github.starattention.attention.cuda.CudaKernelBenchmark "$@" --out "$OUT/jcuda.jsonl"
    exec python3 star-attention-core/src/main/cuda/bench_sdpa.py --out "$OUT/sdpa.jsonl" --compare "$OUT/jcuda.jsonl" ;;
  cli)
    exec java "${flags[@]}" ${SA_JAVA_OPTS:-} -cp '/tmp/sa/lib/*' io.github.starattention.jlama.cli.StarAttentionCli "$@" ;;
  *) echo "unknown: $what" >&2; exit 2 ;;
esac
