#!/usr/bin/env python3
"""Writes drain_corpus.tsv: a labelled corpus of error messages for drain_test.cpp, one
`label<TAB>message` per line, ~3000 messages drawn from 50 known templates in the styles of
several services (Java, Python, Go zap, nginx, Postgres, AWS SDK, Lambda, Kubernetes, Node,
Kafka, Redis), each filled with random parameters (numbers, ids, IPs, UUIDs, hex, durations,
user names, file paths, quoted words).

  python3 tests/data/make_drain_corpus.py > tests/data/drain_corpus.tsv

Every parameter is one whitespace-free token and no template starts with a free word, so the
token count and the first token of a template's lines are fixed after masking: a correct Drain
(depth 4, similarity 0.4) recovers every template. Templates sharing their first token and
token count are kept dissimilar on purpose (zap and Lambda lines all start with a timestamp,
nginx lines with a date, Postgres lines with "ERROR:" or "FATAL:"), e.g. zap_panic and
zap_tx_aborted (12 tokens each, one equal position) or pg_unique_index and pg_statement_timeout.

Deterministic (fixed seed, stdlib only); checks that no masked message reaches the masker's
200-byte cut and that no message holds a tab or newline.
"""

import random
import re
import sys

SEED = 20240517
COUNT = 3000

# The masks of SEED_BENCH §3.2 (as make_masks_golden.py), to check the 200-byte cut is never hit.
MASKS = [
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
                re.ASCII), "<UUID>"),
    (re.compile(r"\b[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(:[0-9]{1,5})?\b", re.ASCII), "<IP>"),
    (re.compile(r"\b0[xX][0-9a-fA-F]+\b", re.ASCII), "<HEX>"),
    (re.compile(r"\b[0-9a-fA-F]{16,}\b", re.ASCII), "<ID>"),
    (re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII), "<NUM>"),
]
WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")


def masked(msg):
    for rx, repl in MASKS:
        msg = rx.sub(repl, msg)
    return WHITESPACE.sub(" ", msg).strip(" ")


rng = random.Random(SEED)

USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "mallory", "oscar", "peggy", "trent", "victor", "walter", "svc_billing", "svc-ingest"]
WORDS = ["orders", "payments", "invoices", "sessions", "accounts", "carts", "shipments",
         "profiles", "tokens", "ledger", "audit_log", "events", "webhooks", "refunds", "coupons"]
HOSTS = ["api.internal", "db-primary.prod", "cache.svc.cluster.local", "auth.example.com",
         "payments.example.com", "search.internal", "queue.prod", "reports.example.org"]
OPS = ["PutItem", "GetItem", "Query", "PutObject", "GetObject", "SendMessage", "PutRecord",
       "PutRecords", "Invoke", "AssumeRole", "DescribeInstances", "PutMetricData"]
CLASSES = ["OrderService", "UserRepository", "PaymentClient", "CartMapper", "InvoiceDto",
           "SessionCache", "TokenValidator", "ShipmentHandler"]
METHODS = ["getId", "getName", "getItems", "getTotal", "getOwner", "toString", "getStatus"]
VARS = ["order", "user", "this.cache", "response", "payload", "item", "session", "result"]
FUNCS = ["handle_request", "process_batch", "load_config", "charge_card", "sync_orders",
         "render", "parse_event", "dispatch"]
PY_ERRORS = ["ValueError", "KeyError", "TypeError", "RuntimeError", "TimeoutError"]
JS_TYPES = ["TypeError", "ReferenceError", "SyntaxError", "RangeError"]
CONTAINERS = ["api", "worker", "sidecar", "migrate", "nginx", "envoy", "app"]
NAMESPACES = ["default", "prod", "staging", "payments", "kube-system"]
IMAGES = ["registry.example.com/api", "ghcr.io/acme/worker", "docker.io/library/nginx",
          "123456789012.dkr.ecr.us-east-1.amazonaws.com/app"]
ROLES = ["lambda-exec", "ecs-task", "deploy-bot", "reader", "etl-job"]
ACTIONS = ["s3:GetObject", "dynamodb:PutItem", "sqs:SendMessage", "kms:Decrypt", "sns:Publish"]
EXTS = ["py", "go", "java", "json", "yaml", "log", "conf"]
CODES = [400, 401, 403, 404, 409, 429, 500, 502, 503, 504]
METHODS_HTTP = ["GET", "POST", "PUT", "DELETE", "PATCH"]
TOPICS = ["orders", "payments.v1", "audit", "clickstream", "dead-letter"]


