#!/usr/bin/python3
"""Why a flow went unclassified, by name: reassembly outcomes and failures, parser errors.

usage: /usr/bin/python3 tests/pcap/unclassified_reasons_test.py AIQOSD

Three connections written by hand, replayed offline (--stats-json):

  hole      HTTP/1.1: a client segment the capture never carried, the server acknowledges it and
            the client sends 17 more segments past the hole (more than acked_hole_grace):
            reassembly failure `acked_hole`, flow unclassified `reassembly`;
  garbled   h2c: preface and SETTINGS, then a HEADERS frame whose HPACK block is garbage:
            a parser error by name (HPACK), flow unclassified `l7_error`;
  reordered HTTP/1.1 request in three segments sent 1, 3, 2: segment outcome `buffered_ooo`,
            and the request is still logged with its model (nothing unclassified about it).

Checks the names in --stats-json (workers[].classifier: reassembly_failures,
reassembly_segments, parser_errors, unclassified), and that every frame was forwarded.
Prometheus renders the same objects (tests/unit/control/metrics_test.cpp).
Exit 0 pass, 1 fail, 77 skip (no scapy).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "hostile"))
import lib  # noqa: E402


def http1(model):
    b = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(b)) + b


def capture():
    t = lib.TcpTemplate()
    cli, srv = lib.ip4(10, 0, 0, 1), lib.ip4(10, 0, 0, 2)
    frames = []

    c = lib.Conn(t, cli, srv, 41001, 8080)  # hole
    frames += c.handshake()
    req = http1("hole-model")
    c.c2s(req[:100])  # never on the wire
    frames.append(c.c2s(req[100:]))
    frames.append(c.s2c(b"", flags=0x10))  # acknowledges all of it
    # An early ACK is forgiven while its data may still come (acked_hole_grace, 16 segments):
    # the client goes on past the hole, and the 17th undeliverable segment fails the direction.
    for i in range(17):
        frames.append(c.c2s(b"x" * 8))
    frames += c.fin()

    c = lib.Conn(t, cli, srv, 41002, 8080)  # garbled
    frames += c.handshake()
    frames.append(c.c2s(lib.PREFACE + lib.SETTINGS))
    frames.append(c.s2c(lib.SETTINGS + lib.SETTINGS_ACK))
    frames.append(c.c2s(lib.SETTINGS_ACK + lib.h2_frame(1, 0x05, 1, b"\xff\xff\xff\xff\xff\xff\xff\xff")))
    frames.append(c.s2c(b"", flags=0x10))
    frames += c.fin()

    c = lib.Conn(t, cli, srv, 41003, 8080)  # reordered
    frames += c.handshake()
    req = http1("reordered-model")
    a, b, d = req[:60], req[60:120], req[120:]
    f1, f2, f3 = c.c2s(a), c.c2s(b), c.c2s(d)
    frames += [f1, f3, f2]
    frames.append(c.s2c(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
    frames.append(c.c2s(b"", flags=0x10))
    frames += c.fin()
    return lib.timed(frames)


def main():
    lib.need_scapy()
    aiqosd = lib.aiqosd_from_argv()
    work = lib.Workdir("unclassified")
    ck = lib.Checks("pcap-unclassified-reasons")
    frames = capture()
    pcap = work("in.pcap")
    lib.write_pcap(pcap, frames)
    r = lib.run_aiqosd(aiqosd, pcap, work, "run")
    ck.common(r, "run")
    c = r.cls
    fail, segs, perr, uncl = (c.get(k, {}) for k in
                              ("reassembly_failures", "reassembly_segments", "parser_errors", "unclassified"))
    print(f"INFO: reassembly_failures {fail}\nINFO: reassembly_segments {segs}\n"
          f"INFO: parser_errors {perr}\nINFO: unclassified {uncl}")
    ck.check(set(fail) >= {"ooo_bound", "pool_exhausted", "acked_hole"}, "every stream failure named, zeros too")
    ck.check(fail.get("acked_hole", 0) >= 1, f"hole: reassembly failure acked_hole {fail.get('acked_hole')} >= 1")
    ck.check(uncl.get("reassembly", 0) >= 1, f"hole: unclassified reassembly {uncl.get('reassembly')} >= 1")
    hpack = {k: v for k, v in perr.items() if k.startswith("hpack") and v}
    ck.check(bool(hpack), f"garbled: an HPACK parser error by name ({perr})")
    ck.check(uncl.get("l7_error", 0) >= 1, f"garbled: unclassified l7_error {uncl.get('l7_error')} >= 1")
    ck.check(segs.get("buffered_ooo", 0) >= 1, f"reordered: segments buffered_ooo {segs.get('buffered_ooo')} >= 1")
    ck.check(segs.get("delivered", 0) >= 1 and "stream_failed" in segs, "segment outcomes by name, zeros too")
    models = [x.get("model") for x in r.log]
    ck.check("reordered-model" in models, f"reordered: the request is logged with its model ({models})")
    ck.finish(work)


if __name__ == "__main__":
    main()
