#!/usr/bin/env bash
# The command line as a user sees it: exit codes (0 ok, 1 bad input, 2 usage/configuration),
# one-line errors naming file and line, stdin, gzip'd input, --help and --version.
#   cli_test.sh FAULTLINE_BINARY TEST_DATA_DIR
set -uo pipefail
bin="${1:?usage: cli_test.sh FAULTLINE_BINARY TEST_DATA_DIR}"
data="${2:?}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
failures=0
check() { # description expected_rc actual_rc [stderr_file pattern]
  local what="$1" want="$2" got="$3"
  if [ "$want" != "$got" ]; then echo "FAIL: $what: exit $got, expected $want"; failures=$((failures + 1)); return; fi
  if [ $# -ge 5 ] && ! grep -qE -- "$5" "$4"; then
    echo "FAIL: $what: stderr does not match /$5/:"; cat "$4"; failures=$((failures + 1)); return
  fi
  echo "ok: $what"
}
cases="$data/conformance"
pats="$cases/patterns.txt"
exp="$cases/documents.expected.json"

"$bin" --version > "$tmp/out" 2>&1; check "--version" 0 $?
grep -q '^faultline [0-9]' "$tmp/out" || { echo "FAIL: --version prints '$(cat "$tmp/out")'"; failures=$((failures + 1)); }
"$bin" --help > "$tmp/out" 2>&1; check "--help" 0 $?
grep -q 'scan' "$tmp/out" || { echo "FAIL: --help does not mention scan"; failures=$((failures + 1)); }
"$bin" scan --help > "$tmp/out" 2>&1; check "scan --help" 0 $?
grep -q -- '--format' "$tmp/out" || { echo "FAIL: scan --help does not list --format"; failures=$((failures + 1)); }

"$bin" > /dev/null 2> "$tmp/err"; check "no subcommand is a usage error" 2 $? "$tmp/err" "subcommand"
"$bin" scan --format xml --patterns "$pats" "$cases/documents.jsonl" > /dev/null 2> "$tmp/err"
check "unknown --format is a usage error" 2 $? "$tmp/err" "format"
"$bin" scan --patterns "$pats" > /dev/null 2> "$tmp/err"; check "no input is a usage error" 2 $? "$tmp/err" "inputs"
"$bin" scan --templates fancy --patterns "$pats" "$cases/documents.jsonl" > /dev/null 2> "$tmp/err"
check "unknown --templates is a usage error" 2 $? "$tmp/err" "templates"
"$bin" scan --assignments "$tmp/a.tsv" --patterns "$pats" "$cases/documents.jsonl" > /dev/null 2> "$tmp/err"
check "--assignments without --templates drain is a usage error" 2 $? "$tmp/err" "assignments needs --templates drain"
printf 'ERROR disk sda full\nfine\nERROR disk sdb full\n' > "$tmp/d.log"
"$bin" scan --templates drain --format lines --assignments "$tmp/a.tsv" --patterns "$pats" "$tmp/d.log" > /dev/null 2> "$tmp/err"
check "scan --assignments" 0 $?
[ "$(cut -f2 "$tmp/a.tsv" | tr '\n' '|')" = "ERROR disk <*> full||ERROR disk <*> full|" ] ||
  { echo "FAIL: --assignments wrote: $(cat "$tmp/a.tsv")"; failures=$((failures + 1)); }

# Patterns: a missing file and a rejected regex are configuration errors naming where.
"$bin" scan --patterns "$tmp/nope.tsv" "$cases/documents.jsonl" > /dev/null 2> "$tmp/err"
check "missing pattern file" 2 $? "$tmp/err" "nope.tsv"
printf 'ok\terror\tfoo\nbad_one\terror\t(a)\\1\n' > "$tmp/bad.tsv"
"$bin" scan --patterns "$tmp/bad.tsv" "$cases/documents.jsonl" > /dev/null 2> "$tmp/err"
check "rejected regex names pattern and line" 2 $? "$tmp/err" "bad_one.*bad.tsv:2"

# Input errors: exit 1, one line naming file and line; nothing on stdout.
{ head -2 "$cases/documents.jsonl"; echo '{"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":[{"message":1}]}'; } > "$tmp/bad.jsonl"
"$bin" scan --format jsonl --patterns "$pats" "$tmp/bad.jsonl" > "$tmp/out" 2> "$tmp/err"
check "malformed line is a runtime error naming file:line" 1 $? "$tmp/err" "bad.jsonl:3: .*logEvents\[0\]\.message"
[ "$(wc -l < "$tmp/err")" = 1 ] || { echo "FAIL: error is not one line"; failures=$((failures + 1)); }
[ -s "$tmp/out" ] && { echo "FAIL: a report was printed despite the error"; failures=$((failures + 1)); }
"$bin" scan --patterns "$pats" "$tmp/missing.jsonl" > /dev/null 2> "$tmp/err"
check "missing input file" 1 $? "$tmp/err" "missing.jsonl"
printf 'not base64 at all\n' > "$tmp/bad.firehose"
printf '{"requestId":"r","records":[{"data":"!!!!"}]}\n' >> "$tmp/bad.firehose"
"$bin" scan --format firehose --patterns "$pats" "$tmp/bad.firehose" > /dev/null 2> "$tmp/err"
check "bad Firehose body names its line" 1 $? "$tmp/err" "bad.firehose:1: "
sed -n 2p "$tmp/bad.firehose" > "$tmp/bad2.firehose"
"$bin" scan --format firehose --patterns "$pats" "$tmp/bad2.firehose" > /dev/null 2> "$tmp/err"
check "bad base64 names record and offset" 1 $? "$tmp/err" "records\[0\].*base64.*offset 0"

# stdin, gzip'd files and gzip'd stdin give the same bytes as the plain file.
"$bin" scan --format jsonl --patterns "$pats" - < "$cases/documents.jsonl" > "$tmp/out" 2>&1
check "stdin" 0 $?; cmp -s "$tmp/out" "$exp" || { echo "FAIL: stdin output differs"; failures=$((failures + 1)); }
gzip -c "$cases/documents.jsonl" > "$tmp/documents.jsonl.gz"
"$bin" scan --patterns "$pats" "$tmp/documents.jsonl.gz" > "$tmp/out" 2>&1
check "gzip'd file with auto format" 0 $?; cmp -s "$tmp/out" "$exp" || { echo "FAIL: gzip output differs"; failures=$((failures + 1)); }
"$bin" scan --patterns "$pats" - < "$tmp/documents.jsonl.gz" > "$tmp/out" 2>&1
check "gzip'd stdin" 0 $?; cmp -s "$tmp/out" "$exp" || { echo "FAIL: gzip stdin output differs"; failures=$((failures + 1)); }
"$bin" scan --patterns "$pats" "$cases/documents.firehose.jsonl" > "$tmp/out" 2>&1
check "firehose detected by auto" 0 $?; cmp -s "$tmp/out" "$exp" || { echo "FAIL: auto firehose output differs"; failures=$((failures + 1)); }
head -c 300 "$tmp/documents.jsonl.gz" > "$tmp/cut.jsonl.gz"
"$bin" scan --patterns "$pats" "$tmp/cut.jsonl.gz" > /dev/null 2> "$tmp/err"
check "truncated gzip file" 1 $? "$tmp/err" "cut.jsonl.gz.*gzip"
for t in 1 2 3; do
  "$bin" scan --threads $t --format jsonl --patterns "$pats" "$cases/ranking.jsonl" | cmp -s - "$cases/ranking.expected.json" \
    || { echo "FAIL: --threads $t output differs"; failures=$((failures + 1)); }
done

# Lines format: one event per non-blank line, grouped by file name.
printf 'ERROR disk full on /dev/sda1\n\r\n  \nconnection refused to 10.0.0.1:5432\nall good\n' > "$tmp/app.log"
"$bin" scan --format lines --patterns "$pats" "$tmp/app.log" > "$tmp/out" 2> "$tmp/err"
check "lines format" 0 $?
grep -q '"events":3' "$tmp/out" || { echo "FAIL: lines: $(cat "$tmp/out")"; failures=$((failures + 1)); }
grep -q '"connection refused to <IP>","count":1' "$tmp/out" || { echo "FAIL: lines template: $(cat "$tmp/out")"; failures=$((failures + 1)); }

# The embedded default configuration: its patterns include the seed set plus AWS additions.
"$bin" scan "$cases/documents.jsonl" > "$tmp/out" 2> "$tmp/err"
check "embedded default patterns" 0 $?
for name in $(cut -f1 "$pats" | grep -v '^#' | grep .) lambda_timeout ecs_task_failure k8s_pod_failure; do
  grep -q "\"$name\":" "$tmp/out" || { echo "FAIL: default patterns lack $name"; failures=$((failures + 1)); }
done

# check-config: the default is valid and printed back; every problem of a bad file is reported,
# each as file:line:col: key.path: message; exit 1.
"$bin" check-config "$data/../../config/default.yaml" > "$tmp/out" 2> "$tmp/err"
check "check-config default.yaml" 0 $?
grep -q '^listen: 127.0.0.1:8080' "$tmp/out" || { echo "FAIL: effective config lacks listen"; failures=$((failures + 1)); }
cat > "$tmp/bad.yaml" <<'YAML'
listen: 127.0.0.1:9999
limits:
  body_bytes: lots
  header_timeout: 10 seconds
colour: blue
sources:
  gh:
    auth: {type: github}
patterns:
  - name: broken
    class: error
    regex: '(a)\1'
YAML
"$bin" check-config "$tmp/bad.yaml" > "$tmp/out" 2> "$tmp/err"
check "check-config reports problems" 1 $? "$tmp/err" "bad.yaml:3:15: limits.body_bytes: expected a size"
grep -q "bad.yaml:4:19: limits.header_timeout: expected a duration" "$tmp/err" || { echo "FAIL: header_timeout problem missing"; cat "$tmp/err"; failures=$((failures + 1)); }
grep -q "bad.yaml:5:1: colour: unknown key" "$tmp/err" || { echo "FAIL: unknown key not reported"; failures=$((failures + 1)); }
grep -q "sources.gh.auth.secrets: at least one secret" "$tmp/err" || { echo "FAIL: missing secret not reported"; failures=$((failures + 1)); }
printf 'patterns:\n  - name: broken\n    regex: "(a)\\\\1"\n' > "$tmp/bad2.yaml"
"$bin" check-config "$tmp/bad2.yaml" > /dev/null 2> "$tmp/err"
check "check-config names a rejected regex" 1 $? "$tmp/err" "bad2.yaml:3:12: patterns\[0\].regex: pattern .broken. rejected by Vectorscan: Back-references"
"$bin" scan --config "$tmp/bad.yaml" "$cases/documents.jsonl" > /dev/null 2> "$tmp/err"
check "scan --config with a bad file is a configuration error" 2 $? "$tmp/err" "colour"

# --templates drain: the same counts, templates clustered (truncation's long lines differ in
# their numbers and collapse; ranking's "ERROR rank-x" lines stay apart: a settled template takes
# no new plain word).
"$bin" scan --templates drain --format jsonl --patterns "$pats" "$cases/truncation.jsonl" > "$tmp/out" 2> "$tmp/err"
check "scan --templates drain" 0 $?
python3 - "$tmp/out" "$cases/truncation.expected.json" <<'PY' || failures=$((failures + 1))
import json, sys
got, exp = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("documents", "events", "control_messages", "patterns", "by_group"):
    assert got[k] == exp[k], (k, got[k], exp[k])
assert sum(t["count"] for t in got["top_templates"]) >= sum(t["count"] for t in exp["top_templates"]), "drain lost events"
assert len(got["top_templates"]) < len(exp["top_templates"]), "drain did not cluster anything"
assert any("<*>" in t["template"] for t in got["top_templates"]), got["top_templates"]
PY

# The compiled-pattern cache: written on the first run, used on the next; a corrupt entry is
# recompiled (and rewritten), never trusted; FAULTLINE_CACHE_DIR="" disables it.
cache="$tmp/cache"
FAULTLINE_CACHE_DIR="$cache" "$bin" scan --patterns "$pats" "$cases/documents.jsonl" > "$tmp/out1" 2>&1
check "scan with a cache dir" 0 $?
ls "$cache"/patterns-*.hsdb > /dev/null 2>&1 || { echo "FAIL: no cached database in $cache"; failures=$((failures + 1)); }
FAULTLINE_CACHE_DIR="$cache" "$bin" scan --patterns "$pats" "$cases/documents.jsonl" > "$tmp/out2" 2>&1
cmp -s "$tmp/out1" "$exp" && cmp -s "$tmp/out2" "$exp" || { echo "FAIL: cached run output differs"; failures=$((failures + 1)); }
for f in "$cache"/patterns-*.hsdb; do printf 'garbage' > "$f"; done
FAULTLINE_CACHE_DIR="$cache" "$bin" scan --patterns "$pats" "$cases/documents.jsonl" > "$tmp/out3" 2>&1
check "scan with a corrupt cache entry" 0 $?
cmp -s "$tmp/out3" "$exp" || { echo "FAIL: corrupt cache changed the output"; failures=$((failures + 1)); }
[ "$(stat -c %s "$cache"/patterns-*.hsdb | head -1)" -gt 100 ] || { echo "FAIL: corrupt cache entry not rewritten"; failures=$((failures + 1)); }
rm -rf "$cache"
FAULTLINE_CACHE_DIR="" "$bin" scan --patterns "$pats" "$cases/documents.jsonl" > /dev/null 2>&1
[ -e "$cache" ] && { echo "FAIL: FAULTLINE_CACHE_DIR=\"\" still wrote a cache"; failures=$((failures + 1)); }

# scan's progress line: on a terminal only (script(1) gives it one), after the first second,
# never with --quiet, never when stderr is not a terminal; the report is the same.
slow="(cat '$cases/documents.jsonl'; sleep 1.5; cat '$cases/documents.jsonl')"
bash -c "$slow" | "$bin" scan --patterns "$pats" - > "$tmp/pipe.out" 2> "$tmp/pipe.err"
check "scan with stderr not a terminal" 0 $?
[ -s "$tmp/pipe.err" ] && { echo "FAIL: progress written to a non-terminal stderr"; failures=$((failures + 1)); }
if script -qec true /dev/null > /dev/null 2>&1; then
  script -qec "bash -c \"$slow | '$bin' scan --patterns '$pats' - > '$tmp/tty.out'\"" /dev/null > "$tmp/tty.err" 2>&1
  check "scan on a terminal" 0 $? "$tmp/tty.err" "scan: - .*MiB read.*events/s"
  script -qec "bash -c \"$slow | '$bin' scan --quiet --patterns '$pats' - > '$tmp/quiet.out'\"" /dev/null > "$tmp/quiet.err" 2>&1
  check "scan --quiet on a terminal" 0 $?
  grep -q "scan:" "$tmp/quiet.err" && { echo "FAIL: --quiet still showed progress"; failures=$((failures + 1)); }
  cmp -s "$tmp/tty.out" "$tmp/pipe.out" && cmp -s "$tmp/quiet.out" "$tmp/pipe.out" || { echo "FAIL: the progress line changed the report"; failures=$((failures + 1)); }
else
  echo "skip: scan's progress line on a terminal (script(1) cannot open a pseudo-terminal here)"
fi

# The configuration's bounds hold after FAULTLINE_* variables: refused before anything starts.
FAULTLINE_WORKERS=5000 timeout 10 "$bin" serve --listen 127.0.0.1:0 --state-dir "" > /dev/null 2> "$tmp/err"
check "FAULTLINE_WORKERS above 1024 is refused naming the field" 2 $? "$tmp/err" "workers.*at most 1024"
FAULTLINE_IO_THREADS=2000 timeout 10 "$bin" serve --listen 127.0.0.1:0 --state-dir "" > /dev/null 2> "$tmp/err"
check "FAULTLINE_IO_THREADS above 1024 is refused naming the field" 2 $? "$tmp/err" "io_threads.*at most 1024"

echo "$failures failure(s)"
[ "$failures" = 0 ]
