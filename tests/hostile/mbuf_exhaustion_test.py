#!/usr/bin/python3
"""Fault: the mbuf pool runs dry. aiqosd runs in EAL mode with a tiny pool (--mbufs 1023) and a
slow egress shaper (--egress-rate 1Mbit, --queue-frames 4096), so that the frames it holds in the
shaper's queue use up every mbuf:

  port 0 net_pcap rx_iface_in=fltm0 (a live veth; we inject frames on its peer fltm1)
  port 1 net_pcap tx_pcap=out1.pcap

Phase 1 injects 3000 frames of 128 bytes at full speed: the shaper holds what it can, RX then
finds no mbuf and the PMD drops and counts the frame. Phase 2, once the shaper has drained,
injects 200 more frames (another source port) slower than the egress rate.
Waits poll aiqosd's --stats-interval line (bounded); counts are asserted, not timings.

Must hold: no_mbuf counted (ports[0].no_mbuf > 0) and every injected frame accounted for
(rx + no_mbuf + imissed == injected); mbufs in use back at the level before traffic once the
shaper has drained; forwarding resumes (the 200 phase-2 frames in out1.pcap, but for any the
kernel dropped before libpcap read them: imissed); every frame received is forwarded (out1 ==
port 0 rx, no drop); aiqosd exits 0 with every mbuf back.

usage: mbuf_exhaustion_test.py AIQOSD     (root: a network namespace of its own; SKIP otherwise)
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

POOL = 1023
FLOOD, AFTER = 3000, 200
FLOOD_PORT, AFTER_PORT = 1111, 2222
WAIT_S = 30
PREFIX = f"flt-mbufs-{os.getpid()}"  # EAL file prefix

# Runs inside the namespace: sends a pcap's frames on an interface (AF_PACKET), GAP s apart.
INJECT = r"""
import socket, struct, sys, time
ifc, path, gap = sys.argv[1], sys.argv[2], float(sys.argv[3])
data = open(path, "rb").read()
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifc, 0))
off, n = 24, 0
while off + 16 <= len(data):
    incl = struct.unpack("<I", data[off + 8:off + 12])[0]
    s.send(data[off + 16:off + 16 + incl])
    off += 16 + incl
    n += 1
    if gap:
        time.sleep(gap)
