#!/usr/bin/env bash
# Packs what a run on the GPU machine needs (it has no Java, no Maven, no network): a small Java runtime (jlink,
# stripped) and the runtime jars, as one xz tarball split into parts (PART_MB, at most 10) that each fit one device
# call next to the working tree (the tracked tree is ~50 MiB of the 64 MiB a call may carry). With --gpu it adds the
# CUDA driver binding's native library (only libJCudaDriver: the other JCuda libraries need CUDA 12 toolkits the
# machine lacks), the core and jlama test classes and JUnit, for tools/device/run.sh gpu-tests.
#
#   mvn -q -B -o -pl star-attention-cli -am package -DskipTests        # jars and star-attention-cli/target/lib
#   mvn -q -B -o -pl star-attention-core,star-attention-jlama test-compile  # only for --gpu (GPU tests)
#   tools/device-bundle.sh [--gpu] [--no-cluster]                           # writes .device/p0, .device/p1, ...
#
# Then, on one warm device machine, one call per part, back to back (an idle machine goes back after 30 s; ignored
# paths carried by an earlier call stay there), the last one running the work:
#   run carry [".device/p0"]  command: true
#   run carry [".device/p1"]  command: tools/device/run.sh bench-cluster --hosts 1,2,4
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JDK=${JDK:-/usr/lib/jvm/temurin-25-jdk-amd64}
PART_MB=${PART_MB:-11}
MODULES=java.base,java.logging,java.management,java.naming,java.sql,java.xml,jdk.crypto.ec,jdk.incubator.vector,jdk.unsupported,jdk.management,jdk.jfr,java.desktop
gpu=false
cluster=true
for a in "$@"; do
  case "$a" in
    --gpu) gpu=true ;;
    --no-cluster) cluster=false ;;   # without the cluster's membership jars (Hazelcast, Infinispan, JGroups): one part less
    *) echo "usage: device-bundle.sh [--gpu] [--no-cluster]" >&2; exit 2 ;;
  esac
done
jar=$(ls "$root"/star-attention-cli/target/star-attention-cli-*.jar 2>/dev/null | grep -v -e sources -e tests | head -n1 || true)
[ -n "$jar" ] && [ -d "$root/star-attention-cli/target/lib" ] || {
  echo "build first: mvn -q -B -o -pl star-attention-cli -am package -DskipTests" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/sa/lib"
# runtime jars, minus what no command line needs on that machine (PDF export of charts, GPT-2 emoji tables)
for f in "$root"/star-attention-cli/target/lib/*.jar "$jar"; do
  case "$(basename "$f")" in
    pdfbox*|fontbox-*|VectorGraphics2D-*|graphics2d-*|commons-logging-*|jcuda-natives-*|jemoji-*) ;;
    hazelcast*|infinispan*|jgroups*|rxjava*) $cluster && cp "$f" "$tmp/sa/lib/" ;;
    tokenizers-*)   # the Linux x86-64 native library only: the machine is x86-64
      mkdir -p "$tmp/tok" && (cd "$tmp/tok" && unzip -q "$f" -x 'native/lib/linux-aarch64/*' 'native/lib/osx-*' 'native/lib/win-*' \
        && "$JDK/bin/jar" cf "$tmp/sa/lib/$(basename "$f")" .) && rm -rf "$tmp/tok" ;;
    *) cp "$f" "$tmp/sa/lib/" ;;
  esac
done
if $gpu; then
  natives=$(ls "$root"/star-attention-cli/target/lib/jcuda-natives-*-linux-x86_64.jar | head -n1)
  mkdir -p "$tmp/natives" && (cd "$tmp/natives" && unzip -q "$natives" 'lib/libJCudaDriver-*' 'META-INF/*')
  (cd "$tmp/natives" && "$JDK/bin/jar" cf "$tmp/sa/lib/$(basename "$natives")" .)
  mkdir -p "$tmp/sa/test"
  (cd "$root/star-attention-core/target/test-classes" && "$JDK/bin/jar" cf "$tmp/sa/test/core-tests.jar" .)
  # classes only: the test resources (families/) travel with the working tree and are on run.sh's class path
  (cd "$root/star-attention-jlama/target/test-classes" && "$JDK/bin/jar" cf "$tmp/sa/test/jlama-tests.jar" \
    $(find . -name '*.class'))
  m2=$HOME/.m2/repository
  for j in org/junit/platform/junit-platform-launcher/1.14.4 org/junit/platform/junit-platform-engine/1.14.4 \
           org/junit/platform/junit-platform-commons/1.14.4 org/junit/jupiter/junit-jupiter-api/5.14.4 \
           org/junit/jupiter/junit-jupiter-engine/5.14.4 org/junit/jupiter/junit-jupiter-params/5.14.4 \
           org/opentest4j/opentest4j/1.3.0 org/assertj/assertj-core/3.27.6 org/apiguardian/apiguardian-api/1.1.2 \
           net/bytebuddy/byte-buddy/1.17.7; do
    cp "$m2/$j/"*.jar "$tmp/sa/test/"
  done
  "$JDK/bin/javac" -d "$tmp/sa/test" -cp "$tmp/sa/test/*" "$root/tools/device/DeviceJUnit.java"
fi
"$JDK/bin/jlink" --add-modules "$MODULES" --strip-debug --no-header-files --no-man-pages --compress=zip-0 \
  --output "$tmp/sa/jre" 2>/dev/null
if command -v strip >/dev/null; then
  find "$tmp/sa/jre" -name '*.so' -exec strip --strip-unneeded {} +   # libjvm.so: 30 MB -> 25 MB
fi
rm -rf "$root/.device"/p[0-9]*
mkdir -p "$root/.device"
grep -qx '/.device/' "$root/.gitignore" 2>/dev/null || echo "warning: add /.device/ to .gitignore" >&2
tar cf - -C "$tmp" sa | xz -1 -T2 > "$tmp/bundle.tar.xz"
split -b "${PART_MB}m" -d -a 1 "$tmp/bundle.tar.xz" "$tmp/part."
for p in "$tmp"/part.*; do
  n=${p##*.}
  mkdir -p "$root/.device/p$n"
  mv "$p" "$root/.device/p$n/bundle.tar.xz.$n"
done
ls -la "$root"/.device/p*/
