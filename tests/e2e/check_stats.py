#!/usr/bin/env python3
"""Check the counters aiqosd wrote with --stats-json after an end-to-end run.

usage: check_stats.py STATS_JSON [--kernel NAME=VALUE ...] [--mbuf-leak-ok]

Kernel counters (from the testbed's outer veth ends) are optional:
  cli0_rx, cli0_tx, srv0_rx, srv0_tx   packets seen by the client/server kernels

Ports are paired 0<->1. Every frame received leaves or is counted as a drop:
  sum(rx) == sum(tx) + sum(drops)                           (exact, over both ports)
  rx[a] == tx[b] + d  with 0 <= d <= drops[a] + drops[b]    (per direction a->b)
Drops are charged to the egress port for most reasons and to the ingress port for some, so
the per-direction check is a bound; with no drops it is exact. The top-level "tx_full" is the
same counter as drops.tx_full and is not added twice. no_mbuf/imissed are frames the PMD never
delivered (not in rx_packets) and are reported, not balanced.

Prints PASS/FAIL/WARN/INFO lines; exit status 1 if any FAIL.
"""
import argparse
import json
import sys

failed = False


def out(kind, msg):
    global failed
    if kind == "FAIL":
        failed = True
    print(f"{kind}: stats: {msg}", flush=True)


def num(d, key):
    v = d.get(key, 0)
    return v if isinstance(v, int) else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("stats_json")
    ap.add_argument("--kernel", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--mbuf-leak-ok", action="store_true")
    a = ap.parse_args()
    kernel = {}
    for kv in a.kernel:
        k, _, v = kv.partition("=")
        kernel[k] = int(v)

    try:
        with open(a.stats_json, encoding="utf-8") as f:
            st = json.load(f)
    except (OSError, ValueError) as e:
        out("FAIL", f"cannot read {a.stats_json}: {e}")
        return 1

    ports = {p.get("port"): p for p in st.get("ports", []) if isinstance(p, dict)}
    if 0 not in ports or 1 not in ports:
        out("FAIL", f"ports 0 and 1 expected, found {sorted(k for k in ports if k is not None)}")
        return 1
    for pid in (0, 1):
        p = ports[pid]
        missing = [k for k in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "tx_full", "no_mbuf", "drops")
                   if k not in p]
        if missing:
            out("FAIL", f"port {pid} lacks {', '.join(missing)}")
        drops = p.get("drops", {}) if isinstance(p.get("drops"), dict) else {}
        nonzero = {k: v for k, v in drops.items() if v}
        out("INFO", f"port {pid} ({p.get('name', '?')}): rx {num(p, 'rx_packets')} pkts/{num(p, 'rx_bytes')} B, "
                    f"tx {num(p, 'tx_packets')} pkts/{num(p, 'tx_bytes')} B, drops {nonzero or 0}, "
                    f"no_mbuf {num(p, 'no_mbuf')}, imissed {num(p, 'imissed')}")

    def drop_sum(p):
        d = p.get("drops", {})
        d = d if isinstance(d, dict) else {}
        total = sum(v for v in d.values() if isinstance(v, int))
        if "tx_full" not in d:
            total += num(p, "tx_full")
        return total

    rx_all = num(ports[0], "rx_packets") + num(ports[1], "rx_packets")
    tx_all = num(ports[0], "tx_packets") + num(ports[1], "tx_packets")
    drops_all = drop_sum(ports[0]) + drop_sum(ports[1])
    if rx_all == tx_all + drops_all:
        out("PASS", f"rx {rx_all} == tx {tx_all} + drops {drops_all} over both ports")
    else:
        out("FAIL", f"rx {rx_all} != tx {tx_all} + drops {drops_all} over both ports "
                    f"(unaccounted {rx_all - tx_all - drops_all})")
    if drops_all:
        out("WARN", f"{drops_all} frames dropped inside aiqosd")
    for pid in (0, 1):
        for k in ("no_mbuf", "imissed"):
            if num(ports[pid], k):
                out("WARN", f"port {pid}: {k} {num(ports[pid], k)} frames never delivered by the PMD")

    for a_, b_ in ((0, 1), (1, 0)):
        pa, pb = ports[a_], ports[b_]
        rx = num(pa, "rx_packets")
        if rx <= 0:
            out("FAIL", f"port {a_} received nothing")
        tx = num(pb, "tx_packets")
        bound = drop_sum(pa) + drop_sum(pb)
        if rx == tx:
            out("PASS", f"direction {a_}->{b_}: rx {rx} == tx {tx}")
        elif 0 <= rx - tx <= bound:
            out("PASS", f"direction {a_}->{b_}: rx {rx} == tx {tx} + {rx - tx} dropped (<= {bound} drops charged)")
        else:
            out("FAIL", f"direction {a_}->{b_}: rx {rx} vs tx {tx}: {rx - tx} unaccounted (drops {bound})")
        # A passthrough must not change frame sizes.
        if rx == tx and num(pa, "rx_bytes") != num(pb, "tx_bytes"):
            out("FAIL", f"direction {a_}->{b_}: rx_bytes {num(pa, 'rx_bytes')} != tx_bytes {num(pb, 'tx_bytes')}")

    # Outer kernel ends only ever receive what aiqosd transmitted (nothing else sends on the dut ends).
    for ifc, pid in (("cli0", 0), ("srv0", 1)):
        key = f"{ifc}_rx"
        if key in kernel:
            tx = num(ports[pid], "tx_packets")
            if kernel[key] == tx:
                out("PASS", f"{ifc} kernel rx_packets {kernel[key]} == port {pid} tx_packets")
            elif kernel[key] > tx:
                out("FAIL", f"{ifc} received {kernel[key]} frames but port {pid} sent {tx}: something else "
                            f"transmits on the dut side")
            else:
                out("WARN", f"{ifc} received {kernel[key]} frames, port {pid} sent {tx}: "
                            f"{tx - kernel[key]} lost between af_packet tx and the peer")

    workers = [w for w in st.get("workers", []) if isinstance(w, dict)]
    if not workers:
        out("WARN", "no per-worker counters in the JSON")
    else:
        wrx = sum(num(w, "rx_packets") for w in workers)
        wtx = sum(num(w, "tx_packets") for w in workers)
        prx = num(ports[0], "rx_packets") + num(ports[1], "rx_packets")
        ptx = num(ports[0], "tx_packets") + num(ports[1], "tx_packets")
        kind = "PASS" if (wrx, wtx) == (prx, ptx) else "FAIL"
        out(kind, f"workers {[w.get('lcore') for w in workers]}: rx {wrx} tx {wtx} vs ports rx {prx} tx {ptx}")

    if "mbufs_in_use_at_exit" not in st:
        out("FAIL", "mbufs_in_use_at_exit missing")
    else:
        n = st["mbufs_in_use_at_exit"]
        if n == 0:
            out("PASS", "mbufs_in_use_at_exit == 0")
        else:
            out("WARN" if a.mbuf_leak_ok else "FAIL", f"mbufs_in_use_at_exit == {n} (mbuf leak?)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
