#!/usr/bin/env python3
"""Write a deterministic pcap of L2/L3 shapes that a bump-in-the-wire must pass unchanged.

usage: gen_l2_mix.py OUT.pcap [--list] [--repeat N]

Every frame is built from fixed fields and stamped with a fixed time, so two runs write
identical files. Addresses are 198.18.0.0/15 and fd00:198:18::/64 only. --list prints
one line per frame (index, length, name) to stdout. --repeat N writes the mix N times in a
row (many bursts' worth, for ordering and loss under load).
"""
import struct
import sys

from scapy.all import (ARP, ICMP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, ICMPv6EchoRequest,
                       ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6, IPOption_Router_Alert, Raw)

CLI_MAC = "02:00:c6:12:00:01"
SRV_MAC = "02:00:c6:12:00:02"
BCAST = "ff:ff:ff:ff:ff:ff"
CLI4, SRV4 = "198.18.0.1", "198.18.0.2"
CLI6, SRV6 = "fd00:198:18::1", "fd00:198:18::2"
T0 = 1700000000  # fixed capture time


def payload(n, seed=0):
    """n deterministic, printable bytes."""
    return bytes((0x41 + (seed + i) % 26) for i in range(n))


def pad60(b):
    return b + b"\x00" * (60 - len(b)) if len(b) < 60 else b


def h2_preface():
    # HTTP/2 connection preface + an empty SETTINGS frame, as an h2c client sends it.
    return b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def lldp():
    def tlv(t, v):
        return struct.pack("!H", (t << 9) | len(v)) + v
    body = (tlv(1, b"\x04" + bytes.fromhex("0200c6120001"))  # chassis ID: MAC
            + tlv(2, b"\x05" + b"aq-cli")                     # port ID: interface name
            + tlv(3, struct.pack("!H", 120))                  # TTL
            + tlv(5, b"aiqos-test")                           # system name
            + tlv(0, b""))                                    # end
    return Ether(dst="01:80:c2:00:00:0e", src=CLI_MAC, type=0x88CC) / Raw(body)


def bad_ihl():
    # A 20-byte IPv4 header that claims IHL=3 (12 bytes): invalid, must still pass untouched.
    ip = bytearray(bytes(IP(src=CLI4, dst=SRV4, proto=17, id=7) / UDP(sport=40000, dport=9) / payload(18)))
    ip[0] = 0x43
    return Ether(dst=SRV_MAC, src=CLI_MAC, type=0x0800) / Raw(bytes(ip))


