#!/usr/bin/python3
"""Pcap regression for the request log: real captures through aiqosd's offline mode.

usage: /usr/bin/python3 tests/pcap/request_log_test.py AIQOSD [--case NAME]... [--keep] [--seed N]

Every folder under tests/pcap/cases/ holds in.pcap (a capture of real clients and servers, made by
tests/pcap/capture/make_corpus.sh) and expected.jsonl (one line per request, written by the client
that sent it). For each case:

  1. request log   aiqosd --pcap-in in.pcap --request-log ...; every expected request must be
                   logged once with the same fields (below), and nothing else may be logged.
                   Accuracy = share of expected requests logged with the right endpoint AND model.
                   A logged model that is not null and differs from the client's is a WRONG model:
                   always a failure, and counted on its own.
  2. mutations     (needs scapy) the capture rewritten, deterministically from --seed and the case
                   name, in ways TCP allows: (a) segments reordered within a small window,
                   (b) segments duplicated, (c) a segment re-cut into two overlapping segments with
                   identical bytes. The request log must be identical to the unmutated run's
                   (ts, ttfb_ms and duration_ms aside), and every frame forwarded.
  3. hostile       (needs scapy) frames truncated and payload bits flipped: aiqosd must exit 0
                   and forward every frame; the log must stay one JSON object a line.

Matching a logged record to an expected one: by (sport, stream_id) for HTTP/2 and gRPC; by
(sport, n-th request of that connection) for HTTP/1.1 and TLS, logged records ordered by ts; by
best agreement among the rest for expected records the client could not attribute to a port
(h2load, openssl s_client: sport null).

Fields compared when expected.jsonl has them (null stream_id or sport there means "unknown to the
client", not compared): proto method path authority endpoint model model_source stream_id status
grpc_status req_bytes tenant vlan src dst sport dport. resp_bytes and ts (inside the connection's
capture time) are reported as warnings only.

Exit status: 0 pass, 1 fail. AIQOS_KEEP_LOGS=1 or --keep keeps the work directory.
"""
import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pcaplib import PCAP_MAGIC_BE, PCAP_MAGIC_LE, byte_order  # noqa: E402

STRICT = ["proto", "method", "path", "authority", "endpoint", "model", "model_source", "stream_id",
          "status", "grpc_status", "req_bytes", "tenant", "vlan", "src", "dst", "sport", "dport"]
WARN_ONLY = ["resp_bytes"]
# The response accounting fields the server's own log gives (llm_timing): token figures exactly,
# times within 10 % (the capture's frame times against the server's timers).
STRICT += ["output_tokens", "input_tokens", "token_source", "provider", "error_type"]
WITHIN_10PCT = ["ttft_ms", "tpot_ms"]
VOLATILE = {"ts", "ttfb_ms", "duration_ms", "ttft_ms", "tpot_ms"}
AIQOSD_ARGS = ["--capture-header", "x-tenant", "--tenant-header", "x-tenant"]
WORKERS = [1]  # --workers
RUN_TIMEOUT_S = 60
MAX_SHOWN = 12  # detail lines per case and section; the full diff is in the work dir

try:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    HAVE_SCAPY = True
except ImportError:  # pragma: no cover - reported as SKIP of the mutation checks
    HAVE_SCAPY = False


# ---------------------------------------------------------------- pcap files

class Pcap:
    """A classic pcap file: global header and (ts_sec, ts_frac, orig_len, data) records."""

    def __init__(self, header, endian, frames):
        self.header, self.endian, self.frames = header, endian, frames

    @staticmethod
    def read(path):
        data = open(path, "rb").read()
        e = byte_order(data[:4])
        if e is None:
            raise ValueError(f"{path}: not a pcap file (pcapng is not supported)")
        frames, off = [], 24
        while off + 16 <= len(data):
            ts, tf, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
            frames.append((ts, tf, orig, data[off + 16:off + 16 + incl]))
            off += 16 + incl
        return Pcap(data[:24], e, frames)

    def nanos(self):
        return self.header[:4] in (PCAP_MAGIC_LE[1], PCAP_MAGIC_BE[1])

    def write(self, path, frames=None):
        e = self.endian
        with open(path, "wb") as f:
            f.write(self.header)
            for ts, tf, orig, data in (self.frames if frames is None else frames):
                f.write(struct.pack(e + "IIII", ts, tf, len(data), max(orig, len(data))) + data)


