#!/usr/bin/env bash
# per_cpu_parts.sh: where the server's events per CPU-second go, against `faultline scan`'s on the
# same Firehose bodies (~600 events each, loadtest/bench_data.py). Each round, one after another:
#   server      faultline serve (state_dir ""), wrk -t1 -c16 for DURATION s: events ÷ the server's
#               CPU-seconds (every thread), as bench_check.sh's otlp section measures it (common.sh);
#               io%: the share of those CPU-seconds its I/O thread ran (the main thread, the only
#               I/O thread at the default --threads on this machine)
#   details     loadtest/delivery_bench --threads 2: the workers' code alone (decode, match, mask,
#               mine, template details), no HTTP, no sockets, no queue
#   no-details  the same without the template details the API serves (scan keeps none)
#   batched     the same, 8 bodies per batch as scan batches its input (256 KiB chunks), where the
#               server commits each delivery on its own (--bodies-per-batch 8)
#   scan        faultline scan --templates drain --format firehose over the bodies x10
# and the factors between them: server ÷ details is what HTTP costs, details ÷ no-details what the
# details cost, no-details ÷ batched what one batch per delivery costs, batched ÷ scan the rest of
# the engine path. Ratios only within a round (this machine's speed moves between minutes).
#   loadtest/per_cpu_parts.sh [--rounds N] [--duration S] [--build DIR]
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$here/../build/release" rounds=3 duration=5
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;; --duration) duration="$2"; shift 2 ;; --build) build="$2"; shift 2 ;;
    *) echo "per_cpu_parts.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
source "$here/common.sh" # port_free, bench_data, cpu_s, ingested, scan_firehose_per_cpu
bin="$build/server/faultline" db="$build/loadtest/delivery_bench"
[ -x "$bin" ] && [ -x "$db" ] || { echo "per_cpu_parts.sh: build $build first (server/faultline, loadtest/delivery_bench)" >&2; exit 2; }
command -v wrk > /dev/null || { echo "per_cpu_parts.sh: wrk is not installed (scripts/install-deps.sh --bench-check)" >&2; exit 2; }
work="${PER_CPU_DIR:-/tmp/faultline-per-cpu}"
mkdir -p "$work"
bodies="$work/firehose-400.jsonl"
bench_data firehose 400 "$bodies"
port=18108
port_free "$port"
printf 'state_dir: ""\n' > "$work/cfg.yaml"
"$bin" serve --config "$work/cfg.yaml" --listen "127.0.0.1:$port" 2> "$work/server.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null' EXIT
for _ in $(seq 1 200); do curl -s -o /dev/null -m 1 "http://127.0.0.1:$port/readyz" && break; sleep 0.05; done
kill -0 "$pid" 2>/dev/null || { echo "faultline did not start: $(tail -3 "$work/server.log")" >&2; exit 1; }
load() { FIREHOSE_BODIES="$bodies" wrk -t1 -c16 -d"$1s" --timeout 30s -s "$here/wrk/firehose.lua" "http://127.0.0.1:$port/v1/firehose" 2>&1 | grep '^RESULT'; }
thread_cpu_s() { awk '{printf "%.6f", $1 / 1e9}' /proc/"$1"/task/"$1"/schedstat; } # the main thread's
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", (b > 0 ? a / b : 0)}'; }
echo "# per-CPU parts: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $("$bin" --version); events per CPU-second"
load 2 > /dev/null
printf '%-6s %9s %5s %9s %10s %9s %9s   %8s %6s %7s %8s %8s\n' round server 'io%' details no-details batched scan \
  'srv÷scan' 'http' 'details' 'batches' 'the rest'
for r in $(seq 1 "$rounds"); do
  e0=$(ingested "$port"); c0=$(cpu_s "$pid"); i0=$(thread_cpu_s "$pid")
  res=$(load "$duration")
  c1=$(cpu_s "$pid"); i1=$(thread_cpu_s "$pid"); e1=$(ingested "$port")
  grep -q 'non2xx=0 sock_errors=0' <<< "$res" || { echo "per_cpu_parts.sh: the load did not get 200s only: ${res:-no result from wrk}" >&2; exit 1; }
  sv=$(awk -v e="$((e1 - e0))" -v a="$c0" -v b="$c1" 'BEGIN{printf "%.0f", (b > a ? e / (b - a) : 0)}')
  io=$(awk -v i="$(awk -v a="$i0" -v b="$i1" 'BEGIN{print b - a}')" -v a="$c0" -v b="$c1" 'BEGIN{printf "%.1f", (b > a ? 100 * i / (b - a) : 0)}')
  dk=$("$db" "$bodies" --rounds 3 --threads 2 2>&1 | tail -1 | awk '{print $(NF-1)}')
  dn=$("$db" "$bodies" --rounds 3 --threads 2 --no-details 2>&1 | tail -1 | awk '{print $(NF-1)}')
  db8=$("$db" "$bodies" --rounds 3 --threads 2 --no-details --bodies-per-batch 8 2>&1 | tail -1 | awk '{print $(NF-1)}')
  read -r _ _ sc <<< "$(scan_firehose_per_cpu "$bin" "$bodies" "$work")"
  printf '%-6s %9s %5s %9s %10s %9s %9s   %8s %6s %7s %8s %8s\n' "$r" "$sv" "$io" "$dk" "$dn" "$db8" "$sc" \
    "$(ratio "$sv" "$sc")" "$(ratio "$sv" "$dk")" "$(ratio "$dk" "$dn")" "$(ratio "$dn" "$db8")" "$(ratio "$db8" "$sc")"
done
