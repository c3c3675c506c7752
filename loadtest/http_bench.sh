#!/usr/bin/env bash
# http_bench.sh: `faultline serve` under load, side by side with the Go reference server and nginx
# `return 200`, in one sitting. Sections (all by default):
#   firehose   ../shared/bench/run_http_anchor.sh: wrk + firehose.lua (pre-generated Firehose bodies),
#              faultline vs the Go reference vs nginx, alternating, medians; it first checks that
#              faultline's GET /v1/report after every body equals the Go reference's batch output.
#   scan       `faultline scan` over the same bodies: events per CPU-second (the yardstick for the
#              server's events per server CPU-second).
#   conserve   every body POSTed once (post_bodies.py, 4 in parallel, all must be 200): faultline's
#              faultline_events_ingested_total must equal the events in those bodies, exactly.
#   webhook    wrk + wrk/webhook.lua (one tiny JSON event per request): faultline vs nginx req/s.
#   idle       10 000 idle keep-alive connections: RSS per connection (faultline, Go, nginx).
#   startup    stripped binary size; exec -> first 200 from /readyz (median of 20).
# usage: loadtest/http_bench.sh [--runs N] [--duration S] [--only SECTION[,SECTION]]
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; top="$here/.."
shared="${SHARED:-$top/../shared}"
bin="$top/build/release/server/faultline"
cache="${HTTPANCHOR_CACHE:-/tmp/httpanchor}"
runs=3 duration=10 only="firehose,scan,conserve,webhook,idle,startup"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;; --duration) duration="$2"; shift 2 ;; --only) only="$2"; shift 2 ;;
    *) echo "http_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
want() { [[ ",$only," == *",$1,"* ]]; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
status=0
port=18090
serve_cmd="$bin serve --config $here/seed_config.yaml --listen 127.0.0.1:{port}"
std="$cache/cwl-200000-s42.std.firehose.jsonl"
med() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

start_faultline() {  # -> FL_PID; waits for /readyz
  "$bin" serve --config "$here/seed_config.yaml" --listen "127.0.0.1:$port" 2> "$cache/http_bench.faultline.log" &
  FL_PID=$!
  for _ in $(seq 1 200); do
    [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] && return 0
    sleep 0.05
  done
  echo "faultline did not become ready" >&2; return 1
}
stop_faultline() { kill -TERM "$FL_PID" 2>/dev/null; wait "$FL_PID"; local rc=$?; [ "$rc" = 0 ] || { echo "faultline exited $rc after SIGTERM"; status=1; }; }

echo "# machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); faultline $("$bin" --version)"

if want firehose; then
  echo; echo "## firehose: faultline vs Go reference vs nginx (run_http_anchor.sh)"
  bash "$shared/bench/run_http_anchor.sh" --nginx --bodies std --conns 64 --runs "$runs" --duration "$duration" \
    "$serve_cmd" || status=1
fi

if [ ! -s "$std" ]; then
  echo "http_bench.sh: $std missing (run the firehose section first: it generates it)" >&2; exit 2
fi

if want scan; then
  echo; echo "## scan: the same Firehose bodies offline (events per CPU-second, $runs runs)"
  events=$("$bin" scan --format firehose --patterns "$shared/bench/patterns.txt" "$std" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])')
  vals=()
  for r in $(seq 1 "$runs"); do
    /usr/bin/time -f '%U %S' -o /tmp/http_bench.time "$bin" scan --format firehose --patterns "$shared/bench/patterns.txt" "$std" > /dev/null
    read -r u s < /tmp/http_bench.time
    vals+=("$(awk -v e="$events" -v u="$u" -v s="$s" 'BEGIN{printf "%.0f", e/(u+s)}')")
    echo "scan run $r: ${vals[-1]} events/CPU-s ($events events, cpu $(awk -v u="$u" -v s="$s" 'BEGIN{print u+s}') s)"
  done
  echo "scan median: $(printf '%s\n' "${vals[@]}" | med) events/CPU-s"
fi

if want conserve; then
  echo; echo "## conserve: every body POSTed once; ingested counter == events in the bodies"
  [ -s "$std.counts" ] || python3 "$shared/bench/count_events.py" "$std" > "$std.counts"
  expected=$(awk '{s += $1} END {print s}' "$std.counts")
  start_faultline || exit 1
  if python3 "$shared/bench/post_bodies.py" "http://127.0.0.1:$port/v1/firehose" "$std" --jobs 4 > /tmp/http_bench.post 2>&1; then
    got=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^faultline_events_ingested_total\{source="firehose"\}/ {print $2}')
    if [ "$got" = "$expected" ]; then echo "CONSERVED: $got events acknowledged 200 and counted ($(wc -l < "$std") requests)"
    else echo "MISMATCH: bodies hold $expected events, faultline counted $got"; status=1; fi
  else
    echo "FAILED: not every body was answered 200:"; tail -3 /tmp/http_bench.post; status=1
  fi
  stop_faultline
