#!/usr/bin/python3
"""(d) Malformed and unusual L2/L3/L4 frames (built with scapy), mixed with one well-formed
h2c request carried in two VLAN tags (QinQ) whose model must be logged:

  short_l2        runts of 0..13 bytes, a VLAN tag cut short
  too_many_vlans  three stacked VLAN tags
  bad_l3          IPv4 IHL < 5, IHL past the frame, total length past the frame or below the
                  header, version 5 in an IPv4 ethertype; IPv6 truncated, IPv6 payload length
                  past the frame, nine extension headers
  fragment        IPv4 first fragment (MF), later fragment (offset), IPv6 fragment header
  bad_l4          TCP data offset < 5 and past the IP payload, UDP shorter than its header
  ok (decoded)    IPv4 options, TCP options, IPv6 extension headers, ARP, UDP
  jumbo           a 9000-byte frame (several mbufs): forwarded whole, outcome printed
  garbage         random payload on a TCP connection to port 8080: unknown_protocol, forwarded

Must hold: exit 0, no crash, every frame forwarded or dropped by a named counter, and each
kind counted under its parse outcome.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

MODEL = "vlan-qinq-model"


def frames_malformed():
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt
    from scapy.layers.l2 import ARP, Dot1Q, Dot1AD, Ether
    from scapy.packet import Raw

    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    tcp = TCP(sport=1234, dport=80, flags="PA") / Raw(b"x" * 20)
    good_ip = bytes(e / IP(src="10.9.0.1", dst="10.9.0.2") / tcp)
    kinds = {}

    # short_l2
    kinds["short_l2"] = [good_ip[:n] for n in (1, 6, 13)] + [bytes(e / Dot1Q(vlan=5))[:16]]
    # too_many_vlans
    kinds["too_many_vlans"] = [bytes(e / Dot1AD(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) /
                                     IP(src="10.9.0.1", dst="10.9.0.2") / tcp)]
    # bad_l3
    def ip_raw(**kw):
        return bytes(e / IP(src="10.9.0.1", dst="10.9.0.2", **kw) / tcp)
    ihl_small = bytearray(good_ip)
    ihl_small[14] = 0x43
    ihl_big = bytearray(good_ip[:14 + 40])
    ihl_big[14] = 0x4F
    version5 = bytearray(good_ip)
    version5[14] = 0x55
    v6 = bytes(e / IPv6(src="fd00::1", dst="fd00::2") / tcp)
    v6_long = bytearray(v6)
    v6_long[18:20] = (4000).to_bytes(2, "big")
    ext = IPv6ExtHdrDestOpt()
    for _ in range(8):
        ext = ext / IPv6ExtHdrDestOpt()
    kinds["bad_l3"] = [bytes(ihl_small), bytes(ihl_big), ip_raw(len=3000), ip_raw(len=10), bytes(version5),
                       v6[:14 + 30], bytes(v6_long),
                       bytes(e / IPv6(src="fd00::1", dst="fd00::2") / ext / tcp)]
    # fragment
    kinds["fragment"] = [ip_raw(flags="MF", frag=0), ip_raw(frag=100),
                         bytes(e / IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(m=1) / tcp)]
    # bad_l4
    def with_doff(d):
        b = bytearray(good_ip)
        b[14 + 20 + 12] = d << 4
        return bytes(b)
    udp_short = bytes(e / IP(src="10.9.0.1", dst="10.9.0.2", proto=17) / Raw(b"abc"))
    kinds["bad_l4"] = [with_doff(2), with_doff(15), udp_short,
                       bytes(e / IP(src="10.9.0.1", dst="10.9.0.2", proto=6) / Raw(b"\x00" * 10))]
    # ok (decoded)
    kinds["ok"] = [
        bytes(e / IP(src="10.9.0.1", dst="10.9.0.2", options=b"\x01\x01\x01\x00") / tcp),
        bytes(e / IP(src="10.9.0.1", dst="10.9.0.2") /
              TCP(sport=1, dport=2, options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 2)),
                                             ("WScale", 7), ("NOP", None)]) / Raw(b"y" * 10)),
        bytes(e / IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / tcp),
        bytes(e / ARP()),
        bytes(e / IP(src="10.9.0.1", dst="10.9.0.2") / UDP(sport=53, dport=53) / Raw(b"q" * 30)),
    ]
    # A jumbo frame is longer than one mbuf's data room: net_pcap chains segments and the
    # parser sees the first one only (counted as bad_l3 today; forwarded whole).
    kinds["jumbo"] = [bytes(e / IP(src="10.9.0.3", dst="10.9.0.4") / TCP(sport=5, dport=6, flags="PA") /
                            Raw(b"J" * 8946))]
    return kinds


def main():
    aiqosd = lib.aiqosd_from_argv()
    lib.need_scapy()
    work, c = lib.Workdir("malformed"), lib.Checks("malformed")
    rnd = lib.rng("malformed")
    kinds = frames_malformed()

    # A well-formed h2c request in QinQ, and a TCP connection carrying random bytes.
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
    qinq = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1AD(vlan=100) / Dot1Q(vlan=200) /
                 IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=80))
    tmpl = lib.TcpTemplate()
    tmpl.raw, tmpl.l3, tmpl.l4 = qinq, 22, 42
    conn = lib.Conn(tmpl, lib.ip4(10, 8, 0, 1), lib.ip4(10, 8, 0, 2), 45000, 8080)
    good = conn.handshake()
    good.append(conn.c2s(lib.PREFACE + lib.SETTINGS + lib.SETTINGS_ACK + lib.h2_request_frames(1, MODEL)))
    good.append(conn.s2c(lib.SETTINGS + lib.SETTINGS_ACK + lib.h2_response_frames(1)))
    good += conn.fin()
    plain = lib.TcpTemplate()
    junk = lib.Conn(plain, lib.ip4(10, 8, 1, 1), lib.ip4(10, 8, 1, 2), 45001, 8080)
    garbage = junk.handshake() + [junk.c2s(bytes(rnd.getrandbits(8) for _ in range(300))) for _ in range(3)]
    garbage += junk.fin()

    # Interleave: malformed frames between every frame of the good connection.
    bad = [f for fs in kinds.values() for f in fs]
    frames = []
    for i, f in enumerate(good):
        frames.append(f)
        frames += bad[i::len(good)]
    frames += garbage
    pcap = work("malformed.pcap")
    lib.write_pcap(pcap, lib.timed(frames))
    r = lib.run_aiqosd(aiqosd, pcap, work, "malformed")
    print(f"malformed: {len(frames)} frames, parse {r.parse}, unclassified "
          f"{ {k: v for k, v in r.cls.get('unclassified', {}).items() if v} }, models {r.models()}")
    # net_pcap may not hand over a 0-byte or oversize frame: such frames must then be the only
    # difference between in and out, which common() reports by name.
    c.common(r, "malformed")
    for kind, fs in kinds.items():
        if kind in ("ok", "jumbo"):
            continue
        c.check(r.parse.get(kind, 0) >= len(fs), f"parse outcome {kind}: {r.parse.get(kind, 0)} >= {len(fs)}")
    unknown = r.cls.get("unclassified", {}).get("unknown_protocol", 0) + \
        r.cls.get("parser_errors", {}).get("unknown_protocol", 0)
    c.check(unknown >= 1, f"random payload counted as unknown_protocol: {unknown} >= 1")
    ins = sorted(len(f) for _, f in lib.read_pcap(pcap))
    outs = sorted(len(f) for _, f in lib.read_pcap(work("malformed.out.pcap")))
    c.check(ins == outs, f"every frame forwarded whole (lengths in == out, largest {max(outs or [0])})")
    got = [m for m in r.models() if m is not None]
    c.check(got == [MODEL], f"QinQ h2c request classified: {got} == [{MODEL}]")
    vlans = [rec.get("vlan") for rec in r.log if rec.get("model") == MODEL]
    c.check(vlans == [200], f"logged VLAN is the inner tag: {vlans} == [200]")
    c.finish(work)


if __name__ == "__main__":
    main()
