"""Shared helpers of the hostile-traffic tests: pcap reading/writing, fast frame templates
(built once with scapy, then patched with struct so that 200k frames take a second), running
aiqosd's offline mode under /usr/bin/time -v, and the checks every hostile test makes.

Each test is a script `tests/hostile/<name>_test.py AIQOSD` run by meson (suite 'hostile'):
exit 0 pass, 1 fail, 77 skip. AIQOS_KEEP_LOGS=1 keeps the work directory.
"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CASES = os.path.join(ROOT, "tests", "pcap", "cases")
RUN_TIMEOUT_S = 120

try:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Dot1Q, Ether
    from scapy.packet import Raw
    HAVE_SCAPY = True
except ImportError:  # pragma: no cover
    HAVE_SCAPY = False

SKIP = 77


def need_scapy():
    if not HAVE_SCAPY:
        print("SKIP: python3-scapy missing (run with /usr/bin/python3)")
        sys.exit(SKIP)


# ---------------------------------------------------------------- pcap

def read_pcap(path):
    """[(ts_ns, frame bytes)] of a classic pcap (us or ns resolution, either endianness)."""
    data = open(path, "rb").read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    else:
        e = ">"
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    off, out = 24, []
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(e + "IIII", data[off:off + 16])
        out.append((sec * 1_000_000_000 + (frac if nano else frac * 1000), data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return out


def write_pcap(path, frames):
    """frames: iterable of (ts_ns, bytes). Nanosecond pcap, Ethernet."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1))
        pack = struct.Struct("<IIII").pack
        n = 0
        for ts, b in frames:
            f.write(pack(ts // 1_000_000_000, ts % 1_000_000_000, len(b), len(b)))
            f.write(b)
            n += 1
    return n


def count_frames(path):
    return len(read_pcap(path)) if os.path.exists(path) else 0


# ---------------------------------------------------------------- frames

def ip_checksum(hdr):
    s = sum(struct.unpack("!%dH" % (len(hdr) // 2), hdr))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return (~s) & 0xFFFF


class TcpTemplate:
    """An Ethernet/IPv4/TCP frame made once by scapy, then copied and patched per packet
    (addresses, ports, seq/ack, flags, payload, IP length and checksum). The TCP checksum is
    left as scapy computed it for the template: aiqosd does not verify L4 checksums."""

    def __init__(self, vlan=None):
        need_scapy()
        pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        if vlan is not None:
            pkt = pkt / Dot1Q(vlan=vlan)
        pkt = pkt / IP(src="10.0.0.1", dst="10.0.0.2", ttl=64) / TCP(sport=1, dport=80, window=65535)
        self.raw = bytes(pkt)
        self.l3 = 14 + (4 if vlan is not None else 0)
        self.l4 = self.l3 + 20

    def frame(self, src, dst, sport, dport, seq, ack, flags, payload=b""):
        b = bytearray(self.raw)
        l3, l4 = self.l3, self.l4
        struct.pack_into("!H", b, l3 + 2, 40 + len(payload))
        b[l3 + 12:l3 + 16] = src
        b[l3 + 16:l3 + 20] = dst
        struct.pack_into("!H", b, l3 + 10, 0)
        struct.pack_into("!H", b, l3 + 10, ip_checksum(bytes(b[l3:l3 + 20])))
        struct.pack_into("!HHIIBB", b, l4, sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags)
        return bytes(b) + payload


def ip4(a, b, c, d):
    return bytes((a, b, c, d))


class Conn:
    """Both directions of one TCP connection, as frames: handshake, data, FIN."""

    def __init__(self, tmpl, client, server, sport, dport, isn_c=1000, isn_s=50000):
        self.t, self.c, self.s, self.sport, self.dport = tmpl, client, server, sport, dport
        self.cseq, self.sseq = isn_c, isn_s

    def handshake(self):
        out = [self.t.frame(self.c, self.s, self.sport, self.dport, self.cseq, 0, 0x02),
               self.t.frame(self.s, self.c, self.dport, self.sport, self.sseq, self.cseq + 1, 0x12),
               self.t.frame(self.c, self.s, self.sport, self.dport, self.cseq + 1, self.sseq + 1, 0x10)]
        self.cseq += 1
        self.sseq += 1
        return out

    def c2s(self, payload, seq=None, flags=0x18):
        """A client segment; seq relative to the next client byte when given (not advanced)."""
        if seq is None:
            f = self.t.frame(self.c, self.s, self.sport, self.dport, self.cseq, self.sseq, flags, payload)
            self.cseq += len(payload)
            return f
        return self.t.frame(self.c, self.s, self.sport, self.dport, self.cseq + seq, self.sseq, flags, payload)

    def s2c(self, payload, flags=0x18):
        f = self.t.frame(self.s, self.c, self.dport, self.sport, self.sseq, self.cseq, flags, payload)
        self.sseq += len(payload)
        return f

    def fin(self):
        return [self.t.frame(self.c, self.s, self.sport, self.dport, self.cseq, self.sseq, 0x11),
                self.t.frame(self.s, self.c, self.dport, self.sport, self.sseq, self.cseq + 1, 0x11),
                self.t.frame(self.c, self.s, self.sport, self.dport, self.cseq + 1, self.sseq + 1, 0x10)]


def timed(frames, start_ns=1_700_000_000_000_000_000, step_ns=10_000):
    """Stamps frames step_ns apart."""
    return [(start_ns + i * step_ns, f) for i, f in enumerate(frames)]


# ---------------------------------------------------------------- HTTP/2 by hand

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(typ, flags, stream, payload):
    return len(payload).to_bytes(3, "big") + bytes([typ, flags]) + (stream & 0x7FFFFFFF).to_bytes(4, "big") + payload


def hpack_int(value, prefix_bits, first_byte_flags=0):
    """HPACK integer (RFC 7541 5.1)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out = bytearray([first_byte_flags | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name, value, huffman_value=False):
    """Literal header field without indexing, new name, raw (or flagged Huffman) value."""
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7, 0x80 if huffman_value else 0) + value


def hpack_request(path, authority=b"api.example", method_post=True, extra=()):
    block = (b"\x83" if method_post else b"\x82") + b"\x86"  # :method POST|GET, :scheme http
    block += hpack_literal(b":path", path) + hpack_literal(b":authority", authority)
    block += hpack_literal(b"content-type", b"application/json")
    for n, v in extra:
        block += hpack_literal(n, v)
    return block


def chat_body(model):
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()


def h2_request_frames(stream, model, path=b"/v1/chat/completions"):
    body = chat_body(model)
    return h2_frame(1, 0x04, stream, hpack_request(path)) + h2_frame(0, 0x01, stream, body)


def h2_response_frames(stream):
    return h2_frame(1, 0x04, stream, b"\x88") + h2_frame(0, 0x01, stream, b'{"ok":true}')


SETTINGS = h2_frame(4, 0, 0, b"")
SETTINGS_ACK = h2_frame(4, 0x01, 0, b"")


# ---------------------------------------------------------------- aiqosd

class Result:
    def __init__(self, rc, stats, log, frames_in, frames_out, maxrss_kb, wall_s, stderr):
        self.rc, self.stats, self.log = rc, stats, log
        self.frames_in, self.frames_out = frames_in, frames_out
        self.maxrss_kb, self.wall_s, self.stderr = maxrss_kb, wall_s, stderr

    @property
    def cls(self):
        """Classifier counters summed over workers (dict of numbers and dicts of numbers)."""
        total = {}
        for w in self.stats.get("workers", []):
            for k, v in w.get("classifier", {}).items():
                if isinstance(v, dict):
                    d = total.setdefault(k, {})
                    for kk, vv in v.items():
                        d[kk] = d.get(kk, 0) + vv
                else:
                    total[k] = total.get(k, 0) + v
        return total

    @property
    def parse(self):
        total = {}
        for w in self.stats.get("workers", []):
            for k, v in w.get("parse", {}).items():
                total[k] = total.get(k, 0) + v
        return total

    @property
    def port_drops(self):
        total = {}
        for p in self.stats.get("ports", []):
            for k, v in p.get("drops", {}).items():
                total[k] = total.get(k, 0) + v
            for k in ("no_mbuf", "imissed"):
                total[k] = total.get(k, 0) + p.get(k, 0)
        return total

    def models(self):
        return [r.get("model") for r in self.log]


class Workdir:
    def __init__(self, name):
        self.path = tempfile.mkdtemp(prefix=f"aiqos-hostile-{name}-")

    def __call__(self, *parts):
        return os.path.join(self.path, *parts)

    def cleanup(self, failed):
        if os.environ.get("AIQOS_KEEP_LOGS") or failed:
            print(f"work directory kept: {self.path}")
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def run_aiqosd(aiqosd, pcap_in, work, tag, args=()):
    """Runs aiqosd's offline mode under /usr/bin/time -v; returns a Result."""
    out, log, stats = work(f"{tag}.out.pcap"), work(f"{tag}.log.jsonl"), work(f"{tag}.stats.json")
    for p in (out, log, stats):
        if os.path.exists(p):
            os.remove(p)
    cmd = [aiqosd, "--pcap-in", pcap_in, "--pcap-out", out, "--request-log", log, "--stats-json", stats]
    cmd += list(args)
    timer = ["/usr/bin/time", "-v"] if os.path.exists("/usr/bin/time") else []
    t0 = time.monotonic()
    p = subprocess.run(timer + cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    wall = time.monotonic() - t0
    with open(work(f"{tag}.stderr"), "w") as f:
        f.write(p.stderr)
    maxrss = 0
    for line in p.stderr.splitlines():
        if "Maximum resident set size" in line:
            maxrss = int(line.split(":")[1])
    st = json.load(open(stats)) if os.path.exists(stats) else {}
    records = []
    if os.path.exists(log):
        for line in open(log):
            if line.strip():
                records.append(json.loads(line))  # a broken line raises: the test fails
    return Result(p.returncode, st, records, count_frames(pcap_in), count_frames(out), maxrss, wall, p.stderr)


# ---------------------------------------------------------------- checks

class Checks:
    def __init__(self, name):
        self.name, self.failures = name, []

    def check(self, cond, what):
        print(("  ok   " if cond else "  FAIL ") + what)
        if not cond:
            self.failures.append(what)
        return cond

    def common(self, r, tag, drops_allowed=()):
        """What every hostile run must show: exit 0, mbufs back, every frame accounted for."""
        self.check(r.rc == 0, f"{tag}: aiqosd exit status {r.rc} == 0")
        self.check(r.stats.get("mbufs_in_use_at_exit") == 0,
                   f"{tag}: mbufs in use at exit {r.stats.get('mbufs_in_use_at_exit')} == 0")
        drops = {k: v for k, v in r.port_drops.items() if v}
        named = sum(v for k, v in drops.items() if k in drops_allowed)
        self.check(not [k for k in drops if k not in drops_allowed], f"{tag}: drops by name {drops or '{}'}")
        self.check(r.frames_out + named == r.frames_in,
                   f"{tag}: frames out {r.frames_out} + named drops {named} == in {r.frames_in}")
        if r.rc != 0:
            print(r.stderr[-3000:])

    def finish(self, work):
        failed = bool(self.failures)
        work.cleanup(failed)
        print(f"{self.name}: {'FAIL' if failed else 'PASS'}" + (f" ({len(self.failures)} checks)" if failed else ""))
        sys.exit(1 if failed else 0)


def aiqosd_from_argv():
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        print(f"usage: {sys.argv[0]} AIQOSD", file=sys.stderr)
        sys.exit(2)
    return sys.argv[1]


def rng(name):
    return random.Random(f"aiqos-hostile-{name}")


# ---------------------------------------------------------------- faults (EAL mode, own netns)

def need_root():
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespace)")
        sys.exit(SKIP)


class Netns:
    """A network namespace of this test only (name flt-<tag>-<pid>), deleted by close() whatever
    happened; `ip` and `run` act inside it. Only veth pairs are made in it (no dummy module in
    some kernels), and IPv6 is off before they exist, so the kernel sends nothing on them."""

    def __init__(self, tag):
        self.name = f"flt-{tag}-{os.getpid()}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")

    def sh(self, cmd, check=True):
        return subprocess.run(["ip", "netns", "exec", self.name, "sh", "-c", cmd], check=check,
                              capture_output=True, text=True)

    def argv(self, cmd):
        return ["ip", "netns", "exec", self.name] + list(cmd)

    def veth(self, a, b, up=True):
        self.sh(f"ip link add {a} type veth peer name {b}")
        for ifc in (a, b):
            self.sh(f"ip link set {ifc} mtu 1500")
            for f in ("tx", "rx", "tso", "gso", "gro", "sg"):
                self.sh(f"ethtool -K {ifc} {f} off", check=False)
            if up:
                self.sh(f"ip link set {ifc} up")

    def close(self):
        # Processes this test started in it are ended by their own Popen objects first.
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def eal_args(prefix, vdevs, mem_mb=512):
    """EAL options of a run on vdevs: no hugepages, no PCI, a file prefix of its own."""
    out = ["-l", "0,1", "--no-huge", "-m", str(mem_mb), "--no-pci", "--no-shconf",
           f"--file-prefix={prefix}", "--log-level=lib.eal:error"]
    for v in vdevs:
        out += ["--vdev", v]
    return out


def eal_cleanup(prefix):
    """Removes EAL's runtime directory of a run (it stays behind even with --no-shconf)."""
    shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)


def empty_pcap(path):
    write_pcap(path, [])
    return path


def load_result(stats_path, rc, stderr, frames_in=0, frames_out=0):
    st = json.load(open(stats_path)) if os.path.exists(stats_path) else {}
    return Result(rc, st, [], frames_in, frames_out, 0, 0.0, stderr)


def port(r, i):
    """Port i of a Result's stats (dict), {} when missing."""
    ports = r.stats.get("ports", [])
    return ports[i] if i < len(ports) else {}
