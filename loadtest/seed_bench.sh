#!/usr/bin/env bash
# seed_bench.sh: the seed benchmark (../shared/bench/SEED_BENCH.md) side by side — the Go
# reference, Python --jobs 2 (and single-process Python with --all) and faultline, on both input
# formats, medians of --runs, byte-identity and the pinned sha256 checked by run_anchor.sh.
# Then faultline alone on a 5x larger input, to show that peak RSS does not grow with the input.
#   loadtest/seed_bench.sh [--runs N] [--all] [--no-5m]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; top="$here/.."
shared="${SHARED:-$top/../shared}"
runs=3 impls=go,pyj big=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;; --all) impls=go,py,pyj; shift ;; --no-5m) big=0; shift ;;
    *) echo "seed_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
bin="$top/build/release/server/faultline"
bash "$shared/bench/run_anchor.sh" --runs "$runs" --impls "$impls" "$bin scan --templates exact"
if [ "$big" = 1 ]; then
  echo; echo "# faultline alone, 5 000 000 events (RSS must stay flat)"
  bash "$shared/bench/run_anchor.sh" --runs 1 --events 5000000 --impls "" "$bin scan --templates exact"
fi
