#!/usr/bin/env python3
"""Integration tests of `faultline serve`: the HTTP service as a client (Firehose, CloudWatch Logs,
webhook senders, Prometheus) sees it. Standard library only.

    python3 tests/integration/server_test.py FAULTLINE_BINARY [unittest options]

Every test class starts its own server (`serve --config CFG --listen 127.0.0.1:0`) with a profile
suited to what it checks (short deadlines, tiny queues, small limits), learns the port from the
"listening" log line on stderr (then polls GET /healthz: the line comes before the event loop runs),
and stops it with SIGTERM at the end, asserting exit code 0 within 10 s.
Counts are checked through what a user observes: GET /metrics, /v1/patterns, /v1/templates.
"""

import base64
import gzip
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request
import uuid

BINARY = None  # set from argv[1] in __main__

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "data"))
FIXTURES = os.path.join(DATA, "fixtures")
FIREHOSE_FIXTURE = os.path.join(FIXTURES, "firehose", "cwl_via_firehose_request.json")
FIREHOSE_FIXTURE_GZ = FIREHOSE_FIXTURE + ".gz"
FIXTURE_REQUEST_ID = "ed4acda5-034f-9f42-bba1-f29aea6d7d8f"
FIXTURE_EVENTS = 105
FIXTURE_CONTROL = 1
ACCESS_KEY = "secret123"
ROTATED_ACCESS_KEY = "second-key-456"

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

# A small pattern set: every server runs on it (the configuration must name at least one).
PATTERNS = [
    {"name": "error_level", "class": "error", "regex": r"\b(ERROR|FATAL|CRITICAL)\b",
     "description": "Lines logged at ERROR level"},
    {"name": "lambda_timeout", "class": "error", "regex": r"Task timed out after \d+(\.\d+)? seconds",
     "description": "Lambda invocation hit its timeout"},
    {"name": "connection_refused", "class": "error", "regex": r"(?i)connection refused|\bECONNREFUSED\b",
     "description": "A dependency refused a TCP connection"},
    {"name": "sshd_error", "class": "error", "regex": r"sshd\[\d+\]: error:",
     "description": "sshd errors"},
    {"name": "warn_level", "class": "warn", "regex": r"\b(WARN|WARNING)\b",
     "description": "Lines logged at WARN level"},
]


def load_vectors():
    """The published signature vectors (a byte-identical copy of shared/fixtures/webhooks/), by scheme."""
    with open(os.path.join(FIXTURES, "webhooks", "signature_vectors.json"), encoding="utf-8") as f:
        return {v["scheme"]: v for v in json.load(f)}


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def now_ms():
    return int(time.time() * 1000)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.05):
    """Polls predicate() until it returns a truthy value or the deadline passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# The server under test


class Server:
    """One `faultline serve` process with its own temporary directory and configuration."""

    def __init__(self, config, env=None, tmp=None, wait_serving=True, listen="127.0.0.1:0", preexec_fn=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="faultline-it-")
        self.own_tmp = tmp is None
        config = dict(config)
        config.setdefault("state_dir", os.path.join(self.tmp, "state"))
        config.setdefault("patterns", PATTERNS)
        config.setdefault("sources", {"default": {"auth": "none"}})
        self.config_path = os.path.join(self.tmp, "faultline.yaml")
        self.write_config(config)
        environ = {k: v for k, v in os.environ.items() if not k.startswith("FAULTLINE_")}
        environ.update(env or {})
        try:
            self.proc = subprocess.Popen(
                [BINARY, "serve", "--config", self.config_path, "--listen", listen],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environ,
                preexec_fn=preexec_fn)
        except OSError:
            if self.own_tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        self.lines = []
        self._cond = threading.Condition()
        self._eof = False
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()
        self.port = None
        self.returncode = None
        try:
            self._wait_listening()
            if wait_serving:
                self._wait_serving()
        except BaseException:
            self.kill()
            raise

    def _wait_serving(self):
        """The "listening" line comes before the server runs its event loop (and installs its
        SIGTERM handler): a first answered request shows it is really up."""
        def answered():
            if self.proc.poll() is not None:
                return True
            try:
                return self.request("GET", "/healthz", timeout=2)[0] == 200
            except OSError:
                return False
        if not wait_until(answered, START_TIMEOUT, 0.02) or self.proc.poll() is not None:
            raise AssertionError("faultline serve listens but does not answer GET /healthz (exit %s); stderr:\n%s"
                                 % (self.proc.poll(), self.stderr()))

    def write_config(self, config):
        # JSON is YAML (flow style): exact, and no quoting surprises in regexes or secrets.
        text = config if isinstance(config, str) else json.dumps(config, indent=2)
        with open(self.config_path + ".tmp", "w", encoding="utf-8") as f:
            f.write("# written by server_test.py\n")
            f.write(text)
            f.write("\n")
        os.replace(self.config_path + ".tmp", self.config_path)

    def log_records(self):
        out = []
        with self._cond:
            lines = list(self.lines)
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def address_of(self, listener, timeout=START_TIMEOUT):
        """(host, port) from the "listening" log line of `listener`; None if none comes in time."""
        def find():
            for rec in self.log_records():
                if rec.get("msg") == "listening" and rec.get("listener") == listener:
                    host, port = rec["address"].rsplit(":", 1)
                    return host, int(port)
            return None
        return wait_until(find, timeout)

    def _read_stderr(self):
        for raw in self.proc.stderr:
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _wait_listening(self):
        deadline = time.monotonic() + START_TIMEOUT
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if rec.get("msg") == "listening" and rec.get("listener") == "api":
                        self.port = int(rec["address"].rsplit(":", 1)[1])
                        return
                seen = len(self.lines)
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    raise AssertionError("faultline serve did not report listening within %.0f s (exit %s); "
                                         "stderr:\n%s" % (START_TIMEOUT, self.proc.poll(), self.stderr()))
                self._cond.wait(remaining)

    def stderr(self):
        with self._cond:
            return "\n".join(self.lines[-60:])

    def stop(self):
        """SIGTERM, then waits for the exit; returns the exit code (None if it did not exit in time)."""
        if self.returncode is not None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self._drain.join(5)
        return self.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._drain.join(5)

    def cleanup(self):
        self.kill()
        if self.proc.stderr:
            self.proc.stderr.close()
        if self.own_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- HTTP helpers --------------------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, timeout=30, port=None):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            res = conn.getresponse()
            data = res.read()
            return res.status, res.headers, data
        finally:
            conn.close()

    def get_json(self, path):
        status, headers, body = self.request("GET", path)
        if status != 200:
            raise AssertionError("GET %s: %d %r" % (path, status, body[:300]))
        return json.loads(body)

    def metrics_text(self):
        status, headers, body = self.request("GET", "/metrics")
        if status != 200:
            raise AssertionError("GET /metrics: %d %r" % (status, body[:300]))
        return body.decode("utf-8")

    def metrics(self):
        return parse_metrics(self.metrics_text())

    def metric(self, name, **labels):
        return metric_value(self.metrics(), name, **labels)

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s


_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text format → {(name, frozenset(labels.items())): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$", line)
        if not m:
            raise AssertionError("unparsable metrics line: %r" % line)
        labels = frozenset((k, v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"))
                           for k, v in _LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric_value(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())), 0.0)


class ServerTestCase(unittest.TestCase):
    """Starts one server per class from CONFIG; stops it at the end and asserts a clean exit."""

    CONFIG = {"workers": 2}
    server = None

    @classmethod
    def setUpClass(cls):
        if BINARY is None:
            raise unittest.SkipTest("no faultline binary given")
        cls.server = Server(cls.CONFIG)

    @classmethod
    def tearDownClass(cls):
        srv = cls.server
        cls.server = None
        if srv is None:
            return
        try:
            rc = srv.stop()
            if rc != 0:
                raise AssertionError("SIGTERM: faultline serve exited with %r (expected 0 within %.0f s); stderr:\n%s"
                                     % (rc, STOP_TIMEOUT, srv.stderr()))
        finally:
            srv.cleanup()

    # Shorthands
    def ingested(self, source):
        return self.server.metric("faultline_events_ingested_total", source=source)

    def assertJsonError(self, body, status=None, contains=None):
        try:
            doc = json.loads(body)
        except ValueError:
            self.fail("error reply is not JSON: %r" % body[:300])
        self.assertIsInstance(doc, dict)
        self.assertIn("error", doc, "error reply without an 'error' key: %r" % doc)
        self.assertIsInstance(doc["error"], str)
        self.assertTrue(doc["error"], "empty error message")
        if contains:
            self.assertIn(contains.lower(), doc["error"].lower())
        return doc


# ---------------------------------------------------------------------------------------------
# Raw HTTP over a socket


def recv_until_closed(sock, timeout):
    """Reads until the peer closes (b'' or a reset). Returns (data, closed)."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return data, False
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data, False
        except (ConnectionResetError, BrokenPipeError):
            return data, True
        if not chunk:
            return data, True
        data += chunk


class RawResponse:
    def __init__(self, version, status, reason, headers, body):
        self.version, self.status, self.reason, self.headers, self.body = version, status, reason, headers, body

    def header(self, name):
        return self.headers.get(name.lower())


def parse_responses(data):
    """Parses consecutive HTTP/1.x responses (Content-Length framed) from bytes. Returns (list, rest)."""
    out = []
    while True:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return out, data
        head = data[:end].decode("latin-1").split("\r\n")
        m = re.match(r"^HTTP/(1\.[01]) (\d{3}) ?(.*)$", head[0])
        if not m:
            raise AssertionError("not an HTTP status line: %r" % head[0])
        headers = {}
        for h in head[1:]:
            k, _, v = h.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        if len(data) < end + 4 + length:
            return out, data
        body = data[end + 4:end + 4 + length]
        out.append(RawResponse(m.group(1), int(m.group(2)), m.group(3), headers, body))
        data = data[end + 4 + length:]


