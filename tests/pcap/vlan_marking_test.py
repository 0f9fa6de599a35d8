#!/usr/bin/python3
"""Per-class marking offline: VLAN push/rewrite, PCP and DSCP on a real capture.

usage: /usr/bin/python3 tests/pcap/vlan_marking_test.py AIQOSD [--case NAME] [--keep]

Replays tests/pcap/cases/<case>/in.pcap (default h2c_curl: one h2c request per connection)
through `aiqosd --pcap-in ... --pcap-out ... --request-log ... --policy P` with

    interactive  chat_completions, anthropic_messages   vlan 100 pcp 5 dscp 46
    batch        embeddings                             vlan 200 pcp 1
    default      everything else                        no marking

and checks every output frame against its input frame (matched by IP addresses, ports, IP ID,
TCP seq/ack/flags and payload, so a reordering inside the appliance does not confuse the match):

  * a frame of a connection whose request the log puts in interactive/batch, from the client
    segment that completes the request's HTTP/2 HEADERS frame on (the classifier decides the class
    when the header block is complete; both directions), carries the class's tag and DSCP (ECN
    kept) with a valid IPv4 header checksum, and is otherwise byte-identical to its input;
  * every other frame is byte-identical to its input (untagged stays untagged);
  * as many frames come out as went in.

Second pass: the same capture with an 802.1Q tag (VID 7, PCP 0) added to every frame. Marked
frames must have that outer tag rewritten to the class's VID/PCP (not a second tag pushed);
default frames keep VID 7 and their bytes.

Order: the frames of each connection must leave in the order they came in. With --check-order a
frame that overtakes an earlier frame of its own connection is a failure; without it the count is
printed. (No class here is shaped, so frames bypass the shapers; shaped_order_test.py checks the
same through a slow shaper.)

Exit 0 pass, 1 fail, 77 skip (no scapy). AIQOS_KEEP_LOGS=1 or --keep keeps the work directory.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict, deque

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_TIMEOUT_S = 60
MAX_SHOWN = 10

try:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Dot1Q, Ether
    from scapy.utils import rdpcap, wrpcap
except ImportError:
    print("SKIP: python3-scapy is not installed (run with /usr/bin/python3)")
    sys.exit(77)

POLICY = """\
version: 1
classes:
  - {name: interactive, priority: 0, vlan: 100, pcp: 5, dscp: 46}
  - {name: batch, priority: 5, vlan: 200, pcp: 1}
  - {name: default}
rules:
  - match: {endpoint: [chat_completions, anthropic_messages]}
    class: interactive
  - match: {endpoint: embeddings}
    class: batch
