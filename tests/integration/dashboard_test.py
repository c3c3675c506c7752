#!/usr/bin/env python3
"""Live test of the Grafana dashboard and the Prometheus rules against the real service.

    python3 tests/integration/dashboard_test.py FAULTLINE_BINARY [unittest options]

Starts `faultline serve` on 127.0.0.1:0 (the Server class of server_test.py) with a 1 ms template
warm-up, and a real Prometheus on a free loopback port that scrapes faultline and itself every
second and evaluates deploy/prometheus/rules.yaml every second. Sends the fixtures twice, a scrape
apart (so every counter has an increase to rate): Firehose (plain and gzip, with request ids),
CloudWatch Logs documents (plain, Lambda awslogs, CONTROL_MESSAGE), webhook error lines, plus a
malformed document (decode error, 400), a bad Firehose key (401), a body over the in-flight byte
budget (503) and one over the body limit (413).

Then every PromQL expression of deploy/grafana/dashboards/faultline.json (Grafana variables
substituted: $__rate_interval 1m, $__interval 15s, $__range 5m, $job faultline, $instance .+) and of
rules.yaml (recording rules: the whole expression; alerts: the left-hand side of each comparison,
since an alert may rightly return nothing) is evaluated through /api/v1/query, polling up to 60 s,
and must return at least one series. Prints a table "panel title | expr | first series".
Skipped only when prometheus or promtool is not installed. Python standard library only.
"""

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # importing server_test leaves no __pycache__ behind
import server_test  # noqa: E402 - the Server helper (start, port discovery, SIGTERM) is shared
from server_test import Server, free_port, read_one_response, wait_until, FIXTURES, PATTERNS  # noqa: E402

DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "dashboards", "faultline.json")
RULES = os.path.join(ROOT, "deploy", "prometheus", "rules.yaml")
FIREHOSE_FIXTURE = os.path.join(FIXTURES, "firehose", "cwl_via_firehose_request.json")
ACCESS_KEY = "dashboard-key"

# Grafana's built-in and dashboard variables, as a user with job=faultline, instance=All sees them.
VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m",
             "$job": "faultline", "$instance": ".+"}
DEADLINE = 60.0  # rates need two scrapes after the traffic: at 1 s scrapes this is plenty

# Patterns: the shared set plus the ones the fixtures' sshd lines and timeouts hit.
DASH_PATTERNS = PATTERNS + [
    {"name": "timeout", "class": "error", "regex": r"(?i)\btimed? ?out\b|\bdeadline exceeded\b",
     "description": "Timeouts"},
    {"name": "auth_failure", "class": "error", "regex": r"(?i)authentication failure|Failed password|Invalid user",
     "description": "Failed logins"},
]

PROMETHEUS = shutil.which("prometheus") or ("/usr/bin/prometheus" if os.access("/usr/bin/prometheus", os.X_OK) else None)
PROMTOOL = shutil.which("promtool") or ("/usr/bin/promtool" if os.access("/usr/bin/promtool", os.X_OK) else None)


def substitute(expr):
    # Longest names first: $__rate_interval before $__range / $__interval.
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace("${" + name[1:] + "}", VARIABLES[name]).replace(name, VARIABLES[name])
    return expr


# ---------------------------------------------------------------------------------------------
# PromQL: the left-hand sides of an alert expression's comparisons (no parser needed for ours)

_SET_OPS = ("and", "or", "unless")
_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")


def _top_level(expr):
    """Yields (index, char, depth) with depth counting (), [], {} and skipping quoted strings."""
    depth, quote, i = 0, None, 0
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        yield i, c, depth if not quote else -1
        i += 1


def split_set_ops(expr):
    """Splits an expression at top-level and/or/unless."""
    parts, start = [], 0
    for i, c, depth in _top_level(expr):
        if depth != 0 or i < start:
            continue
        for op in _SET_OPS:
            if expr.startswith(op, i) and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] in "_:")) \
                    and (i + len(op) >= len(expr) or not (expr[i + len(op)].isalnum() or expr[i + len(op)] in "_:")):
                parts.append(expr[start:i])
                start = i + len(op)
                break
    parts.append(expr[start:])
    return [p.strip() for p in parts if p.strip()]


