#!/usr/bin/env bash
# On the GPU machine (from the repository root): unpacks the parts made by tools/device-bundle.sh (.device/p*/) into
# /tmp/sa once, then runs one of:
#   gpu-tests [CLASS...]    the GPU tests (default: CudaFallbackTest, CudaAttentionKernelTest, CudaLayersTest,
#                           CudaFamilyParityIT) with JUnit (bundle --gpu); SA_JAVA_OPTS adds JVM flags
#   bench-gpu [ARGS]        makes random-weight checkpoints of Llama-3.2-1B and/or Llama-3.1-8B (--family F, repeatable;
#                           tools/gpu/make_checkpoint.py) under /tmp/ck, then runs bench-gpu on each
#   kernel-bench [ARGS]     CudaKernelBenchmark, then PyTorch SDPA on the same shapes and the ratios (bench_sdpa.py)
#   cli COMMAND [ARGS]      the star-attention command line (ask, bench, eval, bench-cluster, ...)
# Results that should come back go to $OUT (set by the device tool).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ ! -x /tmp/sa/jre/bin/java ]; then   # once, even when several run.sh start together (passing-sweep.sh)
  ( flock 9; [ -x /tmp/sa/jre/bin/java ] || cat "$root"/.device/p*/bundle.tar.xz.* | xz -dc | tar xf - -C /tmp ) 9>/tmp/sa.lock
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
    classes=("$@")
    [ ${#classes[@]} -gt 0 ] || classes=(io.github.starattention.cuda.CudaFallbackTest
      io.github.starattention.cuda.CudaAttentionKernelTest io.github.starattention.cuda.CudaLayersTest
      io.github.starattention.jlama.CudaFamilyParityIT)
    exec java "${flags[@]}" ${SA_JAVA_OPTS:-} \
      -cp "/tmp/sa/lib/*:/tmp/sa/test/*:/tmp/sa/test:$root/star-attention-jlama/src/test/resources" \
      DeviceJUnit "${classes[@]}" ;;
  bench-gpu)
    families=()
    while [ "${1:-}" = --family ]; do families+=("$2"); shift 2; done
    for f in "${families[@]:-llama3.2-1b}"; do
      python3 tools/gpu/make_checkpoint.py --family "$f" --out "/tmp/ck/$f"
      java "${flags[@]}" -Xmx48g ${SA_JAVA_OPTS:-} -cp '/tmp/sa/lib/*' io.github.starattention.jlama.cli.StarAttentionCli \
        bench-gpu --model "/tmp/ck/$f" --out "$OUT/$f" "$@"
    done ;;
  kernel-bench)
    java "${flags[@]}" -cp '/tmp/sa/lib/*' io.github.starattention.cuda.CudaKernelBenchmark "$@" --out "$OUT/jcuda.jsonl"
    exec python3 star-attention-core/src/main/cuda/bench_sdpa.py --out "$OUT/sdpa.jsonl" --compare "$OUT/jcuda.jsonl" ;;
  cli)
    exec java "${flags[@]}" ${SA_JAVA_OPTS:-} -cp '/tmp/sa/lib/*' io.github.starattention.jlama.cli.StarAttentionCli "$@" ;;
  *) echo "unknown: $what" >&2; exit 2 ;;
esac
