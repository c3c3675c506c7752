#!/usr/bin/env python3
"""Edge safety against the real binary (issue 10): what used to end the process, escape the
memory budget or stop every start. Standard library only; reuses server_test.py's harness.

    python3 tests/integration/edge_test.py FAULTLINE_BINARY [unittest options]

Each test asserts what a client and an operator observe (statuses, Retry-After, /healthz, the
log, the state directory, RSS from /proc) and prints its figures on stderr. RSS bounds are not
asserted under the sanitizers (FAULTLINE_SANITIZED=1), and the 1.4 GB uploads are skipped there.
"""

import glob
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_test as st  # noqa: E402
from hostile_test import RssSampler, rss_kib  # noqa: E402

SANITIZED = os.environ.get("FAULTLINE_SANITIZED") == "1"
MIB = 1 << 20


def log(msg):
    sys.stderr.write("    %s\n" % msg)


def exchange(srv, data, timeout=30):
    """Sends raw bytes, returns the parsed responses once the server closes (or the timeout)."""
    s = srv.connect(timeout)
    try:
        try:
            s.sendall(data)
        except OSError:
            pass  # the server answered and closed before taking everything
        return st.parse_responses(st.recv_until_closed(s, timeout)[0])[0]
    finally:
        s.close()


def healthz(srv):
    return srv.request("GET", "/healthz", timeout=5)[0]