def comparison_lhs(expr):
    """The operand left of the first top-level comparison operator (the whole expression if none)."""
    for i, c, depth in _top_level(expr):
        if depth != 0:
            continue
        for op in _COMPARISONS:
            if expr.startswith(op, i):
                return expr[:i].strip()
    return expr.strip()


def alert_selectors(expr):
    out = []
    for part in split_set_ops(expr):
        lhs = comparison_lhs(part)
        if lhs not in out:
            out.append(lhs)
    return out


def load_rules(path):
    """(kind, name, expr) of every rule in rules.yaml, read without a YAML library: the file keeps
    to `- record:`/`- alert:` then `expr:` (one line, or a `|` block)."""
    rules, current = [], None
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^\s*- (record|alert):\s*(\S+)\s*$", line)
        if m:
            current = [m.group(1), m.group(2), None]
            rules.append(current)
        m = re.match(r"^(\s*)expr:\s*(.*)$", line)
        if m and current is not None and current[2] is None:
            value = m.group(2).strip()
            if value in ("|", ">", "|-", ">-"):
                indent = None
                block = []
                i += 1
                while i < len(lines):
                    nxt = lines[i]
                    if nxt.strip() == "":
                        block.append("")
                        i += 1
                        continue
                    ind = len(nxt) - len(nxt.lstrip())
                    if indent is None:
                        indent = ind
                    if ind < indent:
                        break
                    block.append(nxt[indent:])
                    i += 1
                current[2] = "\n".join(block).strip()
                continue
            current[2] = value
        i += 1
    return [tuple(r) for r in rules]


# ---------------------------------------------------------------------------------------------
# Prometheus


