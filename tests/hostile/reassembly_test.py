#!/usr/bin/python3
"""(b) TCP reassembly abuse, each scenario its own capture through aiqosd:

  tiny_inorder   one h2c request whose client bytes (a 20 KB body) arrive as 1-byte segments
  tiny_reverse   one h2c request whose client bytes arrive as 1-byte segments in reverse order
  conflict       overlapping retransmission with DIFFERENT bytes over buffered out-of-order
                 data: first copy wins (the logged model is the first copy's), conflict counted
  ooo_flood      500 connections each sending 64 one-byte segments 1 KB apart (no in-order
                 data): per-flow bound and pool exhausted, counted; a real request afterwards
                 on a fresh connection is still classified

Every scenario: exit 0, every frame forwarded, reassembly bytes in use within --reassembly-bytes.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

POOL = 1 << 20
PER_FLOW = 64 << 10
ARGS = ["--reassembly-bytes", str(POOL), "--reassembly-flow-bytes", str(PER_FLOW)]
SERVER = lib.ip4(198, 18, 0, 2)


def client_bytes(model, body_pad=0):
    body = lib.json.dumps({"model": model, "messages": [{"role": "user", "content": "x" * body_pad}]}).encode()
    return (lib.PREFACE + lib.SETTINGS + lib.SETTINGS_ACK +
            lib.h2_frame(1, 0x04, 1, lib.hpack_request(b"/v1/chat/completions")) +
            b"".join(lib.h2_frame(0, 0, 1, body[i:i + 16000]) for i in range(0, len(body), 16000)) +
            lib.h2_frame(0, 0x01, 1, b""))


def server_bytes():
    return lib.SETTINGS + lib.SETTINGS_ACK + lib.h2_response_frames(1)


def connection(tmpl, n, segments_of):
    """Frames of one connection: handshake, client segments from segments_of(conn, bytes),
    the server's reply, FIN."""
    conn = lib.Conn(tmpl, lib.ip4(10, 1, n >> 8, n & 255), SERVER, 40000 + n, 8080)
    return conn, conn.handshake()


def scenario_tiny(tmpl, reverse):
    model = "tiny-reverse-model" if reverse else "tiny-inorder-model"
    data = client_bytes(model, body_pad=0 if reverse else 20000)
    conn = lib.Conn(tmpl, lib.ip4(10, 1, 0, 1), SERVER, 40001, 8080)
    frames = conn.handshake()
    segs = [conn.c2s(data[i:i + 1], seq=i) for i in range(len(data))]
    frames += segs[::-1] if reverse else segs
    conn.cseq += len(data)
    frames.append(conn.s2c(server_bytes()))
    frames += conn.fin()
    return frames, [model]


def scenario_conflict(tmpl):
    first, evil = "first-copy-model", "evil-copy-model!"
    assert len(first) == len(evil)
    good, bad = client_bytes(first), client_bytes(evil)
    cut = good.index(first.encode()) - 8  # the gap ends a little before the model value
    conn = lib.Conn(tmpl, lib.ip4(10, 1, 0, 2), SERVER, 40002, 8080)
    frames = conn.handshake()
    frames.append(conn.c2s(good[cut:], seq=cut))        # buffered out of order: first copy
    frames.append(conn.c2s(bad[cut - 4:], seq=cut - 4))  # overlaps it with different bytes
    frames.append(conn.c2s(bad[cut + 3:cut + 40], seq=cut + 3))  # inside it, different again
    frames.append(conn.c2s(good[:cut], seq=0))           # fills the gap: delivery
    conn.cseq += len(good)
    frames.append(conn.s2c(server_bytes()))
    frames += conn.fin()
    return frames, [first]


def scenario_ooo_flood(tmpl):
    frames = []
    for n in range(500):
        conn = lib.Conn(tmpl, lib.ip4(10, 2, n >> 8, n & 255), SERVER, 30000 + n, 8080)
        frames += conn.handshake()
        frames += [conn.c2s(b"Z", seq=1 + 1024 * k) for k in range(64)]
    model = "after-flood-model"
    conn = lib.Conn(tmpl, lib.ip4(10, 3, 0, 1), SERVER, 40003, 8080)
    frames += conn.handshake()
    frames.append(conn.c2s(client_bytes(model)))
    frames.append(conn.s2c(server_bytes()))
    frames += conn.fin()
    return frames, [model]


def main():
    aiqosd = lib.aiqosd_from_argv()
    lib.need_scapy()
    work, c = lib.Workdir("reassembly"), lib.Checks("reassembly")
    tmpl = lib.TcpTemplate()
    scenarios = {
        "tiny_inorder": scenario_tiny(tmpl, False),
        "tiny_reverse": scenario_tiny(tmpl, True),
        "conflict": scenario_conflict(tmpl),
        "ooo_flood": scenario_ooo_flood(tmpl),
    }
    for name, (frames, models) in scenarios.items():
        pcap = work(name + ".pcap")
        lib.write_pcap(pcap, lib.timed(frames))
        r = lib.run_aiqosd(aiqosd, pcap, work, name, ARGS)
        k = r.cls
        print(f"{name}: {len(frames)} frames, {r.wall_s:.1f} s, max RSS {r.maxrss_kb} KB, "
              f"conflict bytes {k.get('reassembly_conflict_bytes')}, unclassified {k.get('unclassified')}")
        c.common(r, name)
        c.check(k.get("reassembly_bytes_in_use", 0) <= POOL,
                f"{name}: reassembly bytes in use {k.get('reassembly_bytes_in_use')} <= {POOL}")
        got = [m for m in r.models() if m is not None]
        c.check(got == models, f"{name}: logged models {got} == {models}")
        if name == "conflict":
            c.check(k.get("reassembly_conflict_bytes", 0) > 0,
                    f"conflict: conflict bytes {k.get('reassembly_conflict_bytes')} > 0")
        if name == "ooo_flood":
            unc = k.get("unclassified", {}).get("reassembly", 0)
            c.check(unc > 0, f"ooo_flood: flows unclassified for reassembly {unc} > 0")
    c.finish(work)


if __name__ == "__main__":
    main()
