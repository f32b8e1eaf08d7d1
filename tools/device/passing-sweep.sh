#!/usr/bin/env bash
# The passing-blocks sweeps of README "Passing blocks (beyond the paper)", sharded over the cores of one machine:
# one `eval` JVM per (job, length), JOBS of them at a time with THREADS threads each, CPU kernels. Each job line of
# the JOB FILE reads: NAME|TASKS|SWEEP|JAVA OPTIONS. Results go to $OUT/NAME-LENGTH/ (results.jsonl, the run log);
# concatenate a job's results.jsonl files and rerun `eval --report-only` for its summary and charts.
#   tools/device/run.sh is used to start the JVMs on the GPU machine; locally set SA="./star-attention".
#   usage: tools/device/passing-sweep.sh JOBFILE [LENGTHS]
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
jobs_file=${1:?usage: passing-sweep.sh JOBFILE [LENGTHS]}
lengths=${2:-16384,8192,4096,2048,1024}
OUT=${OUT:-/tmp/out}
JOBS=${JOBS:-8}
THREADS=${THREADS:-2}
SA=${SA:-"$root/tools/device/run.sh cli"}
export OUT SA THREADS root
list=$(mktemp)
IFS=',' read -ra ls <<< "$lengths"
for len in "${ls[@]}"; do            # the longest first: they take the longest
  grep -v '^#' "$jobs_file" | grep -v '^$' | while IFS= read -r line; do echo "$len|$line"; done
done > "$list"
run_one() {
  IFS='|' read -r len name tasks sweep opts <<< "$1"
  dir="$OUT/$name-$len"
  mkdir -p "$dir"
  SA_JAVA_OPTS="$opts" STAR_ATTENTION_JAVA_OPTS="$opts" $SA eval --data "$root/data/evalsets/ruler-tiny-dev.jsonl" \
    --out "$dir" --tasks "$tasks" --lengths "$len" --modes star --sweep "$sweep" --device cpu --threads "$THREADS" \
    --no-charts --resume > "$dir/log.txt" 2>&1
  echo "done $name $len rc=$?"
}
export -f run_one
xargs -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {} < "$list"
rm -f "$list"
