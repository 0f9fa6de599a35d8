#!/usr/bin/python3
"""Jumbo frames: 9014-byte frames carrying request bodies are classified as 1514-byte ones are.

usage: /usr/bin/python3 tests/pcap/jumbo_test.py AIQOSD [--keep]

The same conversation is written twice, with TCP segments of 1460 and of 8960 bytes (1514- and
9014-byte Ethernet frames, a 9000-byte MTU): an HTTP/1.1 POST and an h2c POST whose JSON bodies
name the model after 30 KB of content, so the model is only found by reading the body through
the large frames. net_pcap receives a frame longer than the mbuf data room (2 KB) as a chain
of mbufs, which is the case under test (counted `multi_seg` in the stats JSON).

Policy: class `big` (model jumbo-h1 or jumbo-h2) is marked VLAN 100 and DSCP 46, so the header
rewrite of chained mbufs is exercised too. Checked for both sizes, in offline mode
(`--pcap-in`), on explicit net_pcap vdevs (`--vdev net_pcap0,rx_pcap=...`) and, as root, on
net_af_packet over a veth with MTU 9000 (scapy sends the capture into its peer; framesz=16384
and --mbuf-size 16384, since af_packet copies each frame into a single mbuf):

  * aiqosd exits 0, every frame comes out, with its length (+4 for a pushed tag), and apart from
    the tag, TOS and IPv4 checksum byte for byte as it came in;
  * the request log names both models in class `big`, and is the same for 1514- and 9014-byte
    frames (times aside);
  * with 9014-byte frames through net_pcap, multi-segment frames were seen and none was over
    the bound (af_packet delivers them in one large mbuf).

Exit 0 pass, 1 fail, 77 skip (no scapy).
"""
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "hostile"))
import lib  # noqa: E402

VOLATILE = {"ts", "ttfb_ms", "ttft_ms", "tpot_ms", "duration_ms"}  # times of the run, not of the capture
POLICY = """\
version: 1
classes:
  - {name: big, priority: 0, vlan: 100, dscp: 46}
  - {name: default}
rules:
  - match: {model: [jumbo-h1, jumbo-h2]}
    class: big
default_class: default
"""


def body(model):
    return json.dumps({"messages": [{"role": "user", "content": "x" * 30000}], "model": model,
                       "max_tokens": 7}).encode()


def conversation(mss):
    t = lib.TcpTemplate()
    frames = []

    # HTTP/1.1: headers and body in segments of `mss` bytes, each ACKed.
    c = lib.Conn(t, lib.ip4(10, 0, 0, 1), lib.ip4(10, 0, 0, 2), 40001, 8080)
    frames += c.handshake()
    b = body("jumbo-h1")
    data = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(b)) + b
    for off in range(0, len(data), mss):
        frames.append(c.c2s(data[off:off + mss]))
        frames.append(c.s2c(b"", flags=0x10))
    frames.append(c.s2c(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
                        b'{"ok":true}'))
    frames.append(c.c2s(b"", flags=0x10))
    frames += c.fin()

    # h2c: preface and SETTINGS, HEADERS, the body in DATA frames of 16000 bytes.
    c = lib.Conn(t, lib.ip4(10, 0, 0, 1), lib.ip4(10, 0, 0, 2), 40002, 8080)
    frames += c.handshake()
    frames.append(c.c2s(lib.PREFACE + lib.SETTINGS))
    frames.append(c.s2c(lib.SETTINGS + lib.SETTINGS_ACK))
    b = body("jumbo-h2")
    data = lib.SETTINGS_ACK + lib.h2_frame(1, 0x04, 1, lib.hpack_request(b"/v1/chat/completions"))
    for off in range(0, len(b), 16000):
        last = off + 16000 >= len(b)
        data += lib.h2_frame(0, 0x01 if last else 0, 1, b[off:off + 16000])
    for off in range(0, len(data), mss):
        frames.append(c.c2s(data[off:off + mss]))
        frames.append(c.s2c(b"", flags=0x10))
    frames.append(c.s2c(lib.h2_response_frames(1)))
    frames.append(c.c2s(b"", flags=0x10))
    frames += c.fin()
    return lib.timed(frames, step_ns=100_000)


