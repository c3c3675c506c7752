#!/usr/bin/env bash
# The seed benchmark's conformance cases (SEED_BENCH.md §7), byte for byte, in both formats.
# Runs the copy in tests/data/conformance, and the original check.sh too when ../shared is there.
#   conformance.sh FAULTLINE_BINARY
set -uo pipefail
bin="${1:?usage: conformance.sh FAULTLINE_BINARY}"
here="$(cd "$(dirname "$0")" && pwd)"
cases="$here/../data/conformance"
pass=0 fail=0
for exp in "$cases"/*.expected.json; do
  name="$(basename "$exp" .expected.json)"
  for fmt in jsonl firehose; do
    in="$cases/$name.jsonl"; [ "$fmt" = firehose ] && in="$cases/$name.firehose.jsonl"
    if "$bin" scan --templates exact --format "$fmt" --patterns "$cases/patterns.txt" "$in" | cmp -s - "$exp"; then
      pass=$((pass + 1))
    else
      fail=$((fail + 1)); echo "FAIL $name ($fmt)"
    fi
  done
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ] && [ "$pass" = 14 ] || exit 1

shared="$here/../../../shared/bench/conformance/check.sh"
if [ -f "$shared" ]; then
  out="$(bash "$shared" "$bin scan --templates exact")"
  echo "shared check.sh: $out"
  [ "$(echo "$out" | tail -1)" = "14 passed, 0 failed" ] || exit 1
fi
