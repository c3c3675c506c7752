#!/usr/bin/env bash
# Static checks of the operations kit in deploy/ (no cluster, no Docker needed):
#   bash tests/integration/deploy_test.sh [FAULTLINE_BINARY]
# - Prometheus: promtool check rules / config, promtool test rules (every alert firing and not).
# - Every YAML file under deploy/ parses (python3 + PyYAML: python3-yaml).
# - Grafana: the dashboard JSON parses, has the stable uid, schemaVersion >= 36, refers to the data
#   source by uid "prometheus" only, and every panel has a target with an expr.
# - Kubernetes: the Deployment's terminationGracePeriodSeconds exceeds preStop + the configured
#   limits.shutdown_grace; its security settings and probes; kustomize renders (when kubectl or
#   kustomize is installed); deploy/k8s/faultline.yaml is config/default.yaml with only listen and
#   state_dir changed (and `faultline check-config` accepts it, given the binary).
# - systemd: `systemd-analyze verify` on the unit (when the tool exists); TimeoutStopSec > grace.
# - Dockerfile: builds with the build packages of scripts/install-deps.sh and installs the Debian
#   packages of every library the binary links (ldd + dpkg -S, given the binary).
# Ends with "N passed, N failed, N skipped"; exit 1 when a check failed.
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DEPLOY="$ROOT/deploy"
BINARY="${1:-}"
if [ -n "$BINARY" ]; then
  if [ ! -x "$BINARY" ]; then echo "deploy_test.sh: $BINARY is not an executable" >&2; exit 2; fi
  BINARY="$(cd "$(dirname "$BINARY")" && pwd)/$(basename "$BINARY")"
fi

passed=0 failed=0 skipped=0
TMP="$(mktemp -d "${TMPDIR:-/tmp}/faultline-deploy-test.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# check NAME COMMAND...: runs the command, records pass/fail, shows its output on failure.
check() {
  local name="$1"; shift
  if "$@" >"$TMP/out" 2>&1; then
    passed=$((passed + 1)); echo "PASS  $name"
  else
    failed=$((failed + 1)); echo "FAIL  $name"; sed 's/^/      /' "$TMP/out"
  fi
}
skip() { skipped=$((skipped + 1)); echo "SKIP  $1: $2"; }

# A Python with PyYAML (the pyenv one may lack it; Debian's python3-yaml serves /usr/bin/python3).
PY=""
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import yaml' 2>/dev/null; then PY="$candidate"; break; fi
done

# ---- Prometheus ---------------------------------------------------------------------------------
if command -v promtool >/dev/null; then
  check "promtool check rules deploy/prometheus/rules.yaml" promtool check rules "$DEPLOY/prometheus/rules.yaml"
  check "promtool test rules deploy/prometheus/rules_test.yaml" \
    bash -c 'cd "$1" && promtool test rules rules_test.yaml' _ "$DEPLOY/prometheus"
  check "promtool check config deploy/prometheus/prometheus.yml" promtool check config "$DEPLOY/prometheus/prometheus.yml"
else
  skip "promtool checks" "promtool not installed (Debian package prometheus; scripts/install-deps.sh)"
fi

# Every alert named in rules.yaml has a test group in rules_test.yaml that expects it both firing
# (exp_alerts with entries) and not firing (exp_alerts: []).
alerts_tested() {
  "$PY" - "$DEPLOY/prometheus" <<'PY'
import sys, yaml, os
d = sys.argv[1]
rules = yaml.safe_load(open(os.path.join(d, "rules.yaml")))
tests = yaml.safe_load(open(os.path.join(d, "rules_test.yaml")))
alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
records = [r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r]
firing, quiet, exprs = set(), set(), set()
for t in tests["tests"]:
    for a in t.get("alert_rule_test", []):
        (firing if a.get("exp_alerts") else quiet).add(a["alertname"])
    for e in t.get("promql_expr_test", []):
        exprs.add(e["expr"])
bad = False
for a in alerts:
    for what, s in (("firing", firing), ("not firing", quiet)):
        if a not in s:
            print("alert %s is never tested %s" % (a, what)); bad = True
    r = next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == a)
    if not r.get("labels", {}).get("severity") or not {"summary", "description"} <= set(r.get("annotations", {})):
        print("alert %s lacks a severity label or summary/description annotations" % a); bad = True