def read_one_response(sock, timeout):
    """Reads exactly one response; returns (response or None, leftover bytes, closed flag)."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        responses, _ = parse_responses(data)
        if responses:
            return responses[0], data, False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, data, False
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return None, data, False
        except ConnectionResetError:
            return None, data, True
        if not chunk:
            return None, data, True
        data += chunk


# ---------------------------------------------------------------------------------------------
# Firehose


def firehose_headers(request_id, key=ACCESS_KEY, gzipped=False):
    h = {
        "Content-Type": "application/json",
        "X-Amz-Firehose-Protocol-Version": "1.0",
        "X-Amz-Firehose-Request-Id": request_id,
        "X-Amz-Firehose-Source-Arn": "arn:aws:firehose:us-east-1:111111111111:deliverystream/test",
        "User-Agent": "Amazon Kinesis Data Firehose Agent/1.0",
    }
    if key is not None:
        h["X-Amz-Firehose-Access-Key"] = key
    if gzipped:
        h["Content-Encoding"] = "gzip"
    return h


def firehose_body(records, request_id):
    return json.dumps({"requestId": request_id, "timestamp": now_ms(), "records": records}).encode()


class FirehoseTest(ServerTestCase):
    CONFIG = {"workers": 2, "firehose": {"access_keys": [ACCESS_KEY, ROTATED_ACCESS_KEY]}}

    def counts(self):
        m = self.server.metrics()
        return (metric_value(m, "faultline_events_ingested_total", source="firehose"),
                metric_value(m, "faultline_control_messages_total", kind="cloudwatch"))

    def assertFirehoseSuccess(self, status, headers, body, request_id):
        self.assertEqual(status, 200, body)
        self.assertTrue(headers.get("Content-Type", "").startswith("application/json"), headers.get("Content-Type"))
        self.assertIsNone(headers.get("Content-Encoding"), "a Firehose success reply must not be encoded")
        doc = json.loads(body)
        self.assertEqual(set(doc), {"requestId", "timestamp"}, doc)
        self.assertEqual(doc["requestId"], request_id)
        self.assertIsInstance(doc["timestamp"], int)
        self.assertNotIsInstance(doc["timestamp"], bool)
        self.assertLess(abs(doc["timestamp"] - now_ms()), 60_000, "timestamp is not now in ms: %r" % doc)

    def assertFirehoseError(self, body, request_id):
        doc = json.loads(body)
        self.assertEqual(set(doc), {"requestId", "timestamp", "errorMessage"}, doc)
        self.assertEqual(doc["requestId"], request_id)
        self.assertIsInstance(doc["timestamp"], int)
        self.assertLess(abs(doc["timestamp"] - now_ms()), 60_000)
        self.assertTrue(doc["errorMessage"])
        return doc

    def test_fixture_counted_once_and_gzip_body(self):
        body = read_bytes(FIREHOSE_FIXTURE)
        events0, control0 = self.counts()
        status, headers, reply = self.server.request("POST", "/v1/firehose", body, firehose_headers(FIXTURE_REQUEST_ID))
        self.assertFirehoseSuccess(status, headers, reply, FIXTURE_REQUEST_ID)
        # The ack means counted: the metrics show it at once, no waiting.
        self.assertEqual(self.counts(), (events0 + FIXTURE_EVENTS, control0 + FIXTURE_CONTROL))

        # A Firehose retry (same request id): 200 again, nothing counted twice.
        status, headers, reply = self.server.request("POST", "/v1/firehose", body, firehose_headers(FIXTURE_REQUEST_ID))
        self.assertFirehoseSuccess(status, headers, reply, FIXTURE_REQUEST_ID)
        self.assertEqual(self.counts(), (events0 + FIXTURE_EVENTS, control0 + FIXTURE_CONTROL))

        # The whole body gzip'd (Content-Encoding: gzip), a new request id: counted again.
        rid = str(uuid.uuid4())
        status, headers, reply = self.server.request("POST", "/v1/firehose", read_bytes(FIREHOSE_FIXTURE_GZ),
                                                     firehose_headers(rid, gzipped=True))
        self.assertFirehoseSuccess(status, headers, reply, rid)
        self.assertEqual(self.counts(), (events0 + 2 * FIXTURE_EVENTS, control0 + 2 * FIXTURE_CONTROL))

    def test_rotated_access_key_accepted(self):
        events0, _ = self.counts()
        rid = str(uuid.uuid4())
        status, headers, reply = self.server.request("POST", "/v1/firehose", read_bytes(FIREHOSE_FIXTURE),
                                                     firehose_headers(rid, key=ROTATED_ACCESS_KEY))
        self.assertFirehoseSuccess(status, headers, reply, rid)
        self.assertEqual(self.counts()[0], events0 + FIXTURE_EVENTS)

    def test_access_key_missing_or_wrong_is_401(self):
        body = read_bytes(FIREHOSE_FIXTURE)
        before = self.counts()
        for key in (None, "wrong-key", ACCESS_KEY + "x", ""):
            with self.subTest(key=key):
                rid = str(uuid.uuid4())
                status, headers, reply = self.server.request("POST", "/v1/firehose", body, firehose_headers(rid, key=key))
                self.assertEqual(status, 401, reply)
                self.assertFirehoseError(reply, rid)
        self.assertEqual(self.counts(), before)

    def test_one_bad_record_fails_whole_request(self):
        records = json.loads(read_bytes(FIREHOSE_FIXTURE))["records"]
        bad = records[:2] + [{"data": "!!! not base64 ***"}] + records[2:]
        before = self.counts()
        rid = str(uuid.uuid4())
        status, headers, reply = self.server.request("POST", "/v1/firehose", firehose_body(bad, rid),
                                                     firehose_headers(rid))
        self.assertEqual(status, 400, reply)
        doc = self.assertFirehoseError(reply, rid)
        self.assertIn("records[2]", doc["errorMessage"])
        self.assertEqual(self.counts(), before, "a refused request changed the counts")

        # The same id with a good body afterwards: a failed request is not remembered as done.
        status, headers, reply = self.server.request("POST", "/v1/firehose", firehose_body(records, rid),
                                                     firehose_headers(rid))
        self.assertFirehoseSuccess(status, headers, reply, rid)
        self.assertEqual(self.counts(), (before[0] + FIXTURE_EVENTS, before[1] + FIXTURE_CONTROL))

    def test_invalid_json_is_400(self):
        before = self.counts()
        for body in (b'{"requestId": "x", "records": [', b"not json at all", b'{"requestId":"a","records":{}}'):
            with self.subTest(body=body):
                rid = str(uuid.uuid4())
                status, headers, reply = self.server.request("POST", "/v1/firehose", body, firehose_headers(rid))
                self.assertEqual(status, 400, reply)
                self.assertFirehoseError(reply, rid)
        self.assertEqual(self.counts(), before)

    def test_request_id_from_body_when_header_missing(self):
        rid = "body-only-" + str(uuid.uuid4())
        records = json.loads(read_bytes(FIREHOSE_FIXTURE))["records"]
        headers = firehose_headers("x")
        del headers["X-Amz-Firehose-Request-Id"]
        events0, _ = self.counts()
        status, h, reply = self.server.request("POST", "/v1/firehose", firehose_body(records, rid), headers)
        self.assertFirehoseSuccess(status, h, reply, rid)
        self.assertEqual(self.counts()[0], events0 + FIXTURE_EVENTS)

    def test_protocol_version_other_than_1_0_is_400(self):
        before = self.counts()
        rid = str(uuid.uuid4())
        headers = firehose_headers(rid)
        headers["X-Amz-Firehose-Protocol-Version"] = "2.0"
        status, _, reply = self.server.request("POST", "/v1/firehose", read_bytes(FIREHOSE_FIXTURE), headers)
        self.assertEqual(status, 400, reply)
        self.assertFirehoseError(reply, rid)
        self.assertEqual(self.counts(), before)

    def test_raw_text_records_grouped(self):
        """Records that are not CloudWatch JSON are text lines, grouped by the common attribute logGroup,
        else by the delivery stream named in the source ARN."""
        def pattern_groups():
            return {p["name"]: p["groups"] for p in self.server.get_json("/v1/patterns")["patterns"]}["error_level"]

        raw = b"ERROR raw text line one\n\nplain line two\n"
        records = [{"data": base64.b64encode(raw).decode()},
                   {"data": base64.b64encode(gzip.compress(b"FATAL gzip'd raw line")).decode()}]
        events0, _ = self.counts()
        groups0 = pattern_groups()
        rid = str(uuid.uuid4())
        headers = firehose_headers(rid)
        headers["X-Amz-Firehose-Common-Attributes"] = json.dumps({"commonAttributes": {"logGroup": "raw-group-a"}})
        status, h, reply = self.server.request("POST", "/v1/firehose", firehose_body(records, rid), headers)
        self.assertFirehoseSuccess(status, h, reply, rid)
        self.assertEqual(self.counts()[0], events0 + 3)
        groups = pattern_groups()
        self.assertEqual(groups.get("raw-group-a", 0), groups0.get("raw-group-a", 0) + 2)

        rid = str(uuid.uuid4())
        headers = firehose_headers(rid)
        headers["X-Amz-Firehose-Source-Arn"] = "arn:aws:firehose:eu-west-1:111111111111:deliverystream/raw-stream-b"
        status, h, reply = self.server.request("POST", "/v1/firehose", firehose_body(records, rid), headers)
        self.assertFirehoseSuccess(status, h, reply, rid)
        self.assertEqual(self.counts()[0], events0 + 6)
        self.assertEqual(pattern_groups().get("raw-stream-b", 0), groups0.get("raw-stream-b", 0) + 2)

    def test_expect_100_continue(self):
        body = read_bytes(FIREHOSE_FIXTURE)
        rid = str(uuid.uuid4())
        events0, _ = self.counts()
        head = "POST /v1/firehose HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: %d\r\n" % len(body)
        head += "".join("%s: %s\r\n" % kv for kv in firehose_headers(rid).items()) + "\r\n"
        with self.server.connect() as s:
            s.sendall(head.encode())
            interim, _, _ = read_one_response(s, 5)
            self.assertIsNotNone(interim, "no 100 Continue")
            self.assertEqual(interim.status, 100)
            s.sendall(body)
            final, _, _ = read_one_response(s, 10)
        self.assertIsNotNone(final, "no reply after the body")
        self.assertEqual(final.status, 200, final.body)
        self.assertEqual(json.loads(final.body)["requestId"], rid)
        self.assertEqual(self.counts()[0], events0 + FIXTURE_EVENTS)

    def test_gzip_header_on_plain_body_is_400(self):
        before = self.counts()
        rid = str(uuid.uuid4())
        status, headers, reply = self.server.request("POST", "/v1/firehose", read_bytes(FIREHOSE_FIXTURE),
                                                     firehose_headers(rid, gzipped=True))
        self.assertEqual(status, 400, reply)
        self.assertFirehoseError(reply, rid)
        self.assertEqual(self.counts(), before)


# ---------------------------------------------------------------------------------------------
# CloudWatch Logs deliveries


class CloudWatchTest(ServerTestCase):
    def post(self, body, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.server.request("POST", "/v1/cloudwatch", body, h)

    def assertAccepted(self, status, body, n):
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body), {"accepted": n})

    def fixture(self, name):
        return read_bytes(os.path.join(FIXTURES, "cwl", name))

    @staticmethod
    def log_events(raw):
        dec, text, i, n = json.JSONDecoder(), raw.decode(), 0, 0
        while True:
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text):
                return n
            obj, i = dec.raw_decode(text, i)
            if obj.get("messageType") == "DATA_MESSAGE":
                n += len(obj["logEvents"])

    def test_plain_gzip_and_magic(self):
        raw = self.fixture("otel_valid_cloudwatch_log.json")
        n = self.log_events(raw)
        self.assertEqual(n, 3)
        before = self.ingested("cloudwatch")
        status, _, body = self.post(raw)
        self.assertAccepted(status, body, n)
        self.assertEqual(self.ingested("cloudwatch"), before + n)
        status, _, body = self.post(gzip.compress(raw), {"Content-Encoding": "gzip"})
        self.assertAccepted(status, body, n)
        status, _, body = self.post(gzip.compress(raw))  # no header: detected by the 1f 8b magic
        self.assertAccepted(status, body, n)
        self.assertEqual(self.ingested("cloudwatch"), before + 3 * n)

    def test_lambda_awslogs_form(self):
        raw = self.fixture("lambda_awslogs_event.json")
        inner = gzip.decompress(base64.b64decode(json.loads(raw)["awslogs"]["data"]))
        n = self.log_events(inner)
        before = self.ingested("cloudwatch")
        status, _, body = self.post(raw)
        self.assertAccepted(status, body, n)
        self.assertEqual(self.ingested("cloudwatch"), before + n)

    def test_concatenated_objects(self):
        raw = self.fixture("otel_multiple_json_objects.json")
        n = self.log_events(raw)
        self.assertEqual(n, 2)
        before = self.ingested("cloudwatch")
        status, _, body = self.post(raw)
        self.assertAccepted(status, body, n)
        status, _, body = self.post(self.fixture("otel_cwlog_multiple_records.ndjson"))
        self.assertAccepted(status, body, 2)
        self.assertEqual(self.ingested("cloudwatch"), before + n + 2)

    def test_control_message_counted_apart(self):
        before_events = self.ingested("cloudwatch")
        before_control = self.server.metric("faultline_control_messages_total", kind="cloudwatch")
        status, _, body = self.post(self.fixture("otel_valid_cloudwatch_log_control.json"))
        self.assertAccepted(status, body, 0)
        self.assertEqual(self.ingested("cloudwatch"), before_events)
        self.assertEqual(self.server.metric("faultline_control_messages_total", kind="cloudwatch"), before_control + 1)

    def test_bad_bodies_are_400(self):
        before = self.ingested("cloudwatch")
        for body, headers in ((b"{not json", {}),
                              (self.fixture("otel_valid_cloudwatch_log.json"), {"Content-Encoding": "gzip"}),
                              (b'{"awslogs": {"data": "%%%"}}', {})):
            with self.subTest(body=body[:40]):
                status, _, reply = self.post(body, headers)
                self.assertEqual(status, 400, reply)
                self.assertJsonError(reply)
        self.assertEqual(self.ingested("cloudwatch"), before)


# ---------------------------------------------------------------------------------------------
# Webhooks


VECTORS = None


def vectors():
    global VECTORS
    if VECTORS is None:
        VECTORS = load_vectors()
    return VECTORS


ROTATED_SECRET = "rotated-secret-2"
BEARER_TOKENS = ["token-one-abc", "token-two-def"]


def sign_github(secret, body):
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def sign_stripe(secret, body, t):
    mac = hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": "t=%d,v1=%s" % (t, mac)}


def sign_slack(secret, body, t):
    mac = hmac.new(secret.encode(), b"v0:" + str(t).encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(t), "X-Slack-Signature": "v0=" + mac}


def sign_standard(secret, body, t, msg_id=None):
    msg_id = msg_id or "msg_" + uuid.uuid4().hex  # a fresh delivery unless told (redeliveries keep the id)
    key = base64.b64decode(secret[len("whsec_"):]) if secret.startswith("whsec_") else secret.encode()
    mac = hmac.new(key, msg_id.encode() + b"." + str(t).encode() + b"." + body, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": str(t),
            "webhook-signature": "v1," + base64.b64encode(mac).decode()}


def webhook_config():
    v = vectors()
    return {
        "workers": 2,
        "sources": {
            "default": {"auth": "none"},
            "nested": {"auth": "none", "message_field": ["data.text"], "group": "nested-group"},
            "gh": {"auth": {"type": "github", "secrets": [v["github"]["secret"], ROTATED_SECRET]}},
            "stripe": {"auth": {"type": "stripe", "secrets": [v["stripe"]["secret"], ROTATED_SECRET]}},
            "slack": {"auth": {"type": "slack", "secrets": [v["slack"]["secret"], ROTATED_SECRET]}},
            "stdwh": {"auth": {"type": "standard-webhooks",
                               "secrets": [v["standard-webhooks"]["secret"], ROTATED_SECRET]}},
            "bearer": {"auth": {"type": "bearer", "tokens": BEARER_TOKENS}},
            "ids": {"auth": "none", "delivery_id_header": "X-Delivery"},
        },
    }


class WebhookTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.CONFIG = webhook_config()
        super().setUpClass()

    def post(self, source, body, headers=None, content_type="application/json"):
        h = {"Content-Type": content_type}
        h.update(headers or {})
        return self.server.request("POST", "/v1/webhook/" + source, body, h)

    def assertAccepted(self, status, body, n):
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body), {"accepted": n})

    # -- bodies --------------------------------------------------------------------------------

    def test_body_shapes(self):
        before = self.ingested("webhook:default")
        cases = [
            ("object", b'{"message": "ERROR one thing failed"}', "application/json", 1),
            ("msg field", b'{"msg": "second field name", "level": "info"}', "application/json", 1),
            ("array", json.dumps([{"message": "a"}, {"log": "b"}, {"text": "c"}]).encode(), "application/json", 3),
            ("ndjson", b'{"message": "line one"}\n{"message": "line two"}\n', "application/x-ndjson", 2),
            ("text", b"plain line one\n\nplain line two\r\nplain line three\n", "text/plain; charset=utf-8", 3),
        ]
        total = 0
        for name, body, ctype, n in cases:
            with self.subTest(name):
                status, _, reply = self.post("default", body, content_type=ctype)
                self.assertAccepted(status, reply, n)
                total += n
        self.assertEqual(self.ingested("webhook:default"), before + total)

    def test_gzip_bodies(self):
        before = self.ingested("webhook:default")
        status, _, reply = self.post("default", gzip.compress(b'[{"message": "g1"}, {"message": "g2"}]'),
                                     {"Content-Encoding": "gzip"})
        self.assertAccepted(status, reply, 2)
        status, _, reply = self.post("default", gzip.compress(b"t1\nt2\nt3\n"), {"Content-Encoding": "gzip"},
                                     content_type="text/plain")
        self.assertAccepted(status, reply, 3)
        status, _, reply = self.post("default", b'{"message": "not gzip"}', {"Content-Encoding": "gzip"})
        self.assertEqual(status, 400, reply)
        self.assertJsonError(reply)
        self.assertEqual(self.ingested("webhook:default"), before + 5)

    def test_dotted_message_path(self):
        before = self.ingested("webhook:nested")
        status, _, reply = self.post("nested", b'{"data": {"text": "ERROR nested message"}}')
        self.assertAccepted(status, reply, 1)
        self.assertEqual(self.ingested("webhook:nested"), before + 1)
        patterns = {p["name"]: p for p in self.server.get_json("/v1/patterns")["patterns"]}
        self.assertGreaterEqual(patterns["error_level"]["groups"].get("nested-group", 0), 1)

    def test_unknown_source_is_404(self):
        status, _, reply = self.post("no-such-source", b'{"message": "x"}')
        self.assertEqual(status, 404, reply)
        self.assertJsonError(reply)

    def test_messageless_object_is_400(self):
        before = self.ingested("webhook:default")
        status, _, reply = self.post("default", b'{"foo": "bar"}')
        self.assertEqual(status, 400, reply)
        self.assertJsonError(reply)
        # All or nothing: one bad element in an array refuses the whole array.
        status, _, reply = self.post("default", b'[{"message": "good"}, {"nope": 1}]')
        self.assertEqual(status, 400, reply)
        self.assertJsonError(reply)
        status, _, reply = self.post("default", b'{"message": ')
        self.assertEqual(status, 400, reply)
        self.assertJsonError(reply)
        self.assertEqual(self.ingested("webhook:default"), before)

    # -- auth ----------------------------------------------------------------------------------

    def test_vectors_reproduced_by_this_test(self):
        """Sanity check of the signing helpers: they reproduce the published vectors exactly."""
        v = vectors()
        g = v["github"]
        self.assertEqual(sign_github(g["secret"], g["body"].encode()), g["headers"])
        s = v["stripe"]
        t = int(s["headers"]["Stripe-Signature"].split(",")[0][2:])
        mine = sign_stripe(s["secret"], s["body"].encode(), t)["Stripe-Signature"]
        self.assertTrue(s["headers"]["Stripe-Signature"].startswith(mine), (mine, s["headers"]))
        sl = v["slack"]
        self.assertEqual(sign_slack(sl["secret"], sl["body"].encode(), int(sl["headers"]["X-Slack-Request-Timestamp"])),
                         sl["headers"])
        sw = v["standard-webhooks"]
        self.assertEqual(sign_standard(sw["secret"], sw["body"].encode(), int(sw["headers"]["webhook-timestamp"]),
                                       sw["headers"]["webhook-id"]), sw["headers"])

    def check_refused(self, source, body, headers, contains=None):
        before = self.ingested("webhook:" + source)
        status, _, reply = self.post(source, body, headers, content_type="text/plain")
        self.assertEqual(status, 401, reply)
        self.assertJsonError(reply, contains=contains)
        self.assertEqual(self.ingested("webhook:" + source), before)

    def check_accepted(self, source, body, headers):
        before = self.ingested("webhook:" + source)
        status, _, reply = self.post(source, body, headers, content_type="text/plain")
        self.assertAccepted(status, reply, 1)
        self.assertEqual(self.ingested("webhook:" + source), before + 1)

    def test_github(self):
        g = vectors()["github"]
        body = g["body"].encode()
        self.check_accepted("gh", body, g["headers"])  # the published vector as is: no timestamp
        self.check_accepted("gh", b"rotated secret body", sign_github(ROTATED_SECRET, b"rotated secret body"))
        self.check_refused("gh", body + b"!", g["headers"], "mismatch")  # body changed
        self.check_refused("gh", body, sign_github("not-the-secret", body), "mismatch")
        self.check_refused("gh", body, {}, "missing")
        self.check_refused("gh", body, {"X-Hub-Signature-256": "sha256=zz"})

    def test_stripe(self):
        s = vectors()["stripe"]
        body = s["body"].encode()
        self.check_refused("stripe", body, s["headers"], "tolerance")  # published vector: too old
        t = int(time.time())
        self.check_accepted("stripe", body, sign_stripe(s["secret"], body, t))
        self.check_accepted("stripe", body, sign_stripe(ROTATED_SECRET, body, t))
        self.check_refused("stripe", body, sign_stripe("whsec_wrong", body, t), "mismatch")
        self.check_refused("stripe", body + b" ", sign_stripe(s["secret"], body, t), "mismatch")
        self.check_refused("stripe", body, sign_stripe(s["secret"], body, t - 3600), "tolerance")
        self.check_refused("stripe", body, {}, "missing")

    def test_slack(self):
        sl = vectors()["slack"]
        body = sl["body"].encode()
        self.check_refused("slack", body, sl["headers"], "tolerance")
        t = int(time.time())
        self.check_accepted("slack", body, sign_slack(sl["secret"], body, t))
        self.check_accepted("slack", body, sign_slack(ROTATED_SECRET, body, t))
        self.check_refused("slack", body, sign_slack("wrong-secret", body, t), "mismatch")
        headers = sign_slack(sl["secret"], body, t)
        del headers["X-Slack-Signature"]
        self.check_refused("slack", body, headers, "missing")
        self.check_refused("slack", body, {}, "missing")

    def test_standard_webhooks(self):
        sw = vectors()["standard-webhooks"]
        body = sw["body"].encode()
        self.check_refused("stdwh", body, sw["headers"], "tolerance")
        t = int(time.time())
        self.check_accepted("stdwh", body, sign_standard(sw["secret"], body, t))
        self.check_accepted("stdwh", body, sign_standard(ROTATED_SECRET, body, t))
        self.check_refused("stdwh", body, sign_standard("whsec_" + base64.b64encode(b"wrong key").decode(), body, t),
                           "mismatch")
        headers = sign_standard(sw["secret"], body, t)
        headers["webhook-id"] = "msg_other"  # the id is signed
        self.check_refused("stdwh", body, headers, "mismatch")
        headers = sign_standard(sw["secret"], body, t)
        del headers["webhook-signature"]
        self.check_refused("stdwh", body, headers, "missing")

    def test_senders_handshakes_are_answered_and_not_counted_as_events(self):
        # Slack Events API url_verification (its documented payload, signed like every Slack
        # request): the challenge comes back. GitHub's ping event (signed): 200.
        sl = vectors()["slack"]
        body = json.dumps({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
                           "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                           "type": "url_verification"}).encode()
        t = int(time.time())
        before = self.ingested("webhook:slack")
        control = self.server.metric("faultline_control_messages_total", kind="slack_url_verification")
        status, _, reply = self.post("slack", body, sign_slack(sl["secret"], body, t))
        self.assertEqual(status, 200, reply)
        self.assertEqual(json.loads(reply), {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
        self.assertEqual(self.ingested("webhook:slack"), before)
        self.assertEqual(self.server.metric("faultline_control_messages_total", kind="slack_url_verification"),
                         control + 1)
        self.check_refused("slack", body, sign_slack("not-the-secret", body, t), "mismatch")  # auth first
        g = vectors()["github"]
        ping = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
        headers = dict(sign_github(g["secret"], ping), **{"X-GitHub-Event": "ping"})
        before = self.ingested("webhook:gh")
        status, _, reply = self.post("gh", ping, headers)
        self.assertEqual(status, 200, reply)
        self.assertEqual(json.loads(reply), {"accepted": 0, "ping": True})
        self.assertEqual(self.ingested("webhook:gh"), before)
        self.assertEqual(self.server.metric("faultline_control_messages_total", kind="github_ping"), 1)

    def test_redeliveries_are_answered_200_and_not_counted_again(self):
        # GitHub's X-GitHub-Delivery, Standard Webhooks' webhook-id (signed), and a configured
        # delivery_id_header: the same id again is a redelivery.
        g = vectors()["github"]
        body = b"ERROR redelivered github event"
        gh = dict(sign_github(g["secret"], body), **{"X-GitHub-Delivery": str(uuid.uuid4())})
        sw = vectors()["standard-webhooks"]
        t = int(time.time())
        std = sign_standard(sw["secret"], body, t)
        for source, headers in (("gh", gh), ("stdwh", std), ("ids", {"X-Delivery": "delivery-42"})):
            with self.subTest(source=source):
                before = self.ingested("webhook:" + source)
                status, _, reply = self.post(source, body, headers, content_type="text/plain")
                self.assertAccepted(status, reply, 1)
                self.assertEqual(self.ingested("webhook:" + source), before + 1)
                status, _, reply = self.post(source, body, headers, content_type="text/plain")
                self.assertEqual(status, 200, reply)
                self.assertEqual(json.loads(reply), {"accepted": 0, "duplicate": True})
                self.assertEqual(self.ingested("webhook:" + source), before + 1)
        # Another id is another delivery; an id of another source is not this one's.
        status, _, reply = self.post("ids", body, {"X-Delivery": "delivery-43"}, content_type="text/plain")
        self.assertAccepted(status, reply, 1)
        before = self.ingested("webhook:default")
        status, _, reply = self.post("default", body, {"X-Delivery": "delivery-42"}, content_type="text/plain")
        self.assertAccepted(status, reply, 1)
        self.assertEqual(self.ingested("webhook:default"), before + 1)

    def test_bearer(self):
        body = b"bearer line"
        self.check_accepted("bearer", body, {"Authorization": "Bearer " + BEARER_TOKENS[0]})
        self.check_accepted("bearer", body, {"Authorization": "Bearer " + BEARER_TOKENS[1]})
        self.check_refused("bearer", body, {"Authorization": "Bearer wrong-token"})
        self.check_refused("bearer", body, {"Authorization": "Basic " + BEARER_TOKENS[0]})
        self.check_refused("bearer", body, {}, "missing")

    def test_auth_failures_counted_as_rejections(self):
        before = self.server.metric("faultline_rejected_requests_total", reason="unauthorized")
        self.check_refused("bearer", b"x", {})
        self.assertEqual(self.server.metric("faultline_rejected_requests_total", reason="unauthorized"), before + 1)


# ---------------------------------------------------------------------------------------------
# Routing, health


class RoutingTest(ServerTestCase):
    def test_unknown_path_is_404_json(self):
        for method, path in (("GET", "/nope"), ("POST", "/v1/firehosex"), ("GET", "/v1/webhook/a/b")):
            with self.subTest(path=path):
                status, headers, body = self.server.request(method, path, b"" if method == "POST" else None)
                self.assertEqual(status, 404, body)
                self.assertTrue(headers.get("Content-Type", "").startswith("application/json"))
                self.assertJsonError(body)

    def test_wrong_method_is_405_with_allow(self):
        for method, path, allowed in (("GET", "/v1/firehose", "POST"), ("GET", "/v1/cloudwatch", "POST"),
                                      ("GET", "/v1/webhook/default", "POST"), ("POST", "/metrics", "GET"),
                                      ("DELETE", "/v1/templates", "GET"), ("PUT", "/healthz", "GET")):
            with self.subTest(method=method, path=path):
                status, headers, body = self.server.request(method, path, b"" if method != "GET" else None)
                self.assertEqual(status, 405, body)
                allow = [m.strip() for m in (headers.get("Allow") or "").split(",")]
                self.assertIn(allowed, allow, "Allow: %r" % headers.get("Allow"))
                self.assertJsonError(body)

    def test_healthz_and_readyz(self):
        status, _, body = self.server.request("GET", "/healthz")
        self.assertEqual(status, 200, body)
        status, _, body = self.server.request("GET", "/readyz")
        self.assertEqual(status, 200, body)
        self.assertEqual(self.server.metric("faultline_ready"), 1.0)

    def test_head_request(self):
        status, headers, body = self.server.request("HEAD", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")


class ShutdownTest(unittest.TestCase):
    # Regression: signals are handled before the port opens, so a SIGTERM right after the
    # "listening" line drains and exits 0 (it used to kill the process by the default action).
    def test_sigterm_right_after_listening_exits_zero(self):
        codes = []
        for _ in range(30):
            # 64 I/O threads: 63 more acceptors are bound after the "listening" line, which widens the
            # window enough to hit it reliably.
            srv = Server({"workers": 2, "io_threads": "64", "admin_listen": "127.0.0.1:0"}, wait_serving=False)
            try:
                codes.append(srv.stop())
            finally:
                srv.cleanup()
        self.assertEqual(codes, [0] * len(codes))

    def test_sighup_reloads_and_the_server_keeps_serving(self):
        srv = Server({"workers": 2})
        try:
            srv.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: any(r.get("trigger") == "SIGHUP" and r.get("msg") == "configuration reloaded"
                                                   for r in srv.log_records()), 5, 0.02),
                            srv.stderr())
            self.assertIsNone(srv.proc.poll(), "SIGHUP ended the process")
            self.assertEqual(srv.request("GET", "/healthz")[0], 200)
            self.assertEqual(srv.stop(), 0, srv.stderr())
        finally:
            srv.cleanup()

    def test_sigterm_exits_zero_and_stops_listening(self):
        srv = Server({"workers": 2})
        try:
            self.assertEqual(srv.request("GET", "/healthz")[0], 200)
            # A keep-alive connection idle at SIGTERM does not hold the shutdown up.
            idle = srv.connect()
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            res, _, _ = read_one_response(idle, 5)
            self.assertEqual(res.status, 200)
            t0 = time.monotonic()
            rc = srv.stop()
            self.assertEqual(rc, 0, srv.stderr())
            self.assertLess(time.monotonic() - t0, STOP_TIMEOUT)
            _, closed = recv_until_closed(idle, 2)
            self.assertTrue(closed, "the idle connection was not closed at shutdown")
            idle.close()
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
        finally:
            srv.cleanup()


# ---------------------------------------------------------------------------------------------
# HTTP framing (RFC 9112)


class FramingTest(ServerTestCase):
    CONFIG = {"workers": 2, "limits": {"header_timeout": "3s", "body_timeout": "3s", "idle_timeout": "3s"}}

    ATTACKS = {
        "content-length with chunked":
            b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "conflicting content-length":
            b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        "duplicate identical content-length":
            b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        "transfer-encoding gzip":
            b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
        "chunked not last":
            b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        "chunked in http/1.0":
            b"POST /v1/webhook/default HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "http/1.1 without host":
            b"GET /healthz HTTP/1.1\r\n\r\n",
        "bad chunk size":
            b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "two host headers":
            b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "garbage request line":
            b"HELLO\r\n\r\n",
    }

    def test_framing_attacks_get_400_and_close(self):
        for name, raw in self.ATTACKS.items():
            with self.subTest(name):
                with self.server.connect() as s:
                    s.sendall(raw)
                    data, closed = recv_until_closed(s, 5)
                    first = data.split(b"\r\n", 1)[0]
                    self.assertRegex(first.decode("latin-1"), r"^HTTP/1\.[01] 400 ", "reply: %r" % data[:200])
                    self.assertTrue(closed, "the server kept the connection open after: %s" % name)
                    responses, _ = parse_responses(data)
                    self.assertEqual(len(responses), 1, data)
                    self.assertJsonError(responses[0].body)

    def test_nothing_counted_by_smuggling_attempts(self):
        before = self.ingested("webhook:default")
        smuggle = (b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n1e\r\n{\"message\":\"smuggled ERROR\"}\r\n0\r\n\r\n")
        with self.server.connect() as s:
            s.sendall(smuggle)
            recv_until_closed(s, 5)
        self.assertEqual(self.ingested("webhook:default"), before)

    def test_valid_chunked_body_accepted(self):
        body = b'{"message": "chunked ERROR body"}'
        raw = (b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
               b"%x\r\n%s\r\n" % (10, body[:10]) + b"%x\r\n%s\r\n" % (len(body) - 10, body[10:]) + b"0\r\n\r\n")
        with self.server.connect() as s:
            s.sendall(raw)
            data, closed = recv_until_closed(s, 5)
        responses, _ = parse_responses(data)
        self.assertEqual([r.status for r in responses], [200], data)
        self.assertEqual(json.loads(responses[0].body), {"accepted": 1})

    def test_pipelined_requests_answered_in_order(self):
        with self.server.connect() as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            data = b""
            deadline = time.monotonic() + 5
            while len(parse_responses(data)[0]) < 2 and time.monotonic() < deadline:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                data += chunk
            responses, _ = parse_responses(data)
            self.assertEqual([r.status for r in responses], [200, 200], data)
        # Order: three different requests in one send, the last asking to close.
        with self.server.connect() as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                      b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n"
                      b"GET /v1/nothing-here HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            data, closed = recv_until_closed(s, 5)
            self.assertTrue(closed)
            responses, rest = parse_responses(data)
            self.assertEqual([r.status for r in responses], [200, 200, 404], data)
            self.assertEqual(json.loads(responses[0].body), {"status": "ok"})
            self.assertEqual(json.loads(responses[1].body), {"status": "ready"})
            self.assertEqual(rest, b"")


# A send() that takes part of what it is given (or nothing, EAGAIN) now and then: preloaded into
# the server, it makes the answers a small request gets at once (serve_at_once, which sends
# without waiting) go out in pieces, as a socket whose buffer is full takes them.
SHORT_SEND_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>
static unsigned calls;
ssize_t send(int fd, const void* buf, size_t len, int flags) {
    static ssize_t (*real)(int, const void*, size_t, int);
    if (!real) real = (ssize_t (*)(int, const void*, size_t, int))dlsym(RTLD_NEXT, "send");
    if (flags & MSG_DONTWAIT) {
        unsigned n = __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED);
        if (n % 3 == 1) { errno = EAGAIN; return -1; }
        if (n % 3 == 2 && len > 1) len = len / 2;
    }
    return real(fd, buf, len, flags);
}
"""