def count_frames(path):
    try:
        return len(Pcap.read(path).frames)
    except (OSError, ValueError):
        return -1


class Seg:
    """What the mutations need to know about one frame (None fields: not TCP/IP)."""
    __slots__ = ("flowdir", "flow", "seq", "ack", "flags", "plen", "poff")

    def __init__(self):
        self.flowdir = self.flow = None
        self.seq = self.ack = self.flags = self.plen = self.poff = 0

    @property
    def is_data(self):
        return self.flowdir is not None and self.plen > 0 and not (self.flags & 0x07)  # no FIN/SYN/RST


def parse_seg(data):
    s = Seg()
    off, et = 12, None
    while off + 2 <= len(data):
        et = struct.unpack(">H", data[off:off + 2])[0]
        if et in (0x8100, 0x88A8):
            off += 4
            continue
        off += 2
        break
    if et == 0x0800 and off + 20 <= len(data):
        ihl = (data[off] & 0x0F) * 4
        tot = struct.unpack(">H", data[off + 2:off + 4])[0]
        if data[off + 9] != 6 or ihl < 20:
            return s
        src, dst, l4, end = data[off + 12:off + 16], data[off + 16:off + 20], off + ihl, off + tot
    elif et == 0x86DD and off + 40 <= len(data):
        if data[off + 6] != 6:
            return s
        plen = struct.unpack(">H", data[off + 4:off + 6])[0]
        src, dst, l4, end = data[off + 8:off + 24], data[off + 24:off + 40], off + 40, off + 40 + plen
    else:
        return s
    if l4 + 20 > len(data):
        return s
    sport, dport, seq, ack = struct.unpack(">HHII", data[l4:l4 + 12])
    doff = (data[l4 + 12] >> 4) * 4
    s.flowdir = (src, dst, sport, dport)
    s.flow = tuple(sorted([(src, sport), (dst, dport)]))
    s.seq, s.ack, s.flags = seq, ack, data[l4 + 13] | ((data[l4 + 12] & 1) << 8)
    s.poff = l4 + doff
    s.plen = max(0, min(end, len(data)) - s.poff)
    return s


def seq_ge(a, b):
    return ((a - b) & 0xFFFFFFFF) < 0x80000000


# ---------------------------------------------------------------- mutations (scapy)

def rebuild(data, seq=None, payload=None):
    """The frame with a new TCP seq and/or payload; lengths and checksums recomputed."""
    p = Ether(data)
    t = p[TCP]
    if seq is not None:
        t.seq = seq
    if payload is not None:
        t.remove_payload()
        t.add_payload(Raw(payload))
    if p.haslayer(IP):
        del p[IP].len
        del p[IP].chksum
    elif p.haslayer(IPv6):
        del p[IPv6].plen
    del t.chksum
    return bytes(p)


def mutate_reorder(frames, rng):
    """Swap a data segment with one of the next three of its direction, when nothing between
    them could have seen it: no FIN/SYN/RST of the flow, no reverse frame acknowledging it."""
    segs = [parse_seg(f[3]) for f in frames]
    out = list(frames)
    used = set()
    moves = 0
    for i, a in enumerate(segs):
        if i in used or not a.is_data or rng.random() >= 0.35:
            continue
        cands = []
        for j in range(i + 1, min(len(segs), i + 40)):
            b = segs[j]
            if b.flow != a.flow:
                continue
            if b.flags & 0x07:
                break
            if b.flowdir != a.flowdir:
                if (b.flags & 0x10) and seq_ge(b.ack, (a.seq + a.plen) & 0xFFFFFFFF):
                    break
                continue
            if b.is_data and j not in used:
                cands.append(j)
                if len(cands) == 3:
                    break
        if not cands:
            continue
        j = rng.choice(cands)
        out[i] = frames[i][:3] + (frames[j][3],)
        out[j] = frames[j][:3] + (frames[i][3],)
        used.update((i, j))
        moves += 1
    return out, f"{moves} segment pairs swapped"


