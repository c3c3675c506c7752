#!/usr/bin/env python3
"""otlp_test.py - POST /v1/logs against the OpenTelemetry JS SDK's own exporters.

  otlp_test.py FAULTLINE_BINARY

With a state directory (every acknowledgement journaled):
  - @opentelemetry/exporter-logs-otlp-http (JSON) exports 1 000 records and
    @opentelemetry/exporter-logs-otlp-proto (protobuf, gzip) 500: both report success and
    faultline_events_ingested_total{source="otlp"} rises by exactly 1 500;
  - the spec's answers: bytes that are not protobuf and JSON that is not a request get 400 with a
    google.rpc.Status in the request's encoding, an unknown Content-Type 415, a gzip'd body 200, a
    record without a body 200 with partial_success; none of them changes the count;
  - after kill -9 and a restart the count is still there (the journal replays OTLP records).
With otlp.auth bearer: the exporter without the token fails (401, not retried), with it succeeds.
Exit 77 (skipped) without node or tests/otlp-js/node_modules (scripts/install-deps.sh).
"""
import gzip
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_test as st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JS_DIR = os.path.join(ROOT, "tests", "otlp-js")
NODE = shutil.which("node")


def export(port, encoding, n, gzipped=False, token=None):
    """Runs the SDK's exporter: (exit code, its summary)."""
    env = dict(os.environ)
    if token:
        env["OTEL_EXPORTER_OTLP_LOGS_HEADERS"] = "Authorization=Bearer%20" + token
    r = subprocess.run([NODE, os.path.join(JS_DIR, "export.js"), "http://127.0.0.1:%d/v1/logs" % port, encoding,
                        str(n)] + (["gzip"] if gzipped else []), cwd=JS_DIR, timeout=120, env=env,
                       capture_output=True, text=True)
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    return r.returncode, (json.loads(lines[-1]) if lines else {"stderr": r.stderr[-2000:]})


def varints(data):
    """A protobuf message's top-level fields: {field: value} (varints as ints, bytes as bytes)."""
    out, i = {}, 0
    while i < len(data):
        key, i = read_varint(data, i)
        field, kind = key >> 3, key & 7
        if kind == 0:
            out[field], i = read_varint(data, i)
        elif kind == 2:
            n, i = read_varint(data, i)
            out[field], i = data[i:i + n], i + n
        else:
            raise AssertionError("unexpected wire type %d in %r" % (kind, data))
    return out


