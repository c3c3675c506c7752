#!/usr/bin/env python3
"""explorer_test.py - the template explorer page (GET / and /ui) in a real headless browser.

  explorer_test.py FAULTLINE_BINARY SCREENSHOT_DIR

Starts faultline (a 2 s warm-up), posts events of two templates to two webhook sources, waits
out the warm-up, posts a third template (so it is "new"), then runs tests/browser/explorer.js
in Debian's chromium through puppeteer-core: it asserts what a person sees (texts, counts, the
"new" mark, the order, a text filter and a group filter hiding rows, a phone's width, nothing
fetched from elsewhere) and saves explorer.png and explorer-phone.png in SCREENSHOT_DIR.
Also checks what the page is served as. Exit 77 (skipped) without chromium, node or
tests/browser/node_modules (scripts/install-deps.sh installs them).
"""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_test as st  # noqa: E402
from hostile_test import post  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
NODE = shutil.which("node")


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return r.status, r.headers, r.read()


def main():
    st.BINARY = os.path.abspath(sys.argv[1])
    shots = os.path.abspath(sys.argv[2])
    missing = [what for what, ok in (("chromium", os.access(CHROMIUM, os.X_OK)), ("node", NODE),
                                     ("puppeteer-core", os.path.isdir(os.path.join(BROWSER_DIR, "node_modules",
                                                                                    "puppeteer-core"))))
               if not ok]
    if missing:
        print("explorer_test: skipped: %s missing (scripts/install-deps.sh)" % ", ".join(missing), file=sys.stderr)
        return 77
    os.makedirs(shots, exist_ok=True)
    config = {"workers": 2, "templates": {"warmup": "2s"},
              "sources": {"default": {"auth": "none"}, "billing": {"auth": "none", "group": "billing"}}}
    srv = st.Server(config)
    started = time.time()
    try:
        for path in ("/", "/ui"):
            status, headers, body = get(srv.port, path)
            assert status == 200, (path, status)
            assert headers["Content-Type"] == "text/html; charset=utf-8", headers["Content-Type"]
            assert b"<title>faultline" in body and b"/v1/templates" in body, body[:200]
        for i in range(3):
            s, _, _ = post(srv.port, "/v1/webhook/default", b'{"message":"ERROR payment declined for order %d"}' % i,
                           {"Content-Type": "application/json"})
            assert s == 200, s
        s, _, _ = post(srv.port, "/v1/webhook/billing", b'{"message":"ERROR invoice totals mismatch"}',
                       {"Content-Type": "application/json"})
        assert s == 200, s
        time.sleep(max(0.0, 2.5 - (time.time() - started)))  # past the warm-up: the next template is new
        for i in range(2):
            s, _, _ = post(srv.port, "/v1/webhook/default", b'{"message":"ERROR ledger unreachable at 10.0.0.%d"}' % i,
                           {"Content-Type": "application/json"})
            assert s == 200, s
        _, _, body = get(srv.port, "/v1/templates")
        templates = {t["count"]: t for t in json.loads(body)["templates"]}
        old, fresh = templates[3], templates[2]
        grouped = next(t for t in json.loads(body)["templates"] if t["groups"][0]["group"] == "billing")
        assert fresh["new"] and not old["new"], (old, fresh)
        want = {"old": {"text": old["template"], "count": 3, "word": "payment"},
                "fresh": {"text": fresh["template"], "count": 2},
                "grouped": {"text": grouped["template"], "group": "billing"}}
        r = subprocess.run([NODE, os.path.join(BROWSER_DIR, "explorer.js"), "http://127.0.0.1:%d" % srv.port,
                            json.dumps(want), shots], cwd=BROWSER_DIR, timeout=120,
                           env=dict(os.environ, CHROMIUM=CHROMIUM))
        if r.returncode != 0:
            return 1
        print("explorer_test: screenshots in %s" % shots)
        return 0
    finally:
        srv.cleanup()


if __name__ == "__main__":
    sys.exit(main())