class ShortSendTest(unittest.TestCase):
    """Answers the socket does not take at once arrive whole, in order, on a kept connection."""

    def setUp(self):
        if BINARY is None:
            raise unittest.SkipTest("no faultline binary given")
        self.tmp = tempfile.mkdtemp(prefix="faultline-shortsend-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        shim = os.path.join(self.tmp, "short_send.so")
        src = os.path.join(self.tmp, "short_send.c")
        with open(src, "w") as f:
            f.write(SHORT_SEND_C)
        compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        self.assertIsNotNone(compiler, "a C compiler builds the send() shim")
        subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", shim, src, "-ldl"], check=True)
        env = {"LD_PRELOAD": shim,
               "ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")}
        self.server = Server({"workers": 1, "state_dir": ""}, env=env)
        self.addCleanup(self.server.cleanup)
        self.addCleanup(self.server.stop)

    def test_answers_sent_in_pieces_arrive_whole_and_in_order(self):
        n = 300
        with self.server.connect() as s:
            for i in range(n):
                body = b'{"message":"ERROR payment %d failed"}' % i
                s.sendall(b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\n"
                          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                # One request at a time: each is read whole by one read, and answered at once.
                response, rest, closed = read_one_response(s, 10)
                self.assertIsNotNone(response, "request %d: no whole answer (%r, closed=%r)" % (i, rest, closed))
                self.assertEqual(response.status, 200, response.body)
                self.assertEqual(json.loads(response.body), {"accepted": 1})
                self.assertEqual(parse_responses(rest)[1], b"")  # nothing after it
            # The 301st send takes nothing (EAGAIN): an answer that closes the connection goes
            # out whole from write_rest, then the connection closes.
            body = b'{"message":"ERROR last"}'
            s.sendall(b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            data, closed = recv_until_closed(s, 10)
            self.assertTrue(closed)
            responses, extra = parse_responses(data)
            self.assertEqual([(r.status, r.header("connection")) for r in responses], [(200, "close")])
            self.assertEqual(extra, b"")
        n += 1
        self.assertEqual(self.server.metric("faultline_events_ingested_total", source="webhook:default"), n)
        self.assertEqual(self.server.stop(), 0, self.server.stderr())


# ---------------------------------------------------------------------------------------------
# Size limits


class LimitsTest(ServerTestCase):
    CONFIG = {"workers": 2, "firehose": {"access_keys": [ACCESS_KEY]},
              "limits": {"body_bytes": "1KiB", "header_bytes": "16KiB", "header_timeout": "5s",
                         "body_timeout": "5s", "idle_timeout": "5s"}}

    def test_refusal_before_the_body_is_read_reaches_a_client_still_sending(self):
        # 413 is answered after the head; the client goes on sending its body. The server reads and
        # discards it for a moment (lingering close) so the answer is not destroyed by a reset.
        # Observable on loopback as an orderly end: the whole body is taken (no EPIPE/ECONNRESET
        # while sending) and the connection ends with FIN, not with a reset.
        with self.server.connect() as s:
            body = b"x" * (3 << 20)
            s.sendall(b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body))
            send_error = None
            try:
                s.sendall(body)
            except OSError as e:
                send_error = e
            res, rest, _ = read_one_response(s, 5)
            self.assertIsNotNone(res, "the 413 answer was lost")
            self.assertEqual(res.status, 413)
            self.assertIsNone(send_error, "the connection was reset while the client was still sending")
            s.settimeout(5)
            try:
                while s.recv(65536):
                    pass
            except ConnectionResetError:
                self.fail("the connection ended with a reset, not FIN")

    # Regression: a declared Content-Length above limits.body_bytes is answered 413 before any
    # body byte is read (it used to fail inside the head read as a 400).
    def test_413_before_the_body_is_read(self):
        for path, extra in (("/v1/webhook/default", b""),
                            ("/v1/cloudwatch", b""),
                            ("/v1/firehose", b"X-Amz-Firehose-Access-Key: " + ACCESS_KEY.encode() +
                             b"\r\nX-Amz-Firehose-Request-Id: big-1\r\n")):
            with self.subTest(path=path):
                with self.server.connect() as s:
                    t0 = time.monotonic()
                    s.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                              + extra + b"Content-Length: 10000000\r\n\r\n")  # and no body at all
                    res, _, _ = read_one_response(s, 3)
                    elapsed = time.monotonic() - t0
                    self.assertIsNotNone(res, "no reply within 3 s to a 10 MB Content-Length with no body sent")
                    self.assertEqual(res.status, 413, res.body)
                    self.assertLess(elapsed, 2.0)
                    doc = json.loads(res.body)
                    if path == "/v1/firehose":
                        self.assertEqual(doc["requestId"], "big-1")
                        self.assertIn("errorMessage", doc)
                    else:
                        self.assertIn("error", doc)
                    _, closed = recv_until_closed(s, 3)
                    self.assertTrue(closed, "connection left open after a 413 with an unread body")

    def test_413_for_chunked_body_over_limit(self):
        body = b'{"message": "' + b"x" * 4000 + b'"}'
        with self.server.connect() as s:
            s.sendall(b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                      + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
            res, _, _ = read_one_response(s, 5)
            self.assertIsNotNone(res)
            self.assertEqual(res.status, 413, res.body)

    def test_body_at_the_limit_accepted(self):
        msg = b'{"message": "' + b"y" * (1024 - 15) + b'"}'
        self.assertEqual(len(msg), 1024)
        status, _, body = self.server.request("POST", "/v1/webhook/default", msg, {"Content-Type": "application/json"})
        self.assertEqual(status, 200, body)

    def test_431_for_a_huge_header(self):
        with self.server.connect() as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * (20 * 1024) + b"\r\n\r\n")
            res, _, closed = read_one_response(s, 5)
            self.assertIsNotNone(res, "no reply to a 20 KiB header (closed=%s)" % closed)
            self.assertEqual(res.status, 431, res.body)
            self.assertJsonError(res.body)
        # A header just under the limit is fine.
        status, _, _ = self.server.request("GET", "/healthz", headers={"X-Big": "b" * (12 * 1024)})
        self.assertEqual(status, 200)


