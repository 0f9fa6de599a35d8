#!/usr/bin/python3
"""Credentials never leave aiqosd.

1. Requests carrying Authorization, x-api-key, Cookie and Proxy-Authorization values
   (HTTP/1.1) go through offline mode with a policy that captures other headers; every
   output of the run (request log, stats JSON, stdout/stderr) is searched for the secret
   values. The requests themselves must still be logged (endpoint and model).
2. Tenants derived from a credential (tenants.header: authorization, HTTP/1.1 and HTTP/2,
   --tenant-salt-file with known bytes): each request's tenant is "key:" + the keyed
   BLAKE2b-64 of the token after "Bearer ", recomputed here with hashlib; a rule matching
   one hashed tenant picks its class, a per-tenant token budget demotes only the tenant
   over it; `aiqosctl stats --by tenant` and `flows` (through the control socket of the
   running daemon) and the Prometheus scrape are searched too. Keys and salt appear in none.
3. The salt file is created (0600, 32 bytes) when absent, and a second start with the same
   file gives the same tenants (--tenant-header x-api-key on the command line).
4. Refused: a credential tenant header without --tenant-salt-file (option or policy), a
   credential --capture-header, an unsafe salt file.

usage: secrets_test.py AIQOSD AIQOSCTL [KEEP_DIR]
"""
import hashlib
import json
import os
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    from scapy.all import IP, TCP, Ether, wrpcap
except ImportError:
    print("SKIP: python3-scapy is not installed (run with /usr/bin/python3)")
    sys.exit(77)

SECRETS = [b"sk-live-SECRET-4f9a1c", b"KEY-7b2e-SECRET", b"sess-COOKIE-91d0", b"Basic dXNlcjpTRUNSRVQ="]
KEY_A, KEY_B, KEY_C = b"sk-tenantA-SECRET-0a11", b"sk-tenantB-SECRET-0b22", b"sk-tenantC-SECRET-0c33"
ALL_SECRETS = SECRETS + [KEY_A, KEY_B, KEY_C]

CLI, SRV = "198.18.0.1", "198.18.0.2"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from pcaplib import report  # noqa: E402


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


def chat_body(model, max_tokens=None):
    extra = b',"max_tokens":%d' % max_tokens if max_tokens else b""
    return b'{"model":"%s","messages":[{"role":"user","content":"hi"}]%s}' % (model, extra)


def h1(sport, model, extra, max_tokens=None):
    body = chat_body(model, max_tokens)
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/json\r\n"
           + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    resp = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    return conversation(sport, req, resp)


def h2_frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def hpack_literal(name, value):
    """Literal header field never indexed, new name, no Huffman (lengths < 127)."""
    assert len(name) < 127 and len(value) < 127
    return b"\x10" + bytes([len(name)]) + name + bytes([len(value)]) + value


def h2(sport, model, headers):
    """h2c with prior knowledge: one POST on stream 1, answered 200."""
    body = chat_body(model)
    block = b"".join(hpack_literal(n, v) for n, v in [
        (b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/v1/chat/completions"),
        (b":authority", b"api.example"), (b"content-type", b"application/json")] + headers)
    req = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0, b"") + h2_frame(1, 4, 1, block)
           + h2_frame(0, 1, 1, body))
    rblock = hpack_literal(b":status", b"200") + hpack_literal(b"content-type", b"application/json")
    resp = h2_frame(4, 0, 0, b"") + h2_frame(4, 1, 0, b"") + h2_frame(1, 4, 1, rblock) + h2_frame(0, 1, 1, b"{}")
    return conversation(sport, req, resp)


def tenant_of(salt, token):
    return "key:" + hashlib.blake2b(token, key=salt, digest_size=8).hexdigest()


def read_log(path):
    return [json.loads(l) for l in open(path)] if os.path.exists(path) else []


def read(path):
    return open(path, "rb").read() if os.path.exists(path) else b""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def search(outputs, needles, fails):
    for name, data in outputs.items():
        for sec in needles:
            if sec in data:
                fails.append(f"{name} contains the secret {sec!r}")


