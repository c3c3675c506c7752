#!/usr/bin/env bash
# durability_bench.sh: the cost of durable acknowledgements. Firehose bodies (~600 events each,
# loadtest/bench_data.py) at saturation (wrk -t1 -c64), faultline with a state directory (every
# delivery in the journal, fdatasync'd before its 200) vs without one (state_dir: ""),
# alternating, RUNS runs each; medians of events/s and p99, and their ratio.
#   loadtest/durability_bench.sh [--runs N] [--duration S] [--build DIR]
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; top="$here/.."
build="$top/build/release" runs=3 duration=8
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;; --duration) duration="$2"; shift 2 ;; --build) build="$2"; shift 2 ;;
    *) echo "durability_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
bin="$build/server/faultline"
work="${DURABILITY_DIR:-/tmp/faultline-durability}"
mkdir -p "$work"
source "$here/common.sh" # med, port_free, bench_data
bodies="$work/firehose-400.jsonl"
bench_data firehose 400 "$bodies"
per_body=$(head -1 "$bodies.counts")
port=18101
field() { sed "s/.*$1=\\([^ ]*\\).*/\\1/" <<< "$2"; }
echo "# durability: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $("$bin" --version); wrk -t1 -c64 -d${duration}s"
declare -A ev p99
for r in $(seq 1 "$runs"); do
  for mode in volatile journal; do
    rm -rf "$work/state"
    if [ "$mode" = volatile ]; then printf 'state_dir: ""\n' > "$work/cfg.yaml"; else printf 'state_dir: %s\n' "$work/state" > "$work/cfg.yaml"; fi
    port_free "$port" # a server left on the port would be measured instead of this one
    "$bin" serve --config "$work/cfg.yaml" --listen "127.0.0.1:$port" 2> "$work/$mode.log" &
    pid=$!
    for _ in $(seq 1 200); do curl -s -o /dev/null -m 1 "http://127.0.0.1:$port/readyz" && break; sleep 0.05; done
    kill -0 "$pid" 2>/dev/null || { echo "faultline did not start: $(tail -3 "$work/$mode.log")" >&2; exit 1; }
    FIREHOSE_BODIES="$bodies" wrk -t1 -c64 -d2s --timeout 30s -s "$here/wrk/firehose.lua" "http://127.0.0.1:$port/v1/firehose" > /dev/null 2>&1
    res=$(FIREHOSE_BODIES="$bodies" wrk -t1 -c64 -d"${duration}s" --timeout 30s --latency -s "$here/wrk/firehose.lua" "http://127.0.0.1:$port/v1/firehose" 2>&1 | grep '^RESULT')
    kill -TERM "$pid"; wait "$pid"
    e=$(awk -v r="$(field req_s "$res")" -v b="$per_body" 'BEGIN{printf "%.0f", r*b}')
    ev[$mode]+="$e "; p99[$mode]+="$(field p99_ms "$res") "
    printf 'run %d %-8s %9s events/s  p50 %7s ms  p99 %7s ms  %s\n' "$r" "$mode" "$e" "$(field p50_ms "$res")" "$(field p99_ms "$res")" \
      "$(grep -q 'non2xx=0 sock_errors=0' <<< "$res" && echo ok || echo "ERRORS: $res")"
  done
done
v=$(tr ' ' '\n' <<< "${ev[volatile]}" | grep . | med); j=$(tr ' ' '\n' <<< "${ev[journal]}" | grep . | med)
echo "medians: without state $v events/s (p99 $(tr ' ' '\n' <<< "${p99[volatile]}" | grep . | med) ms), with the journal $j events/s (p99 $(tr ' ' '\n' <<< "${p99[journal]}" | grep . | med) ms): ratio $(awk -v j="$j" -v v="$v" 'BEGIN{printf "%.2f", j/v}')"
