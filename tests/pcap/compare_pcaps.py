#!/usr/bin/env python3
"""Compare the frames of two pcap files, ignoring timestamps.

usage: compare_pcaps.py EXPECTED.pcap ACTUAL.pcap [--names NAMES_FILE]

Same count, same order, byte-identical frames (captured bytes and original length).
NAMES_FILE (lines "index length name", as gen_l2_mix.py --list prints) names frames in
messages. Pure Python: reads classic pcap (either byte order, us or ns) and pcapng's
enhanced/simple packet blocks. Exit 0 if equal, 1 if not, 2 on unreadable input.
"""
import struct
import sys


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError(f"{path}: {len(data)} bytes, too short for a pcap header")
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        return read_pcapng(data, path)
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise ValueError(f"{path}: not a pcap file (magic {magic.hex()})")
    linktype = struct.unpack(e + "I", data[20:24])[0]
    frames, off = [], 24
    while off < len(data):
        if off + 16 > len(data):
            raise ValueError(f"{path}: truncated record header at offset {off}")
        _, _, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
        off += 16
        if off + incl > len(data):
            raise ValueError(f"{path}: truncated frame {len(frames)} at offset {off}")
        frames.append((data[off:off + incl], orig))
        off += incl
    return linktype, frames


def read_pcapng(data, path):
    frames, off, e, linktype = [], 0, "<", None
    while off + 12 <= len(data):
        btype = struct.unpack(e + "I", data[off:off + 4])[0]
        if btype == 0x0A0D0D0A:  # section header: byte order from its magic
            e = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        blen = struct.unpack(e + "I", data[off + 4:off + 8])[0]
        if blen < 12 or off + blen > len(data):
            raise ValueError(f"{path}: bad pcapng block at offset {off}")
        body = data[off + 8:off + blen - 4]
        if btype == 1 and linktype is None:
            linktype = struct.unpack(e + "H", body[:2])[0]
        elif btype == 6:
            incl, orig = struct.unpack(e + "II", body[12:20])
            frames.append((body[20:20 + incl], orig))
        elif btype == 3:
            orig = struct.unpack(e + "I", body[:4])[0]
            frames.append((body[4:4 + orig], orig))
        off += blen
    return linktype, frames


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
