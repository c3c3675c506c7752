#!/usr/bin/env python3
"""cluster_test.py - replicas that add up (issue 13), on loopback with the real parts.

  cluster_test.py FAULTLINE_BINARY

HAProxy (round robin) in front of three faultline replicas sharing one redis-server
(dedupe.store) and listing one another in cluster.peers; a real Prometheus scrapes all three.
Firehose clients post through HAProxy and send some deliveries twice (a retry with the same
request id lands on another replica); every 429/502/503/timeout is retried with the same id, as
Firehose does. Mid-load one replica is killed (SIGKILL) and restarted on its state directory;
later Redis is stopped and the load goes on.

It checks what an operator sees:
- the sum over the replicas of faultline_events_ingested_total equals the events acknowledged
  200 (each request id counted once), exactly, with the retries, the crash and Redis gone;
  Prometheus's sum() over the three agrees;
- every deliberate retry was answered 200 and counted nothing;
- with Redis stopped, ingestion goes on and faultline_dedupe_store_errors_total counts it;
- GET /v1/templates?scope=cluster equals /v1/templates of one process fed the same deliveries
  (same ids, same counts) and marks every peer as answered;
- "new" is new in the whole cluster: no template is marked new on two replicas, and the sum of
  faultline_templates_new_total over the replicas is at most the number of templates.
Exit 77 (skipped) without haproxy, redis-server or prometheus (scripts/install-deps.sh).
"""
import base64
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_test as st  # noqa: E402
from dashboard_test import PROMETHEUS, Prometheus  # noqa: E402
from hostile_test import post  # noqa: E402

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
REPLICAS = 3
SOURCE = "firehose"

MESSAGES = [
    "ERROR connection refused to db-{a} after {b} retries",
    "ERROR disk full on volume {a} while writing {b} bytes",
    "WARN slow query took {a} ms on shard {b}",
    "ERROR upstream timeout after {a} ms calling payments",
    "FATAL out of memory in worker {a}",
]


def delivery(rng, request_id):
    """A Firehose request of raw text records, one event each; (body, events)."""
    n = rng.randint(1, 40)
    records = []
    for _ in range(n):
        text = rng.choice(MESSAGES).format(a=rng.randint(1, 999), b=rng.randint(1, 99))
        records.append({"data": base64.b64encode(text.encode()).decode()})
    return st.firehose_body(records, request_id), n