# ---------------------------------------------------------------------------------------------
# Deadlines


class DeadlineTest(ServerTestCase):
    CONFIG = {"workers": 2, "limits": {"header_timeout": "1s", "body_timeout": "1s", "idle_timeout": "1s"}}

    def assertClosedWithin(self, s, seconds, allowed_status=(408,)):
        t0 = time.monotonic()
        data, closed = recv_until_closed(s, seconds + 2)
        elapsed = time.monotonic() - t0
        self.assertTrue(closed, "connection still open after %.1f s" % elapsed)
        self.assertLess(elapsed, seconds)
        if data:
            responses, _ = parse_responses(data)
            self.assertTrue(responses, data)
            self.assertIn(responses[0].status, allowed_status, data)
        return data

    def test_header_deadline(self):
        with self.server.connect() as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Partial: yes")  # the head never ends
            self.assertClosedWithin(s, 3)

    def test_header_deadline_is_total_not_per_byte(self):
        # A client trickling one header byte every 200 ms is cut off by the total head deadline.
        with self.server.connect() as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
            t0 = time.monotonic()
            closed = False
            while time.monotonic() - t0 < 4:
                try:
                    s.sendall(b"X")
                except OSError:
                    closed = True
                    break
                s.settimeout(0.2)
                try:
                    if s.recv(65536) == b"":
                        closed = True
                        break
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed = True
                    break
            self.assertTrue(closed, "a trickled head kept the connection open for 4 s (header_timeout 1s)")
            self.assertLess(time.monotonic() - t0, 3)

    def test_body_deadline(self):
        with self.server.connect() as s:
            s.sendall(b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n" + b'{"message"')
            self.assertClosedWithin(s, 3)

    def test_body_deadline_is_total_not_per_byte(self):
        # A body trickled one byte every 200 ms is cut off by the total body deadline (408), and
        # the connection is closed at once (no lingering close for a client cut off as too slow).
        with self.server.connect() as s:
            s.sendall(b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n")
            t0 = time.monotonic()
            data = b""
            closed = False
            while time.monotonic() - t0 < 5 and not closed:
                try:
                    s.sendall(b" ")
                except OSError:
                    closed = True
                    break
                s.settimeout(0.2)
                try:
                    chunk = s.recv(65536)
                    data += chunk
                    closed = chunk == b""
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed = True
            self.assertTrue(closed, "a trickled body kept the connection open for 5 s (body_timeout 1s)")
            self.assertLess(time.monotonic() - t0, 2.5)
            # The 408 is sent, but a client still sending may see the reset first.
            responses, _ = parse_responses(data)
            self.assertTrue(not data or (responses and responses[0].status == 408), data)

    def test_idle_deadline(self):
        with self.server.connect() as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            res, rest, closed = read_one_response(s, 3)
            self.assertIsNotNone(res)
            self.assertEqual(res.status, 200)
            self.assertFalse(closed)
            t0 = time.monotonic()
            data, closed = recv_until_closed(s, 5)
            self.assertTrue(closed, "idle keep-alive connection not closed")
            self.assertLess(time.monotonic() - t0, 3)
            self.assertEqual(data, b"", "unexpected bytes on an idle connection")

    def test_timeouts_counted(self):
        before = self.server.metric("faultline_rejected_requests_total", reason="timeout")
        with self.server.connect() as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
            recv_until_closed(s, 4)
        self.assertGreaterEqual(self.server.metric("faultline_rejected_requests_total", reason="timeout"), before + 1)


# ---------------------------------------------------------------------------------------------
# Backpressure


class BackpressureTest(ServerTestCase):
    CONFIG = {"workers": 1, "limits": {"queue_capacity": "1", "retry_after": "1s"}}

    def fire(self, copies, n_requests):
        records = json.loads(read_bytes(FIREHOSE_FIXTURE))["records"] * copies
        bodies = []
        for _ in range(n_requests):
            rid = str(uuid.uuid4())
            bodies.append((rid, firehose_body(records, rid)))
        results = [None] * n_requests
        barrier = threading.Barrier(n_requests)

        def send(i):
            rid, body = bodies[i]
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=120)
            try:
                conn.putrequest("POST", "/v1/firehose")
                for k, v in firehose_headers(rid, key=None).items():
                    conn.putheader(k, v)
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders()
                barrier.wait(30)
                conn.send(body)
                res = conn.getresponse()
                results[i] = (res.status, res.headers.get("Retry-After"), res.read(), rid)
            except Exception as e:  # reported below, with the others
                results[i] = ("exception", None, repr(e).encode(), rid)
            finally:
                conn.close()

        threads = [threading.Thread(target=send, args=(i,)) for i in range(n_requests)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        return results

    def test_queue_full_429_and_ack_means_counted(self):
        copies, n = 20, 40
        while True:
            events0 = self.ingested("firehose")
            control0 = self.server.metric("faultline_control_messages_total", kind="cloudwatch")
            results = self.fire(copies, n)
            statuses = [r[0] for r in results]
            for status, retry_after, body, rid in results:
                self.assertIn(status, (200, 429), body[:300])
                doc = json.loads(body)
                self.assertEqual(doc["requestId"], rid)
                if status == 429:
                    self.assertIsNotNone(retry_after, "429 without Retry-After")
                    self.assertRegex(retry_after, r"^[1-9][0-9]*$")
                    self.assertIn("errorMessage", doc)
            ok = statuses.count(200)
            # Exactly what was acknowledged was counted: nothing lost, nothing extra.
            self.assertEqual(self.ingested("firehose"), events0 + ok * FIXTURE_EVENTS * copies)
            self.assertEqual(self.server.metric("faultline_control_messages_total", kind="cloudwatch"), control0 + ok * copies)
            self.assertGreaterEqual(ok, 1, "every request refused")
            if statuses.count(429) or copies >= 640:
                break
            copies *= 2  # no 429 on this machine yet: bigger bodies, not a weaker assertion
        self.assertGreaterEqual(statuses.count(429), 1,
                                "queue_capacity 1 never answered 429 to %d concurrent requests of %d records"
                                % (n, 4 * copies))
        self.assertGreaterEqual(self.server.metric("faultline_rejected_requests_total", reason="queue_full"), 1)
        # The queue drains: the service is ready again and the gauges are back to zero.
        self.assertTrue(wait_until(lambda: self.server.request("GET", "/readyz")[0] == 200, 10))
        m = self.server.metrics()
        self.assertEqual(metric_value(m, "faultline_queue_depth"), 0)
        self.assertEqual(metric_value(m, "faultline_inflight_body_bytes"), 0)


class InflightBytesTest(ServerTestCase):
    CONFIG = {"workers": 2, "limits": {"inflight_bytes": "2KiB", "retry_after": "2s"}}

    def test_body_over_inflight_budget_is_503(self):
        before = self.ingested("webhook:default")
        body = b'{"message": "' + b"z" * (4096 - 15) + b'"}'
        self.assertEqual(len(body), 4096)
        with self.server.connect() as s:
            s.sendall(b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 4096\r\n\r\n" + body)
            res, _, _ = read_one_response(s, 5)
        self.assertIsNotNone(res)
        self.assertEqual(res.status, 503, res.body)
        self.assertEqual(res.header("retry-after"), "2")
        self.assertJsonError(res.body)
        self.assertEqual(self.ingested("webhook:default"), before)
        self.assertGreaterEqual(self.server.metric("faultline_rejected_requests_total", reason="inflight_bytes"), 1)
        # A small body still fits the budget.
        status, _, reply = self.server.request("POST", "/v1/webhook/default", b'{"message": "small"}',
                                               {"Content-Type": "application/json"})
        self.assertEqual(status, 200, reply)


# ---------------------------------------------------------------------------------------------
# Metrics: promtool and a real Prometheus


PROMTOOL = shutil.which("promtool") or ("/usr/bin/promtool" if os.path.exists("/usr/bin/promtool") else None)
PROMETHEUS = shutil.which("prometheus") or ("/usr/bin/prometheus" if os.path.exists("/usr/bin/prometheus") else None)


class MetricsTest(ServerTestCase):
    def ingest_some(self):
        status, _, body = self.server.request("POST", "/v1/webhook/default",
                                              b"ERROR a\nERROR b\nWARN c\nplain d\nERROR e\n",
                                              {"Content-Type": "text/plain"})
        self.assertEqual(status, 200, body)
        status, _, body = self.server.request("POST", "/v1/cloudwatch",
                                              read_bytes(os.path.join(FIXTURES, "cwl", "sshd100_data_message.json")))
        self.assertEqual(status, 200, body)
        self.server.request("GET", "/nope")

    def test_names_and_content_type(self):
        self.ingest_some()
        status, headers, body = self.server.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("text/plain", headers.get("Content-Type"))
        self.assertIn("version=0.0.4", headers.get("Content-Type"))
        m = parse_metrics(body.decode())
        names = {k[0] for k in m}
        for name in ("faultline_http_requests_total", "faultline_http_request_duration_seconds_bucket",
                     "faultline_http_request_duration_seconds_count", "faultline_events_ingested_total",
                     "faultline_control_messages_total", "faultline_pattern_matches_total", "faultline_templates",
                     "faultline_decode_errors_total", "faultline_rejected_requests_total", "faultline_queue_depth",
                     "faultline_inflight_body_bytes", "faultline_build_info"):
            self.assertIn(name, names)
        self.assertGreaterEqual(metric_value(m, "faultline_events_ingested_total", source="webhook:default"), 5)
        self.assertGreaterEqual(metric_value(m, "faultline_events_ingested_total", source="cloudwatch"), 100)
        self.assertGreaterEqual(metric_value(m, "faultline_pattern_matches_total", pattern="error_level",
                                             group="default"), 3)
        self.assertGreaterEqual(metric_value(m, "faultline_pattern_matches_total", pattern="sshd_error",
                                             group="/ec2/sshd"), 1)
        self.assertGreaterEqual(metric_value(m, "faultline_http_requests_total", route="/v1/webhook", code="200"), 1)
        self.assertGreaterEqual(metric_value(m, "faultline_http_requests_total", route="other", code="404"), 1)

    def test_templates_new_total_exported(self):
        """SPEC §5 lists faultline_templates_new_total among the metrics every build exports."""
        self.ingest_some()
        m = self.server.metrics()
        self.assertIn("faultline_templates_new_total", {k[0] for k in m})

    def test_group_label_values_capped(self):
        srv = Server({"workers": 2, "metrics": {"max_groups": "3"},
                      "sources": {"default": {"auth": "none"}, "multi": {"auth": "none", "group_field": "svc"}}})
        try:
            events = [{"message": "ERROR from service %d" % i, "svc": "svc-%d" % i} for i in range(8)]
            status, _, body = srv.request("POST", "/v1/webhook/multi", json.dumps(events).encode(),
                                          {"Content-Type": "application/json"})
            self.assertEqual(status, 200, body)
            m = srv.metrics()
            series = {dict(labels)["group"]: v for (name, labels), v in m.items()
                      if name == "faultline_pattern_matches_total" and dict(labels).get("pattern") == "error_level"}
            self.assertLessEqual(len(series), 3, series)
            self.assertIn("other", series)
            self.assertEqual(sum(series.values()), 8, series)
            # The JSON API is not capped: every group is there.
            pats = {p["name"]: p for p in srv.get_json("/v1/patterns")["patterns"]}
            self.assertEqual(len(pats["error_level"]["groups"]), 8)
        finally:
            rc = srv.stop()
            srv.cleanup()
        self.assertEqual(rc, 0)

    def test_promtool_check_metrics(self):
        if not PROMTOOL:
            self.skipTest("promtool is not installed (Debian package 'prometheus')")
        self.ingest_some()
        text = self.server.metrics_text()
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(p.returncode, 0, "promtool check metrics:\n%s" % p.stdout.decode(errors="replace"))

    def test_scraped_by_prometheus(self):
        if not PROMETHEUS:
            self.skipTest("prometheus is not installed (Debian package 'prometheus')")
        self.ingest_some()
        expected = self.server.metric("faultline_events_ingested_total", source="webhook:default")
        tmp = tempfile.mkdtemp(prefix="faultline-prom-")
        port = free_port()
        cfg = os.path.join(tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: faultline\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % self.server.port)
        log = open(os.path.join(tmp, "prometheus.log"), "wb")
        prom = subprocess.Popen([PROMETHEUS, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                                 "--web.listen-address=127.0.0.1:%d" % port], stdout=log, stderr=subprocess.STDOUT)
        try:
            query = urllib.parse.urlencode({"query": 'faultline_events_ingested_total{source="webhook:default"}'})
            url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, query)
            last = [None]

            def scraped():
                if prom.poll() is not None:
                    return True  # exited: reported below
                try:
                    with urllib.request.urlopen(url, timeout=5) as r:
                        doc = json.load(r)
                except (OSError, ValueError) as e:
                    last[0] = repr(e)
                    return False
                last[0] = doc
                result = doc.get("data", {}).get("result", [])
                return bool(result) and float(result[0]["value"][1]) == expected

            ok = wait_until(scraped, 60, interval=0.5)
            if prom.poll() is not None:
                log.flush()
                self.fail("prometheus exited with %s:\n%s" % (prom.returncode,
                                                               read_bytes(log.name)[-3000:].decode(errors="replace")))
            self.assertTrue(ok, "prometheus never reported %s (last answer %r)" % (expected, last[0]))
            # The target is healthy (the scrape parsed the whole exposition without errors).
            with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/targets" % port, timeout=5) as r:
                targets = json.load(r)["data"]["activeTargets"]
            self.assertEqual([t["health"] for t in targets], ["up"], targets)
        finally:
            if prom.poll() is None:
                prom.terminate()
                try:
                    prom.wait(15)
                except subprocess.TimeoutExpired:
                    prom.kill()
                    prom.wait(10)
            log.close()
            shutil.rmtree(tmp, ignore_errors=True)


class DecompressionLimitTest(ServerTestCase):
    CONFIG = {"workers": 2, "limits": {"decompressed_bytes": "8KiB", "message_bytes": "1KiB"}}

    def test_decompression_bomb_is_400_naming_the_limit(self):
        bomb_text = b"ERROR the same line again and again\n" * 30000  # ~1 MiB, a few KiB gzip'd
        cwl = json.dumps({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "g", "logStream": "s",
                          "subscriptionFilters": [], "logEvents": [{"id": "1", "timestamp": 1, "message": "x" * 200}] * 5000})
        rid = str(uuid.uuid4())
        cases = [
            ("webhook", "/v1/webhook/default", gzip.compress(bomb_text),
             {"Content-Type": "text/plain", "Content-Encoding": "gzip"}),
            ("cloudwatch", "/v1/cloudwatch", gzip.compress(cwl.encode()), {"Content-Type": "application/json"}),
            ("firehose record", "/v1/firehose",
             firehose_body([{"data": base64.b64encode(gzip.compress(bomb_text)).decode()}], rid), firehose_headers(rid, key=None)),
            ("firehose body", "/v1/firehose", gzip.compress(firehose_body([{"data": base64.b64encode(b"x" * 20000).decode()}],
                                                                          rid + "-2")),
             firehose_headers(rid + "-2", key=None, gzipped=True)),
        ]
        m0 = self.server.metrics()
        for name, path, body, headers in cases:
            with self.subTest(name):
                self.assertLess(len(body), 64 * 1024)
                status, _, reply = self.server.request("POST", path, body, headers)
                self.assertEqual(status, 400, reply)
                doc = json.loads(reply)
                message = doc.get("errorMessage") if path == "/v1/firehose" else doc.get("error")
                self.assertIn("8192", message or "", doc)
        m1 = self.server.metrics()
        for source in ("webhook:default", "cloudwatch", "firehose"):
            self.assertEqual(metric_value(m1, "faultline_events_ingested_total", source=source),
                             metric_value(m0, "faultline_events_ingested_total", source=source))


class AdminListenerTest(ServerTestCase):
    CONFIG = {"workers": 2, "admin_listen": "127.0.0.1:0"}

    def test_admin_listener_serves_only_metrics_and_health(self):
        addr = self.server.address_of("admin")
        self.assertIsNotNone(addr, "no 'listening' line for the admin listener:\n" + self.server.stderr())
        port = addr[1]
        self.assertNotEqual(port, self.server.port)
        for path in ("/metrics", "/healthz", "/readyz"):
            with self.subTest(path=path):
                self.assertEqual(self.server.request("GET", path, port=port)[0], 200)
        for method, path in (("POST", "/v1/webhook/default"), ("GET", "/v1/templates"), ("GET", "/v1/patterns")):
            with self.subTest(path=path):
                status, _, body = self.server.request(method, path, b'{"message": "x"}' if method == "POST" else None,
                                                      port=port)
                self.assertEqual(status, 404, body)
        self.assertEqual(self.ingested("webhook:default"), 0)


class EnvironmentTest(unittest.TestCase):
    def test_env_access_keys_and_flag_precedence(self):
        # FAULTLINE_LISTEN names a port that is not used: --listen (a flag) overrides it.
        srv = Server({"workers": 2}, env={"FAULTLINE_FIREHOSE_ACCESS_KEYS": "env-key-1,env-key-2",
                                          "FAULTLINE_LISTEN": "127.0.0.1:1", "FAULTLINE_WORKERS": "1"})
        try:
            self.assertNotEqual(srv.port, 1)
            body = read_bytes(FIREHOSE_FIXTURE)
            rid = str(uuid.uuid4())
            self.assertEqual(srv.request("POST", "/v1/firehose", body, firehose_headers(rid, key=None))[0], 401)
            self.assertEqual(srv.request("POST", "/v1/firehose", body, firehose_headers(rid, key="env-key-2"))[0], 200)
            self.assertEqual(srv.metric("faultline_events_ingested_total", source="firehose"), FIXTURE_EVENTS)
        finally:
            rc = srv.stop()
            srv.cleanup()
        self.assertEqual(rc, 0)


class MaxConnectionsTest(ServerTestCase):
    CONFIG = {"workers": 2, "limits": {"max_connections": "2", "idle_timeout": "20s"}}

    def test_connections_beyond_the_cap_closed_at_once(self):
        held = []
        try:
            def hold_one():
                # A connection of the readiness probe (or of an earlier attempt) may still count
                # for a moment after its client closed it: retry until one is served.
                s = self.server.connect()
                try:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                    res, _, _ = read_one_response(s, 5)
                except OSError:
                    res = None
                if res is not None and res.status == 200:
                    held.append(s)
                    return True
                s.close()
                return False
            for _ in range(2):
                self.assertTrue(wait_until(hold_one, 5, 0.1), "no connection served under the cap")
            extra = self.server.connect()
            try:
                extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            except OSError:
                pass
            t0 = time.monotonic()
            data, closed = recv_until_closed(extra, 5)
            extra.close()
            self.assertTrue(closed)
            self.assertEqual(data, b"", "a connection over the cap was served")
            self.assertLess(time.monotonic() - t0, 2)
            held.pop().close()

            def served():
                try:
                    return self.server.request("GET", "/healthz", timeout=2)[0] == 200
                except OSError:
                    return False
            self.assertTrue(wait_until(served, 5, 0.1), "no connection accepted after one was released")

            def rejected():
                # The connection of served() may still count for a moment: retry a refused one.
                try:
                    return self.server.metric("faultline_rejected_requests_total", reason="max_connections")
                except OSError:
                    return 0
            self.assertGreaterEqual(wait_until(rejected, 5, 0.1), 1)
        finally:
            for s in held:
                s.close()


class IoThreadBalanceTest(ServerTestCase):
    # The kernel's SO_REUSEPORT spreads connections over the I/O threads' listeners by a hash; the
    # server then moves each to the thread with the fewest, which serves it.
    CONFIG = {"workers": 1, "io_threads": "4"}

    def per_thread(self):
        m = self.server.metrics()
        return [int(metric_value(m, "faultline_io_thread_connections", thread=str(i))) for i in range(4)]

    def test_connections_are_spread_evenly_and_served_where_they_land(self):
        held = []
        try:
            for _ in range(40):
                s = self.server.connect()
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                res, _, _ = read_one_response(s, 5)
                self.assertEqual(res.status, 200)
                held.append(s)
            # 40 held and the scrape's own connection (earlier scrapes may still be closing).
            counts = wait_until(lambda: (lambda c: c if sum(c) == 41 else None)(self.per_thread()), 5, 0.05)
            self.assertIsNotNone(counts, self.per_thread())
            self.assertLessEqual(max(counts) - min(counts), 1, counts)
            # Every connection, moved or not, keeps serving requests on its thread.
            for s in held:
                s.sendall(b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\nContent-Length: 23\r\n\r\n"
                          b'{"message":"ERROR x 1"}')
            for s in held:
                res, _, _ = read_one_response(s, 5)
                self.assertEqual(res.status, 200)
            self.assertEqual(self.server.metric("faultline_events_ingested_total", source="webhook:default"), 40)
        finally:
            for s in held:
                s.close()
        # Closed: each thread's count comes back down (the scrape's own connection aside).
        self.assertTrue(wait_until(lambda: sum(self.per_thread()) == 1, 5, 0.05), self.per_thread())

    def test_io_threads_do_not_preempt_the_workers(self):
        # /proc/PID/task/TID/stat: field 19 is the nice value, 41 the policy (0 SCHED_OTHER,
        # 3 SCHED_BATCH). The I/O threads run SCHED_BATCH (their wakeups wait for a free core or
        # a tick instead of preempting a worker); the worker runs at nice 5, normal policy.
        if os.nice(0) != 0 or os.sched_getscheduler(0) != os.SCHED_OTHER:
            self.skipTest("the tests run niced or not SCHED_OTHER: the server's threads inherit it")

        def threads():
            out = []
            task = "/proc/%d/task" % self.server.proc.pid
            for tid in os.listdir(task):
                try:
                    with open("%s/%s/stat" % (task, tid)) as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except FileNotFoundError:  # a thread that just ended
                    continue
                out.append((int(fields[16]), int(fields[38])))  # (nice, policy): fields 19 and 41
            return out

        # Each I/O thread sets its policy as it starts: all four within a moment of listening.
        wait_until(lambda: sum(1 for _, policy in threads() if policy == 3) >= 4, 5)
        seen = threads()
        self.assertEqual(sum(1 for nice, policy in seen if policy == 3), 4, seen)  # the 4 I/O threads
        self.assertEqual([(n, p) for n, p in seen if n == 5], [(5, 0)], seen)     # the 1 worker

    def test_connections_reset_at_once_are_all_given_back(self):
        # Hostile: 300 connections reset (RST) right after connecting, some while being handed to
        # another thread, some with half a request sent. None may stay counted, and the server
        # keeps serving.
        for i in range(300):
            s = self.server.connect()
            if i % 3 == 1:
                s.sendall(b"POST /v1/webhook/default HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        self.assertTrue(wait_until(lambda: sum(self.per_thread()) == 1, 10, 0.05), self.per_thread())
        self.assertEqual(self.server.metric("faultline_connections"), 1)
        self.assertEqual(self.server.request("GET", "/healthz")[0], 200)


def stop_and_clean(srv):
    rc = srv.stop()
    srv.cleanup()
    return rc


class ReloadTest(unittest.TestCase):
    # SPEC §3: SIGHUP reloads the configuration (patterns, keys, sources); a bad new
    # configuration is rejected with a log line and the old one stays.
    def test_sighup_reloads_configuration(self):
        cfg = {"workers": 2, "firehose": {"access_keys": ["key-before"]}}
        srv = Server(cfg)
        try:
            self.assertEqual(srv.request("GET", "/healthz")[0], 200)
            new_patterns = PATTERNS + [{"name": "added_on_reload", "class": "error", "regex": "reloaded marker"}]
            srv.write_config({"workers": 2, "state_dir": os.path.join(srv.tmp, "state"), "patterns": new_patterns,
                              "firehose": {"access_keys": ["key-after"]},
                              "sources": {"default": {"auth": "none"}, "added": {"auth": "none"}}})
            srv.proc.send_signal(signal.SIGHUP)

            def reloaded():
                if srv.proc.poll() is not None:
                    return True
                try:
                    names = [p["name"] for p in srv.get_json("/v1/patterns")["patterns"]]
                except OSError:
                    return False
                return "added_on_reload" in names
            wait_until(reloaded, 10, 0.1)
            self.assertIsNone(srv.proc.poll(), "SIGHUP ended the process (exit %s)" % srv.proc.poll())
            self.assertIn("added_on_reload", [p["name"] for p in srv.get_json("/v1/patterns")["patterns"]])
            status, _, body = srv.request("POST", "/v1/webhook/added", b'{"message": "reloaded marker"}',
                                          {"Content-Type": "application/json"})
            self.assertEqual(status, 200, body)
            rid = str(uuid.uuid4())
            fh = read_bytes(FIREHOSE_FIXTURE)
            self.assertEqual(srv.request("POST", "/v1/firehose", fh, firehose_headers(rid, key="key-before"))[0], 401)
            self.assertEqual(srv.request("POST", "/v1/firehose", fh, firehose_headers(rid, key="key-after"))[0], 200)

            # A broken configuration: refused with a log line; the running one stays.
            lines_before = len(srv.lines)
            srv.write_config("patterns: [ {name: broken, regex: '(unclosed'} ]")
            srv.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: len(srv.lines) > lines_before, 10, 0.1), "no log line for a bad reload")
            self.assertIsNone(srv.proc.poll())
            self.assertIn("added_on_reload", [p["name"] for p in srv.get_json("/v1/patterns")["patterns"]])
            self.assertEqual(srv.request("POST", "/v1/webhook/added", b'{"message": "still here"}',
                                         {"Content-Type": "application/json"})[0], 200)
            self.assertEqual(srv.metric("faultline_config_reloads_total", result="success"), 1)
            self.assertEqual(srv.metric("faultline_config_reloads_total", result="failure"), 1)
            self.assertTrue(wait_until(lambda: any(r.get("msg", "").startswith("configuration reload rejected")
                                                   for r in srv.log_records()), 5))
        finally:
            rc = stop_and_clean(srv)
        self.assertEqual(rc, 0)

    def test_counts_follow_patterns_by_name_across_a_reload(self):
        srv = Server({"workers": 2, "patterns": [{"name": "keep", "class": "error", "regex": "KEEP"},
                                                 {"name": "gone", "class": "error", "regex": "GONE"}]})
        try:
            self.assertEqual(srv.request("POST", "/v1/webhook/default", b'{"message": "KEEP GONE a"}')[0], 200)
            srv.write_config({"workers": 2, "state_dir": os.path.join(srv.tmp, "state"),
                              "patterns": [{"name": "fresh", "class": "warn", "regex": "FRESH"},
                                           {"name": "keep", "class": "error", "regex": "KEEP"}],
                              "sources": {"default": {"auth": "none"}}})
            status, _, body = srv.request("POST", "/-/reload")
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body), {"reloaded": True})
            self.assertEqual(srv.request("POST", "/v1/webhook/default", b'{"message": "KEEP FRESH b"}')[0], 200)
            counts = {p["name"]: p["count"] for p in srv.get_json("/v1/patterns")["patterns"]}
            self.assertEqual(counts, {"fresh": 1, "keep": 2})  # "gone" went with its counts
            report = srv.get_json("/v1/report")
            self.assertEqual(report["patterns"], {"fresh": 1, "keep": 2})
            self.assertEqual(report["events"], 2)
        finally:
            self.assertEqual(stop_and_clean(srv), 0)

    def test_reloads_under_load_lose_nothing(self):
        srv = Server({"workers": 2})
        try:
            fh = read_bytes(FIREHOSE_FIXTURE)
            results = []
            lock = threading.Lock()

            def sender(k):
                conn_results = []
                for i in range(15):
                    status, _, _ = srv.request("POST", "/v1/firehose", fh, firehose_headers("load-%d-%d" % (k, i)))
                    conn_results.append(status)
                with lock:
                    results.extend(conn_results)
            threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for _ in range(6):
                self.assertEqual(srv.request("POST", "/-/reload")[0], 200)
                srv.proc.send_signal(signal.SIGHUP)
                time.sleep(0.02)
            for t in threads:
                t.join(60)
            self.assertEqual(sorted(set(results)), [200])
            self.assertEqual(srv.ingested("firehose") if hasattr(srv, "ingested") else
                             srv.metric("faultline_events_ingested_total", source="firehose"),
                             len(results) * FIXTURE_EVENTS)
            self.assertTrue(wait_until(lambda: srv.metric("faultline_config_reloads_total", result="success") == 12, 5))
        finally:
            self.assertEqual(stop_and_clean(srv), 0)

    def test_reload_endpoint_token(self):
        srv = Server({"workers": 1, "reload_token": "s3cret"})
        try:
            self.assertEqual(srv.request("POST", "/-/reload")[0], 403)
            self.assertEqual(srv.request("POST", "/-/reload", b"", {"Authorization": "Bearer nope"})[0], 403)
            self.assertEqual(srv.request("POST", "/-/reload", b"", {"Authorization": "Bearer s3cret"})[0], 200)
            self.assertEqual(srv.request("GET", "/-/reload")[0], 405)
            srv.write_config("patterns: [ {name: broken, regex: '(a)\\1'} ]")
            status, _, body = srv.request("POST", "/-/reload", b"", {"Authorization": "Bearer s3cret"})
            self.assertEqual(status, 400)
            self.assertIn("patterns[0].regex", json.loads(body)["error"])
        finally:
            self.assertEqual(stop_and_clean(srv), 0)


