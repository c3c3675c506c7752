#!/usr/bin/env bash
# scaling.sh: faultline at each I/O-thread setting, the server and wrk pinned to disjoint cores
# (taskset), beside nginx `return 200` on the same server cores, in one sitting:
#   Firehose bodies (~600 events each, loadtest/bench_data.py) at saturation: events/s, p50, p99
#   tiny webhooks (loadtest/wrk/webhook.lua): req/s, and nginx's req/s with as many workers as
#   server cores
# usage: loadtest/scaling.sh [--server-cores LIST] [--client-cores LIST] [--threads "1 2 4 8"]
#                            [--workers N] [--conns N] [--duration S] [--build DIR]
#   LIST is a taskset CPU list ("0-7", "0,2"). Defaults: the first half of the cores for the
#   server, the rest for wrk (on 2 cores: core 0 and core 1); --threads: 1, 2, 4, ... up to
#   the server's cores; --workers: the server's cores.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; top="$here/.."
build="$top/build/release" n=$(nproc)
half=$(( n / 2 > 0 ? n / 2 : 1 ))
server_cores="0-$((half - 1))" client_cores="$half-$((n - 1))"
[ "$n" = 1 ] && client_cores=0
threads="" workers="" conns=64 duration=10
while [ $# -gt 0 ]; do
  case "$1" in
    --server-cores) server_cores="$2"; shift 2 ;; --client-cores) client_cores="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;; --workers) workers="$2"; shift 2 ;;
    --conns) conns="$2"; shift 2 ;; --duration) duration="$2"; shift 2 ;; --build) build="$2"; shift 2 ;;
    *) echo "scaling.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
# Cores in a taskset list.
count_cores() { python3 -c 'import sys
n = 0
for part in sys.argv[1].split(","):
    a, _, b = part.partition("-")
    n += int(b or a) - int(a) + 1
print(n)' "$1"; }
ncores=$(count_cores "$server_cores")
[ -n "$workers" ] || workers=$ncores
if [ -z "$threads" ]; then t=1; while [ "$t" -le "$ncores" ]; do threads="$threads $t"; t=$((t * 2)); done; fi
bin="$build/server/faultline"
work="${SCALING_DIR:-/tmp/faultline-scaling}"
mkdir -p "$work/nginx/tmp"
bodies="$work/firehose-400.jsonl"
[ -s "$bodies" ] || python3 "$here/bench_data.py" firehose 400 "$bodies"
events_per_body=$(head -1 "$bodies.counts")
ulimit -n 65536 2>/dev/null || true
port=18097 nport=18098
printf 'state_dir: ""\n' > "$work/faultline.yaml"
field() { sed "s/.*$1=\\([^ ]*\\).*/\\1/" <<< "$2"; }

echo "# scaling: server on cores $server_cores ($ncores), wrk -t1 -c$conns on cores $client_cores, ${duration}s per run; $("$bin" --version); load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-8s %12s %9s %9s %12s\n' threads workers firehose_ev_s p50_ms p99_ms webhook_rq_s
for th in $threads; do
  taskset -c "$server_cores" "$bin" serve --config "$work/faultline.yaml" --listen "127.0.0.1:$port" \
    --threads "$th" --workers "$workers" 2> "$work/faultline-$th.log" &
  fl=$!
  for _ in $(seq 1 200); do curl -s -o /dev/null -m 1 "http://127.0.0.1:$port/readyz" && break; sleep 0.05; done
  FIREHOSE_BODIES="$bodies" taskset -c "$client_cores" wrk -t1 -c"$conns" -d2s --timeout 30s \
    -s "$here/wrk/firehose.lua" "http://127.0.0.1:$port/v1/firehose" > /dev/null 2>&1
  fh=$(FIREHOSE_BODIES="$bodies" taskset -c "$client_cores" wrk -t1 -c"$conns" -d"${duration}s" --timeout 30s \
    --latency -s "$here/wrk/firehose.lua" "http://127.0.0.1:$port/v1/firehose" 2>&1 | grep '^RESULT')
  wh=$(taskset -c "$client_cores" wrk -t1 -c"$conns" -d"${duration}s" --latency -s "$here/wrk/webhook.lua" \
    "http://127.0.0.1:$port/v1/webhook/default" 2>&1 | grep '^RESULT')
  kill -TERM "$fl"; wait "$fl"
  printf '%-8s %-8s %12.0f %9s %9s %12s\n' "$th" "$workers" \
    "$(awk -v r="$(field req_s "$fh")" -v e="$events_per_body" 'BEGIN{print r*e}')" \
    "$(field p50_ms "$fh")" "$(field p99_ms "$fh")" "$(field req_s "$wh")"
  for r in "$fh" "$wh"; do grep -q 'non2xx=0 sock_errors=0' <<< "$r" || echo "  (errors: $r)"; done
done

cat > "$work/nginx/nginx.conf" <<NGINX
worker_processes $ncores;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 16384; }
http {
  access_log off; keepalive_requests 1000000; client_body_temp_path $work/nginx/tmp;
  server { listen 127.0.0.1:$nport; location / { default_type application/json; return 200 '{"accepted":1}'; } }
}
NGINX
taskset -c "$server_cores" nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" \
  -g 'daemon off; master_process on;' &
ng=$!
for _ in $(seq 1 100); do curl -s -o /dev/null -m 1 "http://127.0.0.1:$nport/" && break; sleep 0.05; done
wh=$(taskset -c "$client_cores" wrk -t1 -c"$conns" -d"${duration}s" --latency -s "$here/wrk/webhook.lua" \
  "http://127.0.0.1:$nport/v1/webhook/default" 2>&1 | grep '^RESULT')
kill -QUIT "$ng"; wait "$ng" 2>/dev/null
printf '%-8s %-8s %12s %9s %9s %12s\n' "nginx" "$ncores" "-" "-" "-" "$(field req_s "$wh")"
