#!/usr/bin/env python3
"""Soak: `faultline serve` under mixed load for a long time (10 minutes by default), its RSS
printed every 10 s, and conservation checked at the end. Standard library only.

    python3 loadtest/soak.py FAULTLINE_BINARY [--duration 600] [--clients 6] [--interval 10]
                             [--config-extra 'firehose: {dedupe_capacity: 2000}']

Mixed load, every request on keep-alive connections (a new one after a close):
  ~50 % Firehose deliveries (1-40 × the fixture's records, some gzip'd, a fresh request id each),
  ~15 % CloudWatch deliveries (gzip'd subscription documents), ~30 % webhooks (NDJSON with varied
  messages, a GitHub-signed source and an open one), and 5 % malformed requests (invalid JSON, bad
  base64, truncated gzip, bad signature), each of which must be refused with 400/401.
A 429/503 answer is retried after its Retry-After (the same request id, as Firehose does).

At the end: (1) the events of the 200 answers equal faultline_events_ingested_total exactly;
(2) every malformed request was refused, and decode errors + rejections on /metrics equal the
number sent; (3) memory is flat: the last minute's peak RSS is within 5 % + 2 MiB of the peak of
the minute at the half-way point (the bounded tables — templates, Firehose request ids — fill up
in the first minutes, then stay at their caps); (4) SIGTERM ends it with exit 0.
Exit status 0 when all hold.
"""

import argparse
import atexit
import base64
import gzip
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data", "fixtures")
SECRET = "soak-github-secret"

CONFIG = """# written by loadtest/soak.py
state_dir: "%(state)s"
snapshot_interval: 30s
sources:
  open: {}
  signed:
    auth: {type: github, secrets: [%(secret)s]}
"""

WORDS = ("payment order user session cache queue worker shard lease token upload invoice report "
         "ledger socket replica index").split()
LEVELS = ["ERROR", "WARN", "INFO", "FATAL", "ERROR"]


def message(rng):
    """A log line of one of ~60 shapes with variable ids, numbers and addresses."""
    w = rng.choice(WORDS)
    shape = rng.randrange(6)
    if shape == 0:
        return "%s %s service failed: connection refused to 10.%d.%d.%d:%d" % (
            rng.choice(LEVELS), w, rng.randrange(256), rng.randrange(256), rng.randrange(256), rng.randrange(1, 65535))
    if shape == 1:
        return "%s request %08x for %s took %d ms (timeout %d ms)" % (
            rng.choice(LEVELS), rng.getrandbits(32), w, rng.randrange(10000), rng.choice([1000, 5000]))
    if shape == 2:
        return "Task timed out after %d.%02d seconds" % (rng.randrange(1, 900), rng.randrange(100))
    if shape == 3:
        return "%s %s %s: permission denied for user u%d on /data/%s/%d" % (
            rng.choice(LEVELS), w, rng.choice(WORDS), rng.randrange(100000), w, rng.randrange(1000))
    if shape == 4:
        return "java.lang.NullPointerException at com.example.%s.%sHandler.handle(%sHandler.java:%d)" % (
            w, w.title(), w.title(), rng.randrange(1, 2000))
    return "%s GET /api/%s/%d returned %d in %dms" % (
        rng.choice(LEVELS), w, rng.randrange(100000), rng.choice([500, 502, 503, 504, 200]), rng.randrange(3000))


def cwl_doc(rng, n):
    events = [{"id": str(rng.getrandbits(60)), "timestamp": 1700000000000 + i, "message": message(rng)}
              for i in range(n)]
    return json.dumps({"messageType": "DATA_MESSAGE", "owner": "111111111111",
                       "logGroup": "/soak/%s" % rng.choice(WORDS), "logStream": "s",
                       "subscriptionFilters": ["f"], "logEvents": events}).encode()


class Workload:
    """Pre-generated bodies (so the client spends its time sending) and their event counts."""

    def __init__(self, seed=7):
        rng = random.Random(seed)
        fixture = json.load(open(os.path.join(DATA, "firehose", "cwl_via_firehose_request.json")))
        records = fixture["records"]  # 4 records: 105 events + 1 control message
        self.firehose = []
        for _ in range(40):
            copies = rng.randrange(1, 41)
            extra = [{"data": base64.b64encode(gzip.compress(cwl_doc(rng, 20), mtime=0)).decode()}]
            body = json.dumps({"requestId": "soak", "timestamp": 1700000000000,
                               "records": records * copies + extra}).encode()
            gz = rng.random() < 0.3
            self.firehose.append((gzip.compress(body, mtime=0) if gz else body, gz, 105 * copies + 20))
        self.cloudwatch = []
        for _ in range(40):
            n = rng.randrange(1, 200)
            self.cloudwatch.append((gzip.compress(cwl_doc(rng, n), mtime=0), n))
        self.webhooks = []
        for _ in range(200):
            n = rng.randrange(1, 60)
            body = b"".join(json.dumps({"message": message(rng), "level": "error"}).encode() + b"\n"
                            for _ in range(n))
            self.webhooks.append((body, n))
        good_doc = cwl_doc(rng, 3)
        self.malformed = [
            ("firehose", b'{"requestId":"x","timestamp":1,"records":[{"data":"not base64!"}]}', {}),
            ("firehose", b'{"requestId":"x","timestamp":1,"records":[', {}),
            ("cloudwatch", gzip.compress(good_doc, mtime=0)[:-9], {"Content-Encoding": "gzip"}),
            ("cloudwatch", b'{"messageType":"DATA_MESSAGE","logEvents":[{"message":1}', {}),
            ("signed", b'{"message":"forged ERROR"}',
             {"X-Hub-Signature-256": "sha256=" + "0" * 64}),
            ("open", b'{"no_message_field":true}', {}),
        ]