for r in records:
    if r not in exprs:
        print("recording rule %s has no promql_expr_test" % r); bad = True
print("%d alerts, %d recording rules" % (len(alerts), len(records)))
sys.exit(1 if bad else 0)
PY
}

# ---- YAML files ---------------------------------------------------------------------------------
yaml_parse() {
  "$PY" - "$DEPLOY" <<'PY'
import sys, os, yaml
bad = 0
n = 0
for dirpath, _, files in os.walk(sys.argv[1]):
    for f in sorted(files):
        if f.endswith((".yaml", ".yml")):
            p = os.path.join(dirpath, f)
            n += 1
            try:
                docs = [d for d in yaml.safe_load_all(open(p, encoding="utf-8")) if d is not None]
                if not docs:
                    raise ValueError("no YAML document")
            except Exception as e:  # noqa: BLE001 - report any parse error with the file
                print("%s: %s" % (p, e)); bad += 1
print("%d YAML files" % n)
sys.exit(1 if bad or n == 0 else 0)
PY
}

# deploy/k8s/faultline.yaml is the embedded default with listen, state_dir and cluster.peers changed; the
# Deployment gives the pod more time than preStop + shutdown_grace; security settings.
k8s_checks() {
  "$PY" - "$ROOT" <<'PY'
import os, re, sys, yaml
root = sys.argv[1]
k8s = os.path.join(root, "deploy", "k8s")
bad = []
def load(p):
    with open(p, encoding="utf-8") as f:
        return yaml.safe_load(f)

default = load(os.path.join(root, "config", "default.yaml"))
cfg = load(os.path.join(k8s, "faultline.yaml"))
expected = dict(default, listen="0.0.0.0:8080", state_dir="/var/lib/faultline",
                cluster=dict(default["cluster"], peers=["faultline-peers:8080"]))
if cfg != expected:
    for k in sorted(set(cfg) | set(expected)):
        if cfg.get(k) != expected.get(k):
            bad.append("deploy/k8s/faultline.yaml differs from config/default.yaml (+ listen, state_dir, cluster.peers) at %r" % k)

def seconds(v):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", str(v).strip())
    if not m:
        raise ValueError("unparsable duration %r" % v)
    return int(m.group(1)) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]
grace = seconds(cfg["limits"]["shutdown_grace"])

kust = load(os.path.join(k8s, "kustomization.yaml"))
kinds = {}
services = []
for r in kust["resources"]:
    for doc in yaml.safe_load_all(open(os.path.join(k8s, r), encoding="utf-8")):
        if doc:
            kinds.setdefault(doc["kind"], doc)  # the first of each kind (service.yaml's Service)
            if doc["kind"] == "Service":
                services.append(doc)
for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor"):
    if kind not in kinds:
        bad.append("kustomization.yaml lists no %s" % kind)
gen = [g for g in kust.get("configMapGenerator", []) if "faultline.yaml" in g.get("files", [])]
if not gen:
    bad.append("no configMapGenerator with faultline.yaml")

dep = kinds.get("Deployment", {})
pod = dep.get("spec", {}).get("template", {}).get("spec", {})
c = (pod.get("containers") or [{}])[0]
tgps = pod.get("terminationGracePeriodSeconds", 30)
pre = 0
cmd = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
if cmd[-2:-1] and cmd[-2].endswith("sleep"):
    pre = seconds(cmd[-1])
if not tgps > pre + grace:
    bad.append("terminationGracePeriodSeconds %s is not larger than preStop %ss + shutdown_grace %ss" % (tgps, pre, grace))
print("terminationGracePeriodSeconds %s, preStop %ss, limits.shutdown_grace %ss" % (tgps, pre, grace))
if c.get("args") != ["serve", "--config", "/etc/faultline/faultline.yaml"]:
    bad.append("container args are %r" % c.get("args"))
mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
vols = {v["name"]: v for v in pod.get("volumes", [])}
if gen and vols.get(mounts.get("/etc/faultline"), {}).get("configMap", {}).get("name") != gen[0]["name"]:
    bad.append("/etc/faultline is not the generated ConfigMap %s" % gen[0]["name"])
if mounts.get(cfg["state_dir"]) is None:
    bad.append("state_dir %s is not a mounted volume (the root file system is read-only)" % cfg["state_dir"])
port = int(cfg["listen"].rsplit(":", 1)[1])
if port not in [p["containerPort"] for p in c.get("ports", [])]:
    bad.append("containerPort does not match listen %s" % cfg["listen"])
if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
    bad.append("liveness probe is not GET /healthz")
if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
    bad.append("readiness probe is not GET /readyz")
res = c.get("resources", {})
if not (res.get("requests", {}).get("cpu") and res.get("limits", {}).get("memory")):
    bad.append("resources: cpu request (the HPA needs it) and memory limit expected")
sc, psc = c.get("securityContext", {}), pod.get("securityContext", {})
want = {"runAsNonRoot": True, "runAsUser": 65532, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}
for k, v in want.items():
    if sc.get(k, psc.get(k)) != v:
        bad.append("securityContext.%s is %r, expected %r" % (k, sc.get(k, psc.get(k)), v))
if sc.get("capabilities", {}).get("drop") != ["ALL"]:
    bad.append("capabilities.drop is not [ALL]")
if (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
    bad.append("seccompProfile is not RuntimeDefault")
ann = dep["spec"]["template"]["metadata"].get("annotations", {})
if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(port):
    bad.append("prometheus.io annotations missing or on the wrong port")
hpa = kinds.get("HorizontalPodAutoscaler", {})
if hpa.get("apiVersion") != "autoscaling/v2" or \
        hpa["spec"]["metrics"][0]["resource"]["target"].get("averageUtilization") != 70:
    bad.append("HPA is not autoscaling/v2 at 70 % CPU")
if kinds.get("PodDisruptionBudget", {}).get("spec", {}).get("minAvailable") != 1:
    bad.append("PDB minAvailable is not 1")
sm = kinds.get("ServiceMonitor", {})
ep = (sm.get("spec", {}).get("endpoints") or [{}])[0]
if sm.get("apiVersion") != "monitoring.coreos.com/v1" or ep.get("path") != "/metrics" or ep.get("interval") != "15s":
    bad.append("ServiceMonitor is not monitoring.coreos.com/v1, /metrics every 15s")
svc_ports = [p.get("name") for p in kinds.get("Service", {}).get("spec", {}).get("ports", [])]
if ep.get("port") not in svc_ports:
    bad.append("ServiceMonitor port %r is not a Service port %r" % (ep.get("port"), svc_ports))
if kinds.get("Service", {}).get("metadata", {}).get("name") != "faultline":
    bad.append("the Service (the ServiceMonitor's job label) is not called faultline, as rules.yaml expects")
# Exactly one Service carries the ServiceMonitor's labels: a second one (the headless peers
# Service) would have every pod scraped twice and every sum() in Prometheus doubled.
want = sm.get("spec", {}).get("selector", {}).get("matchLabels", {})
monitored = [s["metadata"]["name"] for s in services
             if all(s.get("metadata", {}).get("labels", {}).get(k) == v for k, v in want.items())]
if monitored != ["faultline"]:
    bad.append("the ServiceMonitor selects the Services %r, not only faultline" % monitored)
peers = [s for s in services if s.get("spec", {}).get("clusterIP") == "None"]
if not peers or "%s:8080" % peers[0]["metadata"]["name"] not in cfg.get("cluster", {}).get("peers", []):
    bad.append("no headless Service named in cluster.peers (GET /v1/templates?scope=cluster)")
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
PY
}

if [ -n "$PY" ]; then
  check "every YAML file under deploy/ parses" yaml_parse
  check "every alert tested firing and not firing; every recording rule tested" alerts_tested
  check "Kubernetes manifests (grace period, security, probes, config = default + listen/state_dir)" k8s_checks
