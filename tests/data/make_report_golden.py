#!/usr/bin/env python3
"""Writes report.golden: the SEED_BENCH §5 result document of the hand-built counts that
report_test.cpp builds (keep the two in sync), rendered exactly like shared/bench/ref_python.py's
render() (copied below).

  python3 tests/data/make_report_golden.py > tests/data/report.golden
"""

import json
import sys

TOP_N = 20

# Pattern names in file order (report_test.cpp compiles the same names in the same order).
PATTERNS = ["zeta", "alpha", "mid", "beta", "Upper", "\u00fc_name"]

DOCUMENTS, EVENTS, CONTROL = 7, 1234, 2

PATTERN_COUNTS = {"zeta": 5, "alpha": 0, "mid": 3, "beta": 0, "Upper": 1, "\u00fc_name": 2}

BY_GROUP = {
    "/aws/lambda/b": {"zeta": 2, "mid": 0, "Upper": 1},
    "/aws/lambda/a": {"zeta": 3, "mid": 3, "\u00fc_name": 2},
    "zero-group": {"zeta": 0, "alpha": 0},
    "grp \"q\" \\ \u6771\U0001F600\x01/": {"alpha": 4},
}


def templates():
    t = {
        "tpl <NUM> a": 10,
        "tpl <NUM> b": 10,
        "Tpl": 10,
        "\u6771\u4eac <NUM>": 10,
        "\U0001F600 emoji": 10,
        "": 3,
        "quote \" back \\ slash / tab \t ctrl \x01\x1f del \x7f nbsp \u00a0 ls \u2028": 9,
        "big": 1000,
    }
    for i in range(20):
        t["filler-%02d" % i] = 1 + i % 3   # counts 1, 2, 3: ties at the cut of the top 20
    return t


def render():
    tpls = templates()
    top = sorted(tpls.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N]
    result = {
        "documents": DOCUMENTS,
        "events": EVENTS,
        "control_messages": CONTROL,
        "patterns": {n: PATTERN_COUNTS.get(n, 0) for n in sorted(PATTERNS)},
        "by_group": {g: {n: c for n, c in sorted(cnt.items()) if c}
                     for g, cnt in sorted(BY_GROUP.items()) if sum(cnt.values())},
        "top_templates": [{"template": t, "count": c} for t, c in top],
    }
    return json.dumps(result, ensure_ascii=True, separators=(",", ":")) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
