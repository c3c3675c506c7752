#!/usr/bin/env bash
# Runs every libFuzzer target (built by the `fuzz` preset) in turn, each on a working copy of its
# seed corpus (build/fuzz/corpus/TARGET: what the fuzzer learns stays out of the repository).
# Crashes and their reproducers go to build/fuzz/findings/TARGET/; the run stops at the first.
#   tests/fuzz/run.sh BUILD_DIR SECONDS [RUNS] [TARGET...]
# SECONDS: time per target; RUNS (optional, 0 = unlimited): executions per target, whichever ends
# first. Prints each target's executions and rate. FUZZ_TIMEOUT (seconds, default 10): the
# per-input timeout; raise it when the fuzzers share the cores with a build.
set -euo pipefail
build=${1:?build dir}
seconds=${2:?seconds per target}
runs=${3:-0}
shift 3 2>/dev/null || shift $#
here=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(base64 inflate firehose cloudwatch webhook webhook_auth config http_request state session journal otlp cluster_view)

# A 64 MiB quarantine (ASan's default is 256 MiB): long runs of the YAML target otherwise grow
# ASan's own bookkeeping towards the RSS limit (the same inputs are flat without ASan).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:quarantine_size_mb=64}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
printf '%-14s %12s %10s %8s\n' target executions exec/s seconds
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  findings="$build/findings/$t"
  mkdir -p "$corpus" "$findings"
  cp -n "$here/corpus/$t/"* "$corpus/" 2>/dev/null || true
  log="$build/findings/$t.log"
  # Inputs up to 16 KiB (a few hundred events); YAML parsing is slow, so the configuration's are
  # kept to 2 KiB (its seeds are the default configuration cut into its top-level keys).
  max_len=16384
  [ "$t" = config ] && max_len=2048
  start=$(date +%s)
  # -rss_limit_mb: the decoders are capped (4 MiB decompressed here); a target that needs more
  # than ASan's overhead and libFuzzer's corpus allow is a finding.
  if ! "$build/tests/fuzz/${t}_fuzz" "$corpus" -max_total_time="$seconds" -runs="$((runs > 0 ? runs : -1))" \
      -max_len="$max_len" -rss_limit_mb=4096 -timeout="${FUZZ_TIMEOUT:-10}" -print_final_stats=1 \
      -artifact_prefix="$findings/" >"$log" 2>&1; then
    echo "$t: FAILED, see $log and $findings/" >&2
    tail -40 "$log" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  printf '%-14s %12s %10s %8s\n' "$t" "$execs" "$rate" "$(($(date +%s) - start))"
done
