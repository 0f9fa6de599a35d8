#!/usr/bin/python3
"""Operator bypass offline (--bypass): a real capture (h2c_curl) with the example policy, whose
classes mark DSCP. With --bypass every frame leaves byte for byte as it came (no marking), in
the same order, none is parsed (parse counters 0), no flow is created, no request is logged,
and the stats JSON counts every frame as bypassed. The same run without --bypass logs the
requests and marks frames (so the comparison means something).

usage: bypass_test.py AIQOSD
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from compare_pcaps import read_pcap  # noqa: E402


def run(aiqosd, pcap, work, tag, extra):
    out, log, stats = (os.path.join(work, tag + s) for s in (".pcap", ".jsonl", ".json"))
    r = subprocess.run([aiqosd, "--pcap-in", pcap, "--pcap-out", out, "--request-log", log, "--stats-json", stats,
                        "--policy", os.path.join(REPO, "config", "aiqos.yaml")] + extra,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    if r.returncode != 0:
        print(r.stdout.decode(errors="replace")[-2000:])
        raise SystemExit(f"FAIL: aiqosd {' '.join(extra)} exit {r.returncode}")
    lines = open(log).read().splitlines() if os.path.exists(log) else []
    return read_pcap(out)[1], lines, json.load(open(stats)), r.stdout.decode(errors="replace")


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
    for f in fails:
        print("FAIL:", f)
    print("PASS" if not fails else "RESULT: FAIL")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
