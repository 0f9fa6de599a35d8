#!/usr/bin/python3
"""Turns curl's `-w '%{json}\\n'` lines into expected.jsonl records for the pcap corpus.

usage: curl_expect.py --out FILE --proto h1|h2 [--vlan N] SPEC... < curl-stdout

One SPEC (a JSON object: endpoint, model, model_source, req_bytes, tenant) per transfer, in the
order curl ran them; curl says what went on the wire (ports, method, URL, status). An h2 transfer
is taken to be the first stream of its own connection (stream 1): make_corpus.sh runs one h2
request per curl invocation.
"""
import argparse
import json
import sys
from urllib.parse import urlsplit


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--proto", choices=["h1", "h2"], required=True)
    ap.add_argument("--vlan", type=int, default=0)
    ap.add_argument("specs", nargs="+")
    a = ap.parse_args()

    lines = [ln for ln in sys.stdin.read().splitlines() if ln.strip()]
    specs = [json.loads(s) for s in a.specs]
    if len(lines) != len(specs):
        print(f"curl_expect: {len(lines)} curl results for {len(specs)} requests", file=sys.stderr)
        return 1
    recs = []
    for ln, sp in zip(lines, specs):
        w = json.loads(ln)
        if w.get("exitcode", 0) != 0 or not w.get("http_code"):
            print(f"curl_expect: transfer failed: {ln}", file=sys.stderr)
            return 1
        u = urlsplit(w["url_effective"])
        path = u.path + ("?" + u.query if u.query else "")
        recs.append({
            "proto": a.proto,
            "src": w["local_ip"], "dst": w["remote_ip"],
            "sport": w["local_port"], "dport": w["remote_port"], "vlan": a.vlan,
            "stream_id": 1 if a.proto == "h2" else None,
            "method": w["method"], "authority": u.netloc, "path": path,
            "endpoint": sp["endpoint"], "model": sp["model"], "model_source": sp["model_source"],
            "tenant": sp.get("tenant"),
            "status": w["http_code"], "req_bytes": sp["req_bytes"], "resp_bytes": w["size_download"],
        })
    with open(a.out, "a") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