fi

if want webhook; then
  echo; echo "## webhook: one tiny event per request, wrk -t1 -c64 -d${duration}s, faultline vs nginx"
  d="$cache/nginx-webhook"; mkdir -p "$d/tmp"
  cat > "$d/nginx.conf" <<NGINX
worker_processes auto;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 16384; }
http {
  access_log off; keepalive_requests 1000000; client_body_temp_path $d/tmp;
  server { listen 127.0.0.1:18093; location / { default_type application/json; return 200 '{"accepted":1}'; } }
}
NGINX
  fl=() ng=()
  for r in $(seq 1 "$runs"); do
    start_faultline || exit 1
    wrk -t1 -c64 -d"${duration}s" --latency -s "$here/wrk/webhook.lua" "http://127.0.0.1:$port/v1/webhook/default" > /tmp/http_bench.wrk 2>&1
    res=$(grep '^RESULT' /tmp/http_bench.wrk); fl+=("$(sed 's/.*req_s=\([^ ]*\).*/\1/' <<< "$res")")
    echo "faultline run $r: $res"
    grep -q 'non2xx=0 sock_errors=0' <<< "$res" || status=1
    stop_faultline
    nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" -g 'daemon off; master_process on;' &
    npid=$!
    for _ in $(seq 1 100); do curl -s -o /dev/null -m 1 http://127.0.0.1:18093/ && break; sleep 0.05; done
    wrk -t1 -c64 -d"${duration}s" --latency -s "$here/wrk/webhook.lua" "http://127.0.0.1:18093/v1/webhook/default" > /tmp/http_bench.wrk 2>&1
    res=$(grep '^RESULT' /tmp/http_bench.wrk); ng+=("$(sed 's/.*req_s=\([^ ]*\).*/\1/' <<< "$res")")
    echo "nginx     run $r: $res"
    kill -QUIT "$npid" 2>/dev/null; wait "$npid" 2>/dev/null
  done
  f=$(printf '%s\n' "${fl[@]}" | med); n=$(printf '%s\n' "${ng[@]}" | med)
  echo "webhook medians: faultline $f req/s, nginx $n req/s, ratio $(awk -v f="$f" -v n="$n" 'BEGIN{printf "%.2f", f/n}')"
fi

if want idle; then
  echo; echo "## idle: 10 000 keep-alive connections (run_http_anchor.sh --idle-only)"
  bash "$shared/bench/run_http_anchor.sh" --nginx --idle 10000 --idle-only "$serve_cmd" || status=1
fi

if want startup; then
  echo; echo "## startup and size"
  strip -o /tmp/faultline.stripped "$bin"
  echo "binary: $(stat -c %s "$bin") bytes, stripped $(stat -c %s /tmp/faultline.stripped) bytes; shared libraries: $(ldd "$bin" | wc -l)"
  python3 - "$bin" "$here/seed_config.yaml" <<'PY'
import shutil, socket, subprocess, sys, tempfile, time, statistics
bin_, cfg = sys.argv[1], sys.argv[2]
state_dir = tempfile.mkdtemp(prefix="faultline-startup-")
times = []
for i in range(20):
    port = 18190 + i
    t0 = time.perf_counter()
    # A state directory, as in production: it also caches the compiled pattern database, so only
    # the very first start compiles (that start is included in the figures).
    p = subprocess.Popen([bin_, "serve", "--config", cfg, "--listen", f"127.0.0.1:{port}", "--state-dir", state_dir],
                         stderr=subprocess.DEVNULL)
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1)
            s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if s.recv(64).startswith(b"HTTP/1.1 200"):
                times.append((time.perf_counter() - t0) * 1000); s.close(); break
            s.close()
        except OSError:
            pass
        time.sleep(0.0005)
    p.terminate(); p.wait()
shutil.rmtree(state_dir, ignore_errors=True)
print(f"exec -> /readyz 200: median {statistics.median(times):.1f} ms, min {min(times):.1f}, max {max(times):.1f} "
      f"(20 starts; the first, which compiles the patterns: {times[0]:.1f} ms)")
PY
fi
exit $status
