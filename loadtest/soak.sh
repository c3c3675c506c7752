#!/usr/bin/env bash
# soak.sh: `faultline serve` under 10 minutes of mixed load (Firehose, CloudWatch, webhooks, 5 %
# malformed), RSS printed every 10 s, conservation and flat memory checked at the end (soak.py
# says what exactly). Exit status 0 when everything holds.
# usage: loadtest/soak.sh [--duration S] [--clients N] [--interval S]
#        FAULTLINE_BIN=path/to/faultline loadtest/soak.sh ...   (default: build/release)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${FAULTLINE_BIN:-$here/../build/release/server/faultline}"
[ -x "$bin" ] || { echo "soak.sh: $bin is not built (make build)" >&2; exit 2; }
echo "soak.sh: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
exec python3 "$here/soak.py" "$bin" "$@"
