# Sourced by ./star-attention and ./run-tests: sets JAVA_HOME to a JDK 25+ (JAVA_HOME if new enough, else the
# newest under /usr/lib/jvm), or prints one line and exits 2.
java_major() { "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | cut -d. -f1; }
find_jdk() {
  local d v best="" best_v=0
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/javac" ]; then
    v=$(java_major "$JAVA_HOME")
    if [ "${v:-0}" -ge 25 ]; then echo "$JAVA_HOME"; return; fi
  fi
  for d in /usr/lib/jvm/*; do
    [ -x "$d/bin/java" ] && [ -x "$d/bin/javac" ] || continue
    v=$(java_major "$d")
    if [ "${v:-0}" -ge 25 ] && [ "$v" -gt "$best_v" ]; then best=$d; best_v=$v; fi
  done
  [ -n "$best" ] && echo "$best"
}
jdk=$(find_jdk || true)
if [ -z "$jdk" ]; then
  echo "star-attention: no JDK 25 or newer found (looked at JAVA_HOME and /usr/lib/jvm/*); install JDK 25 (e.g. Temurin) and set JAVA_HOME" >&2
  exit 2
fi
export JAVA_HOME=$jdk
export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"