class Upload:
    """One client sending a large body (chunked or with Content-Length) in 1 MiB pieces; it stops
    sending once the server has answered (the answer is readable) and keeps the status."""

    def __init__(self, port, path, pieces, chunked, piece):
        self.port, self.path, self.chunked, self.piece = port, path, chunked, piece
        self.total = pieces * len(piece)
        self.status, self.retry_after, self.sent, self.error, self.body = None, None, 0, None, b""

    def run(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        except OSError as e:
            self.error = repr(e)
            return
        try:
            head = "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n" % self.path
            head += "Transfer-Encoding: chunked\r\n\r\n" if self.chunked else "Content-Length: %d\r\n\r\n" % self.total
            s.sendall(head.encode())
            frame = (b"%x\r\n" % len(self.piece) + self.piece + b"\r\n") if self.chunked else self.piece
            answered = False
            while self.sent < self.total:
                if select.select([s], [], [], 0)[0]:
                    answered = True
                    break
                try:
                    s.sendall(frame)
                except OSError:
                    answered = True
                    break
                self.sent += len(self.piece)
            if not answered and self.chunked:
                s.sendall(b"0\r\n\r\n")
            if answered:
                responses = st.parse_responses(st.recv_until_closed(s, 60)[0])[0]
            else:
                responses = [st.read_one_response(s, 60)[0]]
            if responses and responses[0] is not None:
                self.status = responses[0].status
                self.retry_after = responses[0].header("Retry-After")
                self.body = responses[0].body
        except OSError as e:
            self.error = repr(e)
        finally:
            s.close()


class EdgeTest(unittest.TestCase):
    def test_trailer_field_over_64_kib_is_431_and_the_process_lives(self):
        srv = st.Server({"workers": 1, "state_dir": ""})
        try:
            for n in (65533, 65534, 200000):
                data = (b"POST /v1/cloudwatch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"2\r\n{}\r\n0\r\nX-T: " + b"a" * n + b"\r\n\r\n")
                responses = exchange(srv, data)
                # Within the read buffer (head limit + 64 KiB) the trailer is parsed and refused as
                # too large (431); beyond it the buffer fills first (400).
                self.assertEqual([r.status for r in responses], [431 if n < 80000 else 400], n)
                self.assertEqual(healthz(srv), 200)
            # The same through a webhook source and Firehose without keys.
            for path in ("/v1/webhook/default", "/v1/firehose"):
                data = (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"2\r\n{}\r\n0\r\nX-T: " + b"a" * 65534 + b"\r\n\r\n")
                self.assertEqual([r.status for r in exchange(srv, data)], [431], path)
            self.assertEqual(healthz(srv), 200)
            self.assertIsNone(srv.proc.poll())
            m = srv.metrics()
            self.assertEqual(st.metric_value(m, "faultline_rejected_requests_total", reason="header_too_large"), 4)
            self.assertEqual(st.metric_value(m, "faultline_rejected_requests_total", reason="malformed_http"), 1)
        finally:
            self.assertEqual(srv.stop(), 0, srv.stderr())
            srv.cleanup()

    def test_header_bytes_over_the_parser_maximum_is_a_configuration_error(self):
        srv = st.Server({"workers": 1, "state_dir": "", "limits": {"header_bytes": "64KiB"}})
        try:
            # At the maximum, one ordinary 65 534-byte header is answered, not fatal.
            status, _, _ = srv.request("GET", "/healthz", headers={"X-Big": "h" * 65534})
            self.assertEqual(status, 431)
            self.assertEqual(healthz(srv), 200)
            path = os.path.join(srv.tmp, "big.yaml")
            with open(path, "w") as f:
                f.write("limits: {header_bytes: 256KiB}\n")
            r = subprocess.run([st.BINARY, "check-config", path], capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("limits.header_bytes", r.stderr)
            self.assertIn("must be at most 65536", r.stderr)
        finally:
            self.assertEqual(srv.stop(), 0, srv.stderr())
            srv.cleanup()

    def test_chunk_extensions_and_trailers_are_bounded(self):
        srv = st.Server({"workers": 1, "state_dir": "", "limits": {"body_bytes": "1MiB"}})
        try:
            base = rss_kib(srv.proc.pid)
            # A 256 MiB chunk extension: refused once the bounded read buffer is full.
            s = srv.connect(30)
            s.sendall(b"POST /v1/cloudwatch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2;x=")
            piece, sent = b"e" * MIB, 0
            try:
                while sent < 256 * MIB:
                    if select.select([s], [], [], 0)[0]:
                        break
                    s.sendall(piece)
                    sent += len(piece)
            except OSError:
                pass
            responses = st.parse_responses(st.recv_until_closed(s, 30)[0])[0]
            s.close()
            log("256 MiB extension: refused after %d MiB sent; RSS %d -> %d KiB" % (
                sent // MIB, base, rss_kib(srv.proc.pid)))
            self.assertEqual([r.status for r in responses], [400])
            self.assertIn(b"chunk-size line or trailer section exceeds", responses[0].body)
            self.assertLess(sent, 256 * MIB)
            # 1 000 trailer fields of 60 000 bytes.
            trailer = b"".join(b"X-F%d: " % i + b"t" * 60000 + b"\r\n" for i in range(1000))
            data = (b"POST /v1/webhook/default HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"2\r\n{}\r\n0\r\n" + trailer + b"\r\n")
            self.assertEqual([r.status for r in exchange(srv, data)], [400])
            self.assertEqual(healthz(srv), 200)
            if not SANITIZED:
                self.assertLess(rss_kib(srv.proc.pid) - base, 32 * 1024)
        finally:
            self.assertEqual(srv.stop(), 0, srv.stderr())
            srv.cleanup()

    def _twelve_uploads(self, chunked):
        if SANITIZED:
            self.skipTest("1.4 GB of uploads: not under the sanitizers")
        srv = st.Server({"workers": 2, "state_dir": "",
                         "limits": {"inflight_bytes": "256MiB", "body_timeout": "120s"}})
        try:
            baseline = rss_kib(srv.proc.pid)
            line = b"ERROR upload line with some words to match and mine 0123456789\n"
            piece = line * (MIB // len(line))
            pieces = 120 * MIB // len(piece)  # 120 MiB in all
            uploads = [Upload(srv.port, "/v1/webhook/default", pieces, chunked, piece) for _ in range(12)]
            threads = [threading.Thread(target=u.run) for u in uploads]
            t0 = time.monotonic()
            with RssSampler(srv.proc.pid) as rss:
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(300)
            elapsed = time.monotonic() - t0
            statuses = [u.status for u in uploads]
            log("%s: 12 x 120 MiB in %.1f s: statuses %s; RSS baseline %.0f MiB, peak %.0f MiB" % (
                "chunked" if chunked else "Content-Length", elapsed, statuses, baseline / 1024, rss.peak / 1024))
            self.assertTrue(all(s in (200, 503) for s in statuses), (statuses, [u.error for u in uploads]))
            refused = [u for u in uploads if u.status == 503]
            self.assertGreaterEqual(len(refused), 1)
            self.assertTrue(all(u.retry_after for u in refused))
            self.assertLess(rss.peak, 420 * 1024)
            self.assertEqual(healthz(srv), 200)
            m = srv.metrics()
            self.assertEqual(st.metric_value(m, "faultline_rejected_requests_total", reason="inflight_bytes"),
                             len(refused))
            self.assertEqual(st.metric_value(m, "faultline_inflight_body_bytes"), 0)
            accepted = statuses.count(200)
            self.assertEqual(st.metric_value(m, "faultline_events_ingested_total", source="webhook:default"),
                             accepted * pieces * (len(piece) // len(line)))
        finally:
            self.assertEqual(srv.stop(), 0, srv.stderr())
            srv.cleanup()

    def test_twelve_chunked_uploads_stay_within_the_budget(self):
        self._twelve_uploads(chunked=True)

    def test_twelve_declared_uploads_stay_within_the_budget(self):
        self._twelve_uploads(chunked=False)

    def test_rss_returns_after_a_64_mib_firehose_body(self):
        srv = st.Server({"workers": 2, "state_dir": ""})
        try:
            import base64
            # Records of plain (not gzip'd) CloudWatch documents, 100 events each: 64 MiB of body,
            # 48 MiB of JSON to parse.
            doc = {"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "/big", "logStream": "s",
                   "subscriptionFilters": ["f"],
                   "logEvents": [{"id": str(k), "timestamp": 1700000000000 + k,
                                  "message": "ERROR request %d failed after %d ms: connection refused" % (k, k * 7)}
                                 for k in range(100)]}
            records = [{"data": base64.b64encode(json.dumps(doc).encode()).decode()}]
            per_copy = len(st.firehose_body(records, "x"))
            body = st.firehose_body(records * (64 * MIB // per_copy), "big-1")
            self.assertGreater(len(body), 60 * MIB)
            self.assertLessEqual(len(body), 64 * MIB)
            # Warm up with a small one, then the baseline.
            small = st.firehose_body(records, "small-1")
            self.assertEqual(srv.request("POST", "/v1/firehose", small, st.firehose_headers("small-1", key=None))[0], 200)
            time.sleep(0.5)
            before = rss_kib(srv.proc.pid)
            with RssSampler(srv.proc.pid, 0.005) as rss:
                status, _, reply = srv.request("POST", "/v1/firehose", body,
                                               st.firehose_headers("big-1", key=None), timeout=120)
            self.assertEqual(status, 200, reply[:300])
            peak = rss.peak
            deadline = time.monotonic() + 5
            after = rss_kib(srv.proc.pid)
            while after - before > 32 * 1024 and time.monotonic() < deadline:
                time.sleep(0.1)
                after = rss_kib(srv.proc.pid)
            log("64 MiB Firehose body (%d bytes): RSS before %.1f MiB, peak %.1f MiB, "
                "settled %.1f MiB" % (len(body), before / 1024, peak / 1024, after / 1024))
            if not SANITIZED:
                self.assertLess(after - before, 32 * 1024)
        finally:
            self.assertEqual(srv.stop(), 0, srv.stderr())
            srv.cleanup()

    def test_damaged_state_files_are_kept_aside_and_the_service_starts_fresh(self):
        valid = {"format": "faultline-state", "version": 1, "saved_ms": 1,
                 "totals": {"documents": 1, "events": 5, "control_messages": 0, "templates_evicted": 0,
                            "patterns": {}, "by_group": {}, "by_source": {"webhook:default": 5}},
                 "templates": []}
        damaged = []
        d = json.loads(json.dumps(valid))
        del d["totals"]["patterns"]
        damaged.append(("totals.patterns missing", json.dumps(d)))
        d = json.loads(json.dumps(valid))
        d["templates"] = [{"text": "x", "count": 1, "first_seen_ms": 1, "groups": 7}]
        damaged.append(("template details incomplete", json.dumps(d)))
        damaged.append(("not JSON", "{\"format\": \"faultline-state\", "))
        damaged.append(("a JSON array", "[]"))
        for what, text in damaged:
            with self.subTest(what=what):
                tmp = __import__("tempfile").mkdtemp(prefix="faultline-edge-")
                state = os.path.join(tmp, "state")
                os.makedirs(state)
                with open(os.path.join(state, "state.json"), "w") as f:
                    f.write(text)
                srv = st.Server({"workers": 1, "state_dir": state}, tmp=tmp)
                try:
                    self.assertEqual(healthz(srv), 200)
                    self.assertEqual(srv.metric("faultline_events_ingested_total", source="webhook:default"), 0)
                    aside = glob.glob(os.path.join(state, "state.json.corrupt-*"))
                    self.assertEqual(len(aside), 1, os.listdir(state))
                    with open(aside[0]) as f:
                        self.assertEqual(f.read(), text)
                    self.assertTrue(any(r.get("msg") == "saved state unreadable: kept aside, starting fresh"
                                        for r in srv.log_records()))
                finally:
                    self.assertEqual(srv.stop(), 0, srv.stderr())
                    srv.cleanup()
                    __import__("shutil").rmtree(tmp, ignore_errors=True)
        # A valid one is restored.
        tmp = __import__("tempfile").mkdtemp(prefix="faultline-edge-")
        state = os.path.join(tmp, "state")
        os.makedirs(state)
        with open(os.path.join(state, "state.json"), "w") as f:
            f.write(json.dumps(valid))
        srv = st.Server({"workers": 1, "state_dir": state}, tmp=tmp)
        try:
            self.assertEqual(srv.metric("faultline_events_ingested_total", source="webhook:default"), 5)
        finally:
            self.assertEqual(srv.stop(), 0, srv.stderr())
            srv.cleanup()
            __import__("shutil").rmtree(tmp, ignore_errors=True)

    def test_state_dir_flag_can_disable_state(self):
        """`--state-dir ""` disables state like `state_dir: ""` (an empty flag used to be ignored)."""
        tmp = __import__("tempfile").mkdtemp(prefix="faultline-edge-")
        try:
            state = os.path.join(tmp, "state")
            config = os.path.join(tmp, "f.yaml")
            with open(config, "w") as f:
                f.write("state_dir: %s\n" % json.dumps(state))
            proc = subprocess.Popen([st.BINARY, "serve", "--config", config, "--listen", "127.0.0.1:0",
                                     "--state-dir", ""], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True)
            lines = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                line = proc.stderr.readline()
                if not line:
                    break
                lines.append(line)
                if '"ready"' in line:
                    break
            proc.terminate()
            _, rest = proc.communicate(timeout=10)
            self.assertEqual(proc.returncode, 0, "".join(lines) + rest)
            text = "".join(lines) + rest
            self.assertIn("state disabled", text)
            self.assertFalse(os.path.exists(os.path.join(state, "state.json")))
        finally:
            __import__("shutil").rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.stderr.write("usage: edge_test.py FAULTLINE_BINARY [unittest options]\n")
        return 2
    st.BINARY = os.path.abspath(sys.argv.pop(1))
    prog = unittest.main(exit=False, verbosity=2)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
