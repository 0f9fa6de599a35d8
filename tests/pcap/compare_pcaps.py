#!/usr/bin/env python3
"""Compare the frames of two pcap files, ignoring timestamps.

usage: compare_pcaps.py EXPECTED.pcap ACTUAL.pcap [--names NAMES_FILE]

Same count, same order, byte-identical frames (captured bytes and original length).
NAMES_FILE (lines "index length name", as gen_l2_mix.py --list prints) names frames in
messages. Pure Python (pcaplib.read_pcap): reads classic pcap (either byte order, us or ns) and pcapng's
enhanced/simple packet blocks. Exit 0 if equal, 1 if not, 2 on unreadable input.
"""
import sys

from pcaplib import read_pcap


def load_names(path):
    names = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split(None, 2)
            if len(parts) == 3:
                names[int(parts[0])] = parts[2].strip()
    return names


def hexdiff(a, b):
    for i in range(max(len(a), len(b))):
        if i >= len(a) or i >= len(b) or a[i] != b[i]:
            lo = max(0, i - 8)
            return (f"first difference at byte {i}: expected ...{a[lo:i + 8].hex(' ')}... "
                    f"got ...{b[lo:i + 8].hex(' ')}...")
    return "identical"


def main():
    args = sys.argv[1:]
    names = {}
    if "--names" in args:
        k = args.index("--names")
        names = load_names(args[k + 1])
        del args[k:k + 2]
    if len(args) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        lt_a, exp = read_pcap(args[0])
        lt_b, got = read_pcap(args[1])
    except (OSError, ValueError) as err:
        print(f"FAIL: {err}")
        return 2
    bad = 0
    if lt_a != lt_b:
        print(f"FAIL: linktype {lt_b}, expected {lt_a}")
        bad += 1
    for i in range(min(len(exp), len(got))):
        (ea, eo), (ga, go) = exp[i], got[i]
        if ea != ga or eo != go:
            bad += 1
            print(f"FAIL: frame {i} ({names.get(i, '?')}): {len(ga)}/{go} bytes, expected {len(ea)}/{eo}; "
                  f"{hexdiff(ea, ga)}")
    if len(exp) != len(got):
        bad += 1
        print(f"FAIL: {len(got)} frames, expected {len(exp)}")
        for i in range(len(got), len(exp)):
            print(f"  missing frame {i} ({names.get(i, '?')}), {len(exp[i][0])} bytes")
    if bad:
        return 1
    print(f"PASS: {len(got)} frames identical in count, order and bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