default_class: default
"""
MARKS = {"interactive": (100, 5, 46), "batch": (200, 1, None)}
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

failures = []


def check(ok, msg):
    if not ok:
        failures.append(msg)
    return ok


def ipv4_csum_ok(raw_ip):
    ihl = (raw_ip[0] & 0x0F) * 4
    s = 0
    for i in range(0, ihl, 2):
        s += (raw_ip[i] << 8) | raw_ip[i + 1]
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


def frame_key(pkt):
    """Identity of a frame that marking does not change."""
    if IP in pkt and TCP in pkt:
        ip, t = pkt[IP], pkt[TCP]
        return ("tcp", ip.src, ip.dst, ip.id, t.sport, t.dport, t.seq, t.ack, int(t.flags), bytes(t.payload))
    # Other frames: what follows the Ethernet header and any VLAN tags.
    p = pkt.payload
    while isinstance(p, Dot1Q):
        p = p.payload
    return ("raw", bytes(p))


def conn_of(pkt):
    """(client ip, client port, server ip, server port) for a TCP frame, the server on 8080-ish:
    the side whose port the request log calls dport."""
    if IP not in pkt or TCP not in pkt:
        return None
    ip, t = pkt[IP], pkt[TCP]
    return (ip.src, t.sport, ip.dst, t.dport)


def classify_trigger(frames, client, server):
    """Index (in `frames`) of the client segment that completes the first HTTP/2 HEADERS frame on
    the connection client->server, or None."""
    isn = None
    segs = []  # (index, stream offset, payload)
    for i, p in enumerate(frames):
        if IP not in p or TCP not in p:
            continue
        ip, t = p[IP], p[TCP]
        if (ip.src, t.sport) != client or (ip.dst, t.dport) != server:
            continue
        if t.flags & 0x02:  # SYN
            isn = t.seq + 1
            continue
        pl = bytes(t.payload)
        # IP total length bounds the payload (Ethernet padding is not payload).
        pl = pl[: max(0, ip.len - ip.ihl * 4 - t.dataofs * 4)]
        if isn is None or not pl:
            continue
        segs.append((i, (t.seq - isn) & 0xFFFFFFFF, pl))
    if isn is None:
        return None
    # Rebuild the client byte stream (first copy of each byte wins).
    stream = bytearray()
    for _, off, pl in sorted(segs, key=lambda s: s[1]):
        if off <= len(stream) < off + len(pl):
            stream += pl[len(stream) - off:]
    if not stream.startswith(H2_PREFACE):
        return None
    pos = len(H2_PREFACE)
    end = None
    while pos + 9 <= len(stream):
        length = int.from_bytes(stream[pos:pos + 3], "big")
        ftype, flags = stream[pos + 3], stream[pos + 4]
        if ftype == 0x1 or (ftype == 0x9 and end is not None):  # HEADERS, then CONTINUATION
            end = pos + 9 + length
            if flags & 0x4:  # END_HEADERS
                break
        pos += 9 + length
    if end is None:
        return None
    # The first segment (capture order) that carries the block's last byte.
    for i, off, pl in segs:
        if off < end <= off + len(pl):
            return i
    return None


def match_frames(fin, fout):
    """out index for each in index (None when unmatched)."""
    pending = defaultdict(deque)
    for i, p in enumerate(fin):
        pending[frame_key(p)].append(i)
    out_of = [None] * len(fin)
    unmatched_out = []
    for j, p in enumerate(fout):
        q = pending.get(frame_key(p))
        if q:
            out_of[q.popleft()] = j
        else:
            unmatched_out.append(j)
    return out_of, unmatched_out


def run_aiqosd(aiqosd, work, name, pcap_in, policy):
    out = os.path.join(work, f"{name}.out.pcap")
    log = os.path.join(work, f"{name}.requests.jsonl")
    stats = os.path.join(work, f"{name}.stats.json")
    cmd = [aiqosd, "--pcap-in", pcap_in, "--pcap-out", out, "--request-log", log, "--policy", policy,
           "--stats-json", stats]
    with open(os.path.join(work, f"{name}.aiqosd.log"), "w") as lf:
        r = subprocess.run(cmd, stdout=lf, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT_S)
    if not check(r.returncode == 0, f"{name}: aiqosd exited {r.returncode} (log in {work})"):
        return None, None
    recs = [json.loads(l) for l in open(log, encoding="utf-8") if l.strip()]
    return out, recs


def verify(name, fin, fout, recs, outer_in, check_order=False):
    """outer_in: None for untagged input, else the (vid, pcp) every input frame carries."""
    counts = defaultdict(int)
    check(len(fout) == len(fin), f"{name}: {len(fin)} frames in, {len(fout)} out")
    out_of, unmatched = match_frames(fin, fout)
    check(not unmatched, f"{name}: {len(unmatched)} output frames match no input frame")
    missing = [i for i, j in enumerate(out_of) if j is None]
    check(not missing, f"{name}: {len(missing)} input frames did not come out (first: {missing[:5]})")

    # Which frames must be marked, and how.
    want = {}  # in index -> (vid, pcp, dscp)
    classes_seen = defaultdict(int)
    for r in recs:
        cls = r.get("class")
        classes_seen[cls] += 1
        if cls not in MARKS:
            continue
        client, server = (r["src"], r["sport"]), (r["dst"], r["dport"])
        trig = classify_trigger(fin, client, server)
        if not check(trig is not None, f"{name}: no HTTP/2 HEADERS found for {client}->{server}"):
            continue
        conn = {(client[0], client[1], server[0], server[1]), (server[0], server[1], client[0], client[1])}
        for i in range(trig, len(fin)):
            if conn_of(fin[i]) in conn:
                want[i] = MARKS[cls]
    check(classes_seen.get("interactive", 0) > 0 and classes_seen.get("batch", 0) > 0,
          f"{name}: the request log must have interactive and batch requests, has {dict(classes_seen)}")

    shown = 0
    reorders = 0
    last_out = {}
    for i, j in enumerate(out_of):
        if j is None:
            continue
        a, b = bytes(fin[i]), bytes(fout[j])
        c = conn_of(fin[i])
        if c is not None:
            k = tuple(sorted([c[:2], c[2:]]))
            if k in last_out and j < last_out[k]:
                reorders += 1
            last_out[k] = max(j, last_out.get(k, -1))
        errs = []
        if i not in want:
            counts["unchanged"] += 1
            if a != b:
                errs.append("default-class frame changed")
        else:
            counts["marked"] += 1
            vid, pcp, dscp = want[i]
            p = fout[j]
            tags = []
            q = p.payload
            while isinstance(q, Dot1Q):
                tags.append(q)
                q = q.payload
            want_tags = 1
            if len(tags) != want_tags:
                errs.append(f"{len(tags)} VLAN tags, want {want_tags}")
            elif tags[0].vlan != vid or tags[0].prio != pcp or tags[0].id != 0:
                errs.append(f"tag {tags[0].vlan}/{tags[0].prio} dei {tags[0].id}, want {vid}/{pcp}")
            if IP in p:
                l3 = bytes(p[IP])
                tos_in = fin[i][IP].tos
                want_tos = tos_in if dscp is None else (dscp << 2) | (tos_in & 3)
                if p[IP].tos != want_tos:
                    errs.append(f"TOS {p[IP].tos:#x}, want {want_tos:#x}")
                if not ipv4_csum_ok(l3):
                    errs.append("bad IPv4 header checksum")
            # Everything else as it came in: strip the tag, undo TOS and checksum, compare.
            l3_in = 14 if outer_in is None else 18
            l3_out = 18
            rest_a, rest_b = bytearray(a[l3_in:]), bytearray(b[l3_out:])
            if IP in p and len(rest_a) > 12 and len(rest_b) > 12:
                rest_b[1], rest_b[10], rest_b[11] = rest_a[1], rest_a[10], rest_a[11]
            if a[:12] != b[:12] or rest_a != rest_b:
                errs.append("bytes other than tag, TOS and checksum changed")
            if outer_in is None and (b[12:14] != b"\x81\x00" or b[16:18] != a[12:14]):
                errs.append(f"TPID {b[12:14].hex()} / ethertype {b[16:18].hex()}")
        if errs:
            counts["bad"] += 1
            if shown < MAX_SHOWN:
                shown += 1
                failures.append(f"{name}: in #{i} -> out #{j} ({fin[i].summary()}): {'; '.join(errs)}")
    if counts["bad"] > MAX_SHOWN:
        failures.append(f"{name}: ... {counts['bad'] - MAX_SHOWN} more bad frames")
    print(f"INFO: {name}: {len(fin)} frames in, {len(fout)} out; {counts['marked']} marked, "
          f"{counts['unchanged']} unchanged; requests by class {dict(classes_seen)}; "
          f"{reorders} frames overtook an earlier frame of their connection")
    if check_order:
        check(reorders == 0, f"{name}: {reorders} frames overtook an earlier frame of their own connection "
                             "(reordered inside the appliance)")
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("aiqosd")
    ap.add_argument("--case", default="h2c_curl")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--check-order", action="store_true",
                    help="fail when a connection's frames leave in another order than they came")
    a = ap.parse_args()
    keep = a.keep or os.environ.get("AIQOS_KEEP_LOGS") == "1"
    pcap_in = os.path.join(HERE, "cases", a.case, "in.pcap")
    work = tempfile.mkdtemp(prefix="aiqos-vlan-marking.")
    try:
        policy = os.path.join(work, "policy.yaml")
        with open(policy, "w") as f:
            f.write(POLICY)

        # Pass 1: untagged capture.
        fin = rdpcap(pcap_in)
        out, recs = run_aiqosd(a.aiqosd, work, "untagged", pcap_in, policy)
        if out is not None:
            c = verify("untagged", fin, rdpcap(out), recs, None, a.check_order)
            check(c["marked"] > 0, "untagged: no frame was expected to be marked")
            check(c["unchanged"] > 0, "untagged: no frame was expected unchanged")

        # Pass 2: every frame tagged VID 7 PCP 0 on the way in.
        tagged = []
        for p in fin:
            e = p[Ether]
            t = Ether(src=e.src, dst=e.dst, type=0x8100) / Dot1Q(vlan=7, prio=0, type=e.type) / e.payload
            t.time = p.time
            tagged.append(Ether(bytes(t)))
            tagged[-1].time = p.time
        tagged_in = os.path.join(work, "tagged.in.pcap")
        wrpcap(tagged_in, tagged)
        fin7 = rdpcap(tagged_in)
        out, recs = run_aiqosd(a.aiqosd, work, "tagged", tagged_in, policy)
        if out is not None:
            check(all(r.get("vlan") == 7 for r in recs), "tagged: the request log should say vlan 7")
            fout7 = rdpcap(out)
            c = verify("tagged", fin7, fout7, recs, (7, 0), a.check_order)
            # Default frames kept VID 7 (they are byte-identical, checked above); marked ones have
            # exactly one tag, rewritten.
            check(c["marked"] > 0 and c["unchanged"] > 0, "tagged: nothing marked or nothing unchanged")
    finally:
        for f in failures:
            print(f"FAIL: {f}")
        if keep or failures:
            print(f"work directory: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"RESULT: FAIL ({len(failures)})")
        return 1
    print("RESULT: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
