#!/usr/bin/python3
"""(a) SYN flood: many more distinct half-open flows than --flows, interleaved in time with the
real inference connections of tests/pcap/cases/h2c_curl/in.pcap.

Must hold: aiqosd exits 0; every frame is forwarded (out == in); the flood is counted as
evictions; the real connections are still classified (their models are in the request log);
max RSS stays within a margin of a run over the real capture alone (the flow table is
preallocated: a flood must not grow memory).

usage: syn_flood_test.py AIQOSD      AIQOS_HOSTILE_SYNS=2000000 for the big variant (default 200000)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

FLOWS = 16384
RSS_MARGIN_KB = 48 * 1024


def main():
    aiqosd = lib.aiqosd_from_argv()
    lib.need_scapy()
    n_syn = int(os.environ.get("AIQOS_HOSTILE_SYNS", "200000"))
    work, c = lib.Workdir("syn-flood"), lib.Checks("syn_flood")
    case = os.path.join(lib.CASES, "h2c_curl")
    real = lib.read_pcap(os.path.join(case, "in.pcap"))
    expected = sorted(json.loads(l)["model"] for l in open(os.path.join(case, "expected.jsonl")) if l.strip())

    # SYNs from 100.64.0.0/10 (never the real hosts), spread evenly over the real capture's span
    # and a little before it, so that the table is full before the first real SYN arrives.
    t0, t1 = real[0][0], real[-1][0]
    start = t0 - (t1 - t0) // 4
    step = max(1, (t1 - start) // n_syn)
    tmpl = lib.TcpTemplate()
    rnd = lib.rng("syn-flood")
    dst = lib.ip4(198, 18, 0, 2)
    flood = []
    for i in range(n_syn):
        src = bytes((100, 64 + (i >> 16) % 64, (i >> 8) & 255, i & 255))
        flood.append((start + i * step, tmpl.frame(src, dst, 1024 + rnd.randrange(60000), 8080,
                                                   rnd.getrandbits(32), 0, 0x02)))
    frames = sorted(real + flood, key=lambda x: x[0])
    flood_pcap = work("flood.pcap")
    lib.write_pcap(flood_pcap, frames)
    print(f"syn_flood: {n_syn} SYNs + {len(real)} real frames, --flows {FLOWS}")

    args = ["--flows", str(FLOWS)]
    base = lib.run_aiqosd(aiqosd, os.path.join(case, "in.pcap"), work, "baseline", args)
    r = lib.run_aiqosd(aiqosd, flood_pcap, work, "flood", args)
    k = r.cls
    print(f"  baseline: max RSS {base.maxrss_kb} KB, {base.wall_s:.1f} s; flood: max RSS {r.maxrss_kb} KB, "
          f"{r.wall_s:.1f} s; flows created {k.get('flows_created')} evicted {k.get('flows_evicted')} "
          f"expired {k.get('flows_expired')} table_full {k.get('flow_table_full')}")
    c.common(base, "baseline")
    c.common(r, "flood")
    c.check(k.get("flows_created", 0) >= n_syn, f"flows created {k.get('flows_created')} >= {n_syn}")
    c.check(k.get("flows_evicted", 0) + k.get("flows_expired", 0) >= n_syn - FLOWS,
            f"evicted+expired {k.get('flows_evicted', 0) + k.get('flows_expired', 0)} >= {n_syn - FLOWS}")
    c.check(k.get("flows_active", 0) <= FLOWS, f"flows active {k.get('flows_active')} <= {FLOWS}")
    got = sorted(m for m in r.models() if m is not None)
    c.check(got == expected, f"real connections classified: models {got} == {expected}")
    c.check(k.get("memory_bytes") == base.cls.get("memory_bytes"),
            f"classifier memory {k.get('memory_bytes')} == baseline {base.cls.get('memory_bytes')}")
    if base.maxrss_kb and r.maxrss_kb:
        c.check(r.maxrss_kb <= base.maxrss_kb + RSS_MARGIN_KB,
                f"max RSS {r.maxrss_kb} KB <= baseline {base.maxrss_kb} KB + {RSS_MARGIN_KB} KB")
    c.finish(work)


if __name__ == "__main__":
    main()