class Totals:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.acked_events = 0
        self.statuses = {}
        self.malformed_sent = 0
        self.malformed_refused = 0
        self.malformed_accepted = 0
        self.retries = 0
        self.errors = []

    def add(self, status, events=0):
        with self.lock:
            self.requests += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 200:
                self.acked_events += events


def client(port, work, totals, deadline, seed):
    rng = random.Random(seed)
    conn = None

    def send(path, body, headers):
        nonlocal conn
        for attempt in range(2):
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                conn.request("POST", path, body=body, headers=headers)
                res = conn.getresponse()
                data = res.read()
                if res.will_close:
                    conn.close()
                    conn = None
                return res.status, res.headers, data
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = None
                if attempt == 1:
                    raise RuntimeError("%s %s: %r" % (path, headers.get("X-Amz-Firehose-Request-Id", ""), e))
        raise AssertionError("unreachable")

    def deliver(path, body, headers, events):
        # Retries 429/503 after Retry-After, as Firehose and well-behaved senders do.
        while True:
            status, h, data = send(path, body, headers)
            totals.add(status, events)
            if status in (429, 503) and time.monotonic() < deadline + 30:
                with totals.lock:
                    totals.retries += 1
                time.sleep(min(float(h.get("Retry-After", "1")), 2.0) * rng.random())
                continue
            if status != 200:
                with totals.lock:
                    totals.errors.append("%s -> %d %r" % (path, status, data[:200]))
            return

    def one(n):
        r = rng.random()
        if r < 0.05:
            target, body, extra = rng.choice(work.malformed)
            path = {"firehose": "/v1/firehose", "cloudwatch": "/v1/cloudwatch"}.get(target, "/v1/webhook/" + target)
            headers = {"Content-Type": "application/json"}
            headers.update(extra)
            if target == "firehose":
                headers["X-Amz-Firehose-Request-Id"] = "bad-%d-%d" % (seed, n)
            while True:
                status, h, data = send(path, body, headers)
                totals.add(status)
                if status not in (429, 503):
                    break
                with totals.lock:  # refused before it was looked at: sent again, like any other
                    totals.retries += 1
                time.sleep(min(float(h.get("Retry-After", "1")), 2.0) * rng.random())
            with totals.lock:
                totals.malformed_sent += 1
                if status in (400, 401):
                    totals.malformed_refused += 1
                elif status == 200:
                    totals.malformed_accepted += 1
                    totals.errors.append("malformed accepted: %s %r" % (path, body[:80]))
        elif r < 0.55:
            body, gz, events = rng.choice(work.firehose)
            headers = {"Content-Type": "application/json", "X-Amz-Firehose-Protocol-Version": "1.0",
                       "X-Amz-Firehose-Request-Id": "soak-%d-%d" % (seed, n)}
            if gz:
                headers["Content-Encoding"] = "gzip"
            deliver("/v1/firehose", body, headers, events)
        elif r < 0.70:
            body, events = rng.choice(work.cloudwatch)
            deliver("/v1/cloudwatch", body, {"Content-Encoding": "gzip"}, events)
        else:
            body, events = rng.choice(work.webhooks)
            if rng.random() < 0.5:
                sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                deliver("/v1/webhook/signed", body, {"Content-Type": "application/x-ndjson",
                                                     "X-Hub-Signature-256": sig}, events)
            else:
                deliver("/v1/webhook/open", body, {"Content-Type": "application/x-ndjson"}, events)

    n = 0
    while time.monotonic() < deadline:
        n += 1
        try:
            one(n)
        except RuntimeError as e:  # the connection failed twice: recorded, and the soak fails
            with totals.lock:
                totals.errors.append("client %d: %s" % (seed, e))
    if conn:
        conn.close()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def metrics(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)", line)
        if m:
            out.setdefault(m.group(1), []).append((m.group(2) or "", float(m.group(3))))
    return out