def mutate_duplicate(frames, rng):
    """Copies of data segments, each 1-4 frames after its original (a spurious retransmission)."""
    segs = [parse_seg(f[3]) for f in frames]
    pending = {}
    n = 0
    for i, s in enumerate(segs):
        if s.is_data and rng.random() < 0.2:
            at = min(len(frames) - 1, i + rng.randint(0, 3))
            pending.setdefault(at, []).append(frames[i][3])
            n += 1
    out = []
    for i, f in enumerate(frames):
        out.append(f)
        for d in pending.get(i, []):
            out.append(f[:3] + (d,))
    return out, f"{n} segments duplicated"


def mutate_overlap(frames, rng):
    """A data segment [0,n) re-cut as [0,m) and [k,n) with k < m: the bytes in [k,m) twice,
    identical."""
    out = []
    n = 0
    for f in frames:
        s = parse_seg(f[3])
        if s.is_data and s.plen >= 8 and rng.random() < 0.3:
            pay = f[3][s.poff:s.poff + s.plen]
            m = rng.randint(max(2, s.plen // 3), max(2, (2 * s.plen) // 3))
            k = rng.randint(max(1, m - 400), m - 1)
            a = rebuild(f[3], payload=pay[:m])
            b = rebuild(f[3], seq=(s.seq + k) & 0xFFFFFFFF, payload=pay[k:])
            out.append((f[0], f[1], len(a), a))
            out.append((f[0], f[1], len(b), b))
            n += 1
        else:
            out.append(f)
    return out, f"{n} segments re-cut with overlap"


def mutate_hostile(frames, rng):
    """Truncated frames (down to one byte) and bit flips in TCP payloads, half of them with the
    checksum fixed so they reach the parsers."""
    out = []
    cut = flips = 0
    for f in frames:
        data = f[3]
        s = parse_seg(data)
        if s.is_data and rng.random() < 0.15:
            pay = bytearray(data[s.poff:s.poff + s.plen])
            for _ in range(rng.randint(1, 4)):
                pos = rng.randrange(len(pay))
                pay[pos] ^= 1 << rng.randrange(8)
            if rng.random() < 0.5:
                data = rebuild(data, payload=bytes(pay))
            else:
                data = data[:s.poff] + bytes(pay) + data[s.poff + s.plen:]
            flips += 1
        if len(data) > 1 and rng.random() < 0.08:
            data = data[:rng.randint(1, len(data) - 1)]
            cut += 1
        out.append((f[0], f[1], max(f[2], len(data)), data))
    return out, f"{cut} frames truncated, {flips} payloads bit-flipped"


MUTATIONS = [("reorder", mutate_reorder), ("duplicate", mutate_duplicate), ("overlap", mutate_overlap)]


# ---------------------------------------------------------------- running aiqosd

class Run:
    def __init__(self, rc, records, bad_lines, out_frames, log_tail, path):
        self.rc, self.records, self.bad_lines = rc, records, bad_lines
        self.out_frames, self.log_tail, self.path = out_frames, log_tail, path


def run_aiqosd(aiqosd, pcap_in, work, name):
    out_pcap = os.path.join(work, name + ".out.pcap")
    log = os.path.join(work, name + ".requests.jsonl")
    stdout = os.path.join(work, name + ".aiqosd.log")
    for p in (out_pcap, log):
        if os.path.exists(p):
            os.unlink(p)
    cmd = [aiqosd, "--pcap-in", pcap_in, "--pcap-out", out_pcap, "--request-log", log] + AIQOSD_ARGS
    with open(stdout, "w") as so:
        so.write(" ".join(cmd) + "\n")
        so.flush()
        try:
            rc = subprocess.run(cmd, stdout=so, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                timeout=RUN_TIMEOUT_S).returncode
        except subprocess.TimeoutExpired:
            rc = f"timeout ({RUN_TIMEOUT_S} s)"
        except OSError as e:  # e.g. the binary is being relinked
            rc = f"not started: {e}"
    records, bad = [], []
    if os.path.exists(log):
        for n, line in enumerate(open(log, encoding="utf-8", errors="replace")):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                r["_line"] = n
                records.append(r)
            except json.JSONDecodeError:
                bad.append(line.rstrip("\n")[:200])
    tail = open(stdout, errors="replace").read().splitlines()[-8:]
    return Run(rc, records, bad, count_frames(out_pcap), tail, log)


# ---------------------------------------------------------------- matching and comparing

def describe(r):
    if r is None:
        return "-"
    sid = r.get("stream_id")
    return (f"{r.get('proto')} sport={r.get('sport')}" + (f" stream={sid}" if sid is not None else "") +
            f" {r.get('method')} {r.get('authority')}{r.get('path') or ''}")


def diffs(e, l, fields):
    out = []
    for f in fields:
        if f not in e:
            continue
        if f == "stream_id" and e[f] is None and e.get("proto") in ("h2", "grpc"):
            continue
        if f == "sport" and e[f] is None:
            continue
        if f in WITHIN_10PCT and isinstance(e[f], (int, float)) and isinstance(l.get(f), (int, float)):
            if abs(l[f] - e[f]) > 0.1 * e[f]:
                out.append((f, e[f], l[f]))
            continue
        if l.get(f) != e[f]:
            out.append((f, e[f], l.get(f, "<absent>")))
    return out


def match(expected, logged):
    """Pairs (expected, logged or None) in expected order, and the logged records left over."""
    free = set(range(len(logged)))
    pairs = [None] * len(expected)
    by_key = {}
    for i, r in enumerate(logged):
        if r.get("stream_id") is not None:
            by_key.setdefault(("s", r.get("sport"), r.get("stream_id")), []).append(i)
    # HTTP/1.1 and TLS: the n-th request of a connection, logged records ordered by time.
    per_port = {}
    for i, r in sorted(enumerate(logged), key=lambda x: (x[1].get("ts") or "", x[1]["_line"])):
        if r.get("stream_id") is None:
            per_port.setdefault(r.get("sport"), []).append(i)
    nth = {}
    claimed_ports = {e.get("sport") for e in expected if e.get("sport") is not None}
    for k, e in enumerate(expected):
        if e.get("sport") is None:
            continue
        if e.get("stream_id") is not None:
            cands = [i for i in by_key.get(("s", e["sport"], e["stream_id"]), []) if i in free]
        else:
            n = nth.get(e["sport"], 0)
            nth[e["sport"]] = n + 1
            lst = per_port.get(e["sport"], [])
            cands = [lst[n]] if n < len(lst) and lst[n] in free else []
        if cands:
            pairs[k] = (e, logged[cands[0]])
            free.discard(cands[0])
    # The client did not know its port (h2load, s_client): the free record agreeing best.
    for k, e in enumerate(expected):
        if e.get("sport") is not None:
            continue
        best, best_score = None, -1
        for i in sorted(free):
            r = logged[i]
            if r.get("sport") in claimed_ports:
                continue
            score = len(STRICT) - len(diffs(e, r, STRICT))
            if score > best_score:
                best, best_score = i, score
        if best is not None:
            pairs[k] = (e, logged[best])
            free.discard(best)
    pairs = [p if p is not None else (expected[k], None) for k, p in enumerate(pairs)]
    return pairs, [logged[i] for i in sorted(free)]


def flow_times(pcap):
    """Per client port: (first, last) capture time in µs of any TCP frame with that port."""
    span = {}
    scale = 1000 if pcap.nanos() else 1
    for ts, tf, _, data in pcap.frames:
        s = parse_seg(data)
        if s.flowdir is None:
            continue
        t = ts * 1_000_000 + tf // scale
        for port in (s.flowdir[2], s.flowdir[3]):
            lo, hi = span.get(port, (t, t))
            span[port] = (min(lo, t), max(hi, t))
    return span


def ts_us(ts):
    try:
        d = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        return int(d.timestamp()) * 1_000_000 + d.microsecond
    except (TypeError, ValueError):
        return None


def normalized(records):
    return sorted(json.dumps({k: v for k, v in r.items() if k not in VOLATILE and k != "_line"},
                             sort_keys=True) for r in records)


# ---------------------------------------------------------------- one case

class Totals:
    def __init__(self):
        self.expected = self.correct = self.wrong_models = 0
        self.failed = []


def show(lines, sink):
    for ln in lines[:MAX_SHOWN]:
        print("    " + ln)
    if len(lines) > MAX_SHOWN:
        print(f"    ... {len(lines) - MAX_SHOWN} more in {sink}")


def check_case(name, case_dir, aiqosd, work, seed, totals):
    pcap_path = os.path.join(case_dir, "in.pcap")
    expected = [json.loads(l) for l in open(os.path.join(case_dir, "expected.jsonl")) if l.strip()]
    pcap = Pcap.read(pcap_path)
    nframes = len(pcap.frames)
    failures = []
    print(f"== {name}: {len(expected)} requests expected, {nframes} frames")

    base = run_aiqosd(aiqosd, pcap_path, work, name)
    if base.rc != 0:
        failures.append(f"aiqosd exit {base.rc}")
        print(f"  FAIL: aiqosd exit {base.rc}; its last lines:")
        show(base.log_tail, os.path.join(work, name + ".aiqosd.log"))
    if WORKERS[0] > 1:
        # The multi-worker run must really be one: the dataplane says how many workers forward.
        text = open(os.path.join(work, name + ".aiqosd.log"), errors="replace").read()
        if f"{WORKERS[0]} worker(s) forwarding" not in text:
            failures.append(f"aiqosd did not run {WORKERS[0]} workers")
            print(f"  FAIL: no '{WORKERS[0]} worker(s) forwarding' in the aiqosd log")
    if base.out_frames != nframes:
        failures.append(f"forwarded {base.out_frames}/{nframes} frames")
        print(f"  FAIL: forwarded {base.out_frames} of {nframes} frames")
    if base.bad_lines:
        failures.append(f"{len(base.bad_lines)} request-log lines are not JSON")
        print(f"  FAIL: {len(base.bad_lines)} request-log lines are not JSON:")
        show(base.bad_lines, base.path)

    pairs, extra = match(expected, base.records)
    span = flow_times(pcap)
    correct = wrong = missing = 0
    mism, warn, miss_lines, full = [], [], [], []
    for e, l in pairs:
        if l is None:
            missing += 1
            miss_lines.append(f"MISSING  {describe(e)} endpoint={e.get('endpoint')} model={e.get('model')!r}")
            continue
        if l.get("endpoint") == e.get("endpoint") and l.get("model") == e.get("model"):
            correct += 1
        if l.get("model") is not None and l.get("model") != e.get("model"):
            wrong += 1
        d = diffs(e, l, STRICT + WITHIN_10PCT)
        if d:
            mism.append(f"MISMATCH {describe(e)}: " +
                        "; ".join(f"{f}: expected {x!r} got {y!r}" for f, x, y in d))
            full.append({"expected": e, "logged": l})
        w = diffs(e, l, WARN_ONLY)
        lo_hi = span.get(e.get("sport")) if e.get("sport") is not None else None
        t = ts_us(l.get("ts"))
        if t is None:
            w.append(("ts", "RFC 3339 UTC with µs", l.get("ts")))
        elif lo_hi and not (lo_hi[0] <= t <= lo_hi[1]):
            w.append(("ts", "within the connection's capture time", l.get("ts")))
        if w:
            warn.append(f"warning  {describe(e)}: " +
                        "; ".join(f"{f}: expected {x!r} got {y!r}" for f, x, y in w))
    extra_lines = [f"EXTRA    {describe(r)} endpoint={r.get('endpoint')} model={r.get('model')!r}"
                   for r in extra]
    extra_wrong = sum(1 for r in extra if r.get("model") is not None)
    acc = 100.0 * correct / len(expected) if expected else 100.0
    print(f"  request log: {len(base.records)} logged, {len(expected) - missing} matched, "
          f"{missing} missing, {len(extra)} extra | endpoint+model {correct}/{len(expected)} "
          f"({acc:.1f}%) | wrong models {wrong} | records with field mismatches {len(mism)}")
    totals.expected += len(expected)
    totals.correct += correct
    totals.wrong_models += wrong
    if missing:
        failures.append(f"{missing} missing")
    if extra:
        failures.append(f"{len(extra)} extra" + (f" ({extra_wrong} naming a model)" if extra_wrong else ""))
    if wrong:
        failures.append(f"{wrong} WRONG models")
    if mism:
        failures.append(f"{len(mism)} records with field mismatches")
    detail = os.path.join(work, name + ".diff.txt")
    with open(detail, "w") as f:
        for ln in miss_lines + extra_lines + mism + warn:
            f.write(ln + "\n")
        for x in full:
            f.write(json.dumps(x, sort_keys=True) + "\n")
    show(miss_lines + extra_lines + mism, detail)
    if warn:
        print(f"  {len(warn)} warnings (not failures):")
        show(warn, detail)

    if HAVE_SCAPY:
        base_norm = normalized(base.records)
        rng_seed = zlib.crc32(f"{seed}:{name}".encode())
        for mname, fn in MUTATIONS + [("hostile", mutate_hostile)]:
            frames, what = fn(pcap.frames, random.Random(rng_seed ^ zlib.crc32(mname.encode())))
            mpath = os.path.join(work, f"{name}.{mname}.pcap")
            pcap.write(mpath, frames)
            r = run_aiqosd(aiqosd, mpath, work, f"{name}.{mname}")
            problems = []
            if r.rc != 0:
                problems.append(f"aiqosd exit {r.rc}")
            if r.out_frames != len(frames):
                problems.append(f"forwarded {r.out_frames} of {len(frames)} frames")
            if r.bad_lines:
                problems.append(f"{len(r.bad_lines)} request-log lines are not JSON")
            lines = []
            if mname != "hostile":
                got = normalized(r.records)
                if got != base_norm:
                    from collections import Counter
                    b, g = Counter(base_norm), Counter(got)
                    only_b, only_g = list((b - g).elements()), list((g - b).elements())
                    problems.append(f"request log differs ({len(only_b)} records only unmutated, "
                                    f"{len(only_g)} only mutated)")
                    lines = [f"- {x}" for x in only_b] + [f"+ {x}" for x in only_g]
            status = "ok" if not problems else "FAIL: " + "; ".join(problems)
            print(f"  {mname:9s} ({what}, {len(frames)} frames): {status}")
            if problems:
                failures.append(f"{mname}: " + "; ".join(problems))
                if r.rc != 0:
                    show(r.log_tail, os.path.join(work, f"{name}.{mname}.aiqosd.log"))
                if lines:
                    sink = os.path.join(work, f"{name}.{mname}.diff.txt")
                    open(sink, "w").write("\n".join(lines) + "\n")
                    show(lines, sink)
    else:
        print("  mutations: SKIP (no scapy in this python; use /usr/bin/python3 with python3-scapy)")

    if failures:
        totals.failed.append((name, failures))
    print(f"  {'PASS' if not failures else 'FAIL: ' + '; '.join(failures)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("aiqosd")
    ap.add_argument("--cases", default=os.path.join(HERE, "cases"))
    ap.add_argument("--case", action="append", help="only this case (repeatable)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", default=os.environ.get("AIQOS_KEEP_LOGS") == "1")
    ap.add_argument("--workers", type=int, default=1,
                    help="aiqosd --offline-workers: >1 runs the multi-worker dataplane (software "
                         "dispatch), oversubscribed where CPUs are fewer; the logs must not change")
    a = ap.parse_args()
    WORKERS[0] = a.workers
    if a.workers > 1:
        AIQOSD_ARGS.extend(["--offline-workers", str(a.workers)])

    aiqosd = os.path.realpath(a.aiqosd)
    if not os.access(aiqosd, os.X_OK):
        print(f"FAIL: not executable: {aiqosd}")
        return 1
    names = sorted(d for d in os.listdir(a.cases)
                   if os.path.isfile(os.path.join(a.cases, d, "in.pcap")))
    if a.case:
        unknown = set(a.case) - set(names)
        if unknown:
            print(f"FAIL: no such case: {' '.join(sorted(unknown))} (cases: {' '.join(names)})")
            return 1
        names = [n for n in names if n in a.case]
    if not names:
        print(f"FAIL: no cases under {a.cases}")
        return 1
    work = tempfile.mkdtemp(prefix="aiqos-reqlog.")
    totals = Totals()
    for n in names:
        check_case(n, os.path.join(a.cases, n), aiqosd, work, a.seed, totals)
    acc = 100.0 * totals.correct / totals.expected if totals.expected else 0.0
    print(f"== total: {len(names)} cases, {totals.expected} requests, endpoint+model correct "
          f"{totals.correct}/{totals.expected} ({acc:.1f}%), wrong models {totals.wrong_models}")
    if totals.failed:
        for n, f in totals.failed:
            print(f"FAIL {n}: {'; '.join(f)}")
        print(f"logs: {work}")
        print(f"RESULT: FAIL ({len(totals.failed)} of {len(names)} cases)")
        return 1
    if a.keep:
        print(f"logs: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("RESULT: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
