#!/usr/bin/env python3
"""bench_data.py - deterministic inputs for loadtest/bench_check.sh (no data outside the repository).

  bench_data.py jsonl N OUT        N events as CloudWatch Logs subscription documents, one per line
  bench_data.py firehose N OUT     Firehose HTTP-endpoint request bodies, one per line (each about
                                   600 events: 12 records of a gzip'd 50-event document), N bodies;
                                   OUT.counts gets the events of each body, one number a line

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
    else:
        sys.exit("bench_data.py: unknown kind " + kind)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