else
  skip "YAML checks" "no python3 with PyYAML (Debian package python3-yaml; scripts/install-deps.sh)"
fi

# ---- Kubernetes: kustomize renders --------------------------------------------------------------
kustomize_build() {
  if command -v kustomize >/dev/null; then kustomize build "$DEPLOY/k8s" >"$TMP/k8s.yaml"
  else kubectl kustomize "$DEPLOY/k8s" >"$TMP/k8s.yaml"; fi || return 1
  # The generated ConfigMap carries a content hash and the Deployment refers to that name.
  local cm
  cm=$(grep -oE 'name: faultline-config-[a-z0-9]+' "$TMP/k8s.yaml" | sort -u)
  echo "$cm"
  [ "$(echo "$cm" | wc -l)" = 1 ] && [ -n "$cm" ] && grep -q 'image: registry.example.com/faultline:0.1.0' "$TMP/k8s.yaml"
}
if command -v kustomize >/dev/null || command -v kubectl >/dev/null; then
  check "kustomize build deploy/k8s" kustomize_build
else
  skip "kustomize build deploy/k8s" "neither kustomize nor kubectl installed"
fi

if [ -n "$BINARY" ]; then
  check "faultline check-config deploy/k8s/faultline.yaml" "$BINARY" check-config "$DEPLOY/k8s/faultline.yaml"
else
  skip "faultline check-config deploy/k8s/faultline.yaml" "no faultline binary given"
fi

# ---- Grafana ------------------------------------------------------------------------------------
dashboard_checks() {
  python3 - "$DEPLOY/grafana/dashboards/faultline.json" <<'PY'
import json, sys
path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    text = f.read()
d = json.loads(text)
bad = []
if d.get("uid") != "faultline-overview":
    bad.append("uid is %r, expected faultline-overview" % d.get("uid"))
if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
    bad.append("schemaVersion %r < 36" % d.get("schemaVersion"))
if "DS_PROMETHEUS" in text or "__inputs" in d:
    bad.append("the dashboard uses an import-time data source input; refer to uid prometheus")
def walk(o):
    if isinstance(o, dict):
        if "datasource" in o and isinstance(o["datasource"], dict) and o["datasource"].get("type") == "prometheus" \
                and o["datasource"].get("uid") != "prometheus":
            bad.append("datasource uid %r" % o["datasource"].get("uid"))
        for v in o.values():
            walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(d)
panels = d.get("panels", [])
if not panels:
    bad.append("no panels")
ids = [p.get("id") for p in panels]
if len(set(ids)) != len(ids):
    bad.append("panel ids not unique")
for p in panels:
    exprs = [t.get("expr", "").strip() for t in p.get("targets", [])]
    if not any(exprs):
        bad.append("panel %r has no target with an expr" % p.get("title"))
    if (p.get("datasource") or {}).get("uid") != "prometheus":
        bad.append("panel %r: datasource is not uid prometheus" % p.get("title"))
print("%d panels, %d queries" % (len(panels), sum(len(p.get("targets", [])) for p in panels)))
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
PY
}
check "Grafana dashboard (uid faultline-overview, every panel has an expr)" dashboard_checks

# ---- systemd ------------------------------------------------------------------------------------
grace_seconds() {  # limits.shutdown_grace of the embedded default, in seconds
  sed -n 's/^ *shutdown_grace: *\([0-9]*\)s.*/\1/p' "$ROOT/config/default.yaml"
}
systemd_verify() {
  # verify wants ExecStart's program to exist: point it at the built binary (or /bin/true).
  local unit="$TMP/faultline.service" exe="${BINARY:-/bin/true}"
  sed "s|^ExecStart=/usr/local/bin/faultline|ExecStart=$exe|" "$DEPLOY/systemd/faultline.service" >"$unit"
  systemd-analyze verify "$unit"
}
systemd_timeouts() {
  local stop grace
  stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$DEPLOY/systemd/faultline.service")
  grace=$(grace_seconds)
  echo "TimeoutStopSec=$stop, shutdown_grace=${grace}s"
  [ -n "$stop" ] && [ -n "$grace" ] && [ "$stop" -gt "$grace" ]
}
check "systemd unit: TimeoutStopSec > limits.shutdown_grace" systemd_timeouts
if command -v systemd-analyze >/dev/null; then
  check "systemd-analyze verify deploy/systemd/faultline.service" systemd_verify
