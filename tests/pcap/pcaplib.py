"""What the pcap tests share: reading capture files, running aiqosd offline on one, and the
verdict at the end of a test.

  byte_order(magic)     "<" or ">" for a classic pcap's first four bytes (us or ns), else None
  read_pcap(path)       (linktype, [(bytes, orig_len)]) of a classic pcap or a pcapng
  run_offline(aiqosd, pcap_in, work, tag, args)
                        aiqosd --pcap-in with its outputs in work/tag.*; an Offline (paths, log
                        lines, stats, console) or SystemExit with a FAIL line if aiqosd fails
  report(fails)         prints each failure and the verdict; the exit status (0 or 1)
"""
import json
import os
import struct
import subprocess

PCAP_MAGIC_LE = (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")  # us, ns
PCAP_MAGIC_BE = (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d")


def byte_order(magic):
    if magic in PCAP_MAGIC_LE:
        return "<"
    if magic in PCAP_MAGIC_BE:
        return ">"
    return None


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError(f"{path}: {len(data)} bytes, too short for a pcap header")
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        return read_pcapng(data, path)
    e = byte_order(magic)
    if e is None:
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


class Offline:
    """One offline run: its output pcap, request-log lines, stats JSON and console output."""

    def __init__(self, out, log_lines, stats, console):
        self.out, self.log_lines, self.stats, self.console = out, log_lines, stats, console

    def records(self):
        return [json.loads(line) for line in self.log_lines]


def run_offline(aiqosd, pcap_in, work, tag, args, timeout=120):
    out, log, stats = (os.path.join(work, tag + s) for s in (".out.pcap", ".jsonl", ".stats.json"))
    r = subprocess.run([aiqosd, "--pcap-in", pcap_in, "--pcap-out", out, "--request-log", log,
                        "--stats-json", stats] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    console = r.stdout.decode(errors="replace")
    if r.returncode != 0:
        print(console[-2000:])
        raise SystemExit(f"FAIL: aiqosd {' '.join(args)} exit {r.returncode} on {tag}")
    lines = open(log).read().splitlines() if os.path.exists(log) else []
    return Offline(out, lines, json.load(open(stats)), console)


def report(fails):
    for f in fails:
        print("FAIL:", f)
    print("PASS" if not fails else "RESULT: FAIL")
    return 1 if fails else 0