def run_plain(aiqosd, work, fails):
    """1: credentials captured by nothing."""
    frames = []
    frames += h1(40001, b"gpt-4o", b"Authorization: Bearer " + SECRETS[0] + b"\r\n")
    frames += h1(40002, b"llama-3.1-8b", b"x-api-key: " + SECRETS[1] + b"\r\nCookie: session=" + SECRETS[2] + b"\r\n")
    frames += h1(40003, b"gpt-4o-mini", b"Proxy-Authorization: " + SECRETS[3] + b"\r\nX-Priority: high\r\n")
    pcap = os.path.join(work, "in.pcap")
    wrpcap(pcap, frames)
    log = os.path.join(work, "requests.jsonl")
    stats = os.path.join(work, "stats.json")
    r = subprocess.run([aiqosd, "--pcap-in", pcap, "--pcap-out", os.path.join(work, "out.pcap"),
                        "--request-log", log, "--stats-json", stats,
                        "--policy", os.path.join(REPO, "config", "aiqos.yaml")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if r.returncode != 0:
        fails.append(f"aiqosd exit {r.returncode}")
    logged = read(log)
    for m in (b'"model":"gpt-4o"', b'"model":"llama-3.1-8b"', b'"model":"gpt-4o-mini"'):
        if m not in logged:
            fails.append(f"request with {m.decode()} not logged")
    outputs = {"request log": logged, "stats json": read(stats), "stdout/stderr": r.stdout}
    search(outputs, ALL_SECRETS, fails)
    print(f"plain: {logged.count(bytes([10]))} requests logged; "
          f"searched {sum(len(d) for d in outputs.values())} bytes of output")
    return pcap


POLICY_KEYS = """\
version: 1
tenants: {{by: header, header: Authorization}}
classes:
  - name: premium
    priority: 0
  - name: metered
    priority: 2
    token_budget: {{tokens_per_minute: 1000, per: tenant, action: demote}}
    demote_to: default
  - name: default
    priority: 7
rules:
  - match: {{tenant: "{premium}"}}
    class: premium
  - match: {{endpoint: chat_completions}}
    class: metered
"""


def run_key_tenants(aiqosd, aiqosctl, work, fails):
    """2: tenants from Authorization, hashed; rules, budgets, stats and flows see the hash."""
    salt = os.urandom(32)
    salt_file = os.path.join(work, "salt")
    with open(os.open(salt_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
        f.write(salt)
    ta, tb, tc = (tenant_of(salt, k) for k in (KEY_A, KEY_B, KEY_C))
    policy = os.path.join(work, "keys.yaml")
    with open(policy, "w") as f:
        f.write(POLICY_KEYS.format(premium=ta))
    frames = []
    frames += h1(41001, b"gpt-4o", b"Authorization: Bearer " + KEY_A + b"\r\n")
    frames += h2(41002, b"gpt-4o", [(b"authorization", b"Bearer " + KEY_A)])
    frames += h1(41003, b"llama-3.1-8b", b"Authorization: bearer " + KEY_B + b"\r\n", max_tokens=800)
    frames += h1(41004, b"llama-3.1-8b", b"Authorization: Bearer " + KEY_B + b"\r\n", max_tokens=800)
    frames += h1(41005, b"llama-3.1-8b", b"Authorization: Bearer " + KEY_C + b"\r\n", max_tokens=800)
    frames += h1(41006, b"llama-3.1-8b", b"x-api-key: " + SECRETS[1] + b"\r\nCookie: s=" + SECRETS[2] + b"\r\n")
    frames += h1(41007, b"llama-3.1-8b", b"Proxy-Authorization: " + SECRETS[3] + b"\r\n")
    pcap = os.path.join(work, "keys.pcap")
    wrpcap(pcap, frames)
    log, stats = os.path.join(work, "keys.jsonl"), os.path.join(work, "keys.stats.json")
    sock, port = os.path.join(work, "ctl.sock"), free_port()
    p = subprocess.Popen([aiqosd, "--pcap-in", pcap, "--pcap-out", os.path.join(work, "keys.out.pcap"),
                          "--request-log", log, "--stats-json", stats, "--policy", policy,
                          "--tenant-salt-file", salt_file, "--ctl-socket", sock,
                          "--prometheus", f"127.0.0.1:{port}", "--idle-exit", "5"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    live = {}
    deadline = time.time() + 30
    while time.time() < deadline and p.poll() is None:
        r = subprocess.run([aiqosctl, "--socket", sock, "--json", "status"], capture_output=True)
        if r.returncode == 0 and json.loads(r.stdout).get("requests", 0) >= 7:
            break
        time.sleep(0.1)
    for name, args in (("aiqosctl stats --by tenant", ["stats", "--by", "tenant"]),
                       ("aiqosctl flows", ["flows", "--top", "100"]), ("aiqosctl status", ["status"])):
        for fmt in ([], ["--json"]):
            r = subprocess.run([aiqosctl, "--socket", sock] + fmt + args, capture_output=True)
            live[name + " " + " ".join(fmt)] = r.stdout + r.stderr
            if r.returncode != 0:
                fails.append(f"{name} {fmt}: exit {r.returncode}: {r.stderr.decode(errors='replace')}")
    try:
        live["prometheus scrape"] = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    except OSError as e:
        fails.append(f"prometheus scrape: {e}")
    out, _ = p.communicate(timeout=60)
    if p.returncode != 0:
        fails.append(f"aiqosd (key tenants) exit {p.returncode}: {out.decode(errors='replace')[-1500:]}")
    recs = {r["sport"]: r for r in read_log(log)}
    want = {41001: (ta, "premium", None), 41002: (ta, "premium", None), 41003: (tb, "metered", None),
            41004: (tb, "default", "demoted"), 41005: (tc, "metered", None), 41006: (None, "metered", None),
            41007: (None, "metered", None)}
    for sport, (tenant, cls, budget) in want.items():
        r = recs.get(sport)
        if r is None:
            fails.append(f"request from port {sport} not logged")
            continue
        got = (r.get("tenant"), r.get("class"), r.get("budget"))
        if got != (tenant, cls, budget):
            fails.append(f"port {sport} ({r.get('proto')}): tenant/class/budget {got}, want {(tenant, cls, budget)}")
    if recs.get(41002, {}).get("proto") != "h2":
        fails.append("the HTTP/2 request was not logged as h2")
    try:
        by_tenant = json.loads(live["aiqosctl stats --by tenant --json"])
        counts = {k["key"]: k["requests"] for k in by_tenant["keys"]}
        for t, n in ((ta, 2), (tb, 2), (tc, 1)):
            if counts.get(t) != n:
                fails.append(f"stats --by tenant: {t} has {counts.get(t)} requests, want {n} ({counts})")
    except (KeyError, ValueError) as e:
        fails.append(f"stats --by tenant --json unreadable: {e}")
    outputs = {"request log": read(log), "stats json": read(stats), "stdout/stderr": out}
    outputs.update(live)
    search(outputs, ALL_SECRETS + [salt, salt.hex().encode()], fails)
    print(f"key tenants: {len(recs)} requests logged, tenants {ta} {tb} {tc}; searched "
          f"{sum(len(d) for d in outputs.values())} bytes of {len(outputs)} outputs")


def run_created_salt(aiqosd, work, fails):
    """3: the salt file is made when absent and gives the same tenants on the next start."""
    frames = h1(42001, b"gpt-4o", b"x-api-key: " + KEY_A + b"\r\n")
    pcap = os.path.join(work, "created.pcap")
    wrpcap(pcap, frames)
    salt_file = os.path.join(work, "new-salt")
    tenants = []
    for i in range(2):
        log = os.path.join(work, f"created{i}.jsonl")
        r = subprocess.run([aiqosd, "--pcap-in", pcap, "--request-log", log, "--tenant-header", "x-api-key",
                            "--tenant-salt-file", salt_file], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        if r.returncode != 0:
            fails.append(f"aiqosd with a created salt (run {i}): exit {r.returncode}")
        recs = read_log(log)
        tenants.append(recs[0].get("tenant") if recs else None)
        search({f"created-salt run {i} output": r.stdout + read(log)}, [KEY_A], fails)
        if i == 0:
            if b"created" not in r.stdout:
                fails.append("first start did not say it created the salt file")
            st = os.stat(salt_file) if os.path.exists(salt_file) else None
            if st is None or stat.S_IMODE(st.st_mode) != 0o600 or st.st_size != 32:
                fails.append(f"created salt file: {st}")
    salt = read(salt_file)
    want = tenant_of(salt, KEY_A) if len(salt) >= 16 else "?"
    if tenants != [want, want]:
        fails.append(f"tenants with a created salt: {tenants}, want {want} twice")
    print(f"created salt: tenants {tenants}")
    return salt_file


def run_refusals(aiqosd, pcap, salt_file, work, fails):
    """4: what must not start."""
    bad_policy = os.path.join(work, "nosalt.yaml")
    with open(bad_policy, "w") as f:
        f.write("version: 1\ntenants: {by: header, header: x-api-key}\nclasses: [{name: default}]\n")
    loose = os.path.join(work, "loose-salt")
    with open(loose, "wb") as f:
        f.write(b"x" * 32)
    os.chmod(loose, 0o644)
    for opt, want in ((["--tenant-header", "authorization"], b"--tenant-salt-file"),
                      (["--policy", bad_policy], b"--tenant-salt-file"),
                      (["--tenant-header", "x-api-key", "--tenant-salt-file", loose], b"chmod 600"),
                      (["--capture-header", "x-api-key", "--tenant-salt-file", salt_file], b"credential"),
                      (["--capture-header", "cookie"], b"credential")):
        rr = subprocess.run([aiqosd, "--pcap-in", pcap] + opt, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=60)
        if rr.returncode != 2 or want not in rr.stdout:
            fails.append(f"aiqosd {' '.join(opt)} must be refused saying {want!r} (exit {rr.returncode}): "
                         f"{rr.stdout.decode(errors='replace')[-300:]}")


def main():
    aiqosd, aiqosctl = sys.argv[1], sys.argv[2]
    keep = sys.argv[3] if len(sys.argv) > 3 else None
    fails = []
    with tempfile.TemporaryDirectory(prefix="aiqos-secrets.") as work:
        pcap = run_plain(aiqosd, work, fails)
        run_key_tenants(aiqosd, aiqosctl, work, fails)
        salt_file = run_created_salt(aiqosd, work, fails)
        run_refusals(aiqosd, pcap, salt_file, work, fails)
        if keep:
            shutil.copytree(work, keep)
    return report(fails)


if __name__ == "__main__":
    sys.exit(main())