else
  skip "systemd-analyze verify" "systemd-analyze not installed"
fi

# ---- Dockerfile ---------------------------------------------------------------------------------
# The build stage installs every build package of scripts/install-deps.sh (not the test and
# benchmark tools), and the runtime stage the Debian package of every library the binary links.
dockerfile_build_packages() {
  local pkgs missing=() p
  pkgs=$(sed -n '/^packages=(/,/^)/p' "$ROOT/scripts/install-deps.sh" | sed '1d;$d' | tr -s ' \n' '\n' | grep -v '^$' | sort -u)
  local build_stage
  build_stage=$(sed -n '/^FROM .* AS build/,/^FROM /p' "$DEPLOY/Dockerfile")
  for p in $pkgs; do
    case "$p" in ccache|make|doctest-dev|python3|python3-yaml|gzip|prometheus) continue ;; esac
    grep -qw -- "$p" <<<"$build_stage" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] || { echo "not installed in the build stage: ${missing[*]}"; return 1; }
}
dockerfile_runtime_packages() {
  local runtime lib path pkg missing=()
  runtime=$(sed -n '/^FROM .*-slim/,$p' "$DEPLOY/Dockerfile")
  while read -r lib path; do
    pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
    [ -z "$pkg" ] && pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
    [ -z "$pkg" ] && { echo "no Debian package owns $path"; missing+=("$lib"); continue; }
    case "$pkg" in libc6|libstdc++6|libgcc-s1) continue ;; esac   # in debian:bookworm-slim
    echo "$lib -> $pkg"
    grep -qw -- "$pkg" <<<"$runtime" || missing+=("$pkg")
  done < <(ldd "$BINARY" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}')
  [ ${#missing[@]} -eq 0 ] || { echo "not installed in the runtime stage: ${missing[*]}"; return 1; }
}
dockerfile_shape() {
  local f="$DEPLOY/Dockerfile" ok=0
  grep -q '^FROM debian:${DEBIAN_RELEASE} AS build' "$f" && grep -q '^ARG DEBIAN_RELEASE=bookworm' "$f" || { echo "build stage is not debian:bookworm"; ok=1; }
  grep -q '^FROM debian:${DEBIAN_RELEASE}-slim' "$f" || { echo "runtime stage is not debian:bookworm-slim"; ok=1; }
  grep -q '^USER 65532' "$f" || { echo "not USER 65532"; ok=1; }
  grep -q '^EXPOSE 8080' "$f" || { echo "no EXPOSE 8080"; ok=1; }
  grep -q '^ENTRYPOINT \["faultline"\]' "$f" || { echo "ENTRYPOINT is not [\"faultline\"]"; ok=1; }
  grep -q '^CMD \["serve", "--listen", "0.0.0.0:8080"\]' "$f" || { echo "CMD is not serve --listen 0.0.0.0:8080"; ok=1; }
  grep -q 'org.opencontainers.image.title' "$f" || { echo "no OCI labels"; ok=1; }
  if grep -q '^HEALTHCHECK' "$f"; then echo "HEALTHCHECK present (the k8s probes do that)"; ok=1; fi
  return $ok
}
check "Dockerfile: stages, user, port, entrypoint, labels" dockerfile_shape
check "Dockerfile: build stage has the build packages of scripts/install-deps.sh" dockerfile_build_packages
if [ -n "$BINARY" ] && command -v ldd >/dev/null && command -v dpkg >/dev/null; then
  check "Dockerfile: runtime stage has the package of every linked library (ldd)" dockerfile_runtime_packages
else
  skip "Dockerfile runtime libraries" "needs the binary, ldd and dpkg"
fi

echo
echo "deploy: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
