#!/usr/bin/env bash
# Installs the Debian 12 packages faultline needs to build, test and benchmark (idempotent:
# nothing is downloaded when everything is present). Uses sudo when not root.
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --bench    also what the benchmarks need (Go for the reference, wrk)
#   scripts/install-deps.sh --fuzz     also clang and libFuzzer (make fuzz)
#   scripts/install-deps.sh --bench-check  also wrk and nginx (make bench-check, in CI)
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config ccache make
  libboost1.81-dev libsimdjson-dev libvectorscan-dev libdeflate-dev zlib1g-dev
  libcli11-dev doctest-dev libyaml-cpp-dev libxxhash-dev libssl-dev
  prometheus-cpp-dev libhiredis-dev
  python3 python3-yaml gzip prometheus
)
# The multi-replica test: a load balancer and the shared dedupe store in front of / beside replicas.
packages+=(haproxy redis-server)
# OTLP requests as exporters build them, for the tests and the load generator (not the binary).
packages+=(libprotobuf-dev protobuf-compiler)
# The template explorer's browser test (tests/browser: puppeteer-core drives Debian's chromium).
packages+=(chromium)
# Node.js and npm for that test: the machine's own when it has them, else Debian's.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
if [ "${1:-}" = "--bench" ]; then
  packages+=(golang-go time wrk nginx curl)
fi
if [ "${1:-}" = "--bench-check" ]; then
  packages+=(time wrk nginx curl)
fi
if [ "${1:-}" = "--fuzz" ]; then
  packages+=(clang libclang-rt-14-dev)  # libFuzzer and the sanitizer runtimes for clang
fi

# From npm, pinned by their package-lock.json: puppeteer-core for the browser test
# (tests/browser), the OpenTelemetry JS SDK's log exporters for the OTLP test (tests/otlp-js).
browser_modules() {
  local top dir
  top="$(cd "$(dirname "$0")/.." && pwd)"
  for dir in "$top/tests/browser" "$top/tests/otlp-js"; do
    [ -d "$dir/node_modules" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ] && continue
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  done
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  browser_modules
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
browser_modules
