#!/usr/bin/python3
"""Operator bypass offline (--bypass): a real capture (h2c_curl) with the example policy, whose
classes mark DSCP. With --bypass every frame leaves byte for byte as it came (no marking), in
the same order, none is parsed (parse counters 0), no flow is created, no request is logged,
and the stats JSON counts every frame as bypassed. The same run without --bypass logs the
requests and marks frames (so the comparison means something).

usage: bypass_test.py AIQOSD
"""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from pcaplib import read_pcap, report, run_offline  # noqa: E402


def run(aiqosd, pcap, work, tag, extra):
    r = run_offline(aiqosd, pcap, work, tag, ["--policy", os.path.join(REPO, "config", "aiqos.yaml")] + extra)
    return read_pcap(r.out)[1], r.log_lines, r.stats, r.console


def main():
    aiqosd = sys.argv[1]
    pcap = os.path.join(HERE, "cases", "h2c_curl", "in.pcap")
    frames_in = read_pcap(pcap)[1]
    fails = []
    with tempfile.TemporaryDirectory(prefix="aiqos-bypass.") as work:
        out, log, st, stdout = run(aiqosd, pcap, work, "bypass", ["--bypass"])
        if out != frames_in:
            same = sum(1 for a, b in zip(out, frames_in) if a == b)
            fails.append(f"bypass: {len(out)} frames out, {len(frames_in)} in, {same} identical in place")
        if log:
            fails.append(f"bypass: {len(log)} requests logged, want none")
        if st.get("bypass") != {"on": True, "frames": len(frames_in)}:
            fails.append(f"bypass: stats bypass {st.get('bypass')}, want on with {len(frames_in)} frames")
        for w in st["workers"]:
            parsed = sum(w["parse"].values())
            if parsed or w["classifier"]["flows_created"] or w["classifier"]["requests"]:
                fails.append(f"bypass: worker {w['worker']} parsed {parsed} frames, created "
                             f"{w['classifier']['flows_created']} flows, saw {w['classifier']['requests']} requests")
        if "bypass on (--bypass)" not in stdout or "frames forwarded unparsed" not in stdout:
            fails.append("bypass: the log does not say bypass is on / the exit table has no bypass line")
        print(f"bypass: {len(out)}/{len(frames_in)} frames out, identical={out == frames_in}, "
              f"{len(log)} requests logged, stats bypass {st.get('bypass')}")

        out2, log2, st2, _ = run(aiqosd, pcap, work, "normal", [])
        marked = sum(1 for a, b in zip(out2, frames_in) if a != b)
        if not log2:
            fails.append("normal run: no request logged")
        if marked == 0:
            fails.append("normal run: no frame marked, so the bypass comparison proves nothing")
        if st2.get("bypass") != {"on": False, "frames": 0}:
            fails.append(f"normal run: stats bypass {st2.get('bypass')}")
        print(f"normal: {len(out2)} frames out, {marked} marked, {len(log2)} requests logged")
    return report(fails)


if __name__ == "__main__":
    sys.exit(main())