print(n)
"""

LINE = re.compile(r"p0 rx (\d+) tx \d+ drop \d+ \| p1 rx \d+ tx (\d+) drop (\d+) \| mbufs in use (\d+)")


class Daemon:
    """aiqosd in the background; its --stats-interval lines parsed as they come."""

    def __init__(self, cmd, log_path):
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.log = open(log_path, "w")
        self.samples = []  # (p0 rx, p1 tx, drops p1, mbufs in use)
        self.ready = threading.Event()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            self.log.write(line)
            if "forwarding between" in line:
                self.ready.set()
            m = LINE.search(line)
            if m:
                self.samples.append(tuple(int(x) for x in m.groups()))
        self.ready.set()

    def wait_for(self, pred, timeout=WAIT_S):
        """Waits until the latest sample satisfies pred (a new sample each time); the sample or None."""
        end = time.monotonic() + timeout
        seen = len(self.samples)
        while time.monotonic() < end and self.p.poll() is None:
            if len(self.samples) > seen:
                seen = len(self.samples)
                if pred(self.samples[-1]):
                    return self.samples[-1]
            time.sleep(0.05)
        return None

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self.t.join(timeout=5)
        self.log.close()
        return rc


def phases(c, d, ns, work, base):
    """The two injections and the checks made while aiqosd runs; returns the frames injected."""

    def inject(pcap, gap):
        p = subprocess.run(ns.argv(["/usr/bin/python3", work("inject.py"), "fltm1", work(pcap), str(gap)]),
                           capture_output=True, text=True, timeout=120)
        return int(p.stdout.strip() or 0)

    sent1 = inject("flood.pcap", 0)
    # Drained: everything received has left and the pool is back at its start level.
    s1 = d.wait_for(lambda s: s[0] > 0 and s[1] == s[0] and s[3] == base)
    peak = max(s[3] for s in d.samples)
    print(f"mbuf_exhaustion: pool {POOL}, in use before traffic {base}, peak {peak}; "
          f"phase 1: {sent1} sent, {s1[0] if s1 else '?'} received")
    c.check(peak >= POOL // 2, f"the shaper held a large part of the pool: peak in use {peak} >= {POOL // 2}")
    c.check(s1 is not None, f"after phase 1 the shaper drained and mbufs in use came back to {base}")
    rx1 = s1[0] if s1 else 0
    sent2 = inject("after.pcap", 0.002)
    # Settled: 5 samples in a row with nothing new received, all of it forwarded, the pool back.
    s2 = d.wait_for(lambda s: s[0] > rx1 and s[1] == s[0] and s[3] == base and d.samples[-5:] == [s] * 5)
    c.check(s2 is not None, f"after phase 2 ({sent2} sent): {s2[0] - rx1 if s2 else '?'} more frames received "
            f"and forwarded, mbufs in use back to {base}")
    return sent1 + sent2


def main():
    aiqosd = lib.aiqosd_from_argv()
    lib.need_scapy()
    lib.need_root()
    work, c = lib.Workdir("mbufs"), lib.Checks("mbuf_exhaustion")
    tmpl = lib.TcpTemplate()

    def burst(n, sport):
        return lib.timed([tmpl.frame(lib.ip4(198, 18, 1, 1), lib.ip4(198, 18, 2, 1), sport, 8080, 1000 + i * 60,
                                     1, 0x10, b"z" * 60) for i in range(n)])

    lib.write_pcap(work("flood.pcap"), burst(FLOOD, FLOOD_PORT))
    lib.write_pcap(work("after.pcap"), burst(AFTER, AFTER_PORT))
    with open(work("inject.py"), "w") as f:
        f.write(INJECT)
    empty = lib.empty_pcap(work("empty.pcap"))
    out1, stats = work("out1.pcap"), work("stats.json")
    ns = lib.Netns("mbufs")
    d, sent = None, 0
    try:
        ns.veth("fltm0", "fltm1")
        eal = lib.eal_args(PREFIX, [
            "net_pcap0,rx_iface_in=fltm0,tx_pcap=/dev/null",
            f"net_pcap1,rx_pcap={empty},tx_pcap={out1}"])
        d = Daemon(ns.argv([aiqosd] + eal + [
            "--", "--mbufs", str(POOL), "--egress-rate", "1Mbit", "--queue-frames", "4096",
            "--stats-interval", "0.1", "--stats-json", stats, "--ctl-socket", "none", "--prometheus", "none"]),
            work("aiqosd.log"))
        d.ready.wait(WAIT_S)
        first = d.wait_for(lambda s: True)
        if c.check(first is not None, "aiqosd started and prints its counters"):
            sent = phases(c, d, ns, work, first[3])

    finally:
        rc = d.stop() if d else None
        ns.close()
        lib.eal_cleanup(PREFIX)
    r = lib.load_result(stats, rc, "")
    p0, p1 = lib.port(r, 0), lib.port(r, 1)
    out = lib.read_pcap(out1) if os.path.exists(out1) else []
    after_out = sum(1 for _, b in out if len(b) >= 36 and int.from_bytes(b[34:36], "big") == AFTER_PORT)
    rx, nombuf, missed = p0.get("rx_packets", 0), p0.get("no_mbuf", 0), p0.get("imissed", 0)
    print(f"  port 0: rx {rx}, no_mbuf {nombuf}, imissed {missed}; port 1: tx {p1.get('tx_packets')}; "
          f"out1.pcap {len(out)} frames, {after_out} of phase 2")
    c.check(rc == 0, f"aiqosd exit status {rc} == 0")
    c.check(nombuf > 0, f"RX without an mbuf counted: ports[0].no_mbuf {nombuf} > 0")
    c.check(rx + nombuf + missed == sent,
            f"every injected frame accounted for: rx {rx} + no_mbuf {nombuf} + imissed {missed} == {sent}")
    # The kernel may drop a few frames before libpcap reads them on a busy machine (imissed).
    c.check(AFTER - missed <= after_out <= AFTER and after_out > 0,
            f"forwarding resumed: {after_out} of the {AFTER} phase-2 frames out ({missed} missed in all)")
    drops = {k: v for pp in (p0, p1) for k, v in pp.get("drops", {}).items() if v}
    c.check(not drops and p1.get("tx_packets") == rx == len(out),
            f"every frame received is forwarded: port 1 tx {p1.get('tx_packets')} == rx {rx} == out1 {len(out)}, "
            f"drops {drops or '{}'}")
    c.check(r.stats.get("mbufs_in_use_at_exit") == 0, f"mbufs in use at exit {r.stats.get('mbufs_in_use_at_exit')} == 0")
    c.finish(work)


if __name__ == "__main__":
    main()
