#!/usr/bin/env bash
# engine_bench.sh: faultline scan's events per CPU-second on the seed jsonl input, next to the
# machine's limit for this work (loadtest/engine_limit: simdjson parse + Vectorscan scan only,
# one thread). Both are timed as whole processes (user + sys CPU). Medians of RUNS runs, all in
# one sitting.
#   loadtest/engine_bench.sh [--runs N] [--input FILE] [--build DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; top="$here/.."
runs=3 build="$top/build/release"
shared="${SHARED:-$top/../shared}"
cache="${SEEDBENCH_CACHE:-/tmp/seedbench}"
input="$cache/cwl-1000000-s42.jsonl"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;; --input) input="$2"; shift 2 ;; --build) build="$2"; shift 2 ;;
    *) echo "engine_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
patterns="$shared/bench/patterns.txt"
if [ ! -s "$input" ]; then
  mkdir -p "$(dirname "$input")"
  python3 "$shared/bench/gen_cwl.py" --events 1000000 --seed 42 --format jsonl --out "$input.tmp" && mv "$input.tmp" "$input"
fi
[ -x "$build/loadtest/engine_limit" ] || cmake --build "$build" --target engine_limit
events=$("$build/server/faultline" scan --templates exact --patterns "$patterns" "$input" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])')
echo "# input $input: $events events; load $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
med() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
fl=() lim=() wall=()
for r in $(seq 1 "$runs"); do
  /usr/bin/time -f '%e %U %S' -o /tmp/engine_bench.time "$build/server/faultline" scan --templates exact \
    --patterns "$patterns" "$input" > /dev/null
  read -r w u s < /tmp/engine_bench.time
  cpu=$(awk -v u="$u" -v s="$s" 'BEGIN{print u+s}')
  fl+=("$(awk -v e="$events" -v c="$cpu" 'BEGIN{printf "%.0f", e/c}')"); wall+=("$w")
  # Both are timed the same way: whole process, user + sys (start-up included on both sides).
  /usr/bin/time -f '%e %U %S' -o /tmp/engine_bench.time "$build/loadtest/engine_limit" "$patterns" "$input" > /dev/null
  read -r lw lu ls < /tmp/engine_bench.time
  lim+=("$(awk -v e="$events" -v u="$lu" -v s="$ls" 'BEGIN{printf "%.0f", e/(u+s)}')")
  echo "run $r: faultline ${fl[-1]} events/CPU-s (wall $w s, cpu $cpu s)   limit loop ${lim[-1]} events/CPU-s"
done
f=$(printf '%s\n' "${fl[@]}" | med); l=$(printf '%s\n' "${lim[@]}" | med); w=$(printf '%s\n' "${wall[@]}" | med)
echo "median: faultline $f events/CPU-s (wall $w s)  limit $l events/CPU-s  ratio $(awk -v f="$f" -v l="$l" 'BEGIN{printf "%.2f", f/l}')"
