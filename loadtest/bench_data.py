#!/usr/bin/env python3
"""bench_data.py - deterministic inputs for loadtest/bench_check.sh (no data outside the repository).

  bench_data.py jsonl N OUT        N events as CloudWatch Logs subscription documents, one per line
  bench_data.py firehose N OUT     Firehose HTTP-endpoint request bodies, one per line (each about
                                   600 events: 12 records of a gzip'd 50-event document), N bodies;
                                   OUT.counts gets the events of each body, one number a line
  bench_data.py otlp N OUT         OTLP/HTTP logs requests (ExportLogsServiceRequest, protobuf, as
                                   the OpenTelemetry SDKs encode them), N bodies of 600 records
                                   (12 resources of 50, the same messages as `firehose`), each as
                                   "<length>\n<bytes>"; OUT.counts as above

Messages come from soak.py's generator (about 60 shapes, errors, warnings and info lines).
"""
import base64
import gzip
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soak import cwl_doc  # noqa: E402


def pb_varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def pb_field(field, payload):
    """A length-delimited field (wire type 2)."""
    return pb_varint(field << 3 | 2) + pb_varint(len(payload)) + payload


def otlp_request(docs):
    """An ExportLogsServiceRequest (opentelemetry-proto v1.11.0): one ResourceLogs per document
    (service.name = its log group), each message a LogRecord with time, severity and a string body."""
    out = b""
    for doc in docs:
        name = doc["logGroup"].encode()
        attr = pb_field(1, b"service.name") + pb_field(2, pb_field(1, name))     # KeyValue
        resource = pb_field(1, attr)                                              # Resource.attributes
        records = b""
        for ev in doc["logEvents"]:
            msg = ev["message"].encode()
            severity = 17 if b"ERROR" in msg else 13 if b"WARN" in msg else 9
            rec = (pb_varint(1 << 3 | 1) + (ev["timestamp"] * 1000000).to_bytes(8, "little")  # time_unix_nano
                   + pb_varint(2 << 3) + pb_varint(severity)                                     # severity_number
                   + pb_field(5, pb_field(1, msg)))                                              # body.string_value
            records += pb_field(2, rec)                                                          # ScopeLogs.log_records
        scope = pb_field(1, pb_field(1, b"bench")) + records                                     # scope, records
        out += pb_field(1, pb_field(1, resource) + pb_field(2, scope))                           # resource_logs
    return out


def main():
    kind, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rng = random.Random(42)
    tmp = out + ".tmp"
    if kind == "jsonl":
        with open(tmp, "wb") as f:
            left = n
            while left > 0:
                k = min(left, 100)
                f.write(cwl_doc(rng, k) + b"\n")
                left -= k
    elif kind == "firehose":
        counts = []
        with open(tmp, "wb") as f:
            for i in range(n):
                records = [{"data": base64.b64encode(gzip.compress(cwl_doc(rng, 50), mtime=0)).decode()}
                           for _ in range(12)]
                f.write(json.dumps({"requestId": "%036d" % i, "timestamp": 1700000000000,
                                    "records": records}).encode() + b"\n")
                counts.append(12 * 50)
        with open(out + ".counts", "w") as c:
            c.write("".join("%d\n" % k for k in counts))
    elif kind == "otlp":
        counts = []
        with open(tmp, "wb") as f:
            for i in range(n):
                body = otlp_request([json.loads(cwl_doc(rng, 50)) for _ in range(12)])
                f.write(b"%d\n" % len(body) + body)
                counts.append(12 * 50)
        with open(out + ".counts", "w") as c:
            c.write("".join("%d\n" % k for k in counts))
    else:
        sys.exit("bench_data.py: unknown kind " + kind)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
