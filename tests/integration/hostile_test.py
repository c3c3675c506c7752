#!/usr/bin/env python3
"""The hostile world against the real binary (SPEC §3): overload, SIGTERM under load, and
connection floods with slow clients. Standard library only; reuses server_test.py's harness.

    python3 tests/integration/hostile_test.py FAULTLINE_BINARY [unittest options]

What every test asserts is what a client and an operator observe: statuses, Retry-After, the
counters on /metrics (after a restart, from the saved state), the server's RSS from /proc.
Each test prints its figures (status counts, RSS) on stderr.
"""

import gzip
import http.client
import json
import os
import select
import signal
import socket
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_test as st  # noqa: E402  (the harness: Server, metrics parsing, raw HTTP helpers)

FIXTURE_RECORDS = json.loads(st.read_bytes(st.FIREHOSE_FIXTURE))["records"]


def rss_kib(pid):
    """Resident set size of `pid` in KiB (VmRSS), or None once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler:
    """Samples a process's RSS every `interval` seconds on a thread; keeps the peak."""

    def __init__(self, pid, interval=0.02):
        self.pid, self.interval, self.peak, self.samples = pid, interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            v = rss_kib(self.pid)
            if v is not None:
                self.peak = max(self.peak, v)
                self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


def firehose_request(copies, request_id):
    """A Firehose body of `copies` × the fixture's records: (body, events it holds)."""
    body = st.firehose_body(FIXTURE_RECORDS * copies, request_id)
    return body, st.FIXTURE_EVENTS * copies


