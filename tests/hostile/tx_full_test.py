#!/usr/bin/python3
"""Fault: a TX ring that fills up. aiqosd runs in EAL mode on four vdevs, two port pairs:

  pair 0<->1: port 0 net_pcap (reads the capture) -> port 1 net_af_packet on a veth that is down
  pair 2<->3: port 2 net_pcap (reads the same capture) -> port 3 net_pcap (writes out3.pcap)

The kernel sends nothing on a down interface, so the frames aiqosd hands to port 1 stay in its
af_packet TX ring (framecnt=512 slots); once the ring is full, port 1 refuses every further frame.

Must hold: aiqosd exits 0; port 1 took exactly its ring's 512 frames and the rest are dropped and
counted under ports[1].drops.tx_full (tx_packets + tx_full == frames in); no other drop anywhere;
the other pair forwards every frame (out3 == in); every mbuf is back in the pool at exit.

usage: tx_full_test.py AIQOSD     (root: a network namespace of its own; SKIP otherwise)
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

RING = 512  # framecnt of the af_packet port: its TX ring holds this many frames
CONNS = 100  # x 20 frames
PREFIX = f"flt-txfull-{os.getpid()}"  # EAL file prefix


def frames():
    tmpl = lib.TcpTemplate()
    out = []
    for i in range(CONNS):
        c = lib.Conn(tmpl, lib.ip4(198, 18, 1, 1), lib.ip4(198, 18, 2, 1), 20000 + i, 8080)
        out += c.handshake()
        for k in range(7):
            out.append(c.c2s(b"x" * (100 + k)))
            out.append(c.s2c(b"y" * 60))
        out += c.fin()
    return lib.timed(out)


def main():
    aiqosd = lib.aiqosd_from_argv()
    lib.need_scapy()
    lib.need_root()
    work, c = lib.Workdir("tx-full"), lib.Checks("tx_full")
    ns = lib.Netns("txfull")
    try:
        ns.veth("fltt0", "fltt1", up=False)
        cap = work("in.pcap")
        n = lib.write_pcap(cap, frames())
        empty = lib.empty_pcap(work("empty.pcap"))
        out3, stats = work("out3.pcap"), work("stats.json")
        eal = lib.eal_args(PREFIX, [
            f"net_pcap0,rx_pcap={cap},tx_pcap=/dev/null",
            f"net_af_packet1,iface=fltt0,qpairs=1,framecnt={RING}",
            f"net_pcap2,rx_pcap={cap},tx_pcap=/dev/null",
            f"net_pcap3,rx_pcap={empty},tx_pcap={out3}"])
        cmd = ns.argv([aiqosd] + eal + ["--", "--idle-exit", "1", "--stats-json", stats,
                                         "--ctl-socket", "none", "--prometheus", "none"])
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=lib.RUN_TIMEOUT_S)
        with open(work("aiqosd.log"), "w") as f:
            f.write(p.stdout + p.stderr)
        r = lib.load_result(stats, p.returncode, p.stdout + p.stderr)
        p0, p1, p2, p3 = (lib.port(r, i) for i in range(4))
        d1 = p1.get("drops", {})
        print(f"tx_full: {n} frames into each pair; port 1 (down, ring {RING}): tx {p1.get('tx_packets')} "
              f"tx_full {d1.get('tx_full')}; port 3: tx {p3.get('tx_packets')}")
        c.check(r.rc == 0, f"aiqosd exit status {r.rc} == 0")
        if r.rc != 0:
            print((p.stdout + p.stderr)[-3000:])
        c.check(p0.get("rx_packets") == n and p2.get("rx_packets") == n,
                f"ports 0 and 2 received {p0.get('rx_packets')}, {p2.get('rx_packets')} == {n}")
        c.check(p1.get("tx_packets") == RING, f"port 1 took {p1.get('tx_packets')} == its ring's {RING} frames")
        c.check(d1.get("tx_full") == n - RING, f"port 1 drops.tx_full {d1.get('tx_full')} == {n} - {RING}")
        c.check(p1.get("tx_full") == d1.get("tx_full"), f"port 1 tx_full {p1.get('tx_full')} == drops.tx_full")
        others = {f"port{i}.{k}": v for i, pp in enumerate((p0, p1, p2, p3))
                  for k, v in pp.get("drops", {}).items() if v and not (i == 1 and k == "tx_full")}
        c.check(not others, f"no other drop: {others or '{}'}")
        got3 = lib.count_frames(out3)
        c.check(p3.get("tx_packets") == n and got3 == n,
                f"the other pair forwards: port 3 tx {p3.get('tx_packets')}, out3.pcap {got3} == {n}")
        c.check(r.stats.get("mbufs_in_use_at_exit") == 0,
                f"mbufs in use at exit {r.stats.get('mbufs_in_use_at_exit')} == 0")
    finally:
        ns.close()
        lib.eal_cleanup(PREFIX)
    c.finish(work)


if __name__ == "__main__":
    main()