def frames():
    e = Ether(dst=SRV_MAC, src=CLI_MAC)
    r = Ether(dst=CLI_MAC, src=SRV_MAC)
    tcp_syn = TCP(sport=40001, dport=8080, flags="S", seq=1000, window=64240,
                  options=[("MSS", 1460), ("SAckOK", b""), ("WScale", 7)])
    out = [
        ("ipv4-tcp-syn", e / IP(src=CLI4, dst=SRV4, id=1) / tcp_syn),
        ("ipv4-tcp-h2-preface", e / IP(src=CLI4, dst=SRV4, id=2)
         / TCP(sport=40001, dport=8080, flags="PA", seq=1001, ack=5001) / Raw(h2_preface())),
        ("ipv4-udp", e / IP(src=CLI4, dst=SRV4, id=3) / UDP(sport=40002, dport=4000) / payload(32)),
        ("vlan100-ipv4-tcp", e / Dot1Q(vlan=100, prio=5) / IP(src=CLI4, dst=SRV4, id=4)
         / TCP(sport=40003, dport=8080, flags="A", seq=1, ack=1) / payload(40)),
        ("qinq-200-100-ipv4-udp", Ether(dst=SRV_MAC, src=CLI_MAC, type=0x88A8) / Dot1AD(vlan=200)
         / Dot1Q(vlan=100) / IP(src=CLI4, dst=SRV4, id=5) / UDP(sport=40004, dport=4000) / payload(24)),
        ("ipv6-tcp", e / IPv6(src=CLI6, dst=SRV6, hlim=64)
         / TCP(sport=40005, dport=8080, flags="S", seq=7, window=64800)),
        ("ipv6-icmpv6-echo", e / IPv6(src=CLI6, dst=SRV6) / ICMPv6EchoRequest(id=1, seq=1, data=payload(16))),
        ("ipv6-icmpv6-ns", Ether(dst="33:33:ff:00:00:02", src=CLI_MAC)
         / IPv6(src=CLI6, dst="ff02::1:ff00:2", hlim=255) / ICMPv6ND_NS(tgt=SRV6)
         / ICMPv6NDOptSrcLLAddr(lladdr=CLI_MAC)),
        ("arp-request-padded", pad60(bytes(Ether(dst=BCAST, src=CLI_MAC)
                                           / ARP(op=1, hwsrc=CLI_MAC, psrc=CLI4, pdst=SRV4)))),
        ("arp-reply-padded", pad60(bytes(Ether(dst=CLI_MAC, src=SRV_MAC)
                                         / ARP(op=2, hwsrc=SRV_MAC, psrc=SRV4, hwdst=CLI_MAC, pdst=CLI4)))),
        ("lldp", lldp()),
        ("ipv4-frag-first", e / IP(src=CLI4, dst=SRV4, id=0x1234, flags="MF", frag=0, proto=17)
         / Raw(bytes(UDP(sport=40006, dport=9, len=8 + 64)) + payload(24))),
        ("ipv4-frag-last", e / IP(src=CLI4, dst=SRV4, id=0x1234, frag=4, proto=17) / payload(40, 24)),
        ("ipv4-options-router-alert", e / IP(src=CLI4, dst=SRV4, id=6, options=[IPOption_Router_Alert()])
         / UDP(sport=40007, dport=9) / payload(8)),
        ("min-60-icmp", pad60(bytes(e / IP(src=CLI4, dst=SRV4, id=8) / ICMP(id=1, seq=1)))),
        ("max-1514-tcp", r / IP(src=SRV4, dst=CLI4, id=9)
         / TCP(sport=8080, dport=40001, flags="A", seq=5001, ack=1026) / payload(1460, 3)),
        ("ipv4-bad-ihl", bad_ihl()),
        ("ipv4-bad-checksum", e / IP(src=CLI4, dst=SRV4, id=10, chksum=0xDEAD) / UDP(sport=40008, dport=9)
         / payload(8)),
        ("unknown-ethertype", Ether(dst=SRV_MAC, src=CLI_MAC, type=0x88B5) / payload(46)),
        ("arp-request-unpadded-42", Ether(dst=BCAST, src=SRV_MAC)
         / ARP(op=1, hwsrc=SRV_MAC, psrc=SRV4, pdst=CLI4)),
    ]
    return [(name, bytes(p)) for name, p in out]


def write_pcap(path, pkts):
    """Classic pcap, microsecond timestamps, linktype Ethernet; written by hand so the
    bytes do not depend on the scapy version."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, b in enumerate(pkts):
            f.write(struct.pack("<IIII", T0, i * 1000, len(b), len(b)))
            f.write(b)


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(sys.argv) >= 2 else 2
    fr = frames()
    # Sizes the frame list promises; a change in scapy must not silently alter them.
    sizes = {n: len(b) for n, b in fr}
    assert sizes["max-1514-tcp"] == 1514, sizes["max-1514-tcp"]
    assert sizes["min-60-icmp"] == 60
    assert sizes["arp-request-unpadded-42"] == 42
    repeat = 1
    if "--repeat" in sys.argv:
        repeat = int(sys.argv[sys.argv.index("--repeat") + 1])
    fr = [(f"{n}#{r}" if repeat > 1 else n, b) for r in range(repeat) for n, b in fr]
    write_pcap(sys.argv[1], [b for _, b in fr])
    if "--list" in sys.argv[2:]:
        for i, (n, b) in enumerate(fr):
            print(f"{i:3d} {len(b):5d} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
