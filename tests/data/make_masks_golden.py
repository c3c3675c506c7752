#!/usr/bin/env python3
"""Writes masks.golden: the SEED_BENCH §3.2 template of a few hundred tricky messages, computed
with the reference semantics (the five regexes of shared/bench/ref_python.py's template_of,
copied below), so masker_test.cpp checks the hand-written C++ scanner against them.

  python3 tests/data/make_masks_golden.py > tests/data/masks.golden

One JSON object per line, {"in": message, "out": template}, ASCII only (ensure_ascii=True).
Deterministic: the same script always writes the same file.
"""

import json
import random
import re
import sys

# --- copied from shared/bench/ref_python.py (template_of and its regexes) -----------------------
MASKS = [
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
                re.ASCII), "<UUID>"),
    (re.compile(r"\b[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(:[0-9]{1,5})?\b", re.ASCII), "<IP>"),
    (re.compile(r"\b0[xX][0-9a-fA-F]+\b", re.ASCII), "<HEX>"),
    (re.compile(r"\b[0-9a-fA-F]{16,}\b", re.ASCII), "<ID>"),
    (re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII), "<NUM>"),
]
WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")
MAX_TEMPLATE_BYTES = 200


def template_of(msg):
    for rx, repl in MASKS:
        msg = rx.sub(repl, msg)
    t = WHITESPACE.sub(" ", msg).strip(" ")
    b = t.encode("utf-8")
    if len(b) <= MAX_TEMPLATE_BYTES:
        return t
    cut = MAX_TEMPLATE_BYTES
    while cut > 0 and (b[cut] & 0xC0) == 0x80:   # never split a UTF-8 sequence
        cut -= 1
    return b[:cut].decode("utf-8")
# -------------------------------------------------------------------------------------------------

HEX = "0123456789abcdefABCDEF"
NON_ASCII = ["\u00fc", "\u2192", "\u6771", "\U0001F600", "\u00a0", "\u2028", "\u3000", "\u0085"]
SPACES = [" ", "\t", "\n", "\v", "\f", "\r"]


def hexs(rng, n):
    return "".join(rng.choice(HEX) for _ in range(n))


def digits(rng, n):
    return "".join(rng.choice("0123456789") for _ in range(n))


def token(rng):
    k = rng.randrange(24)
    if k == 0:   # UUID, sometimes malformed
        groups = [8, 4, 4, 4, 12]
        if rng.random() < 0.3:
            i = rng.randrange(5)
            groups[i] += rng.choice([-1, 1])
        u = "-".join(hexs(rng, g) for g in groups)
        return u.upper() if rng.random() < 0.3 else u
    if k == 1:   # IPv4 with 1-4 digit parts, 3-5 parts, optional port
        parts = [digits(rng, rng.choice([1, 1, 2, 3, 3, 4])) for _ in range(rng.choice([3, 4, 4, 4, 5]))]
        s = ".".join(parts)
        if rng.random() < 0.5:
            s += ":" + digits(rng, rng.randrange(0, 8))
        return s
    if k == 2:   # 0x literals, sometimes broken
        s = "0" + rng.choice("xX") + hexs(rng, rng.randrange(0, 20))
        if rng.random() < 0.3:
            s += rng.choice(["_ff", "g", "G", "x", ".5", "-1"])
        return s
    if k == 3:   # long hex / long decimal
        n = rng.choice([14, 15, 16, 16, 17, 24, 32, 40])
        return digits(rng, n) if rng.random() < 0.4 else hexs(rng, n)
    if k == 4:   # dotted numbers
        return ".".join(digits(rng, rng.randrange(1, 5)) for _ in range(rng.randrange(1, 4)))
    if k == 5:
        return rng.choice(NON_ASCII)
    if k == 6:
        return "".join(rng.choice(SPACES) for _ in range(rng.randrange(1, 4)))
    if k == 7:
        return rng.choice(["v", "id", "x", "X", "g", "_", "__", "err", "ERROR", "at", "ID"])
    # single characters from a tricky alphabet
    return rng.choice("0123456789.:.:-_xXabcdefABCDEFgz ./=<>\"'\\") \
        if rng.random() < 0.9 else rng.choice(NON_ASCII + SPACES + ["\x00", "\x01", "\x7f"])


def random_message(rng):
    return "".join(token(rng) for _ in range(rng.randrange(1, 14)))


def long_message(rng):
    """Around the 200-byte cut, with multi-byte characters and spaces near it."""
    filler = rng.choice(["a", "ab ", "x1 ", "\u00fc", "\u6771", "\U0001F600", "word "])
    s = filler * rng.randrange(150 // len(filler.encode()), 260 // len(filler.encode()) + 1)
    tail = "".join(rng.choice(["\u6771", "\U0001F600", "\u00fc", " ", "  ", "\t", "7", "0x1f ", "a"])
                   for _ in range(rng.randrange(0, 12)))
    pos = rng.randrange(0, len(s) + 1)
    return s[:pos] + tail + s[pos:]


FIXED = [
    "10.0.0.1:123456", "1.2.3.4.5", "1234.5.6.7", "3.14.15", "v2", "0x1F_ff", "0x7g", "0x1F", "0XaB",
    "1234567890123456", "123456789012345", "deadbeefdeadbeef", "deadbeefdeadbee",
    "123e4567-e89b-12d3-a456-426614174000", "123E4567-E89B-12D3-A456-426614174000",
    "a\tb\nc\vd\fe\rf", "x\u00a0y", "  lead and trail  ", "\t\n\r", "", "1.2.3.4:80", "1.2.3.4:", "1.2.3.4:65536x",
    "1.2.3.4:5_", "01.002.3.4", "1.2.3.4a", "a1.2.3.4", "\u00fc1.2.3.4\u00fc", "1.2.3", "1..2", "1.", ".5",
    "12.0x1f", "3.0x1f.4", "0x", "0x_", "x0x1f", "_0x1f", "0x1f_", "9.1234567890abcdef0",
    "12345678-1234-1234-1234-1234567890ab-ff", "12345678-1234-1234-1234-1234567890abc",
    "g12345678-1234-1234-1234-1234567890ab", "1.2.3.4.5.6.7.8", "255.255.255.255:99999",
    "error at 0xdeadBEEF in thread 140234 (1.5s)", "ERROR \u6771\u4eac 12 \U0001F600 3.5",
]


def main():
    rng = random.Random(20251127)
    inputs = list(FIXED)
    inputs += [random_message(rng) for _ in range(400)]
    inputs += [long_message(rng) for _ in range(80)]
    seen = set()
    out = sys.stdout
    for msg in inputs:
        if msg in seen:
            continue
        seen.add(msg)
        out.write(json.dumps({"in": msg, "out": template_of(msg)}, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
