#!/usr/bin/env python3
"""durability_test.py - "200 means counted" across kill -9 (issue 13), against the real binary.

  durability_test.py FAULTLINE_BINARY

- kill -9 at a random moment under load, ROUNDS times in a row on one state directory, restarting
  each time: after every restart the events counted equal the events acknowledged 200, exactly
  (a request in flight at the kill may be counted or not: the counted total must lie between the
  acknowledged events and the acknowledged plus in-flight ones, and those are reported); no
  restart fails; the exported counter never goes down (each value scraped before a kill is at most
  what the restart restores).
- A real Prometheus scraping /metrics (on a fixed admin port) through those crashes: no sample of
  faultline_events_ingested_total is below an earlier one (resets() is 0), the last one equals the
  acknowledged events, and increase() over the run equals them within one scrape interval's
  extrapolation (skipped without Debian's prometheus).
- A damaged journal tail (a torn record, garbage) is kept aside and reported; the start succeeds
  and everything before the damage is counted.
- Journal writes that fail (a file size limit, `ulimit -f`: EFBIG part-way through a write) are
  answered 503 (Retry-After) and never counted: the counts are rebuilt from the disk, the exported counter never
  goes down, and it ends equal to the acknowledged events, before and after a kill -9.
Figures go to stderr.
"""
import glob
import os
import random
import resource
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_test as st  # noqa: E402
from dashboard_test import PROMETHEUS, Prometheus  # noqa: E402
from hostile_test import post  # noqa: E402

ROUNDS = int(os.environ.get("FAULTLINE_DURABILITY_ROUNDS", "20"))
SOURCE = "webhook:default"
CONFIG = {"workers": 2, "snapshot_interval": "1s", "limits": {"retry_after": "1s"}}