def read_varint(data, i):
    v = shift = 0
    while True:
        b = data[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def otlp_ingested(srv):
    return st.metric_value(srv.metrics(), "faultline_events_ingested_total", source="otlp")


def check_spec_answers(srv):
    before = otlp_ingested(srv)
    # Not protobuf: 400, a google.rpc.Status (code 3, INVALID_ARGUMENT) in protobuf.
    status, headers, body = srv.request("POST", "/v1/logs", b"\x0a\x7f\x01", {"Content-Type": "application/x-protobuf"})
    assert status == 400, (status, body)
    assert headers["Content-Type"] == "application/x-protobuf", headers["Content-Type"]
    fields = varints(body)
    assert fields.get(1) == 3 and b"protobuf" in fields.get(2, b""), fields
    # Not an ExportLogsServiceRequest: 400, the Status in JSON.
    status, headers, body = srv.request("POST", "/v1/logs", b'{"resourceLogs":{}}', {"Content-Type": "application/json"})
    assert status == 400 and headers["Content-Type"] == "application/json", (status, body)
    assert json.loads(body)["code"] == 3, body
    # An unknown Content-Type: 415.
    status, _, body = srv.request("POST", "/v1/logs", b"ERROR x", {"Content-Type": "text/plain"})
    assert status == 415, (status, body)
    assert otlp_ingested(srv) == before
    # gzip'd JSON: 200, an empty ExportLogsServiceResponse.
    doc = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "gz"}}]},
                             "scopeLogs": [{"logRecords": [{"severityNumber": 17, "body": {"stringValue": "ERROR zipped"}},
                                                           {"severityNumber": 9}]}]}]}
    status, headers, body = srv.request("POST", "/v1/logs", gzip.compress(json.dumps(doc).encode()),
                                        {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert status == 200, (status, body)
    # The record without a body: partial_success, rejected 1 (a 200: the client does not retry it).
    partial = json.loads(body)["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1" and partial["errorMessage"], partial
    assert otlp_ingested(srv) == before + 1
    # The same in protobuf: partial_success is field 1, rejected_log_records its field 1.
    rec_err = b"\x10\x11" + b"\x2a\x0a\x0a\x08pb error"      # severity 17, body "pb error"
    rec_none = b"\x10\x09"                                    # severity 9, no body
    scope = b"\x12" + bytes([len(rec_err)]) + rec_err + b"\x12" + bytes([len(rec_none)]) + rec_none
    rl = b"\x12" + bytes([len(scope)]) + scope
    req = b"\x0a" + bytes([len(rl)]) + rl
    status, headers, body = srv.request("POST", "/v1/logs", req, {"Content-Type": "application/x-protobuf"})
    assert status == 200 and headers["Content-Type"] == "application/x-protobuf", (status, body)
    assert varints(varints(body)[1])[1] == 1, body
    assert otlp_ingested(srv) == before + 2
    return 2


def main():
    st.BINARY = os.path.abspath(sys.argv[1])
    if not NODE or not os.path.isdir(os.path.join(JS_DIR, "node_modules", "@opentelemetry", "sdk-logs")):
        print("otlp_test: skipped: node or tests/otlp-js/node_modules missing (scripts/install-deps.sh)",
              file=sys.stderr)
        return 77
    srv = st.Server({"workers": 2})
    tmp = srv.tmp
    try:
        assert otlp_ingested(srv) == 0
        rc, summary = export(srv.port, "json", 1000)
        assert rc == 0 and summary["succeeded"] == summary["exports"] > 0, summary
        rc, summary = export(srv.port, "proto", 500, gzipped=True)
        assert rc == 0 and summary["succeeded"] == summary["exports"] > 0, summary
        assert otlp_ingested(srv) == 1500, otlp_ingested(srv)
        templates = srv.get_json("/v1/templates?limit=10")["templates"]
        payment = next(t for t in templates if t["template"] == "ERROR payment <NUM> declined by upstream")
        assert payment["count"] == 750, payment
        assert {g["group"] for g in payment["groups"]} == {"checkout-json", "checkout-proto"}, payment
        extra = check_spec_answers(srv)
        print("otlp_test: 1000 (JSON) + 500 (protobuf, gzip) records from the JS SDK counted 1500; "
              "400/415/partial_success as the spec says")
        srv.kill()  # kill -9: only the journal has the last deliveries
        srv = st.Server({"workers": 2}, tmp=tmp)
        assert otlp_ingested(srv) == 1500 + extra, otlp_ingested(srv)
        print("otlp_test: after kill -9, %d OTLP events restored" % (1500 + extra))
    finally:
        srv.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    srv = st.Server({"workers": 1, "otlp": {"auth": {"type": "bearer", "secrets": ["s3cret"]}}})
    try:
        rc, summary = export(srv.port, "proto", 10)
        assert rc != 0 and summary.get("succeeded", 0) == 0, summary
        status, headers, body = srv.request("POST", "/v1/logs", b"", {"Content-Type": "application/x-protobuf"})
        assert status == 401 and varints(body).get(1) == 16, (status, body)  # UNAUTHENTICATED
        rc, summary = export(srv.port, "proto", 10, token="s3cret")
        assert rc == 0 and summary["succeeded"] > 0, summary
        assert otlp_ingested(srv) == 10
        print("otlp_test: bearer auth: refused without the token (401), counted with it")
    finally:
        srv.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