def strip_mark(out, inp):
    """`out` with a pushed 802.1Q tag removed and TOS/checksum restored from `inp`, for comparing."""
    b = bytearray(out)
    if len(b) == len(inp) + 4 and b[12:14] == b"\x81\x00":
        del b[12:16]
    if len(b) == len(inp) and len(b) > 26 and b[12:14] == b"\x08\x00":
        b[15], b[24], b[25] = inp[15], inp[24], inp[25]
    return bytes(b)


def log_key(recs):
    return sorted(json.dumps({k: v for k, v in r.items() if k not in VOLATILE}, sort_keys=True) for r in recs)


def run_vdev(aiqosd, work, tag, pcap_in):
    """The same capture on explicit net_pcap vdevs (port 0 reads it, port 1 writes)."""
    prefix = f"aiqos-jumbo-{tag}-{os.getpid()}"
    out0, out1, log, stats = work(f"{tag}.out0.pcap"), work(f"{tag}.out1.pcap"), work(f"{tag}.log.jsonl"), \
        work(f"{tag}.stats.json")
    empty = lib.empty_pcap(work("empty.pcap"))
    eal = lib.eal_args(prefix, [f"net_pcap0,rx_pcap={pcap_in},tx_pcap={out0}",
                                f"net_pcap1,rx_pcap={empty},tx_pcap={out1}"])
    cmd = [aiqosd] + eal + ["--", "--policy", work("policy.yaml"), "--request-log", log, "--stats-json", stats,
                            "--idle-exit", "1", "--ctl-socket", "none", "--prometheus", "none"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=lib.RUN_TIMEOUT_S)
    finally:
        lib.eal_cleanup(prefix)
    with open(work(f"{tag}.stderr"), "w") as f:
        f.write(p.stdout + p.stderr)
    r = lib.load_result(stats, p.returncode, p.stderr, lib.count_frames(pcap_in), lib.count_frames(out1))
    r.log = [json.loads(l) for l in open(log) if l.strip()] if os.path.exists(log) else []
    return r, out1


INJECT = """
import sys
from scapy.all import conf, rdpcap, sendp
conf.verb = 0
sendp(rdpcap(sys.argv[1]), iface=sys.argv[2], inter=0.002)
"""


def run_af_packet(aiqosd, work, tag, pcap_in):
    """Port 0 on net_af_packet over a 9000-MTU veth (framesz 16384, --mbuf-size 16384: af_packet
    copies a frame into one mbuf and cannot chain), port 1 writes a pcap. scapy sends the
    capture into the veth's peer once aiqosd forwards. Root only: returns None otherwise."""
    if os.geteuid() != 0:
        return None, None
    prefix = f"aiqos-jumbo-{tag}-{os.getpid()}"
    out1, log, stats = work(f"{tag}.out1.pcap"), work(f"{tag}.log.jsonl"), work(f"{tag}.stats.json")
    ns = lib.Netns("jumbo")
    try:
        ns.veth("jmb0", "jmb1")
        for ifc in ("jmb0", "jmb1"):
            ns.sh(f"ip link set {ifc} mtu 9000")
        empty = lib.empty_pcap(work("empty.pcap"))
        eal = lib.eal_args(prefix, ["net_af_packet0,iface=jmb0,qpairs=1,blocksz=16384,framesz=16384,framecnt=256",
                                    f"net_pcap1,rx_pcap={empty},tx_pcap={out1}"])
        cmd = ns.argv([aiqosd] + eal + ["--", "--policy", work("policy.yaml"), "--request-log", log,
                                        "--stats-json", stats, "--idle-exit", "30", "--mbuf-size", "16384",
                                        "--mbufs", "4095", "--ctl-socket", "none", "--prometheus", "none"])
        with open(work(f"{tag}.aiqosd.log"), "w") as lf:
            p = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and p.poll() is None:
                if "forwarding between" in open(work(f"{tag}.aiqosd.log")).read():
                    break
                time.sleep(0.1)
            ns.sh(f"/usr/bin/python3 -c '{INJECT}' {pcap_in} jmb1", check=False)
            time.sleep(1)  # the last frames through aiqosd; then a clean stop (counters, log)
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=lib.RUN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    finally:
        ns.close()
        lib.eal_cleanup(prefix)
    text = open(work(f"{tag}.aiqosd.log")).read()
    r = lib.load_result(stats, p.returncode, text, lib.count_frames(pcap_in), lib.count_frames(out1))
    r.log = [json.loads(l) for l in open(log) if l.strip()] if os.path.exists(log) else []
    return r, out1


