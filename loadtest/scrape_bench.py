#!/usr/bin/env python3
"""scrape_bench.py - what one read of /metrics and /v1/templates costs the server, with few and
with many templates.

  scrape_bench.py [--bin PATH] [--templates N] [--scrapes K] [--port P]

Starts `faultline serve` (no state, defaults otherwise), measures K sequential scrapes of
/metrics and of /v1/templates?limit=100 on an empty server, then sends N error events of N
different shapes (one template each, through the Firehose endpoint), checks that the server
holds N templates, and measures again. For each endpoint it prints the server's CPU time per
scrape (all its threads, /proc/PID/task/*/schedstat) and the client-side p50/p99, and the ratio
many ÷ few of the CPU per scrape: a reader that copies every template grows with N, one that
reads counters and picks the top templates in place barely does.

The last two lines, `scrape_metrics_ratio <x>` and `scrape_templates_ratio <x>`, are for
loadtest/bench_check.sh.
"""
import argparse
import base64
import gzip
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import time

def cpu_seconds(pid):
    """CPU time of every thread of `pid` so far (schedstat: nanoseconds, not clock ticks)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended meanwhile
    return total / 1e9


def words(rng, n):
    letters = "abcdefghijklmnopqrstuvwxyz"
    return " ".join("".join(rng.choice(letters) for _ in range(rng.randint(5, 8))) for _ in range(n))


def firehose_body(messages, request_id):
    doc = {"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/bench/scrape",
           "logStream": "s", "subscriptionFilters": ["f"],
           "logEvents": [{"id": str(i), "timestamp": 1700000000000, "message": m}
                         for i, m in enumerate(messages)]}
    data = base64.b64encode(gzip.compress(json.dumps(doc).encode(), mtime=0)).decode()
    return json.dumps({"requestId": request_id, "timestamp": 1700000000000, "records": [{"data": data}]})


def request(conn, method, path, body=None):
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise SystemExit(f"{method} {path}: {resp.status} {data[:200]!r}")
    return data


def measure(conn, pid, path, k):
    lat = []
    request(conn, "GET", path)  # warm
    c0 = cpu_seconds(pid)
    for _ in range(k):
        t = time.perf_counter()
        request(conn, "GET", path)
        lat.append(time.perf_counter() - t)
    cpu = (cpu_seconds(pid) - c0) / k
    lat.sort()
    return cpu, lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(here, "..", "build", "release", "server", "faultline"))
    ap.add_argument("--templates", type=int, default=10000)
    ap.add_argument("--scrapes", type=int, default=200)
    ap.add_argument("--port", type=int, default=18097)
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="faultline-scrape-")
    cfg = os.path.join(work, "faultline.yaml")
    with open(cfg, "w") as f:
        f.write('state_dir: ""\ntemplates:\n  max_templates: %d\n  warmup: 0s\n' % max(a.templates, 1))
    log = open(os.path.join(work, "faultline.log"), "w")
    proc = subprocess.Popen([a.bin, "serve", "--config", cfg, "--listen", f"127.0.0.1:{a.port}"],
                            stdout=log, stderr=log)
    try:
        for _ in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=2)
                request(c, "GET", "/readyz")
                break
            except (OSError, SystemExit):
                time.sleep(0.05)
        else:
            raise SystemExit("faultline did not start")
        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
        paths = ["/metrics", "/v1/templates?limit=100"]
        few = {p: measure(conn, proc.pid, p, a.scrapes) for p in paths}

        rng = random.Random(7)
        # Different first words and lengths: the miner shards by both, and caps each shard.
        messages = [words(rng, rng.randint(5, 9)) + " ERROR" for _ in range(a.templates)]
        for i in range(0, len(messages), 1000):
            request(conn, "POST", "/v1/firehose", firehose_body(messages[i:i + 1000], "scrape-%d" % i))
        held = len(json.loads(request(conn, "GET", "/v1/templates?limit=10000"))["templates"])
        if held < a.templates * 0.95:
            raise SystemExit(f"only {held} templates held of {a.templates} sent")
        many = {p: measure(conn, proc.pid, p, a.scrapes) for p in paths}

        print(f"templates held: {held}; {a.scrapes} scrapes each; binary {a.bin}")
        print(f"{'endpoint':26} {'templates':>9} {'CPU ms/scrape':>14} {'p50 ms':>8} {'p99 ms':>8}")
        ratios = []
        for p in paths:
            for label, r in (("0", few[p]), (str(held), many[p])):
                print(f"{p:26} {label:>9} {r[0] * 1e3:14.3f} {r[1] * 1e3:8.3f} {r[2] * 1e3:8.3f}")
            ratio = many[p][0] / max(few[p][0], 1e-9)
            ratios.append(ratio)
            print(f"{p:26} CPU ratio {held} ÷ 0 templates: {ratio:.2f}")
        print(f"scrape_metrics_ratio {ratios[0]:.2f}")
        print(f"scrape_templates_ratio {ratios[1]:.2f}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


if __name__ == "__main__":
    sys.exit(main())