def total(m, name, label_filter=""):
    return sum(v for labels, v in m.get(name, []) if label_filter in labels)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--config-extra", default="", help="YAML appended to the soak configuration")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="faultline-soak-")
    cfg = os.path.join(tmp, "soak.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG % {"state": os.path.join(tmp, "state"), "secret": SECRET})
        f.write(args.config_extra.replace("\\n", "\n") + "\n")
    log = open(os.path.join(tmp, "faultline.log"), "w+")
    proc = subprocess.Popen([args.binary, "serve", "--config", cfg, "--listen", "127.0.0.1:0"],
                            stdout=subprocess.DEVNULL, stderr=log)
    # The server never outlives the soak, also when the soak is interrupted (Ctrl-C, SIGTERM).
    atexit.register(lambda: proc.poll() is None and proc.kill())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    port = None
    for _ in range(200):
        time.sleep(0.05)
        log.seek(0)
        for line in log:
            if '"listening"' in line and '"api"' in line:
                port = int(json.loads(line)["address"].rsplit(":", 1)[1])
        if port:
            break
    if not port:
        proc.kill()
        sys.exit("soak: faultline did not start; log in %s" % log.name)

    print("soak: %s for %.0f s, %d clients; log in %s" % (args.binary, args.duration, args.clients, log.name))
    work = Workload()
    totals = Totals()
    start = time.monotonic()
    deadline = start + args.duration
    threads = [threading.Thread(target=client, args=(port, work, totals, deadline, i), daemon=True)
               for i in range(args.clients)]
    for t in threads:
        t.start()
    series = []  # (seconds, rss KiB)
    print("%8s %10s %10s %12s %14s" % ("t s", "RSS MiB", "req/s", "events/s", "requests"))
    last_t, last_req, last_ev = 0.0, 0, 0
    next_sample = start + args.interval
    while any(t.is_alive() for t in threads):
        time.sleep(max(0.0, min(next_sample - time.monotonic(), 1.0)))
        if time.monotonic() < next_sample:
            continue
        next_sample += args.interval
        now = time.monotonic() - start
        rss = rss_kib(proc.pid)
        with totals.lock:
            req, ev = totals.requests, totals.acked_events
        series.append((now, rss))
        print("%8.0f %10.1f %10.0f %12.0f %14d" % (now, rss / 1024, (req - last_req) / (now - last_t),
                                                    (ev - last_ev) / (now - last_t), req), flush=True)
        last_t, last_req, last_ev = now, req, ev
    for t in threads:
        t.join()

    m = metrics(port)
    ingested = total(m, "faultline_events_ingested_total")
    decode_errors = total(m, "faultline_decode_errors_total")
    unauthorized = total(m, "faultline_rejected_requests_total", 'reason="unauthorized"')
    templates = total(m, "faultline_templates")
    evicted = total(m, "faultline_templates_evicted_total")
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = None

    ok = True
    print("\nstatuses: %s; retried 429/503: %d" % (dict(sorted(totals.statuses.items())), totals.retries))
    print("conservation: events acknowledged (200) %d, faultline_events_ingested_total %d -> %s"
          % (totals.acked_events, ingested, "EXACT" if ingested == totals.acked_events else "MISMATCH"))
    ok &= ingested == totals.acked_events
    print("malformed: sent %d, refused 400/401 %d, accepted %d; decode errors %d + unauthorized %d = %d -> %s"
          % (totals.malformed_sent, totals.malformed_refused, totals.malformed_accepted, decode_errors,
             unauthorized, decode_errors + unauthorized,
             "EXACT" if decode_errors + unauthorized == totals.malformed_sent == totals.malformed_refused
             else "MISMATCH"))
    ok &= decode_errors + unauthorized == totals.malformed_sent == totals.malformed_refused
    unexpected = totals.errors  # valid requests not answered 200, malformed ones accepted, failed connections
    if unexpected:
        ok = False
        print("unexpected answers (%d), first: %s" % (len(unexpected), unexpected[:3]))
    if series:
        first = [r for t, r in series if t < 61]
        last = [r for t, r in series if t >= series[-1][0] - 60]
        mid_t = series[-1][0] / 2
        mid = [r for t, r in series if mid_t - 30 <= t <= mid_t + 30] or first
        print("RSS first minute: %s MiB" % " ".join("%.1f" % (r / 1024) for r in first))
        print("RSS last minute:  %s MiB" % " ".join("%.1f" % (r / 1024) for r in last))
        flat = max(last) <= max(mid) * 1.05 + 2048
        print("memory: peak of the middle minute %.1f MiB, of the last minute %.1f MiB -> %s"
              % (max(mid) / 1024, max(last) / 1024, "FLAT" if flat else "GROWING"))
        ok &= flat
    print("bounded tables at the end: %d templates known, %d evicted (cap templates.max_templates)"
          % (templates, evicted))
    print("SIGTERM: exit %s" % rc)
    ok &= rc == 0
    print("soak: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