def verify(ck, tag, r, frames, out_path, jumbo):
    ck.common(r, tag)
    out = [b for _, b in lib.read_pcap(out_path)] if os.path.exists(out_path) else []
    ins = [b for _, b in frames]
    same = len(out) == len(ins) and all(strip_mark(o, i) == i for o, i in zip(out, ins))
    ck.check(same, f"{tag}: every frame out in order, unchanged but for tag, TOS and checksum")
    tagged_big = sum(1 for o in out if o[12:14] == b"\x81\x00" and len(o) > 2048)
    if jumbo:
        ck.check(tagged_big > 0, f"{tag}: frames over 2 KB marked with the class VLAN ({tagged_big})")
    models = sorted((x.get("model"), x.get("class")) for x in r.log)
    ck.check(models == [("jumbo-h1", "big"), ("jumbo-h2", "big")], f"{tag}: models and classes {models}")
    ms = sum(w.get("multi_seg", 0) for w in r.stats.get("workers", []))
    too_long = sum(w.get("multi_seg_too_long", 0) for w in r.stats.get("workers", []))
    if jumbo:
        ck.check(ms > 0 and too_long == 0, f"{tag}: multi-segment frames read whole ({ms}, {too_long} too long)")
    print(f"INFO: {tag}: {len(ins)} frames in, {len(out)} out, {ms} multi-segment")


def main():
    lib.need_scapy()
    aiqosd = lib.aiqosd_from_argv()
    work = lib.Workdir("jumbo")
    ck = lib.Checks("pcap-jumbo")
    with open(work("policy.yaml"), "w") as f:
        f.write(POLICY)
    logs = {}
    for mss, jumbo in ((1460, False), (8960, True)):
        frames = conversation(mss)
        pcap_in = work(f"mss{mss}.pcap")
        lib.write_pcap(pcap_in, frames)
        ck.check(max(len(b) for _, b in frames) == mss + 54, f"mss {mss}: largest frame {mss + 54} bytes")
        r = lib.run_aiqosd(aiqosd, pcap_in, work, f"offline{mss}", ["--policy", work("policy.yaml")])
        verify(ck, f"offline mss {mss}", r, frames, work(f"offline{mss}.out.pcap"), jumbo)
        logs[f"offline{mss}"] = log_key(r.log)
        r, out1 = run_vdev(aiqosd, work, f"vdev{mss}", pcap_in)
        verify(ck, f"vdev mss {mss}", r, frames, out1, jumbo)
        logs[f"vdev{mss}"] = log_key(r.log)
        r, out1 = run_af_packet(aiqosd, work, f"afpacket{mss}", pcap_in)
        if r is None:
            print(f"INFO: af_packet mss {mss}: skipped (needs root for a network namespace)")
        else:
            verify(ck, f"af_packet mss {mss}", r, frames, out1, False)
            logs[f"afpacket{mss}"] = log_key(r.log)
    ck.check(logs["offline1460"] == logs["offline8960"], "offline: the same request log for 1514- and 9014-byte frames")
    if "afpacket8960" in logs:
        ck.check(logs["afpacket1460"] == logs["afpacket8960"] == logs["offline8960"],
                 "af_packet: the same request log for 1514- and 9014-byte frames, and as offline")
    ck.check(logs["vdev1460"] == logs["vdev8960"], "vdev: the same request log for 1514- and 9014-byte frames")
    ck.finish(work)


if __name__ == "__main__":
    main()
