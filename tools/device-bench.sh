#!/usr/bin/env bash
# On the GPU machine (from the repository root): unpacks the parts made by tools/device-bundle.sh (.device/p*/) into
# /tmp/sa once, then runs `star-attention bench-cluster` with the arguments given (default: 4 threads per JVM,
# 1, 2 and 4 context-host JVMs, 16K context). Set SA_COMMAND to run another subcommand (e.g. SA_COMMAND=ask).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ ! -x /tmp/sa/jre/bin/java ]; then
  cat "$root"/.device/p*/bundle.tar.xz.* | xz -dc | tar xf - -C /tmp
fi
export JAVA_HOME=/tmp/sa/jre PATH=/tmp/sa/jre/bin:$PATH HZ_PHONE_HOME_ENABLED=false
cmd=${SA_COMMAND:-bench-cluster}
args=("$@")
if [ "$cmd" = bench-cluster ] && [ ${#args[@]} -eq 0 ]; then
  args=(--device cpu --threads 4 --hosts 1,2,4 --context-tokens 16384 --max-new-tokens 32)
fi
cd "$root"
exec java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow \
  -Xss4m -Djava.net.preferIPv4Stack=true -Dhazelcast.phone.home.enabled=false -Dstar.attention.home="$root" \
  -cp '/tmp/sa/lib/*' io.github.starattention.jlama.cli.StarAttentionCli "$cmd" "${args[@]}"