def load_round(srv, seconds, rng):
    """8 clients post NDJSON webhooks for `seconds`, then the server is killed (SIGKILL) while
    they still send. Returns (acknowledged events, in-flight events, highest counter scraped)."""
    acked = [0]
    inflight = [0]
    scraped = [0.0]
    lock = threading.Lock()
    stop = threading.Event()

    def client(i):
        k = 0
        while not stop.is_set():
            k += 1
            n = rng.randint(1, 60)
            body = b"".join(b'{"message":"ERROR durability %d %d %d"}\n' % (i, k, j) for j in range(n))
            with lock:
                inflight[0] += n
            status, _, _ = post(srv.port, "/v1/webhook/default", body, {"Content-Type": "application/x-ndjson"},
                                timeout=10)
            with lock:
                inflight[0] -= n
                if status == 200:
                    acked[0] += n
                elif status == "error":
                    inflight[0] += n  # sent, no answer: may or may not have been counted
                    return

    def scraper():
        while not stop.is_set():
            try:
                v = srv.metric("faultline_events_ingested_total", source=SOURCE)
                with lock:
                    scraped[0] = max(scraped[0], v)
            except Exception:
                return
            time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)] + [threading.Thread(target=scraper)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    srv.proc.kill()  # SIGKILL: no drain, no snapshot
    srv.proc.wait(10)
    stop.set()
    for t in threads:
        t.join(30)
    return acked[0], inflight[0], scraped[0]


class KillNineTest(unittest.TestCase):
    def test_kill9_under_load_loses_no_acknowledged_event(self):
        rng = random.Random(int(os.environ.get("FAULTLINE_DURABILITY_SEED", "13")))
        # /metrics on a fixed port, so that one Prometheus target follows every restart.
        config = dict(CONFIG, admin_listen="127.0.0.1:%d" % st.free_port())
        admin_port = int(config["admin_listen"].rsplit(":", 1)[1])
        srv = st.Server(config)
        tmp = srv.tmp
        prom = None
        if PROMETHEUS:
            prom = Prometheus(admin_port, tmp, rule_files=())
            # Its first sample: the counter before any load.
            self.assertTrue(st.wait_until(lambda: self.series(prom), 30, 0.2), "prometheus scraped nothing")
        start = time.time()
        acked_total = 0
        maybe_total = 0  # in flight at a kill: may be counted
        try:
            for r in range(ROUNDS):
                acked, inflight, scraped = load_round(srv, rng.uniform(0.3, 1.5), rng)
                srv.kill()
                srv.proc.stderr.close()
                acked_total += acked
                maybe_total += inflight
                srv = st.Server(config, tmp=tmp)  # restarts on the same state directory; must not fail
                counted = srv.metric("faultline_events_ingested_total", source=SOURCE)
                print("round %2d: acknowledged %7d (total %8d), in flight at the kill %4d, counted after restart %8d, "
                      "highest scraped before the kill %8d" % (r + 1, acked, acked_total, inflight, counted, scraped),
                      file=sys.stderr)
                self.assertGreaterEqual(counted, acked_total, "acknowledged events lost at round %d" % (r + 1))
                self.assertLessEqual(counted, acked_total + maybe_total, "counted more than was sent at round %d" % (r + 1))
                # Requests in flight at the kill that were counted are acknowledged now as far
                # as the totals go: carry the difference so later rounds compare exactly.
                maybe_total -= counted - acked_total
                acked_total = counted
                self.assertGreaterEqual(counted, scraped, "the exported counter went down at round %d" % (r + 1))
            self.assertEqual(srv.metric("faultline_journal_corrupt_tails"), 0)
            if prom:
                self.check_prometheus(prom, acked_total, time.time() - start)
        finally:
            if prom:
                prom.stop()
            srv.cleanup()
            st.shutil.rmtree(tmp, ignore_errors=True)

    SERIES = 'faultline_events_ingested_total{source="%s"}' % SOURCE

    def series(self, prom, seconds=600):
        """Every sample Prometheus holds of the counter: [(time, value)]."""
        result = prom.query("%s[%ds]" % (self.SERIES, seconds))
        return [(float(t), float(v)) for t, v in result[0]["values"]] if result else []

    def check_prometheus(self, prom, acked, elapsed):
        # Two more scrapes of the last process (its value is final: no load any more).
        st.wait_until(lambda: len([v for _, v in self.series(prom) if v == acked]) >= 2, 15, 0.2)
        window = int(elapsed) + 30
        samples = self.series(prom, window)
        values = [v for _, v in samples]
        decreases = [(a, b) for a, b in zip(values, values[1:]) if b < a]
        def scalar(expr):
            result = prom.query(expr)
            self.assertEqual(len(result), 1, "%s: %s (samples %s)" % (expr, result, samples))
            return float(result[0]["value"][1])

        resets = scalar("resets(%s[%ds])" % (self.SERIES, window))
        increase = scalar("increase(%s[%ds])" % (self.SERIES, window))
        span = samples[-1][0] - samples[0][0]
        # increase() extrapolates the rate seen between the first and last samples to the window's
        # edges: towards the start not below zero (the first sample is 0), towards the end by at
        # most 1.1 average intervals (1 s scrapes).
        interval = span / max(1, len(samples) - 1)
        bound = acked * (1 + 1.1 * interval / span) if span else acked
        print("prometheus: %d samples over %.1f s, first %d, last %d, resets() %d, increase() %.0f "
              "(acknowledged %d, bound %.0f)" % (len(samples), span, values[0], values[-1], resets, increase, acked,
                                                 bound), file=sys.stderr)
        self.assertEqual(decreases, [], "the counter Prometheus scraped went down")
        self.assertEqual(resets, 0)
        self.assertEqual(values[-1], acked)
        self.assertGreaterEqual(increase, acked - values[0] - 1e-6)
        self.assertLessEqual(increase, bound + 1e-6)

    def test_a_redelivery_after_a_restart_is_not_counted_again(self):
        """Firehose retries a request it got no 200 for, webhook senders redeliver by id: the ids
        acknowledged before a kill -9 (in the journal) or a restart (in the state file) are still
        known after it."""
        import base64
        records = [{"data": base64.b64encode(b"ERROR retried line one\nERROR retried line two\n").decode()}]

        def firehose(srv, rid):
            status, _, body = post(srv.port, "/v1/firehose", st.firehose_body(records, rid),
                                   st.firehose_headers(rid, key=None))
            self.assertEqual(status, 200, body)
            self.assertEqual(st.json.loads(body)["requestId"], rid)

        def webhook(srv, delivery):
            status, _, body = post(srv.port, "/v1/webhook/default", b'{"message":"ERROR hook"}',
                                   {"Content-Type": "application/json", "webhook-id": delivery})
            self.assertEqual(status, 200, body)
            return st.json.loads(body)

        config = dict(CONFIG, snapshot_interval="1h",
                      sources={"default": {"auth": "none", "delivery_id_header": "webhook-id"}})
        srv = st.Server(config)
        tmp = srv.tmp
        try:
            firehose(srv, "req-before-kill")
            self.assertEqual(webhook(srv, "msg-before-kill"), {"accepted": 1})
            srv.kill()  # SIGKILL: the ids are only in the journal
            srv.proc.stderr.close()
            srv = st.Server(config, tmp=tmp)
            self.assertEqual(srv.metric("faultline_events_ingested_total", source="firehose"), 2)
            firehose(srv, "req-before-kill")  # the retry: answered, not counted
            self.assertEqual(webhook(srv, "msg-before-kill"), {"accepted": 0, "duplicate": True})
            self.assertEqual(srv.metric("faultline_events_ingested_total", source="firehose"), 2)
            self.assertEqual(srv.metric("faultline_events_ingested_total", source=SOURCE), 1)
            # A graceful stop snapshots (the journal is compacted): the ids are in the state file.
            firehose(srv, "req-before-stop")
            srv.stop()
            srv.proc.stderr.close()
            with open(os.path.join(tmp, "state", "state.json")) as f:
                saved = st.json.load(f)
            self.assertEqual(sorted(k for k, _ in saved["delivery_ids"]),
                             sorted(["req-before-kill", "req-before-stop", "webhook:default\nmsg-before-kill"]))
            srv = st.Server(config, tmp=tmp)
            for rid in ("req-before-kill", "req-before-stop"):
                firehose(srv, rid)
            self.assertEqual(webhook(srv, "msg-before-kill"), {"accepted": 0, "duplicate": True})
            self.assertEqual(srv.metric("faultline_events_ingested_total", source="firehose"), 4)
            self.assertEqual(srv.metric("faultline_events_ingested_total", source=SOURCE), 1)
            firehose(srv, "req-new")  # a new id still counts
            self.assertEqual(srv.metric("faultline_events_ingested_total", source="firehose"), 6)
        finally:
            srv.cleanup()
            st.shutil.rmtree(tmp, ignore_errors=True)

    def test_damaged_journal_tail_is_kept_aside_and_the_start_succeeds(self):
        srv = st.Server(dict(CONFIG, snapshot_interval="1h"))
        tmp = srv.tmp
        state = os.path.join(tmp, "state")
        try:
            acked = 0
            for i in range(20):
                body = b"".join(b'{"message":"ERROR before the damage %d %d"}\n' % (i, j) for j in range(10))
                status, _, _ = post(srv.port, "/v1/webhook/default", body, {"Content-Type": "application/x-ndjson"})
                self.assertEqual(status, 200)
                acked += 10
            srv.kill()
            srv.proc.stderr.close()
            segments = sorted(glob.glob(os.path.join(state, "journal-*.log")),
                              key=lambda p: int(p.rsplit("-", 1)[1].split(".")[0]))
            self.assertTrue(segments, "no journal segment in %s" % state)
            with open(segments[-1], "ab") as f:  # a torn record: a header promising more than follows
                f.write(b"FLJ1" + (5000).to_bytes(4, "little") + b"\0" * 8 + b"torn")
            srv = st.Server(CONFIG, tmp=tmp)
            self.assertEqual(srv.metric("faultline_events_ingested_total", source=SOURCE), acked)
            self.assertEqual(srv.metric("faultline_journal_corrupt_tails"), 1)
            self.assertEqual(len(glob.glob(os.path.join(state, "journal-*.log.corrupt-*"))), 1)
            self.assertTrue(any(r.get("msg", "").startswith("journal damaged") for r in srv.log_records()))
            # And it goes on: a new delivery is counted and survives the next kill.
            status, _, _ = post(srv.port, "/v1/webhook/default", b'{"message":"ERROR after"}\n',
                                {"Content-Type": "application/x-ndjson"})
            self.assertEqual(status, 200)
            srv.kill()
            srv.proc.stderr.close()
            srv = st.Server(CONFIG, tmp=tmp)
            self.assertEqual(srv.metric("faultline_events_ingested_total", source=SOURCE), acked + 1)
        finally:
            srv.cleanup()
            st.shutil.rmtree(tmp, ignore_errors=True)

    def test_failed_journal_writes_are_never_counted(self):
        limit = 512 * 1024  # bytes any file of the server may reach: each segment fills, then fails

        def lower_file_size_limit():
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        config = dict(CONFIG, snapshot_interval="1h")
        srv = st.Server(config, preexec_fn=lower_file_size_limit)
        tmp = srv.tmp
        acked = [0]
        failed = [0]
        lock = threading.Lock()
        stop = threading.Event()
        scraped = []  # every value /metrics showed, in order
        unexpected = []  # answers other than 200, 500 (a failed write) and 503 (a view while rebuilt)

        def client(i):
            k = 0
            while not stop.is_set():
                k += 1
                body = b"".join(b'{"message":"ERROR disk %d %d %d"}\n' % (i, k, j) for j in range(40))
                status, _, _ = post(srv.port, "/v1/webhook/default", body, {"Content-Type": "application/x-ndjson"},
                                    timeout=10)
                with lock:
                    if status == 200:
                        acked[0] += 40
                    elif status == 503:
                        failed[0] += 1
                    else:
                        unexpected.append(("POST", status))

        def scraper():
            while not stop.is_set():
                status, _, body = srv.request("GET", "/metrics", timeout=10)
                if status == 200:  # 503 while the counts are rebuilt
                    scraped.append(st.metric_value(st.parse_metrics(body.decode()), "faultline_events_ingested_total",
                                                   source=SOURCE))
                elif status != 503:
                    unexpected.append(("GET /metrics", status))
                time.sleep(0.02)

        try:
            threads = [threading.Thread(target=client, args=(i,)) for i in range(4)] + [threading.Thread(target=scraper)]
            for t in threads:
                t.start()
            time.sleep(4)
            stop.set()
            for t in threads:
                t.join(30)
            self.assertEqual(unexpected, [])
            self.assertGreater(failed[0], 0, "no journal write failed: the limit was not reached")
            # The rebuild after the last failure: then /metrics answers again.
            self.assertTrue(st.wait_until(lambda: srv.request("GET", "/metrics", timeout=5)[0] == 200, 30, 0.1))
            counted = srv.metric("faultline_events_ingested_total", source=SOURCE)
            failures = srv.metric("faultline_journal_write_failures_total")
            rebuilds = srv.metric("faultline_journal_rebuilds_total")
            print("file size limit %d: acknowledged %d events, %d deliveries answered 503, %d failed writes, "
                  "%d rebuilds, %d scrapes (never down); counted %d" % (limit, acked[0], failed[0], failures, rebuilds,
                                                                        len(scraped), counted), file=sys.stderr)
            self.assertGreater(failures, 0)
            self.assertGreater(rebuilds, 0)
            # Every failed write's bytes were cut back (exported, and 0).
            self.assertEqual(srv.metrics().get(("faultline_journal_truncate_failures_total", frozenset())), 0.0)
            self.assertEqual(counted, acked[0], "counted != acknowledged with failed journal writes")
            self.assertEqual(scraped, sorted(scraped), "the exported counter went down")
            self.assertLessEqual(max(scraped or [0]), acked[0], "exported more than was acknowledged")
            srv.kill()
            srv.proc.stderr.close()
            srv = st.Server(CONFIG, tmp=tmp)  # no limit now: the disk has exactly the acknowledged ones
            self.assertEqual(srv.metric("faultline_events_ingested_total", source=SOURCE), acked[0])
        finally:
            stop.set()
            srv.cleanup()
            st.shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    st.BINARY = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