class StateTest(unittest.TestCase):
    # SPEC §4: counters and templates are snapshotted to the state directory at shutdown and
    # restored at start.
    def test_state_survives_restart(self):
        tmp = tempfile.mkdtemp(prefix="faultline-state-")
        try:
            cfg = {"workers": 2, "state_dir": os.path.join(tmp, "state")}
            srv = Server(cfg, tmp=tmp)
            try:
                status, _, body = srv.request("POST", "/v1/webhook/default",
                                              b"Task timed out after 3.00 seconds\nERROR disk full on /dev/sda1\nok\n",
                                              {"Content-Type": "text/plain"})
                self.assertEqual(status, 200, body)
                templates = srv.get_json("/v1/templates")["templates"]
                ingested = srv.metric("faultline_events_ingested_total", source="webhook:default")
            finally:
                rc = stop_and_clean(srv)
            self.assertEqual(rc, 0)
            self.assertTrue(os.path.isdir(cfg["state_dir"]) and os.listdir(cfg["state_dir"]),
                            "nothing written to state_dir at shutdown")
            srv = Server(cfg, tmp=tmp)
            try:
                self.assertEqual(srv.metric("faultline_events_ingested_total", source="webhook:default"), ingested)
                again = srv.get_json("/v1/templates")["templates"]
                self.assertEqual({(t["id"], t["count"]) for t in again}, {(t["id"], t["count"]) for t in templates})
            finally:
                rc = stop_and_clean(srv)
            self.assertEqual(rc, 0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class LoggingTest(unittest.TestCase):
    """Logs: JSON lines with request id and remote address for refused requests, rate-limited;
    --log-format text for people."""

    def test_refused_requests_are_logged_rate_limited_and_none_is_lost_from_the_count(self):
        srv = Server({"workers": 1})
        try:
            for i in range(30):
                status, _, _ = srv.request("POST", "/v1/firehose", b"not json",
                                           {"X-Amz-Firehose-Request-Id": "bad-%d" % i, "Content-Type": "application/json"})
                self.assertEqual(status, 400)
            time.sleep(1.1)  # the next second: one more line, carrying how many were suppressed
            srv.request("POST", "/v1/firehose", b"not json", {"X-Amz-Firehose-Request-Id": "bad-last"})
            self.assertTrue(wait_until(lambda: any(r.get("request_id") == "bad-last" for r in srv.log_records()), 5))
            refused = [r for r in srv.log_records() if r.get("msg") == "request refused"]
            self.assertLess(len(refused), 31)
            self.assertEqual(len(refused) + sum(int(r.get("suppressed", "0")) for r in refused), 31)
            first = refused[0]
            self.assertEqual(first["route"], "/v1/firehose")
            self.assertEqual(first["status"], "400")
            self.assertEqual(first["request_id"], "bad-0")
            self.assertRegex(first["remote"], r"^127\.0\.0\.1:[0-9]+$")
            self.assertIn("errorMessage", first["reply"])
            for r in refused:
                self.assertIn(r["level"], ("info", "warn"))
                self.assertRegex(r["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        finally:
            self.assertEqual(stop_and_clean(srv), 0)

    def test_text_format(self):
        tmp = tempfile.mkdtemp(prefix="faultline-log-")
        port = free_port()
        try:
            proc = subprocess.Popen([BINARY, "serve", "--log-format", "text", "--listen", "127.0.0.1:%d" % port,
                                     "--state-dir", os.path.join(tmp, "state")],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                self.assertTrue(wait_until(lambda: http_status(port, "/healthz") == 200, 10))
            finally:
                proc.send_signal(signal.SIGTERM)
                _, err = proc.communicate(timeout=10)
            self.assertEqual(proc.returncode, 0)
            lines = err.decode().splitlines()
            self.assertTrue(lines)
            for line in lines:
                self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO |WARN |ERROR) \S")
                self.assertFalse(line.startswith("{"))
            self.assertTrue(any(" listening address=127.0.0.1:%d listener=api" % port in l for l in lines), lines)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def http_status(port, path):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return None


class TlsTest(unittest.TestCase):
    """tls: {cert, key}: faultline terminates HTTPS itself (Firehose only delivers to HTTPS)."""

    @classmethod
    def setUpClass(cls):
        if not shutil.which("openssl"):
            raise unittest.SkipTest("openssl is not installed")
        cls.tmp = tempfile.mkdtemp(prefix="faultline-tls-")
        cls.cert = os.path.join(cls.tmp, "cert.pem")
        cls.key = os.path.join(cls.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", cls.key, "-out", cls.cert,
                        "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.server = Server({"workers": 2, "tls": {"cert": cls.cert, "key": cls.key}}, wait_serving=False)
        cls.ctx = ssl.create_default_context(cafile=cls.cert)
        assert wait_until(lambda: cls.https("GET", "/healthz")[0] == 200, 10)

    @classmethod
    def tearDownClass(cls):
        rc = stop_and_clean(cls.server)
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, rc

    @classmethod
    def https(cls, method, path, body=None, headers=None):
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", cls.server.port, timeout=5, context=cls.ctx)
            conn.request(method, path, body=body, headers=headers or {})
            res = conn.getresponse()
            out = (res.status, dict(res.getheaders()), res.read())
            conn.close()
            return out
        except (OSError, ssl.SSLError):
            return (None, {}, b"")

    def test_firehose_over_https_is_counted(self):
        def ingested():
            return metric_value(parse_metrics(self.https("GET", "/metrics")[2].decode()),
                                "faultline_events_ingested_total", source="firehose") or 0
        before = ingested()
        body = read_bytes(os.path.join(DATA, "fixtures", "firehose", "cwl_via_firehose_request.json"))
        status, _, reply = self.https("POST", "/v1/firehose", body, {"X-Amz-Firehose-Request-Id": "tls-1",
                                                                    "Content-Type": "application/json"})
        self.assertEqual(status, 200, reply)
        self.assertEqual(json.loads(reply)["requestId"], "tls-1")
        self.assertEqual(ingested(), before + FIXTURE_EVENTS)

    def test_plain_http_gets_no_http_answer(self):
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data, _ = recv_until_closed(s, 5)
        s.close()
        self.assertFalse(data.startswith(b"HTTP/1.1 200"), data[:80])

    def test_untrusted_certificate_is_refused_by_a_verifying_client(self):
        ctx = ssl.create_default_context()  # system CAs only: the self-signed certificate is not trusted
        with self.assertRaises(ssl.SSLError):
            conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, timeout=5, context=ctx)
            conn.request("GET", "/healthz")
            conn.getresponse()


class MiningTest(unittest.TestCase):
    """Drain templates, stable ids, new-template detection and the state file (SPEC §4)."""

    def post_lines(self, srv, lines):
        status, _, body = srv.request("POST", "/v1/webhook/default", ("\n".join(lines) + "\n").encode(),
                                      {"Content-Type": "text/plain"})
        self.assertEqual(status, 200, body)

    def templates(self, srv):
        return {t["template"]: t for t in srv.get_json("/v1/templates?limit=1000&sort=first_seen")["templates"]}

    def test_drain_generalizes_and_lists_earlier_ids(self):
        srv = Server({"workers": 1, "templates": {"warmup": "0"}})
        try:
            self.post_lines(srv, ["ERROR user alice failed to log in"])
            first = self.templates(srv)["ERROR user alice failed to log in"]
            self.post_lines(srv, ["ERROR user bob failed to log in"])
            t = self.templates(srv)
            self.assertIn("ERROR user <*> failed to log in", t)
            merged = t["ERROR user <*> failed to log in"]
            self.assertEqual(merged["count"], 2)
            self.assertIn(first["id"], merged["previous_ids"])
            self.assertRegex(merged["id"], "^[0-9a-f]{16}$")
            self.assertNotEqual(merged["id"], first["id"])
            self.assertFalse(merged["new"])  # warm-up 0: nothing is ever "new"
            self.assertEqual(srv.metric("faultline_templates_new_total"), 0)
        finally:
            self.assertEqual(stop_and_clean(srv), 0)

    def test_new_templates_after_warmup_and_not_again_after_restart(self):
        tmp = tempfile.mkdtemp(prefix="faultline-mining-")
        try:
            cfg = {"workers": 2, "state_dir": os.path.join(tmp, "state"), "templates": {"warmup": "1ms"}}
            srv = Server(cfg, tmp=tmp)
            try:
                time.sleep(0.01)  # past the 1 ms warm-up
                self.post_lines(srv, ["ERROR disk full on /dev/sda1", "Task timed out after 3.00 seconds"])
                t = self.templates(srv)
                self.assertTrue(all(x["new"] for x in t.values()), t)
                self.assertEqual(srv.metric("faultline_templates_new_total"), 2)
                def new_logged():  # stderr is read by a thread: poll for the lines
                    recs = [r for r in srv.log_records() if r.get("msg") == "new error template"]
                    return recs if len(recs) >= 2 else None
                logged = wait_until(new_logged, 5) or []
                self.assertEqual(sorted(r["template_id"] for r in logged), sorted(x["id"] for x in t.values()))
                ids = {k: v["id"] for k, v in t.items()}
            finally:
                self.assertEqual(stop_and_clean(srv), 0)
            srv = Server(cfg, tmp=tmp)
            try:
                # The same templates after a restart: same ids, not new again.
                self.post_lines(srv, ["ERROR disk full on /dev/sda2", "Task timed out after 9.00 seconds"])
                t = self.templates(srv)
                self.assertEqual({k: v["id"] for k, v in t.items()}, ids)
                self.assertEqual({k: v["count"] for k, v in t.items()}, {k: 2 for k in ids})
                self.assertEqual(srv.metric("faultline_templates_new_total"), 0)
                # A template never seen before is new.
                self.post_lines(srv, ["FATAL cannot allocate memory for the cache"])
                self.assertTrue(self.templates(srv)["FATAL cannot allocate memory for the cache"]["new"])
                self.assertEqual(srv.metric("faultline_templates_new_total"), 1)
            finally:
                self.assertEqual(stop_and_clean(srv), 0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_kill_9_loses_at_most_the_last_interval(self):
        tmp = tempfile.mkdtemp(prefix="faultline-kill-")
        try:
            cfg = {"workers": 2, "state_dir": os.path.join(tmp, "state"), "snapshot_interval": "200ms"}
            srv = Server(cfg, tmp=tmp)
            self.post_lines(srv, ["ERROR disk full on /dev/sda1"] * 5)
            state = os.path.join(cfg["state_dir"], "state.json")
            # Wait for a snapshot that holds the 5 events, then kill without any chance to save.
            self.assertTrue(wait_until(lambda: os.path.exists(state) and b'"events":5' in read_bytes(state), 5, 0.05))
            srv.proc.kill()
            srv.proc.wait(5)
            srv.cleanup()
            srv = Server(cfg, tmp=tmp)
            try:
                self.assertEqual(srv.metric("faultline_events_ingested_total", source="webhook:default"), 5)
                self.assertEqual(self.templates(srv)["ERROR disk full on /dev/sda<NUM>"]["count"], 5)
            finally:
                self.assertEqual(stop_and_clean(srv), 0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_corrupt_state_is_kept_aside_and_the_service_starts_fresh(self):
        tmp = tempfile.mkdtemp(prefix="faultline-corrupt-")
        try:
            state_dir = os.path.join(tmp, "state")
            os.makedirs(state_dir)
            for content in (b'{"format":"faultline-state","version":1,"totals":{"documents":', b"\x00\xff garbage",
                            b'{"format":"faultline-state","version":99}'):
                with open(os.path.join(state_dir, "state.json"), "wb") as f:
                    f.write(content)
                srv = Server({"workers": 1, "state_dir": state_dir}, tmp=tmp)
                try:
                    self.assertEqual(srv.request("GET", "/healthz")[0], 200)
                    errors = [r for r in srv.log_records() if r.get("msg") == "saved state unreadable: kept aside, starting fresh"]
                    self.assertEqual(len(errors), 1, srv.stderr())
                    self.assertTrue(os.path.exists(errors[0]["kept_as"]), errors[0])
                    with open(errors[0]["kept_as"], "rb") as f:
                        self.assertEqual(f.read(), content)  # never silently overwritten
                    self.assertEqual(srv.get_json("/v1/templates")["templates"], [])
                finally:
                    self.assertEqual(stop_and_clean(srv), 0)
            self.assertEqual(len([n for n in os.listdir(state_dir) if ".corrupt-" in n]), 3)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_template_metrics_are_bounded_to_top_k(self):
        srv = Server({"workers": 1, "templates": {"metrics_top_k": 3}})
        try:
            self.post_lines(srv, ["ERROR failure kind %s happened" % w for w in
                                  ("alpha", "alpha", "alpha", "beta", "beta", "gamma", "delta", "epsilon")])
            self.post_lines(srv, ["ERROR %s" % ("x" * (i + 1)) + " tail" * i for i in range(10)])
            text = srv.request("GET", "/metrics")[2].decode()
            series = [l for l in text.splitlines() if l.startswith("faultline_template_events_total{")]
            self.assertEqual(len(series), 3, series)
        finally:
            self.assertEqual(stop_and_clean(srv), 0)


# ---------------------------------------------------------------------------------------------
# JSON API: patterns and templates


class TemplatesTest(ServerTestCase):
    CONFIG = {"workers": 2, "sources": {"default": {"auth": "none"}, "app": {"auth": "none", "group": "app-group"}}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        lines = []
        for i in range(6):
            lines.append("Task timed out after %d.00 seconds" % (3 + i))
        for i in range(3):
            lines.append("ERROR connection refused to 10.0.%d.7:5432" % i)
        lines.append("ERROR disk quota reached for user 1234")
        lines.append("WARN cache is getting cold")
        lines.append("all good here")
        cls.lines = lines
        status, _, body = cls.server.request("POST", "/v1/webhook/app", "\n".join(lines).encode(),
                                             {"Content-Type": "text/plain"})
        if status != 200:
            raise AssertionError("ingest failed: %d %r" % (status, body))
        status, _, body = cls.server.request("POST", "/v1/webhook/default",
                                             b'{"message": "Task timed out after 30.01 seconds"}',
                                             {"Content-Type": "application/json"})
        if status != 200:
            raise AssertionError("ingest failed: %d %r" % (status, body))

    def templates(self, query=""):
        return self.server.get_json("/v1/templates" + query)["templates"]

    def test_template_shape(self):
        ts = self.templates()
        self.assertTrue(ts)
        for t in ts:
            self.assertRegex(t["id"], r"^[0-9a-f]{16}$")
            for key in ("template", "count", "first_seen", "last_seen", "sample", "groups", "patterns", "severity"):
                self.assertIn(key, t)
            self.assertGreaterEqual(t["count"], 1)
            self.assertTrue(t["patterns"])
            self.assertEqual(t["severity"], "error")
        self.assertEqual(len({t["id"] for t in ts}), len(ts), "template ids not unique")
        # 11 error events were sent (6 + 1 timeouts, 3 refused, 1 quota); templates account for all of them.
        self.assertEqual(sum(t["count"] for t in ts), 11)
        timeouts = [t for t in ts if "lambda_timeout" in t["patterns"]]
        self.assertTrue(timeouts)
        self.assertEqual(sum(t["count"] for t in timeouts), 7)
        self.assertFalse([t for t in ts if "cache is getting cold" in t["sample"]], "a warn-only event was mined")

    def test_sort_and_limit(self):
        by_count = self.templates("?sort=count")
        counts = [t["count"] for t in by_count]
        self.assertEqual(counts, sorted(counts, reverse=True))
        for sort in ("first_seen", "last_seen"):
            with self.subTest(sort=sort):
                ts = self.templates("?sort=" + sort)
                self.assertEqual(len(ts), len(by_count))
                keys = [t[sort] for t in ts]
                self.assertEqual(keys, sorted(keys, reverse=True))
        one = self.templates("?limit=1")
        self.assertEqual(len(one), 1)
        self.assertEqual(one[0]["id"], by_count[0]["id"])
        self.assertEqual(len(self.templates("?limit=2&sort=last_seen")), min(2, len(by_count)))

    def test_filters(self):
        default_only = self.templates("?group=default")
        self.assertTrue(default_only)
        for t in default_only:
            self.assertIn("default", [g["group"] for g in t["groups"]])
        self.assertEqual(self.templates("?group=no-such-group"), [])
        self.assertEqual(self.templates("?class=warn"), [])
        self.assertTrue(self.templates("?class=error"))

    def test_bad_queries_are_400(self):
        for q in ("?sort=bogus", "?limit=0", "?limit=abc", "?limit=-1", "?class=fatal"):
            with self.subTest(q=q):
                status, _, body = self.server.request("GET", "/v1/templates" + q)
                self.assertEqual(status, 400, body)
                self.assertJsonError(body)

    def test_ids_stable_across_restart_of_an_identical_server(self):
        """A template id is a hash of its text: another instance fed the same events agrees."""
        other = Server(self.CONFIG)
        try:
            status, _, _ = other.request("POST", "/v1/webhook/app", "\n".join(self.lines).encode(),
                                         {"Content-Type": "text/plain"})
            self.assertEqual(status, 200)
            mine = {t["template"]: t["id"] for t in self.templates("?group=app-group")}
            theirs = {t["template"]: t["id"] for t in other.get_json("/v1/templates")["templates"]}
            self.assertEqual(mine, theirs)
        finally:
            self.assertEqual(other.stop(), 0)
            other.cleanup()

    def test_patterns(self):
        doc = self.server.get_json("/v1/patterns")
        pats = doc["patterns"]
        self.assertEqual([p["name"] for p in pats], [p["name"] for p in PATTERNS])
        by_name = {p["name"]: p for p in pats}
        for p in PATTERNS:
            got = by_name[p["name"]]
            self.assertEqual(got["class"], p["class"])
            self.assertEqual(got["description"], p["description"])
            self.assertIsInstance(got["count"], int)
            self.assertIsInstance(got["groups"], dict)
            self.assertIn("rate_1m", got)
            self.assertIn("rate_15m", got)
        self.assertEqual(by_name["lambda_timeout"]["count"], 7)
        self.assertEqual(by_name["lambda_timeout"]["groups"], {"app-group": 6, "default": 1})
        self.assertEqual(by_name["connection_refused"]["count"], 3)
        self.assertEqual(by_name["error_level"]["count"], 4)
        self.assertEqual(by_name["warn_level"]["count"], 1)
        self.assertEqual(by_name["sshd_error"]["count"], 0)
        self.assertEqual(by_name["sshd_error"]["groups"], {})
        filtered = {p["name"]: p for p in self.server.get_json("/v1/patterns?group=default")["patterns"]}
        self.assertEqual(filtered["lambda_timeout"]["count"], 1)
        self.assertEqual(filtered["connection_refused"]["count"], 0)


def main():
    global BINARY
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.stderr.write("usage: server_test.py FAULTLINE_BINARY [unittest options]\n")
        return 2
    BINARY = os.path.abspath(sys.argv.pop(1))
    if not os.access(BINARY, os.X_OK):
        sys.stderr.write("server_test.py: %s is not an executable\n" % BINARY)
        return 2
    prog = unittest.main(exit=False, verbosity=2)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
