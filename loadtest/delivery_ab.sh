#!/usr/bin/env bash
# delivery_ab.sh: two builds' workers compared in time, on this machine whose speed moves between
# minutes: loadtest/delivery_bench of BASE and of HEAD alternating, PAIRS pairs, on the same
# Firehose bodies (loadtest/bench_data.py). Prints each side's runs, their maxima and medians, and
# HEAD ÷ BASE per pair (median) and max ÷ max. A change is faster only when both ratios say so.
# (Instruction counts are a poor guide here: fewer instructions that miss the caches more are slower.)
#   loadtest/delivery_ab.sh BASE_BUILD_DIR HEAD_BUILD_DIR [--pairs N] [--threads T] [--rounds R]
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ $# -ge 2 ] || { echo "usage: delivery_ab.sh BASE_BUILD_DIR HEAD_BUILD_DIR [--pairs N] [--threads T] [--rounds R]" >&2; exit 2; }
base="$1/loadtest/delivery_bench" head="$2/loadtest/delivery_bench"; shift 2
pairs=8 threads=1 rounds=2
while [ $# -gt 0 ]; do
  case "$1" in
    --pairs) pairs="$2"; shift 2 ;; --threads) threads="$2"; shift 2 ;; --rounds) rounds="$2"; shift 2 ;;
    *) echo "delivery_ab.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
for b in "$base" "$head"; do [ -x "$b" ] || { echo "delivery_ab.sh: no $b (build the loadtest targets)" >&2; exit 2; }; done
work="${DELIVERY_AB_DIR:-/tmp/faultline-delivery-ab}"
mkdir -p "$work"
bodies="$work/firehose-400.jsonl"
source "$here/common.sh" # bench_data
bench_data firehose 400 "$bodies"
run() { "$1" "$bodies" --rounds "$rounds" --threads "$threads" 2>&1 | tail -1 | awk '{print $(NF-1)}'; }
echo "# delivery_ab: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); --threads $threads --rounds $rounds, $pairs pairs; events per CPU-second"
b_runs=() h_runs=()
for _ in $(seq 1 "$pairs"); do
  b_runs+=("$(run "$base")")
  h_runs+=("$(run "$head")")
done
python3 - "${b_runs[*]}" "${h_runs[*]}" <<'PY'
import statistics, sys
b = [int(x) for x in sys.argv[1].split()]
h = [int(x) for x in sys.argv[2].split()]
for name, v in (("base", b), ("head", h)):
    print(f"{name}: max {max(v)} median {statistics.median(v):.0f}  runs {' '.join(map(str, v))}")
pairs = [y / x for x, y in zip(b, h) if x > 0]
print("head / base per pair: " + " ".join(f"{r:.3f}" for r in pairs))
print(f"median pair ratio {statistics.median(pairs):.3f}, max / max {max(h) / max(b):.3f}")
PY
