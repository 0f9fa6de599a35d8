#!/usr/bin/python3
"""Order through the shaper: no connection is reordered by a class change while it is queued.

usage: /usr/bin/python3 tests/pcap/shaped_order_test.py AIQOSD [--case NAME]... [--no-fail-order]

Replays captures of real clients (tests/pcap/cases) offline through a slow egress shaper
(`--egress-rate` far below what the capture offers, so every frame waits in a traffic-class
queue) with three strict-priority classes:

    interactive  chat_completions, anthropic_messages, kserve_infer, grpc_model_infer  (TC 0)
    batch        embeddings, completions, ollama_*                                     (TC 1)
    default      everything else, and every frame before a connection's first request  (TC 2)

so each connection changes class at its first request (handshake and preface queued in the
default class, the request in a more urgent one) and, in the keep-alive and multiplexed cases,
again between requests. Checks, per case:

  * every frame comes out (matched to its input frame by addresses, ports, IP ID, seq/ack,
    flags and payload), none dropped;
  * no frame overtakes an earlier frame of its own connection (either direction);
  * tshark at the far end: the output has no more frames flagged tcp.analysis.out_of_order,
    retransmission, fast_retransmission, spurious_retransmission or lost_segment than the input
    (a reordering inside the appliance shows as one of those);
  * the stats JSON shows frames held in their flow's earlier traffic class (`class_held`), over
    all cases: some connection really changed class while its frames were queued. Not per case:
    an idle shaper lets frames straight through while its bucket holds their bytes
    (Shaper::pass), so a single connection whose class changes within its first few KB (before
    the queue forms) never needs holding.

--no-fail-order prints what the order checks found without failing on them (to measure).
Exit 0 pass, 1 fail, 77 skip (no scapy or tshark). AIQOS_KEEP_LOGS=1 keeps the work directory.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "hostile"))
from vlan_marking_test import conn_of, match_frames  # noqa: E402  (exits 77 without scapy)
from scapy.utils import rdpcap  # noqa: E402
import lib  # noqa: E402

RUN_TIMEOUT_S = 120
CASES = ["h2c_curl", "h1_keepalive", "h2c_multiplex_node", "kserve_rest", "grpc_modelinfer"]
EGRESS_BPS = 2_000_000
TSHARK_FILTER = ("tcp.analysis.out_of_order || tcp.analysis.retransmission || "
                 "tcp.analysis.fast_retransmission || tcp.analysis.spurious_retransmission || "
                 "tcp.analysis.lost_segment")

POLICY = """\
version: 1
classes:
  - {name: interactive, priority: 0, dscp: 46}
  - {name: batch, priority: 5}
  - {name: default, priority: 7}
rules:
  - match: {endpoint: [chat_completions, anthropic_messages, kserve_infer, grpc_model_infer]}
    class: interactive
  - match: {endpoint: [embeddings, completions, ollama_chat, ollama_generate]}
    class: batch
default_class: default
"""

ck = lib.Checks("pcap-shaped-order")
check = ck.check


def tshark_flagged(path):
    r = subprocess.run(["tshark", "-n", "-r", path, "-Y", TSHARK_FILTER, "-T", "fields", "-e", "frame.number"],
                       capture_output=True, text=True, timeout=60)
    if not check(r.returncode == 0, f"tshark reads {path} ({r.stderr.strip()[:300]})"):
        return None
    return len([l for l in r.stdout.splitlines() if l.strip()])


def reorders(fin, fout):
    """Frames that left before an earlier frame (in input order) of their connection."""
    out_of, unmatched = match_frames(fin, fout)
    n, last_out = 0, {}
    for i, j in enumerate(out_of):
        c = conn_of(fin[i])
        if j is None or c is None:
            continue
        k = tuple(sorted([c[:2], c[2:]]))
        if k in last_out and j < last_out[k]:
            n += 1
        last_out[k] = max(j, last_out.get(k, -1))
    missing = sum(1 for j in out_of if j is None)
    return n, missing, len(unmatched)


def run_case(aiqosd, work, case, fail_order):
    pcap_in = os.path.join(HERE, "cases", case, "in.pcap")
    fin = rdpcap(pcap_in)
    wire_bytes = sum(len(bytes(p)) for p in fin)
    # The shaper holds the capture for about wire_bytes / rate: wait that long (and more) for
    # the last frame before the idle exit.
    idle = 2.0 + wire_bytes * 8 / EGRESS_BPS * 1.5
    out, stats, log = work(f"{case}.out.pcap"), work(f"{case}.stats.json"), work(f"{case}.requests.jsonl")
    cmd = [aiqosd, "--pcap-in", pcap_in, "--pcap-out", out, "--request-log", log, "--stats-json", stats,
           "--policy", work("policy.yaml"), "--egress-rate", str(EGRESS_BPS), "--idle-exit", f"{idle:.1f}"]
    with open(work(f"{case}.aiqosd.log"), "w") as lf:
        r = subprocess.run(cmd, stdout=lf, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT_S)
    if not check(r.returncode == 0, f"{case}: aiqosd exit status {r.returncode}"):
        return 0
    fout = rdpcap(out)
    st = json.load(open(stats))
    held = sum(p.get("class_held", 0) for p in st.get("ports", []))
    drops = {k: v for p in st.get("ports", []) for k, v in p.get("drops", {}).items() if v}
    classes = {}
    for line in open(log):
        if line.strip():
            c = json.loads(line).get("class")
            classes[c] = classes.get(c, 0) + 1
    n_reorder, missing, unmatched = reorders(fin, fout)
    t_in, t_out = tshark_flagged(pcap_in), tshark_flagged(out)
    print(f"INFO: {case}: {len(fin)} frames ({wire_bytes} bytes) in, {len(fout)} out; requests by class "
          f"{classes}; {held} frames held in their flow's earlier class; {n_reorder} frames overtook an "
          f"earlier frame of their connection; tshark flags {t_in} in, {t_out} out")
    check(len(fout) == len(fin) and missing == 0 and unmatched == 0 and not drops,
          f"{case}: every frame out once ({len(fin)} in, {len(fout)} out, {missing} missing, "
          f"{unmatched} unmatched, drops {drops})")
    if fail_order:
        check(n_reorder == 0, f"{case}: no frame overtakes an earlier frame of its connection ({n_reorder})")
        if t_in is not None and t_out is not None:
            check(t_out <= t_in, f"{case}: tshark out-of-order/retransmission/lost flags at the far end "
                                 f"{t_out} <= {t_in} in the input")
    return held


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("aiqosd")
    ap.add_argument("--case", action="append")
    ap.add_argument("--no-fail-order", action="store_true")
    a = ap.parse_args()
    if shutil.which("tshark") is None:
        print("SKIP: tshark is not installed")
        return lib.SKIP
    work = lib.Workdir("shaped-order")
    with open(work("policy.yaml"), "w") as f:
        f.write(POLICY)
    held = sum(run_case(a.aiqosd, work, case, not a.no_fail_order) for case in a.case or CASES)
    check(held > 0, f"frames held in their flow's earlier traffic class, all cases ({held} > 0)")
    ck.finish(work)


if __name__ == "__main__":
    sys.exit(main())
