# common.sh: what the loadtest scripts measure the same way, in one place. Sourced (`source
# "$here/common.sh"`), never run; needs `here` (the loadtest directory) set by the caller.

# The median of the numbers on standard input, one a line.
med() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Exits when something already answers on PORT: it would be measured instead of ours.
port_free() { ! curl -s -o /dev/null -m 1 "http://127.0.0.1:$1/" || { echo "port $1 is taken by another process: stop it first" >&2; exit 1; }; }

# bench_data.py's KIND input of COUNT bodies or events at PATH, made once and reused.
bench_data() { [ -s "$3" ] || python3 "$here/bench_data.py" "$1" "$2" "$3"; }

# CPU-seconds a process has run, every thread of it.
cpu_s() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.6f", s / 1e9}'; }

# faultline_events_ingested_total (all sources) of the server on PORT.
ingested() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^faultline_events_ingested_total/ {s += $2} END {print s + 0}'; }

# `faultline scan --templates drain --format firehose` of BIN over BODIES ten times: prints
# "EVENTS CPU-SECONDS EVENTS-PER-CPU-SECOND". WORK holds its report and timing.
scan_firehose_per_cpu() {
  local bin=$1 bodies=$2 work=$3 u s ev
  /usr/bin/time -f '%U %S' -o "$work/time" "$bin" scan -q --templates drain --format firehose $(printf "$bodies %.0s" $(seq 10)) > "$work/scan.json"
  read -r u s < "$work/time"
  ev=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["events"])' "$work/scan.json")
  awk -v e="$ev" -v u="$u" -v s="$s" 'BEGIN{printf "%d %.2f %.0f\n", e, u + s, (u + s > 0 ? e / (u + s) : 0)}'
}
