#!/usr/bin/env python3
"""idle_hold.py - opens N keep-alive connections, one GET /healthz each, holds them idle.

  idle_hold.py PORT N READY_FILE HOLD_SECONDS

Writes "READY" to READY_FILE once every connection has its reply, holds HOLD_SECONDS, closes
them all and exits (1 if a connection failed). Needs `ulimit -n` above N.
"""
import socket
import sys
import time


def main():
    port, n, ready, hold = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    conns = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
        data = b""
        while True:
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(body) >= length:
                    break
            chunk = s.recv(4096)
            if not chunk:
                sys.exit("connection closed before its reply")
            data += chunk
        if not data.startswith(b"HTTP/1.1 200"):
            sys.exit("unexpected reply: %r" % data[:60])
        conns.append(s)
    with open(ready, "w") as f:
        f.write("READY\n")
    time.sleep(hold)
    for s in conns:
        s.close()


if __name__ == "__main__":
    main()
