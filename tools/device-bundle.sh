#!/usr/bin/env bash
# Packs what `bench-cluster` (or any command) needs on the GPU machine, which has no Java and no Maven: a small Java
# runtime (jlink) and the runtime jars, as one xz tarball split into parts that each fit one device call next to the
# working tree (the tracked tree is ~38 MB of the 64 MiB a call may carry).
#
#   mvn -q -B -o -pl star-attention-jlama -am package -DskipTests   # builds the jars and target/lib
#   tools/device-bundle.sh                                            # writes .device/p0, .device/p1, ...
#
# Then, on one warm device machine, one call per part, back to back (an idle machine goes back after 30 s; ignored
# paths carried by an earlier call stay there):
#   run carry [".device/p0"]  command: true
#   run carry [".device/p1"]  command: tools/device-bench.sh --hosts 1,2,4
# tools/device-bench.sh unpacks the parts to /tmp/sa and runs the command line with the launcher's flags.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JDK=${JDK:-/usr/lib/jvm/temurin-25-jdk-amd64}
PART_MB=${PART_MB:-24}
MODULES=java.base,java.logging,java.management,java.naming,java.sql,java.xml,jdk.crypto.ec,jdk.incubator.vector,jdk.unsupported,jdk.management
jar=$(ls "$root"/star-attention-jlama/target/star-attention-jlama-*.jar 2>/dev/null | grep -v -e sources -e tests | head -n1 || true)
[ -n "$jar" ] && [ -d "$root/star-attention-jlama/target/lib" ] || {
  echo "build first: mvn -q -B -o -pl star-attention-jlama -am package -DskipTests" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/sa/lib"
# runtime jars, minus what bench-cluster, ask and host never load (charts, CUDA natives, GPT-2 emoji tables)
for f in "$root"/star-attention-jlama/target/lib/*.jar "$jar"; do
  case "$(basename "$f")" in
    xchart-*|pdfbox*|fontbox-*|VectorGraphics2D-*|graphics2d-*|animated-gif-*|commons-logging-*|jcuda-natives-*|jemoji-*) ;;
    *) cp "$f" "$tmp/sa/lib/" ;;
  esac
done
"$JDK/bin/jlink" --add-modules "$MODULES" --strip-debug --no-header-files --no-man-pages --compress=zip-0 \
  --output "$tmp/sa/jre" 2>/dev/null
if command -v strip >/dev/null; then
  find "$tmp/sa/jre" -name '*.so' -exec strip --strip-unneeded {} +   # libjvm.so: 30 MB -> 25 MB
fi
rm -rf "$root/.device"/p[0-9]*
mkdir -p "$root/.device"
grep -qx '/.device/' "$root/.gitignore" 2>/dev/null || echo "warning: add /.device/ to .gitignore" >&2
tar cf - -C "$tmp" sa | xz -9 -T2 > "$tmp/bundle.tar.xz"
split -b "${PART_MB}m" -d -a 1 "$tmp/bundle.tar.xz" "$tmp/part."
for p in "$tmp"/part.*; do
  n=${p##*.}
  mkdir -p "$root/.device/p$n"
  mv "$p" "$root/.device/p$n/bundle.tar.xz.$n"
done
ls -la "$root"/.device/p*/