def num(lo=1, hi=99999):
    return str(rng.randint(lo, hi))


def dec():
    return f"{rng.randint(0, 999)}.{rng.randint(0, 99):02d}"


def ip():
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def ipport():
    return f"{ip()}:{rng.randint(1024, 65535)}"


def uuid():
    h = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def hexlit():
    return "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(rng.choice([8, 12, 16])))


def longhex():
    return "".join(rng.choice("0123456789abcdef") for _ in range(rng.choice([16, 24, 32, 40])))


def dur():
    return rng.choice([f"{rng.randint(1, 999)}ms", f"{rng.randint(1, 59)}.{rng.randint(0, 9)}s",
                       f"{rng.randint(1, 59)}s", f"{rng.randint(1, 9)}m{rng.randint(0, 59)}s"])


def user():
    return rng.choice(USERS)


def word():
    return rng.choice(WORDS)


def host():
    return rng.choice(HOSTS)


def path():
    parts = [rng.choice(["srv", "app", "var", "opt", "usr", "home", "data"])]
    parts += [rng.choice(WORDS + USERS + ["lib", "src", "tmp", "cache", "v2"])
              for _ in range(rng.randint(1, 3))]
    return "/" + "/".join(parts) + "/" + rng.choice(WORDS) + "." + rng.choice(EXTS)


def urlpath(most=4):
    return "/" + "/".join(rng.choice(["api", "v1", "v2", word(), num(1, 9999)])
                          for _ in range(rng.randint(1, most)))


def ts():  # ISO 8601 with milliseconds, as zap and Lambda write it
    return (f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
            f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z")


def ngx_ts():
    return (f"2024/{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:"
            f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}")


def pid():
    p = num(1, 65535)
    return f"{p}#{p}:"


def pod():
    return (rng.choice(CONTAINERS) + "-" + "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789")
                                                   for _ in range(10))
            + "-" + "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5)))


