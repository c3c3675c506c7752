#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/TARGET/*) from tests/data and a few
hand-made inputs: each target starts from real payloads (the AWS fixtures, the webhook signature
vectors, the default configuration) and from the hostile shapes the unit tests cover.
Run from anywhere; rewrites the corpus directories. Inputs that fuzzing runs find worth keeping
(crashes that were fixed) are added under corpus/TARGET/regress-* by hand and are kept."""
import base64
import gzip
import hashlib
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
CORPUS = ROOT / "tests" / "fuzz" / "corpus"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def gz(b):
    return gzip.compress(b if isinstance(b, bytes) else b.encode(), mtime=0)


def main():
    for d in CORPUS.glob("*"):
        for f in d.glob("seed-*"):
            f.unlink()
    cwl = sorted((DATA / "fixtures" / "cwl").glob("*"))
    firehose = DATA / "fixtures" / "firehose"
    doc = (DATA / "fixtures" / "cwl" / "sshd100_data_message.json").read_bytes()

    # base64: canonical, padding cases, non-canonical trailing bits, bad characters.
    for i, s in enumerate(["", "QQ==", "QUI=", "QUJD", "QQ=", "QR==", "A===", "QUJD\n", "Q*==",
                           base64.b64encode(doc).decode(), base64.b64encode(gz(doc)).decode()]):
        write("base64", f"seed-{i:02d}", s)

    # inflate: real gzip, several members, empty, truncated, corrupt CRC, a small bomb.
    write("inflate", "seed-fixture", (firehose / "cwl_via_firehose_request.json.gz").read_bytes())
    write("inflate", "seed-hello", gz("hello"))
    write("inflate", "seed-empty", gz(b""))
    write("inflate", "seed-members", gz("one ") + gz("two"))
    write("inflate", "seed-truncated", gz(doc)[:-7])
    bad = bytearray(gz("crc"))
    bad[-8] ^= 1
    write("inflate", "seed-badcrc", bytes(bad))
    write("inflate", "seed-bomb", gzip.compress(b"\0" * (256 << 10), 9, mtime=0))

    # firehose: option byte (bit 0 body gzip'd, bit 1 CloudWatch-only records) + body.
    for f in sorted(firehose.glob("*.json")):
        if f.name.startswith("expected"):
            continue
        write("firehose", f"seed-{f.stem}", b"\0" + f.read_bytes())
        write("firehose", f"seed-{f.stem}-strict", b"\2" + f.read_bytes())
    write("firehose", "seed-gzip-body", b"\1" + gz((firehose / "cwl_via_firehose_request.json").read_bytes()))
    text = base64.b64encode(b"ERROR one\nplain two\r\n\n").decode()
    plain_cwl = base64.b64encode(doc).decode()
    write("firehose", "seed-text-records", b"\0" + json.dumps(
        {"requestId": "r-1", "timestamp": 1, "records": [{"data": text}, {"data": plain_cwl}]}).encode())
    write("firehose", "seed-empty-records", b"\0" + b'{"requestId":"r","timestamp":1,"records":[]}')

    # cloudwatch: selector byte (0 strict, 1 or-text, 2 delivery) + data.
    for f in cwl:
        for sel in (0, 1, 2):
            write("cloudwatch", f"seed-{f.stem}-{sel}", bytes([sel]) + f.read_bytes())
    write("cloudwatch", "seed-gzip-delivery", b"\2" + gz(doc))
    write("cloudwatch", "seed-concatenated", b"\0" + doc + doc.strip())
    for f in sorted((DATA / "conformance").glob("*.jsonl")):
        if ".firehose." not in f.name:
            write("cloudwatch", f"seed-conformance-{f.stem}", b"\0" + f.read_bytes()[:8192])
    write("cloudwatch", "seed-deep", b"\0" + b"[" * 2000)

    # webhook: option byte (bit 0 text, bit 1 gzip, bit 2 dotted message fields, bit 3 group field).
    bodies = [
        (0, '{"message":"ERROR connection refused","level":"error"}'),
        (0, '[{"msg":"one"},{"log":"two"},{"text":{"nested":[1,2]}}]'),
        (0, '{"message":"a"}\n{"message":"b"}\r\n\n{"message":"c"}'),
        (1, "ERROR one\nWARN two\r\n\n   \nthree"),
        (4, '{"detail":{"message":"deep ERROR"},"log":{"msg":"x"}}'),
        (8, '{"message":"grouped","meta":{"group":"payments"}}'),
        (12, '[{"detail":{"message":"m"},"meta":{"group":7}}]'),
        (0, '{"message":"\\ud83d\\ude00 \\u0000 escapes \\" \\\\"}'),
    ]
    for i, (opt, body) in enumerate(bodies):
        write("webhook", f"seed-{i:02d}", bytes([opt]) + body.encode())
    write("webhook", "seed-gzip", b"\2" + gz(bodies[0][1]))

    # webhook_auth: scheme byte (0 bearer, 1 github, 2 stripe, 3 slack, 4 standard-webhooks),
    # header lines, a blank line, the body: the published signature vectors and near misses.
    scheme_byte = {"github": 1, "stripe": 2, "slack": 3, "standard-webhooks": 4}
    vectors = json.loads((DATA / "fixtures" / "webhooks" / "signature_vectors.json").read_text())
    for i, v in enumerate(vectors):
        head = "".join(f"{k}: {val}\n" for k, val in v["headers"].items())
        write("webhook_auth", f"seed-vector-{i}", bytes([scheme_byte[v["scheme"]]]) +
              (head + "\n" + v["body"]).encode())
    write("webhook_auth", "seed-bearer", b"\0Authorization: Bearer not-the-token\n\n{}")
    write("webhook_auth", "seed-bearer-empty", b"\0Authorization: Bearer \n\n")
    write("webhook_auth", "seed-stripe-many", b"\2Stripe-Signature: t=1700000000,v1=zz,v1=,t=,,=\n\nbody")
    sig = hashlib.sha256(b"x").hexdigest()
    write("webhook_auth", "seed-github-upper", b"\1X-Hub-Signature-256: SHA256=" + sig.encode() + b"\n\nx")
    write("webhook_auth", "seed-swh-multi", b"\4webhook-id: m\nwebhook-timestamp: 1700000000\n"
          b"webhook-signature: v1,AAAA v1a,BBBB v1,!!!!\n\n{}")

    # config: the default, the deployment copy, and small hostile documents.
    # The default configuration one top-level key at a time (the fuzzer runs with small inputs:
    # YAML parsing is the slow part), the patterns list cut to its first three entries.
    default = (ROOT / "config" / "default.yaml").read_text()
    blocks, current = [], []
    for line in default.splitlines(keepends=True):
        if line[:1].isalpha() and current:
            blocks.append("".join(current))
            current = []
        current.append(line)
    blocks.append("".join(current))
    for i, block in enumerate(blocks):
        if block.startswith("patterns:"):
            entries = block.split("\n  - ")
            block = "\n  - ".join(entries[:4]) + "\n"
        write("config", f"seed-default-{i:02d}", block)
    small = [
        "", "listen: 0.0.0.0:9000\n", "limits: {body_bytes: 1MiB, header_timeout: 250ms}\n",
        "sources:\n  gh:\n    auth: {type: github, secrets: [s1, s2]}\n    group_field: repo.name\n",
        "patterns:\n  - name: x\n    regex: 'ERROR (a|b'\n", "a: &x [*x]\n", "[1, 2\n", "unknown_key: 1\n",
        "limits:\n  body_bytes: -5\n  queue_capacity: 0x10\n", "templates: {similarity: 2.0, depth: 1}\n",
        "dedupe: {store: 'redis://u:p@[::1]:6379/2', store_timeout: 50ms}\ncluster: {peers: [a:1, 'b']}\n",
        "dedupe:\n  store: rediss://x\n---\ndedupe: {store: 'redis://:<redacted>@h'}\n",
    ]
    for i, s in enumerate(small):
        write("config", f"seed-{i:02d}", s)

    # http_request: requests as they arrive on the wire, pipelined ones, framing attacks.
    reqs = [
        "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/templates?limit=5&sort=first_seen&group=a%20b+c HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /v1/firehose HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /v1/webhook/gh HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\r\n\r\n",
        "POST /v1/cloudwatch HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "POST /-/reload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
    ]
    for i, r in enumerate(reqs):
        write("http_request", f"seed-{i:02d}", r)
    body = (firehose / "cwl_via_firehose_request.json").read_bytes()
    write("http_request", "seed-firehose", b"POST /v1/firehose HTTP/1.1\r\nHost: x\r\n"
          b"X-Amz-Firehose-Request-Id: r\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    # state: a state document as the service writes it, and damaged ones (a field missing, of the
    # wrong type, out of range; not JSON; another version).
    state = {"format": "faultline-state", "version": 1, "saved_ms": 1700000120000,
             "totals": {"documents": 3, "events": 42, "control_messages": 1, "templates_evicted": 0,
                        "patterns": {"timeout": 5, "refused": 7, "gone": 1},
                        "by_group": {"/aws/lambda/a": {"timeout": 5}, "/b": {"refused": 7}},
                        "by_source": {"firehose": 40, "webhook:default": 2}},
             "templates": [
                 {"text": "Task timed out after <NUM> seconds", "count": 12, "first_seen_ms": 1700000000000,
                  "last_seen_ms": 1700000060000, "sample": "Task timed out after 3.00 seconds", "new": True,
                  "patterns": ["timeout"], "groups": [["/aws/lambda/a", 12]],
                  "previous": ["Task timed out after 3.00 seconds"], "minute": 28333334,
                  "minutes": [0, 0, 0, 12] + [0] * 12},
                 {"text": "connection refused <*>", "count": 1},
                 {"text": "", "count": 2}]}
    write("state", "seed-valid", json.dumps(state))
    missing = json.loads(json.dumps(state))
    del missing["totals"]["patterns"]
    write("state", "seed-missing-patterns", json.dumps(missing))
    wrong = json.loads(json.dumps(state))
    wrong["templates"][0]["groups"] = [["/a"], 7, [1, "x"]]
    write("state", "seed-wrong-groups", json.dumps(wrong))
    wrong = json.loads(json.dumps(state))
    wrong["totals"]["events"] = -1
    write("state", "seed-negative", json.dumps(wrong))
    wrong = json.loads(json.dumps(state))
    wrong["templates"][0]["text"] = " ".join(["tok"] * 300)
    write("state", "seed-long-template", json.dumps(wrong))
    write("state", "seed-version-2", json.dumps(dict(state, version=2)))
    write("state", "seed-truncated", json.dumps(state)[:200])
    write("state", "seed-not-object", "[1,2,3]")

    # session: a read-size byte, then what a client sends on one connection.
    def head(method, path, extra=""):
        return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}".encode()

    def with_body(method, path, body, extra=""):
        body = body if isinstance(body, bytes) else body.encode()
        return head(method, path, extra + f"Content-Length: {len(body)}\r\n\r\n") + body

    def chunked(path, chunks, trailer=b"", extra=""):
        out = head("POST", path, extra + "Transfer-Encoding: chunked\r\n\r\n")
        for c in chunks:
            out += b"%x\r\n" % len(c) + c + b"\r\n"
        return out + b"0\r\n" + trailer + b"\r\n"

    fh = (firehose / "cwl_via_firehose_request.json").read_bytes()
    wh = b'{"message":"ERROR payment failed: connection refused"}'
    gh_sig = "sha256=" + hashlib.new("sha256", b"").hexdigest()
    sessions = [
        (5, with_body("POST", "/v1/firehose", fh, "X-Amz-Firehose-Request-Id: r1\r\n")),
        (4, with_body("POST", "/v1/firehose", gz(fh), "Content-Encoding: gzip\r\n")),
        (3, with_body("POST", "/v1/cloudwatch", gz(doc))),
        (2, with_body("POST", "/v1/cloudwatch", doc) + head("GET", "/metrics", "\r\n")),
        (2, with_body("POST", "/v1/webhook/default", wh) + head("HEAD", "/nope", "\r\n")),
        (1, chunked("/v1/webhook/default", [wh[:10], wh[10:]])),
        (0, chunked("/v1/webhook/default", [wh], b"X-Checksum: 1\r\n")),
        (3, chunked("/v1/cloudwatch", [b"{}"], b"X-T: " + b"a" * 5000 + b"\r\n")),
        (3, head("POST", "/v1/cloudwatch", "Transfer-Encoding: chunked\r\n\r\n") + b"2;" + b"e" * 6000 +
         b"\r\n{}\r\n0\r\n\r\n"),
        (2, with_body("POST", "/v1/webhook/bearer", wh, "Authorization: Bearer t0ken\r\n")),
        (2, with_body("POST", "/v1/webhook/gh", b"", f"X-Hub-Signature-256: {gh_sig}\r\n")),
        (2, with_body("POST", "/v1/webhook/default", "ERROR a\nWARN b\n", "Content-Type: text/plain\r\n")),
        (2, with_body("POST", "/v1/webhook/default", wh, "Expect: 100-continue\r\n")),
        (1, head("GET", "/v1/templates?limit=3&sort=last_seen", "\r\n") + head("GET", "/v1/patterns?group=x", "\r\n")),
        (1, head("POST", "/v1/webhook/default", "Content-Length: 999999999\r\n\r\n")),
        (0, b"GET / HTTP/1.1\r\n" + b"X: " + b"h" * 5000 + b"\r\n\r\n"),
    ]
    # OTLP/HTTP logs: protobuf as the SDKs encode it (loadtest/bench_data.py), the
    # opentelemetry-proto example in JSON.
    sys.path.insert(0, str(ROOT / "loadtest"))
    from bench_data import otlp_request  # noqa: E402
    pb = otlp_request([json.loads(doc)])
    example = (ROOT / "third_party" / "opentelemetry-proto" / "examples-logs.json").read_bytes()
    sessions += [
        (3, with_body("POST", "/v1/logs", pb, "Content-Type: application/x-protobuf\r\n")),
        (2, with_body("POST", "/v1/logs", gz(pb), "Content-Type: application/x-protobuf\r\nContent-Encoding: gzip\r\n")),
        (2, with_body("POST", "/v1/logs", example, "Content-Type: application/json\r\n")),
        (1, with_body("POST", "/v1/logs", b"x", "Content-Type: text/plain\r\n")),
    ]
    for i, (rs, data) in enumerate(sessions):
        write("session", f"seed-{i:02d}", bytes([rs]) + data)
    # otlp: option byte (bit 0 JSON, bit 1 gzip, bit 2 other message fields) + body.
    write("otlp", "seed-protobuf", b"\0" + pb)
    write("otlp", "seed-protobuf-gzip", b"\2" + gz(pb))
    write("otlp", "seed-example-json", b"\1" + example)
    write("otlp", "seed-example-json-gzip", b"\3" + gz(example))
    write("otlp", "seed-json-kvlist", b"\5" + json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"severityNumber": "SEVERITY_NUMBER_ERROR", "body": {"kvlistValue": {"values": [
            {"key": "event", "value": {"arrayValue": {"values": [{"intValue": "7"}, {"doubleValue": "NaN"},
                                                                   {"bytesValue": "AAE="}]}}}]}}},
        {"body": {}}]}]}]}).encode())
    # Found in review: list fields that are not objects (a read of a null element, fixed).
    for i, b in enumerate(['{"arrayValue":5}', '{"kvlistValue":[]}', '{"kvlistValue":null}', '{"arrayValue":"x"}']):
        write("otlp", f"seed-json-wrong-type-{i}",
              b"\1" + ('{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":%s}]}]}]}' % b).encode())
    for i, r in enumerate(reqs):
        write("session", f"seed-request-{i:02d}", b"\3" + r.encode())
    # cluster_view: option byte (sort, limit) + peers' answers separated by "\n--\n" ("-": none).
    t1 = json.dumps({"id": "a1", "template": "ERROR x <NUM>", "count": 5, "first_seen": "2026-01-01T00:00:00.000Z",
                     "last_seen": "2026-01-02T00:00:00.000Z", "sample": "ERROR x 1", "new": True,
                     "previous_ids": ["o1"], "rate_1m": 0.5, "rate_15m": 0.1, "trend": [0] * 13 + [1, 4],
                     "groups": [{"group": "g", "count": 5}], "patterns": ["error_level"], "severity": "error"})
    t2 = json.dumps({"id": "a1", "template": "ERROR x <NUM>", "count": 7, "first_seen": "2025-01-01T00:00:00.000Z",
                     "last_seen": "2026-01-03T00:00:00.000Z", "sample": "s", "new": False,
                     "groups": [{"group": "h", "count": 7}], "patterns": ["retry"], "severity": "warn"})
    t3 = json.dumps({"id": "b2", "template": "WARN y", "count": 2, "first_seen": "2026-01-01T00:00:00.000Z",
                     "last_seen": "2026-01-01T00:00:00.000Z"})
    views = [
        "\0" + '{"templates":[%s,%s]}\n--\n{"templates":[%s]}' % (t1, t3, t2),
        "\5" + '{"templates":[%s]}\n--\n-\n--\n{not json' % t1,
        "\n" + '{"templates":[{"id":"a1"}]}\n--\n{"templates":7}\n--\n{"templates":[%s,{"id":1}]}' % t3,
        "\1" + '{"scope":"cluster","templates":[],"peers":[]}',
        "\2" + '{"templates":[%s]}\n--\n{"templates":[%s]}\n--\n{"templates":[%s]}\n--\n{"templates":[]}' % (t1, t2, t3),
    ]
    for i, v in enumerate(views):
        write("cluster_view", f"seed-{i:02d}", v.encode())


if __name__ == "__main__":
    main()
