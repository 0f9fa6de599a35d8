#!/usr/bin/python3
"""Credentials never leave aiqosd: requests carrying Authorization, x-api-key and Cookie
values (HTTP/1.1 and HTTP/2) go through offline mode with a policy that captures other
headers; every output of the run (request log, stats JSON, stdout/stderr) is searched for
the secret values. The requests themselves must still be logged (endpoint and model).

usage: secrets_test.py AIQOSD
"""
import os
import subprocess
import sys
import tempfile

try:
    from scapy.all import IP, TCP, Ether, wrpcap
except ImportError:
    print("SKIP: python3-scapy is not installed (run with /usr/bin/python3)")
    sys.exit(77)

SECRETS = [b"sk-live-SECRET-4f9a1c", b"KEY-7b2e-SECRET", b"sess-COOKIE-91d0", b"Basic dXNlcjpTRUNSRVQ="]

CLI, SRV = "198.18.0.1", "198.18.0.2"


def conversation(sport, request, response):
    """A TCP conversation: handshake, request, response, FIN both ways."""
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    er = Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
    c, s = 1000, 5000
    pk = [e / IP(src=CLI, dst=SRV) / TCP(sport=sport, dport=8080, flags="S", seq=c),
          er / IP(src=SRV, dst=CLI) / TCP(sport=8080, dport=sport, flags="SA", seq=s, ack=c + 1),
          e / IP(src=CLI, dst=SRV) / TCP(sport=sport, dport=8080, flags="A", seq=c + 1, ack=s + 1)]
    c += 1
    s += 1
    for i in range(0, len(request), 1400):
        chunk = request[i:i + 1400]
        pk.append(e / IP(src=CLI, dst=SRV) / TCP(sport=sport, dport=8080, flags="PA", seq=c, ack=s) / chunk)
        c += len(chunk)
    pk.append(er / IP(src=SRV, dst=CLI) / TCP(sport=8080, dport=sport, flags="PA", seq=s, ack=c) / response)
    s += len(response)
    pk.append(e / IP(src=CLI, dst=SRV) / TCP(sport=sport, dport=8080, flags="FA", seq=c, ack=s))
    pk.append(er / IP(src=SRV, dst=CLI) / TCP(sport=8080, dport=sport, flags="FA", seq=s, ack=c + 1))
    pk.append(e / IP(src=CLI, dst=SRV) / TCP(sport=sport, dport=8080, flags="A", seq=c + 1, ack=s + 1))
    return pk


def h1(sport, model, extra):
    body = b'{"model":"%s","messages":[{"role":"user","content":"hi"}]}' % model
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/json\r\n"
           + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    resp = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    return conversation(sport, req, resp)


def main():
    aiqosd = sys.argv[1]
    frames = []
    frames += h1(40001, b"gpt-4o", b"Authorization: Bearer " + SECRETS[0] + b"\r\n")
    frames += h1(40002, b"llama-3.1-8b", b"x-api-key: " + SECRETS[1] + b"\r\nCookie: session=" + SECRETS[2] + b"\r\n")
    frames += h1(40003, b"gpt-4o-mini", b"Proxy-Authorization: " + SECRETS[3] + b"\r\nX-Priority: high\r\n")
    fails = []
    with tempfile.TemporaryDirectory(prefix="aiqos-secrets.") as work:
        pcap = os.path.join(work, "in.pcap")
        wrpcap(pcap, frames)
        log = os.path.join(work, "requests.jsonl")
        stats = os.path.join(work, "stats.json")
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        r = subprocess.run([aiqosd, "--pcap-in", pcap, "--pcap-out", os.path.join(work, "out.pcap"),
                            "--request-log", log, "--stats-json", stats,
                            "--policy", os.path.join(repo, "config", "aiqos.yaml")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = r.stdout
        if r.returncode != 0:
            fails.append(f"aiqosd exit {r.returncode}")
        logged = open(log, "rb").read() if os.path.exists(log) else b""
        n = logged.count(b"\n")
        for m in (b'"model":"gpt-4o"', b'"model":"llama-3.1-8b"', b'"model":"gpt-4o-mini"'):
            if m not in logged:
                fails.append(f"request with {m.decode()} not logged")
        outputs = {"request log": logged, "stats json": open(stats, "rb").read() if os.path.exists(stats) else b"",
                   "stdout/stderr": out}
        for name, data in outputs.items():
            for sec in SECRETS:
                if sec in data:
                    fails.append(f"{name} contains the secret {sec.decode()}")
        for opt in (["--tenant-header", "authorization"], ["--capture-header", "x-api-key"],
                    ["--capture-header", "cookie"]):
            rr = subprocess.run([aiqosd, "--pcap-in", pcap] + opt, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=60)
            if rr.returncode != 2 or b"credential" not in rr.stdout:
                fails.append(f"aiqosd {' '.join(opt)} must be refused (exit {rr.returncode})")
        print(f"{n} requests logged; searched {sum(len(d) for d in outputs.values())} bytes of output "
              f"for {len(SECRETS)} secrets")
    for f in fails:
        print("FAIL:", f)
    print("PASS" if not fails else "RESULT: FAIL")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