class Prometheus:
    """A real Prometheus on a free loopback port, scraping faultline (one port, or a list of
    replicas' ports: job faultline) and itself every second (and evaluating `rule_files`)."""

    def __init__(self, faultline_port, tmp, rule_files=(RULES,)):
        ports = faultline_port if isinstance(faultline_port, (list, tuple)) else [faultline_port]
        self.tmp = tmp
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        config = os.path.join(tmp, "prometheus.yml")
        # JSON is YAML: no YAML writer needed.
        with open(config, "w", encoding="utf-8") as f:
            json.dump({
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                "rule_files": list(rule_files),
                "scrape_configs": [
                    {"job_name": "faultline", "static_configs": [{"targets": ["127.0.0.1:%d" % p for p in ports]}]},
                    {"job_name": "prometheus", "static_configs": [{"targets": ["127.0.0.1:%d" % self.port]}]},
                ],
            }, f, indent=2)
        self.log_path = os.path.join(tmp, "prometheus.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(tmp, "tsdb"),
             "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn",
             "--storage.tsdb.retention.time=1h"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            if not wait_until(self._ready, 30, 0.2):
                raise AssertionError("prometheus did not become ready within 30 s:\n" + self.log_tail())
        except BaseException:
            self.stop()
            raise

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("prometheus exited with %s:\n%s" % (self.proc.returncode, self.log_tail()))
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def api(self, path, **params):
        url = self.url + path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                doc = json.load(r)
        except urllib.error.HTTPError as e:
            doc = json.load(e)
        if doc.get("status") != "success":
            raise AssertionError("%s %s: %s" % (path, params, doc))
        return doc["data"]

    def query(self, expr):
        return self.api("/api/v1/query", query=expr)["result"]

    def log_tail(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def describe(series):
    """{labels} = value of one result of an instant vector query."""
    metric = dict(series.get("metric", {}))
    name = metric.pop("__name__", "")
    labels = ",".join('%s="%s"' % (k, v) for k, v in sorted(metric.items()))
    value = series.get("value", [0, "?"])[1]
    return "%s{%s} = %s" % (name, labels, value)


def pick(result):
    """The series shown: the first with a finite, non-zero value, else the first."""
    ordered = sorted(result, key=lambda s: json.dumps(s.get("metric", {}), sort_keys=True))
    for s in ordered:
        try:
            v = float(s["value"][1])
        except (KeyError, ValueError, TypeError):
            continue
        if math.isfinite(v) and v != 0:
            return s
    return ordered[0]


# ---------------------------------------------------------------------------------------------


@unittest.skipIf(PROMETHEUS is None or PROMTOOL is None,
                 "prometheus or promtool is not installed (Debian package prometheus; scripts/install-deps.sh)")
class DashboardQueriesTest(unittest.TestCase):
    """Every dashboard and rule query returns series from a real Prometheus scraping faultline."""

    @classmethod
    def setUpClass(cls):
        if server_test.BINARY is None:
            raise unittest.SkipTest("no faultline binary given")
        cls.tmp = tempfile.mkdtemp(prefix="faultline-dashboard-")
        cls.server = None
        cls.prom = None
        try:
            cls.server = Server({
                "workers": 2,
                "templates": {"warmup": "1ms"},
                # Small limits so a 2 MB body is over the in-flight budget (503) and 5 MB over the
                # body limit (413).
                "limits": {"body_bytes": "4MiB", "inflight_bytes": "1MiB"},
                "firehose": {"access_keys": [ACCESS_KEY]},
                "sources": {"default": {"auth": "none"}, "app": {"auth": "none", "group": "app"}},
                "patterns": DASH_PATTERNS,
            }, tmp=os.path.join(cls.tmp))
            cls.prom = Prometheus(cls.server.port, cls.tmp)
            # Traffic only once Prometheus has scraped faultline: every counter then has a sample
            # before the increase.
            if not wait_until(lambda: cls.prom.query('up{job="faultline"} == 1'), 30, 0.25):
                raise AssertionError("prometheus never scraped faultline:\n" + cls.prom.log_tail())
            cls.replies = []
            cls.send_round(1)
            # Two scrapes later (1 s each), the same again: series born in round 1 now increase too.
            time.sleep(2.5)
            cls.send_round(2)
            # Queries start once Prometheus holds a scrape with round 2 in it (and the rules had a
            # second to evaluate on it).
            total = sum(v for (name, _), v in cls.server.metrics().items() if name == "faultline_events_ingested_total")
            def scraped():
                r = cls.prom.query('sum(faultline_events_ingested_total{job="faultline"})')
                return r and float(r[0]["value"][1]) >= total
            if not wait_until(scraped, 30, 0.25):
                raise AssertionError("prometheus never scraped the second round of traffic")
            time.sleep(1.5)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.prom is not None:
            cls.prom.stop()
            cls.prom = None
        if cls.server is not None:
            rc = cls.server.stop()
            cls.server.cleanup()
            cls.server = None
            if rc != 0:
                raise AssertionError("faultline serve exited with %r after SIGTERM" % rc)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def post(cls, path, body, headers=None, expect=200):
        status, _, data = cls.server.request("POST", path, body, headers or {})
        cls.replies.append((path, status))
        if status != expect:
            raise AssertionError("POST %s: %d (expected %d) %r" % (path, status, expect, data[:300]))

    @classmethod
    def send_round(cls, n):
        with open(FIREHOSE_FIXTURE, "rb") as f:
            firehose = f.read()
        with open(FIREHOSE_FIXTURE + ".gz", "rb") as f:
            firehose_gz = f.read()
        fh = {"Content-Type": "application/json", "X-Amz-Firehose-Protocol-Version": "1.0",
              "X-Amz-Firehose-Access-Key": ACCESS_KEY,
              "X-Amz-Firehose-Source-Arn": "arn:aws:firehose:us-east-1:111111111111:deliverystream/test"}
        cls.post("/v1/firehose", firehose, dict(fh, **{"X-Amz-Firehose-Request-Id": "dash-%d-plain" % n}))
        cls.post("/v1/firehose", firehose_gz, dict(fh, **{"X-Amz-Firehose-Request-Id": "dash-%d-gzip" % n,
                                                         "Content-Encoding": "gzip"}))
        for name in ("otel_valid_cloudwatch_log.json", "lambda_awslogs_event.json", "sshd100_data_message.json",
                     "otel_valid_cloudwatch_log_control.json"):
            with open(os.path.join(FIXTURES, "cwl", name), "rb") as f:
                cls.post("/v1/cloudwatch", f.read(), {"Content-Type": "application/json"})
        lines = ["ERROR payment failed: connection refused to 10.0.%d.7:5432" % i for i in range(3)]
        lines += ["Task timed out after %d.00 seconds" % (3 + n), "WARN cache is getting cold", "all good",
                  "FATAL segment %d of the write-ahead log is corrupt" % n]
        cls.post("/v1/webhook/app", "\n".join(lines).encode(), {"Content-Type": "text/plain"})
        cls.post("/v1/webhook/default", json.dumps({"message": "ERROR upstream timed out after 30s"}).encode(),
                 {"Content-Type": "application/json"})
        # Refused requests: a decode error, a wrong Firehose key, over the byte budget, too large.
        cls.post("/v1/cloudwatch", b'{"messageType": "DATA_MESSAGE", "logEvents": [', {}, expect=400)
        cls.post("/v1/firehose", firehose, dict(fh, **{"X-Amz-Firehose-Request-Id": "dash-%d-badkey" % n,
                                                      "X-Amz-Firehose-Access-Key": "wrong"}), expect=401)
        cls.refused_by_head("/v1/webhook/default", 2 * 1000 * 1000, 503)
        cls.refused_by_head("/v1/webhook/default", 5 * 1000 * 1000, 413)

    @classmethod
    def refused_by_head(cls, path, length, expect):
        """A request whose declared Content-Length the server refuses from the head alone (over the
        in-flight byte budget: 503; over the body limit: 413): sends the head, reads the reply."""
        with cls.server.connect() as s:
            s.sendall(("POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
                       % (path, length)).encode())
            res, _, _ = read_one_response(s, 10)
        cls.replies.append((path, res.status if res else None))
        if res is None or res.status != expect:
            raise AssertionError("POST %s with Content-Length %d: %s (expected %d)"
                                 % (path, length, res.status if res else "no reply", expect))

    # -----------------------------------------------------------------------------------------

    def queries(self):
        """(title, expr) of every dashboard target and rule."""
        with open(DASHBOARD, encoding="utf-8") as f:
            dash = json.load(f)
        out = []
        for p in dash["panels"]:
            for t in p.get("targets", []):
                if t.get("expr", "").strip():
                    out.append((p["title"], substitute(t["expr"])))
        rules = load_rules(RULES)
        self.assertTrue(rules, "no rules read from " + RULES)
        for kind, name, expr in rules:
            self.assertTrue(expr, "rule %s without an expr" % name)
            if kind == "record":
                out.append(("record " + name, expr))
            else:
                for lhs in alert_selectors(expr):
                    out.append(("alert %s (lhs)" % name, lhs))
        return dash, rules, out

    def test_every_query_returns_series(self):
        dash, rules, queries = self.queries()
        results = {}
        errors = {}
        deadline = time.monotonic() + DEADLINE
        while True:
            for i, (title, expr) in enumerate(queries):
                if i in results:
                    continue
                try:
                    r = self.prom.query(" ".join(expr.split()))
                except AssertionError as e:  # a query Prometheus refuses: report, keep polling others
                    errors[i] = str(e)
                    continue
                errors.pop(i, None)
                if r:
                    results[i] = r
            if len(results) == len(queries) or time.monotonic() >= deadline:
                break
            time.sleep(1)

        # The variables' label_values() queries.
        variables = []
        for v in dash.get("templating", {}).get("list", []):
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v.get("definition", "").strip())
            if m:
                values = self.prom.api("/api/v1/label/%s/values" % m.group(2), **{"match[]": substitute(m.group(1))})
                variables.append(("variable $" + v["name"], v["definition"], values))

        rows = [("panel title", "expr", "first series")]
        for i, (title, expr) in enumerate(queries):
            shown = describe(pick(results[i])) if i in results else "NONE" + (" (%s)" % errors[i] if i in errors else "")
            rows.append((title, " ".join(expr.split()), shown))
        for name, definition, values in variables:
            rows.append((name, definition, ", ".join(values) if values else "NONE"))
        print()
        for row in rows:
            print(" | ".join(row))
        print()
        sys.stdout.flush()

        missing = [(queries[i][0], queries[i][1], errors.get(i)) for i in range(len(queries)) if i not in results]
        self.assertFalse(missing, "queries without any series after %.0f s:\n%s\nfaultline replies: %s\nprometheus:\n%s"
                         % (DEADLINE, "\n".join("%s | %s | %s" % m for m in missing), self.replies,
                            self.prom.log_tail()))
        for name, definition, values in variables:
            self.assertTrue(values, "%s (%s) has no values" % (name, definition))
        self.assertIn("faultline", dict((n, v) for n, _, v in variables).get("variable $job", ["faultline"]))

    def test_rules_load_and_new_template_alert_fires(self):
        """Prometheus loaded every rule without error, and the new templates of the traffic fire
        FaultlineNewErrorTemplate (it has no `for`)."""
        def loaded():
            groups = self.prom.api("/api/v1/rules")["groups"]
            rules = [r for g in groups for r in g["rules"]]
            evaluated = [r for r in rules if not r.get("lastEvaluation", "0001").startswith("0001")]
            return rules if rules and len(evaluated) == len(rules) else None
        rules = wait_until(loaded, 30, 0.5)
        self.assertTrue(rules, "no rules evaluated:\n" + self.prom.log_tail())
        expected = {name for _, name, _ in load_rules(RULES)}
        self.assertEqual({r["name"] for r in rules}, expected)
        bad = [(r["name"], r.get("health"), r.get("lastError")) for r in rules if r.get("health") != "ok"]
        self.assertFalse(bad, "rules that do not evaluate cleanly: %s" % bad)
        firing = wait_until(lambda: self.prom.query('ALERTS{alertname="FaultlineNewErrorTemplate",alertstate="firing"}'),
                            DEADLINE, 1)
        self.assertTrue(firing, "FaultlineNewErrorTemplate did not fire after new templates appeared")
        alerts = self.prom.api("/api/v1/alerts")["alerts"]
        print("\nactive alerts: " + ", ".join(sorted("%s[%s]%s" % (a["labels"]["alertname"], a["state"],
                                                                    "".join(" %s=%s" % (k, a["labels"][k])
                                                                            for k in ("reason", "code", "kind")
                                                                            if k in a["labels"]))
                                                      for a in alerts)))

class HelpersTest(unittest.TestCase):
    """The query extraction the live test relies on (no Prometheus needed)."""

    def test_alert_selector_split(self):
        self.assertEqual(alert_selectors("sum by (job) (increase(x[10m])) > 0"), ["sum by (job) (increase(x[10m]))"])
        self.assertEqual(alert_selectors("a:r5m > 5 * a:r1h\nand\na:r5m > 1"), ["a:r5m"])
        self.assertEqual(alert_selectors('sum(rate(x{code=~"5.."}[5m])) > 0 or y{a="or"} == 0'),
                         ['sum(rate(x{code=~"5.."}[5m]))', 'y{a="or"}'])
        self.assertEqual(alert_selectors("x / y > 0.8"), ["x / y"])
        self.assertEqual(substitute('rate(x{job=~"$job"}[$__rate_interval]) + y[$__range] + z[$__interval]'),
                         'rate(x{job=~"faultline"}[1m]) + y[5m] + z[15s]')

    def test_rules_are_read(self):
        with open(RULES, encoding="utf-8") as f:
            text = f.read()
        rules = load_rules(RULES)
        self.assertEqual(len(rules), len(re.findall(r"^\s*- (?:record|alert):", text, re.M)))
        for kind, name, expr in rules:
            self.assertTrue(expr and "expr:" not in expr and "labels:" not in expr, (name, expr))


def main():
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.stderr.write("usage: dashboard_test.py FAULTLINE_BINARY [unittest options]\n")
        return 2
    binary = os.path.abspath(sys.argv.pop(1))
    if not os.access(binary, os.X_OK):
        sys.stderr.write("dashboard_test.py: %s is not an executable\n" % binary)
        return 2
    server_test.BINARY = binary
    prog = unittest.main(exit=False, verbosity=2)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