def post(port, path, body, headers, timeout=60):
    """One request on its own connection: (status, headers, body) or ("error", None, repr)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers=headers)
        res = conn.getresponse()
        return res.status, res.headers, res.read()
    except (OSError, http.client.HTTPException) as e:
        return "error", None, repr(e).encode()
    finally:
        conn.close()


class OverloadTest(unittest.TestCase):
    """More than the queue and the byte budget hold, from many clients at once (Firehose bodies,
    gzip'd CloudWatch documents that decompress 50-fold, NDJSON webhooks): every answer is 200, 429
    or 503 (the last two with Retry-After); the ingested counter equals the events of the 200s
    exactly; RSS stays under the byte budget (bodies plus decompressed data) plus a constant."""

    # Bodies, decompressed data and the JSON parsers' worst-case memory (about 5.7 times a
    # document) are all reserved: 16 MiB holds two or three of these requests at once.
    BUDGET = 16 << 20
    CONFIG = {"workers": 1, "state_dir": "",
              "limits": {"queue_capacity": "2", "inflight_bytes": "16MiB", "body_bytes": "2MiB",
                         "retry_after": "1s"}}

    @staticmethod
    def ingested(srv):
        m = srv.metrics()
        return sum(st.metric_value(m, "faultline_events_ingested_total", source=src)
                   for src in ("firehose", "cloudwatch", "webhook:default"))

    def test_overload_answers_are_200_429_or_503_and_acks_are_exact(self):
        srv = st.Server(self.CONFIG)
        try:
            # Warm up (one request of each kind), then the baseline.
            body, _ = firehose_request(1, "warmup")
            self.assertEqual(post(srv.port, "/v1/firehose", body, st.firehose_headers("warmup", key=None))[0], 200)
            time.sleep(0.3)
            baseline = rss_kib(srv.proc.pid)
            events0 = self.ingested(srv)

            doc = {"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "/overload", "logStream": "s",
                   "subscriptionFilters": ["f"],
                   "logEvents": [{"id": str(k), "timestamp": 1700000000000 + k,
                                  "message": "ERROR overload request %d failed: " % k + "x" * 400}
                                 for k in range(3000)]}
            cwl_gz = gzip.compress(json.dumps(doc).encode(), mtime=0)
            clients, duration = 24, 6.0
            results = []
            lock = threading.Lock()
            deadline = time.monotonic() + duration

            def client(i):
                n = 0
                while time.monotonic() < deadline:
                    n += 1
                    if i % 4 == 2:  # a quarter send gzip'd CloudWatch documents (~30 KB -> 1.5 MB)
                        status, headers, reply = post(srv.port, "/v1/cloudwatch", cwl_gz,
                                                      {"Content-Encoding": "gzip"})
                        events = 3000
                    elif i % 4 == 3:  # a quarter send NDJSON webhooks of 2 000 events
                        payload = b"".join(b'{"message":"ERROR overload %d %d"}\n' % (i, k) for k in range(2000))
                        status, headers, reply = post(srv.port, "/v1/webhook/default", payload,
                                                      {"Content-Type": "application/x-ndjson"})
                        events = 2000
                    else:  # ~800 KB Firehose deliveries of 4 200 events
                        rid = str(uuid.uuid4())
                        payload, events = firehose_request(40, rid)
                        status, headers, reply = post(srv.port, "/v1/firehose", payload,
                                                      st.firehose_headers(rid, key=None))
                    retry_after = headers.get("Retry-After") if headers else None
                    with lock:
                        results.append((status, retry_after, events, reply[:200]))
                    if status in (429, 503):
                        time.sleep(0.05)  # a client that backs off a little (Firehose waits longer)

            with RssSampler(srv.proc.pid) as rss:
                threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(120)
            counts = {}
            for status, _, _, _ in results:
                counts[status] = counts.get(status, 0) + 1
            sys.stderr.write("\noverload: %d requests from %d clients in %.0f s: statuses %s; RSS baseline "
                             "%.1f MiB, peak %.1f MiB (%d samples), budget %.1f MiB\n"
                             % (len(results), clients, duration, dict(sorted(counts.items(), key=str)),
                                baseline / 1024, rss.peak / 1024, rss.samples, self.BUDGET / 2**20))
            errors = [r for r in results if r[0] == "error"]
            self.assertLessEqual(len(errors), max(2, len(results) // 100),
                                 "connections failed instead of being answered: %r" % errors[:3])
            for status, retry_after, _, reply in results:
                if status == "error":
                    continue
                self.assertIn(status, (200, 429, 503), reply)
                if status in (429, 503):
                    self.assertRegex(retry_after or "", r"^[1-9][0-9]*$", "%d without Retry-After" % status)
            self.assertGreater(counts.get(200, 0), 0, "nothing accepted")
            self.assertGreater(counts.get(429, 0) + counts.get(503, 0), 0, "the load never overloaded the server")
            acked = sum(events for status, _, events, _ in results if status == 200)
            self.assertEqual(self.ingested(srv) - events0, acked, "ingested events differ from the acknowledged ones")
            # Bodies held ≤ the budget; decoding copies (base64 + JSON of one delivery per worker),
            # per-connection buffers and allocator slack are the constant (16 MiB).
            if not os.environ.get("FAULTLINE_SANITIZED"):  # ASan's own memory is no measure
                self.assertLess(rss.peak - baseline, (self.BUDGET + (16 << 20)) // 1024,
                                "RSS grew by %.1f MiB under overload" % ((rss.peak - baseline) / 1024))
            # Afterwards: ready, nothing in flight.
            self.assertTrue(st.wait_until(lambda: srv.request("GET", "/readyz")[0] == 200, 10))
            m = srv.metrics()
            self.assertEqual(st.metric_value(m, "faultline_inflight_body_bytes"), 0)
            self.assertEqual(st.metric_value(m, "faultline_queue_depth"), 0)
            self.assertEqual(srv.stop(), 0)
        finally:
            srv.cleanup()


class ShutdownUnderLoadTest(unittest.TestCase):
    """SIGTERM while clients keep sending: in-flight requests finish (200) or are refused (503,
    or the connection is refused/reset before an answer); the state is saved; exit 0 within the
    grace; after a restart the restored counter equals the events acknowledged, exactly."""

    def test_sigterm_under_load_loses_no_acknowledged_event(self):
        config = {"workers": 2, "snapshot_interval": "1h",
                  "limits": {"shutdown_grace": "10s", "retry_after": "1s"}}
        srv = st.Server(config)
        tmp = srv.tmp
        restarted = None
        try:
            results = []
            lock = threading.Lock()
            stop_sending = threading.Event()

            def client(i):
                k = 0
                while not stop_sending.is_set():
                    k += 1
                    if i % 2:
                        rid = "c%d-%d" % (i, k)
                        payload, events = firehose_request(5, rid)
                        status, _, reply = post(srv.port, "/v1/firehose", payload,
                                                st.firehose_headers(rid, key=None), timeout=30)
                    else:
                        payload = b"".join(b'{"message":"ERROR shutdown %d %d"}\n' % (i, j) for j in range(50))
                        status, _, reply = post(srv.port, "/v1/webhook/default", payload,
                                                {"Content-Type": "application/x-ndjson"}, timeout=30)
                        events = 50
                    with lock:
                        results.append((status, events, reply[:200]))
                    if status == "error" and (b"ConnectionRefused" in reply):
                        return  # the listener is gone: the server is shutting down

            threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
            for t in threads:
                t.start()
            time.sleep(1.5)
            t0 = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            try:
                rc = srv.proc.wait(15)
            except Exception:
                rc = None
            elapsed = time.monotonic() - t0
            stop_sending.set()
            for t in threads:
                t.join(60)
            srv._drain.join(5)
            self.assertEqual(rc, 0, srv.stderr())
            self.assertLess(elapsed, 10 + 1, "exit took longer than the grace")
            stopped = [r for r in srv.log_records() if r.get("msg") == "stopped"]
            self.assertTrue(stopped and stopped[-1].get("state_saved") == "true", srv.stderr())
            counts = {}
            for status, _, _ in results:
                counts[status] = counts.get(status, 0) + 1
            acked = sum(events for status, events, _ in results if status == 200)
            for status, _, reply in results:
                self.assertIn(status, (200, 503, "error"), reply)
            self.assertGreater(counts.get(200, 0), 0)

            # Restart on the same state directory: the saved counters are the acknowledged events.
            restarted = st.Server(config, tmp=tmp)
            ingested = restarted.metric("faultline_events_ingested_total", source="firehose") + \
                restarted.metric("faultline_events_ingested_total", source="webhook:default")
            sys.stderr.write("\nSIGTERM under load: %d requests, statuses %s; exit 0 after %.2f s; "
                             "acknowledged %d events, restored counter %d\n"
                             % (len(results), dict(sorted(counts.items(), key=str)), elapsed, acked, ingested))
            self.assertEqual(ingested, acked, "acknowledged events lost or extra across SIGTERM")
            self.assertEqual(restarted.stop(), 0)
        finally:
            if restarted:
                restarted.kill()
            srv.cleanup()


class FloodTest(unittest.TestCase):
    """Slow and many clients: trickled heads are cut at the head's total deadline, connections past
    max_connections are closed at once, and the admin listener keeps /metrics, /healthz and
    /readyz answering throughout (monitoring must not go blind under a connection flood)."""

    CAP = 16
    HEAD_DEADLINE = 5.0
    CONFIG = {"workers": 1, "admin_listen": "127.0.0.1:0",
              "limits": {"max_connections": str(CAP), "header_timeout": "5s", "body_timeout": "5s",
                         "idle_timeout": "5s"}}

    def test_flood_with_slow_clients_keeps_monitoring_reachable(self):
        srv = st.Server(self.CONFIG)
        try:
            admin = srv.address_of("admin")
            self.assertIsNotNone(admin, "no admin listener")
            stop = threading.Event()
            slow = []
            cut_after = []

            def slowloris(sock, opened):
                # One byte of a request head every 100 ms: never a complete head.
                head = b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 10000
                for b in head:
                    if stop.is_set():
                        return
                    try:
                        sock.sendall(bytes([b]))
                    except OSError:
                        break
                    readable, _, _ = select.select([sock], [], [], 0.1)
                    if readable:
                        break  # answered (408) or closed
                cut_after.append(time.monotonic() - opened)

            first_open = time.monotonic()
            for _ in range(self.CAP):
                s = srv.connect()
                slow.append(s)
                threading.Thread(target=slowloris, args=(s, time.monotonic()), daemon=True).start()
            # Once the server holds them all, flood: every further connection is closed at once.
            def held():
                text = srv.request("GET", "/metrics", port=admin[1])[2].decode()
                # (the scrape's own admin connection counts too)
                return st.metric_value(st.parse_metrics(text), "faultline_connections") >= self.CAP + 1
            self.assertTrue(st.wait_until(held, 5), "the slow connections were not all accepted")
            refused, served, slowest_refusal = 0, 0, 0.0
            admin_latency = []
            # The flood ends well before the slow clients' head deadline frees their slots.
            flood_until = min(time.monotonic() + 1.5, first_open + self.HEAD_DEADLINE - 2.0)
            while time.monotonic() < flood_until:
                t0 = time.monotonic()
                try:
                    c = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
                    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                    data, closed = st.recv_until_closed(c, 2)
                    c.close()
                except OSError:
                    data, closed = b"", True
                if data:
                    served += 1
                elif closed:
                    refused += 1
                    slowest_refusal = max(slowest_refusal, time.monotonic() - t0)
                for path in ("/metrics", "/healthz", "/readyz"):
                    a0 = time.monotonic()
                    status = srv.request("GET", path, port=admin[1], timeout=2)[0]
                    admin_latency.append(time.monotonic() - a0)
                    self.assertEqual(status, 200, "admin %s during the flood" % path)
            self.assertGreater(refused, 10)
            self.assertEqual(served, 0, "a connection over the cap was served")
            self.assertLess(slowest_refusal, 1.0, "a connection over the cap was not closed at once")
            self.assertLess(max(admin_latency), 1.0)
            # The trickled heads are cut at the head deadline (in total, not per byte).
            self.assertTrue(st.wait_until(lambda: len(cut_after) == self.CAP, self.HEAD_DEADLINE + 4),
                            "slow clients not cut: %d of %d" % (len(cut_after), self.CAP))
            self.assertLess(max(cut_after), self.HEAD_DEADLINE + 1.5)
            # Then the service answers again, and the operator sees what happened.
            self.assertTrue(st.wait_until(lambda: self._healthz(srv), 5))
            m = srv.metrics()
            self.assertGreaterEqual(st.metric_value(m, "faultline_rejected_requests_total", reason="max_connections"),
                                    refused)
            self.assertGreaterEqual(st.metric_value(m, "faultline_rejected_requests_total", reason="timeout"), self.CAP)
            sys.stderr.write("\nflood: %d slow clients cut after %.2f-%.2f s; %d connections over the cap closed "
                             "(slowest %.0f ms); admin answered %d requests, slowest %.0f ms\n"
                             % (self.CAP, min(cut_after), max(cut_after), refused, slowest_refusal * 1000,
                                len(admin_latency), max(admin_latency) * 1000))
            stop.set()
            for s in slow:
                s.close()
            self.assertEqual(srv.stop(), 0)
        finally:
            srv.cleanup()

    def test_admin_connections_take_no_api_seat(self):
        # Scrapes and probes held open on the admin listener while clients fill every API seat:
        # each of the CAP clients is served, the one after them is refused. (Counted against the
        # cap, the admin connections took the last seats and those clients were closed at once.)
        srv = st.Server(self.CONFIG)
        held = []
        try:
            admin = srv.address_of("admin")
            for _ in range(4):
                held.append(socket.create_connection(("127.0.0.1", admin[1]), timeout=5))

            def counted():
                m = st.parse_metrics(srv.request("GET", "/metrics", port=admin[1])[2].decode())
                return st.metric_value(m, "faultline_connections") >= 5  # the 4 and this scrape
            self.assertTrue(st.wait_until(counted, 5), "the admin connections were not accepted")

            def served(sock):
                try:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = sock.recv(4096)
                        if not chunk:
                            return False
                        data += chunk
                    return data.startswith(b"HTTP/1.1 200")
                except OSError:
                    return False
            for i in range(self.CAP):
                s = srv.connect(timeout=5)
                held.append(s)
                self.assertTrue(served(s), "API client %d of %d was not served" % (i + 1, self.CAP))
            over = srv.connect(timeout=5)
            held.append(over)
            self.assertFalse(served(over), "a client over the cap was served")
            m = st.parse_metrics(srv.request("GET", "/metrics", port=admin[1])[2].decode())
            self.assertGreaterEqual(st.metric_value(m, "faultline_rejected_requests_total", reason="max_connections"), 1)
            self.assertEqual(st.metric_value(m, "faultline_io_thread_connections", thread="0"), self.CAP)
            for s in held:
                s.close()
            self.assertEqual(srv.stop(), 0)
        finally:
            for s in held:
                s.close()
            srv.cleanup()

    @staticmethod
    def _healthz(srv):
        try:
            return srv.request("GET", "/healthz", timeout=2)[0] == 200
        except OSError:
            return False


def main():
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.stderr.write("usage: hostile_test.py FAULTLINE_BINARY [unittest options]\n")
        return 2
    st.BINARY = os.path.abspath(sys.argv.pop(1))
    prog = unittest.main(exit=False, verbosity=2)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