def wait_listening(proc, port, name):
    """Until `proc` accepts connections on loopback `port` (10 s at most; an exit fails at once)."""
    def up():
        if proc.poll() is not None:
            raise AssertionError("%s exited with %s" % (name, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            return False
    if not st.wait_until(up, 10):
        raise AssertionError("%s did not start" % name)


class Redis:
    def __init__(self, tmp):
        self.port = st.free_port()
        self.log = os.path.join(tmp, "redis.log")
        self.proc = subprocess.Popen([REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--logfile", self.log, "--dir", tmp],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.proc, self.port, "redis-server")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class HAProxy:
    def __init__(self, tmp, backends):
        self.port = st.free_port()
        cfg = os.path.join(tmp, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("global\n  maxconn 512\n"
                    "defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n"
                    "  retries 0\n"  # the clients retry, as Firehose does: the load balancer must not
                    "frontend fe\n  bind 127.0.0.1:%d\n  default_backend replicas\n"
                    "backend replicas\n  balance roundrobin\n" % self.port)
            for i, port in enumerate(backends):
                # Health checks take a killed replica out of the rotation within a second.
                f.write("  server r%d 127.0.0.1:%d check inter 300ms fall 1 rise 1\n" % (i, port))
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.proc, self.port, "haproxy")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Load:
    """Firehose clients through the load balancer. A delivery is retried with its request id
    until it gets a 200; with `duplicates`, some acknowledged ones are sent once more."""

    def __init__(self, lb_port, seed):
        self.lb_port = lb_port
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.acked = {}          # request id -> (body, events) of every delivery answered 200
        self.duplicates_sent = 0
        self.duplicate_failures = []
        self.answers = {}        # status -> how many
        self.next_id = 0

    def _send_until_acked(self, body, rid, deadline):
        headers = st.firehose_headers(rid, key=None)
        while time.monotonic() < deadline:
            status, _, reply = post(self.lb_port, "/v1/firehose", body, headers, timeout=10)
            with self.lock:
                self.answers[status] = self.answers.get(status, 0) + 1
            if status == 200:
                return True
            time.sleep(0.1)  # 429 (in flight elsewhere, busy), 502 (a replica down), errors: retry
        return False

    def client(self, stop, duplicates, failures):
        rng = random.Random(self.rng.random())
        while not stop.is_set():
            with self.lock:
                self.next_id += 1
                rid = "cluster-test-%06d" % self.next_id
            body, n = delivery(rng, rid)
            if not self._send_until_acked(body, rid, time.monotonic() + 60):
                failures.append(rid)
                return
            with self.lock:
                self.acked[rid] = (body, n)
            if duplicates and rng.random() < 0.3:
                # A retry of an acknowledged request: round robin sends it to another replica. It
                # must be answered 200 (retried like any delivery while a replica is down) and
                # count nothing: the totals below show it.
                acked_again = self._send_until_acked(body, rid, time.monotonic() + 60)
                with self.lock:
                    self.duplicates_sent += 1
                    if not acked_again:
                        self.duplicate_failures.append(rid)

    def run(self, seconds, duplicates, clients=6, during=None):
        stop = threading.Event()
        failures = []
        threads = [threading.Thread(target=self.client, args=(stop, duplicates, failures)) for _ in range(clients)]
        for t in threads:
            t.start()
        if during:
            during()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(90)
        if failures:
            raise AssertionError("deliveries never acknowledged within 60 s: %s" % failures[:5])

    def events(self):
        with self.lock:
            return sum(n for _, n in self.acked.values())


def replica_config(tmp, i, ports, redis_port):
    return {
        "workers": 1,
        "io_threads": 1,
        "state_dir": os.path.join(tmp, "state-%d" % i),
        "snapshot_interval": "1s",
        "limits": {"retry_after": "1s"},
        "dedupe": {"store": "redis://127.0.0.1:%d" % redis_port, "store_timeout": "200ms",
                   "in_flight_ttl": "5s"},
        "cluster": {"peers": ["127.0.0.1:%d" % p for p in ports], "timeout": "5s"},
        "templates": {"mode": "drain", "warmup": "1ms"},  # new after the first millisecond
    }


def template_counts(doc):
    return {t["id"]: (t["template"], t["count"]) for t in doc["templates"]}


def main():
    st.BINARY = sys.argv[1]
    missing = [p for p in (HAPROXY, REDIS, PROMETHEUS) if not (p and os.path.exists(p))]
    if missing:
        print("cluster_test: skipped: %s not installed (scripts/install-deps.sh)" % ", ".join(missing),
              file=sys.stderr)
        return 77
    tmp = tempfile.mkdtemp(prefix="faultline-cluster-")
    parts = []
    ok = False
    try:
        redis = Redis(tmp)
        parts.append(redis)
        ports = [st.free_port() for _ in range(REPLICAS)]
        replicas = []
        for i, port in enumerate(ports):
            os.makedirs(os.path.join(tmp, "r%d" % i))
            replicas.append(st.Server(replica_config(tmp, i, ports, redis.port), tmp=os.path.join(tmp, "r%d" % i),
                                      listen="127.0.0.1:%d" % port))
        lb = HAProxy(tmp, ports)
        parts.append(lb)
        prom = Prometheus(ports, tmp, rule_files=())
        parts.append(prom)
        load = Load(lb.port, seed=13)

        # 1. Load with retries of acknowledged requests; one replica killed and restarted mid-run.
        def crash():
            def later():
                time.sleep(2.5)
                victim = replicas[1]
                victim.cleanup()  # SIGKILL: no drain, no snapshot
                replicas[1] = st.Server(replica_config(tmp, 1, ports, redis.port), tmp=os.path.join(tmp, "r1"),
                                        listen="127.0.0.1:%d" % ports[1])
                print("cluster_test: replica 1 killed (SIGKILL) and restarted", file=sys.stderr)
            threading.Thread(target=later).start()
        load.run(6, duplicates=True, during=crash)
        time.sleep(0.5)
        phase1 = load.events()
        print("cluster_test: phase 1: %d deliveries acknowledged (%d events), %d sent again; answers %s"
              % (len(load.acked), phase1, load.duplicates_sent, load.answers), file=sys.stderr)
        assert not load.duplicate_failures, "retries of acknowledged requests never answered 200: %s" % (
            load.duplicate_failures[:5],)
        counted = sum(r.metric("faultline_events_ingested_total", source=SOURCE) for r in replicas)
        assert counted == phase1, "phase 1: replicas counted %d events, %d acknowledged" % (counted, phase1)
        # "New" is new in the whole cluster: each template is marked new on one replica at most
        # (the first to claim it in the store), and the cluster view shows those marks.
        marks = {}
        for r in replicas:
            for t in r.get_json("/v1/templates?limit=1000")["templates"]:
                marks.setdefault(t["id"], []).append(t["new"])
        print("cluster_test: templates marked new per replica: %s"
              % {k: sum(v) for k, v in sorted(marks.items())}, file=sys.stderr)
        assert marks and all(sum(v) <= 1 for v in marks.values()), marks
        assert any(sum(v) == 1 for v in marks.values()), "no template is new anywhere: %s" % marks
        new_total = sum(r.metric("faultline_templates_new_total") for r in replicas)
        assert new_total <= len(marks), "faultline_templates_new_total sums to %d for %d templates" % (
            new_total, len(marks))

        # 2. Redis stopped: ingestion goes on, each replica's own table decides, the fallback is counted.
        redis.stop()
        load.run(3, duplicates=False)
        time.sleep(0.5)
        total = load.events()
        counted = sum(r.metric("faultline_events_ingested_total", source=SOURCE) for r in replicas)
        errors = sum(r.metric("faultline_dedupe_store_errors_total") for r in replicas)
        print("cluster_test: phase 2 (Redis stopped): %d events acknowledged in all, %d counted, "
              "store errors %d" % (total, counted, errors), file=sys.stderr)
        assert total > phase1, "no delivery was acknowledged with Redis stopped"
        assert counted == total, "replicas counted %d events, %d acknowledged" % (counted, total)
        assert errors > 0, "faultline_dedupe_store_errors_total did not count the fallback"

        # Prometheus's sum over the replicas agrees.
        def prom_sum():
            r = prom.query('sum(faultline_events_ingested_total{source="firehose"})')
            return r and float(r[0]["value"][1]) == total
        got = st.wait_until(prom_sum, 15, 0.5)
        r = prom.query('sum(faultline_events_ingested_total{source="firehose"})')
        print("cluster_test: prometheus sum(faultline_events_ingested_total) = %s (acknowledged %d)"
              % (r[0]["value"][1] if r else None, total), file=sys.stderr)
        assert got, "Prometheus's sum over the replicas is not the acknowledged events"

        # 3. The cluster view equals one process fed the same deliveries once each.
        single = st.Server({"workers": 1, "state_dir": "", "templates": {"mode": "drain", "warmup": "0"}})
        try:
            for rid, (body, n) in sorted(load.acked.items()):
                status, _, reply = post(single.port, "/v1/firehose", body, st.firehose_headers(rid, key=None))
                assert status == 200, (status, reply)
            assert single.metric("faultline_events_ingested_total", source=SOURCE) == total
            alone = template_counts(single.get_json("/v1/templates?limit=1000"))
        finally:
            single.stop()
            single.cleanup()
        doc = replicas[0].get_json("/v1/templates?scope=cluster&limit=1000")
        peers = doc["peers"]
        assert len(peers) == REPLICAS and all(p["ok"] for p in peers), peers
        cluster = template_counts(doc)
        print("cluster_test: cluster view %d templates, one process %d; counts %s"
              % (len(cluster), len(alone), sorted(c for _, c in cluster.values())), file=sys.stderr)
        assert cluster == alone, "cluster view differs from one process:\n%s\n%s" % (cluster, alone)
        ok = True
    finally:
        for p in reversed(parts):
            try:
                p.stop()
            except Exception as e:  # noqa: BLE001 - clean up the rest
                print("cluster_test: stopping %s: %r" % (type(p).__name__, e), file=sys.stderr)
        for r in locals().get("replicas", []):
            code = r.stop()
            if code != 0 and ok:
                print("cluster_test: a replica exited with %s:\n%s" % (code, r.stderr()), file=sys.stderr)
                ok = False
            r.cleanup()
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("cluster_test: kept %s" % tmp, file=sys.stderr)
    print("cluster_test: passed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