# label, weight, generator. Each returns one message.
TEMPLATES = [
    # --- Java -----------------------------------------------------------------------------------
    ("java_npe", 5, lambda: f'java.lang.NullPointerException: Cannot invoke "{rng.choice(CLASSES)}.{rng.choice(METHODS)}()" because "{rng.choice(VARS)}" is null'),
    ("java_hikari", 4, lambda: f"java.sql.SQLTransientConnectionException: HikariPool-{num(1, 9)} - Connection is not available, request timed out after {num(1000, 60000)}ms."),
    ("java_oom", 2, lambda: f'Exception in thread "{rng.choice(["main", "http-nio-8080-exec-" + num(1, 200), "pool-" + num(1, 9) + "-thread-" + num(1, 64), "kafka-consumer"])}" java.lang.OutOfMemoryError: Java heap space'),
    ("java_resource_access", 3, lambda: f'org.springframework.web.client.ResourceAccessException: I/O error on {rng.choice(METHODS_HTTP)} request for "https://{host()}{urlpath()}": Read timed out'),
    ("java_timeout", 3, lambda: f"java.util.concurrent.TimeoutException: Timeout waiting for task {uuid()} after {num(100, 30000)} ms"),
    ("java_illegal_state", 2, lambda: f"java.lang.IllegalStateException: Order {num()} is already in state {rng.choice(['SHIPPED', 'CANCELLED', 'REFUNDED', 'PAID'])}"),
    # --- Python ---------------------------------------------------------------------------------
    ("py_keyerror", 4, lambda: f"KeyError: '{rng.choice(WORDS + USERS + ['id', 'user_id', 'amount', 'currency'])}'"),
    ("py_valueerror", 3, lambda: f"ValueError: invalid literal for int() with base 10: '{rng.choice(WORDS + USERS + ['abc', 'N/A', 'null', ''])}'"),
    ("py_conn_refused", 2, lambda: "ConnectionRefusedError: [Errno 111] Connection refused"),
    ("py_psycopg", 3, lambda: f'psycopg2.OperationalError: could not connect to server: Connection refused Is the server running on host "{host()}" ({ip()}) and accepting TCP/IP connections on port {num(1024, 65535)}?'),
    ("py_readtimeout", 3, lambda: f"requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='{host()}', port=443): Read timed out. (read timeout={num(1, 60)})"),
    ("py_file_not_found", 3, lambda: f"FileNotFoundError: [Errno 2] No such file or directory: '{path()}'"),
    ("py_traceback", 3, lambda: f'Traceback (most recent call last): File "{path()}", line {num(1, 2000)}, in {rng.choice(FUNCS)} {rng.choice(PY_ERRORS)}: {rng.choice(["boom", "bad", "unexpected", "missing"])}'),
    # --- Go zap (console encoder; every line starts with the timestamp) -------------------------
    ("zap_place_order", 5, lambda: f'{ts()}\tERROR\thandler/orders.go:{num(10, 400)}\tfailed to place order\t{{"order_id": "{uuid()}", "user": "{user()}", "error": "context deadline exceeded"}}'),
    ("zap_grpc_unavailable", 4, lambda: f'{ts()}\tERROR\tgrpc/client.go:{num(10, 400)}\trpc error: code = Unavailable desc = "transport: Error while dialing dial tcp {ipport()}: connect: connection refused"'),
    ("zap_redis_pool", 3, lambda: f'{ts()}\tWARN\tcache/redis.go:{num(10, 400)}\tredis: connection pool timeout\t{{"pool": "{word()}", "wait": "{dur()}"}}'),
    ("zap_panic", 2, lambda: f"{ts()}\tDPANIC\tworker/loop.go:{num(10, 400)}\truntime error: index out of range [{num(0, 64)}] with length {num(0, 64)}"),
    ("zap_tx_aborted", 3, lambda: f'{ts()}\tERROR\tdb/tx.go:{num(10, 400)}\ttransaction aborted\t{{"tx": "{longhex()}", "attempt": {num(1, 5)}, "error": "serialization failure"}}'),
    # --- Lambda ---------------------------------------------------------------------------------
    ("lambda_timeout", 5, lambda: f"{ts()} {uuid()} Task timed out after {dec()} seconds"),
    ("lambda_invoke_error", 3, lambda: f'{ts()}\t{uuid()}\tERROR\tInvoke Error \t{{"errorType":"{rng.choice(JS_TYPES)}","errorMessage":"{word()}"}}'),
    ("lambda_runtime_exit", 2, lambda: f"RequestId: {uuid()} Error: Runtime exited with error: signal: killed"),
    ("lambda_report", 4, lambda: f"REPORT RequestId: {uuid()} Duration: {dec()} ms Billed Duration: {num(1, 900000)} ms Memory Size: {rng.choice([128, 256, 512, 1024])} MB Max Memory Used: {num(60, 1024)} MB"),
    # --- nginx (every line starts with the date) ------------------------------------------------
    ("nginx_upstream_refused", 5, lambda: f'{ngx_ts()} [error] {pid()} *{num()} connect() failed (111: Connection refused) while connecting to upstream, client: {ip()}, request: "{rng.choice(METHODS_HTTP)} {urlpath(1)} HTTP/1.1"'),
    ("nginx_open_failed", 3, lambda: f'{ngx_ts()} [error] {pid()} *{num()} open() "{path()}" failed (2: No such file or directory), client: {ip()}'),
    ("nginx_upstream_timeout", 3, lambda: f"{ngx_ts()} [error] {pid()} *{num()} upstream timed out (110: Connection timed out) while reading response header from upstream, client: {ip()}"),
    ("nginx_worker_conns", 1, lambda: f"{ngx_ts()} [alert] {pid()} {num(512, 4096)} worker_connections are not enough"),
    # --- Postgres -------------------------------------------------------------------------------
    ("pg_duplicate_key", 4, lambda: f'ERROR: duplicate key value violates unique constraint "{word()}_{rng.choice(["pkey", "email_key", "name_key"])}"'),
    ("pg_relation_missing", 3, lambda: f'ERROR: relation "{word()}" does not exist at character {num(1, 400)}'),
    ("pg_serialize", 2, lambda: f"ERROR: could not serialize access due to concurrent {rng.choice(['update', 'delete'])}"),
    ("pg_unique_index", 2, lambda: f'ERROR: could not create unique index "{word()}_{rng.choice(["idx", "uniq", "key"])}"'),
    ("pg_statement_timeout", 3, lambda: "ERROR: canceling statement due to statement timeout"),
    ("pg_deadlock", 2, lambda: f"DETAIL: Process {num()} waits for ShareLock on transaction {num()}; blocked by process {num()}."),
    ("pg_auth_failed", 3, lambda: f'FATAL: password authentication failed for user "{user()}"'),
    ("pg_slots", 2, lambda: "FATAL: remaining connection slots are reserved for non-replication superuser connections"),
    # --- AWS SDK --------------------------------------------------------------------------------
    ("aws_throttling", 4, lambda: f"An error occurred (ThrottlingException) when calling the {rng.choice(OPS)} operation (reached max retries: {num(1, 10)}): Rate exceeded"),
    ("aws_access_denied", 3, lambda: f"An error occurred (AccessDeniedException) when calling the {rng.choice(OPS)} operation: User: arn:aws:sts::{num(100000000000, 999999999999)}:assumed-role/{rng.choice(ROLES)}/{user()} is not authorized to perform: {rng.choice(ACTIONS)}"),
    ("aws_throughput", 2, lambda: "ProvisionedThroughputExceededException: The level of configured provisioned throughput for the table was exceeded."),
    ("aws_nosuchkey", 2, lambda: f"botocore.exceptions.ClientError: An error occurred (NoSuchKey) when calling the GetObject operation: The specified key does not exist. Key={path()}"),
    # --- Kubernetes events ----------------------------------------------------------------------
    ("k8s_backoff", 5, lambda: f"Back-off restarting failed container {rng.choice(CONTAINERS)} in pod {pod()}_{rng.choice(NAMESPACES)}({uuid()})"),
    ("k8s_pull_failed", 3, lambda: f'Failed to pull image "{rng.choice(IMAGES)}:{rng.choice(["latest", "v" + num(1, 9) + "." + num(0, 30), longhex()[:12]])}": rpc error: code = NotFound desc = failed to resolve reference: not found'),
    ("k8s_liveness", 3, lambda: f'Liveness probe failed: Get "http://{ipport()}/healthz": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'),
    ("k8s_readiness", 3, lambda: f"Readiness probe failed: HTTP probe failed with statuscode: {rng.choice(CODES)}"),
    ("k8s_mount_secret", 2, lambda: f'MountVolume.SetUp failed for volume "{word()}-secret" : secret "{word()}-{rng.choice(["tls", "creds", "config"])}" not found'),
    ("k8s_oci_exec", 2, lambda: f'Error: failed to create containerd task: OCI runtime create failed: container_linux.go:{num(300, 400)}: starting container process caused: exec: "{rng.choice(["/app/server", "python", "node", "/entrypoint.sh"])}": executable file not found in $PATH: unknown'),
    # --- Node, Kafka, Redis, generic ------------------------------------------------------------
    ("node_econnrefused", 3, lambda: f"Error: connect ECONNREFUSED {ipport()}"),
    ("node_unhandled", 2, lambda: f"UnhandledPromiseRejectionWarning: Error: Request failed with status code {rng.choice(CODES)}"),
    ("kafka_broker", 3, lambda: f"[kafka] Connection to node {num(0, 9)} (kafka-{num(0, 9)}.internal/{ipport()}) could not be established. Broker may not be available."),
    ("kafka_commit", 2, lambda: f"[kafka] Offset commit failed on partition {rng.choice(TOPICS)}-{num(0, 31)} at offset {num()}: The coordinator is not aware of this member."),
    ("redis_oom", 2, lambda: f"OOM command not allowed when used memory > 'maxmemory'. script: {longhex()}, on @user_script:{num(1, 99)}."),
    ("segfault", 2, lambda: f"kernel: {rng.choice(['worker', 'api', 'nginx', 'python3'])}[{num()}]: segfault at {hexlit()} ip {hexlit()} sp {hexlit()} error {rng.choice([4, 6, 14])} in libc.so.6[{hexlit()}+{num(1000, 99999)}]"),
]


def main():
    labels = [t[0] for t in TEMPLATES]
    assert len(set(labels)) == len(labels)
    weights = [t[1] for t in TEMPLATES]
    out = sys.stdout
    # Every template at least 10 times, the rest by weight; then shuffled.
    picks = [i for i in range(len(TEMPLATES)) for _ in range(10)]
    picks += rng.choices(range(len(TEMPLATES)), weights=weights, k=COUNT - len(picks))
    rng.shuffle(picks)
    for i in picks:
        label, _, gen = TEMPLATES[i]
        msg = gen()
        assert "\n" not in msg and "\r" not in msg
        assert len(masked(msg).encode()) < 200, (label, masked(msg))
        # The message may hold tabs (zap); the label is everything before the first tab.
        out.write(f"{label}\t{msg}\n")


if __name__ == "__main__":
    main()
