#!/usr/bin/python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/seed-* from the unit-test vectors
and the payloads of tests/pcap/cases/*/in.pcap, in each target's input format (see the
comment at the top of each <target>_fuzz.cpp). Deterministic; crash-* files are left alone.

usage: tests/fuzz/make_seeds.py   (no scapy needed: pcap and headers are decoded here)
"""
import glob
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")
MAX_SEED = 12 * 1024  # bytes a seed; small seeds fuzz faster


def read_pcap(path):
    data = open(path, "rb").read()
    e = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    off, frames = 24, []
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(e + "IIII", data[off:off + 16])
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return frames


def tcp_of(frame):
    """(flow key, direction key, seq, flags, payload) of an Ethernet/VLAN/IPv4|6/TCP frame, or None."""
    off, et = 14, struct.unpack("!H", frame[12:14])[0]
    while et in (0x8100, 0x88a8) and len(frame) >= off + 4:
        et = struct.unpack("!H", frame[off + 2:off + 4])[0]
        off += 4
    if et == 0x0800:
        ihl = (frame[off] & 15) * 4
        total = struct.unpack("!H", frame[off + 2:off + 4])[0]
        if frame[off + 9] != 6:
            return None
        src, dst, l4, end = frame[off + 12:off + 16], frame[off + 16:off + 20], off + ihl, off + total
    elif et == 0x86DD:
        if frame[off + 6] != 6:
            return None
        plen = struct.unpack("!H", frame[off + 4:off + 6])[0]
        src, dst, l4, end = frame[off + 8:off + 24], frame[off + 24:off + 40], off + 40, off + 40 + plen
    else:
        return None
    sport, dport, seq = struct.unpack("!HHI", frame[l4:l4 + 8])
    doff = (frame[l4 + 12] >> 4) * 4
    a, b = (src, sport), (dst, dport)
    return (min(a, b), max(a, b)), (a, b), seq, frame[l4 + 13], frame[l4 + doff:end]


def conversations(frames):
    """Per TCP connection, the payload chunks in capture order: [(client?, bytes)].
    The client is the sender of the first SYN (or of the first packet). Retransmissions
    are dropped by sequence number."""
    convs, client, next_seq = {}, {}, {}
    for f in frames:
        t = tcp_of(f)
        if t is None:
            continue
        key, d, seq, flags, payload = t
        if key not in client:
            client[key] = d
            convs[key] = []
        if flags & 0x02:
            next_seq[d] = (seq + 1) & 0xFFFFFFFF
            continue
        if not payload:
            continue
        exp = next_seq.get(d, seq)
        if seq != exp:
            continue
        next_seq[d] = (seq + len(payload)) & 0xFFFFFFFF
        convs[key].append((d == client[key], payload))
    return [c for c in convs.values() if c]


def encode_conversation(conv, limit=MAX_SEED, chunk=127):
    """conversation.h: control byte (len << 1 | dir) then len bytes."""
    out = bytearray()
    for is_client, payload in conv:
        for i in range(0, len(payload), chunk):
            part = payload[i:i + chunk]
            if len(out) + len(part) + 1 > limit:
                return bytes(out)
            out.append((len(part) << 1) | (0 if is_client else 1))
            out += part
    return bytes(out)


def encode_frames(frames, limit=MAX_SEED):
    """classifier_fuzz.cpp: mode byte, then (dt u8, len u16le, frame)."""
    out = bytearray([2])
    for f in frames:
        f = f[:2048]
        if len(out) + len(f) + 3 > limit:
            break
        out += bytes([1]) + struct.pack("<H", len(f)) + f
    return bytes(out)


def with_reloads(seed, every=7):
    """The same frames under a policy (mode bit 2), reloaded before every `every`th frame."""
    out = bytearray(seed[:1])
    out[0] |= 4
    off, n = 1, 0
    while off + 3 <= len(seed):
        ln = struct.unpack("<H", seed[off + 1:off + 3])[0]
        n += 1
        out += bytes([254 if n % every == 0 else seed[off]]) + seed[off + 1:off + 3 + ln]
        off += 3 + ln
    return bytes(out)


def h2_frames(stream_bytes):
    """(type, flags, stream, payload) of HTTP/2 frames after an optional preface."""
    b = stream_bytes
    if b.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"):
        b = b[24:]
    out, off = [], 0
    while off + 9 <= len(b):
        ln = int.from_bytes(b[off:off + 3], "big")
        typ, flags = b[off + 3], b[off + 4]
        sid = int.from_bytes(b[off + 5:off + 9], "big") & 0x7FFFFFFF
        payload = b[off + 9:off + 9 + ln]
        if typ == 0 and flags & 0x08 and payload:
            payload = payload[1:len(payload) - payload[0]]
        out.append((typ, flags, sid, payload))
        off += 9 + ln
    return out


def request_bodies(conv):
    """Request bodies of a client byte stream: HTTP/2 DATA by stream, or HTTP/1 bodies."""
    client = b"".join(p for c, p in conv if c)
    if client.startswith(b"PRI * HTTP/2.0"):
        bodies = {}
        for typ, _, sid, payload in h2_frames(client):
            if typ == 0:
                bodies[sid] = bodies.get(sid, b"") + payload
        return list(bodies.values())
    out = []
    for part in client.split(b"\r\n\r\n")[1:]:
        if part[:1] in (b"{", b"["):
            out.append(part.split(b"POST ")[0].split(b"GET ")[0])
    return out


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, wt, payload):
    if wt == 2:
        return varint(num << 3 | 2) + varint(len(payload)) + payload
    return varint(num << 3 | wt) + payload


def grpc_message(msg, compressed=0):
    return bytes([compressed]) + struct.pack("!I", len(msg)) + msg


class Seeds:
    def __init__(self):
        self.written = {}

    def add(self, target, name, data):
        d = os.path.join(CORPUS, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)
        self.written[target] = self.written.get(target, 0) + 1


def tcp_seed(cfg, ops):
    return bytes(cfg) + b"".join(ops)


def seg(side, flags, dseq, dack, payload, op=0):
    return bytes([op | side << 3, flags]) + struct.pack("<hh", dseq, dack) + bytes([len(payload)]) + payload


def main():
    s = Seeds()
    for old in glob.glob(os.path.join(CORPUS, "*", "seed-*")):
        os.remove(old)

    for case_dir in sorted(glob.glob(os.path.join(ROOT, "tests/pcap/cases/*/"))):
        case = os.path.basename(case_dir.rstrip("/"))
        frames = read_pcap(os.path.join(case_dir, "in.pcap"))
        # packet_parse: a handshake frame, a data frame, the largest frame.
        picks = {0: frames[0], 1: next((f for f in frames if len(f) > 100), frames[0]),
                 2: max(frames, key=len)}
        for i, f in picks.items():
            s.add("packet_parse", f"{case}-{i}", f)
        s.add("classifier", case, encode_frames(frames))
        s.add("classifier", f"{case}-reloads", with_reloads(encode_frames(frames)))
        convs = conversations(frames)
        conv = convs[0]
        s.add("l7_detect", case, encode_conversation(conv))
        client_first = b"".join(p for c, p in conv if c)
        if client_first.startswith(b"PRI * HTTP/2.0"):
            s.add("http2", case, b"\x00" + encode_conversation(conv))
        elif client_first[:1] == b"\x16":
            s.add("tls", case, b"\xff\x06" + client_first[:8192])
        else:
            s.add("http1", case, b"\x01" + encode_conversation(conv))
        for i, body in enumerate(request_bodies(conv)[:2]):
            if case.startswith("grpc"):
                s.add("grpc", f"{case}-{i}", b"\xff" + body[:MAX_SEED])
            elif body:
                s.add("json_model", f"{case}-{i}", b"\x40" + body[:MAX_SEED])

    # Unit-test vectors.
    data = os.path.join(ROOT, "tests/unit/classify/data")
    for name in ("tls_client_hello_curl.bin", "tls_client_hello_s_client.bin"):
        hello = open(os.path.join(data, name), "rb").read()
        s.add("tls", name[:-4], b"\xff\x06" + hello)
        s.add("tls", name[:-4] + "-split7", b"\x06\x06" + hello)
    s.add("json_model", "escapes", b"\x03" + rb'{"m\u006fdel":"a\"b\ud83d\ude00","messages":[{"model":"x"}],"n":2,"stream":true}')
    s.add("json_model", "dup", b"\x05" + b'{"model":"a","max_tokens":10,"model":"b","max_output_tokens":-1}')
    mir = field(1, 2, b"resnet50") + field(2, 2, b"1") + field(3, 2, b"req-1") + \
        field(5, 2, field(1, 2, b"INPUT0") + field(2, 2, b"FP32") + field(3, 0, varint(4)))
    s.add("grpc", "model_infer", b"\x03" + grpc_message(mir) + grpc_message(b"", 1) +
          grpc_message(field(4, 3, field(1, 2, b"x") + varint(4 << 3 | 4)) + field(1, 2, b"m2")))
    s.add("grpc", "path", b"\xff" + b"/inference.GRPCInferenceService/ModelInfer")

    # HTTP/2 by hand: preface, SETTINGS, a HEADERS with literal fields, DATA, RST.
    def lit(name, value):  # literal without indexing, new name, no Huffman
        return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value
    def frame(typ, flags, sid, payload):
        return len(payload).to_bytes(3, "big") + bytes([typ, flags]) + sid.to_bytes(4, "big") + payload
    hdrs = b"\x83\x86" + lit(b":path", b"/v1/chat/completions") + lit(b":authority", b"api") + \
        lit(b"content-type", b"application/json") + lit(b"x-tenant", b"acme")
    client = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"\x00\x01\x00\x00\x10\x00") + \
        frame(1, 4, 1, hdrs) + frame(0, 1, 1, b'{"model":"gpt-4o"}') + \
        frame(1, 0, 3, b"\x3f\xe1\x1f" + hdrs[:5]) + frame(9, 4, 3, hdrs[5:]) + frame(3, 0, 3, b"\x00\x00\x00\x08")
    server = frame(4, 0, 0, b"") + frame(4, 1, 0, b"") + frame(1, 5, 1, b"\x88")
    conv = [(True, client[:100]), (False, server), (True, client[100:])]
    s.add("http2", "handmade", b"\x00" + encode_conversation(conv))
    s.add("l7_detect", "handmade_h2", encode_conversation(conv))
    h1 = [(True, b"POST /v1/completions HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\n{\"mod\r\n0\r\n\r\nGET /v2/models/m1/infer HTTP/1.1\r\nHost: a\r\n\r\n"),
          (False, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n")]
    s.add("http1", "chunked_pipelined", b"\x00" + encode_conversation(h1))
    upg = [(True, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                  b"HTTP2-Settings: AAEAABAA\r\n\r\n"),
           (False, b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + server),
           (True, client)]
    s.add("http1", "h2c_upgrade", b"\x01" + encode_conversation(upg))
    s.add("l7_detect", "h2c_upgrade", encode_conversation(upg))

    # TCP reassembly: in order, out of order, overlapping with different bytes, FIN, RST.
    cfg = [0, 7, 3, 4]
    s.add("tcp_reassembly", "in_order", tcp_seed(cfg, [
        seg(0, 0x02, 0, 0, b""), seg(1, 0x12, 0, 1, b""),
        seg(0, 0x18, 1, 1, b"hello"), seg(0, 0x18, 5, 0, b" world"), seg(0, 0x11, 6, 0, b"")]))
    s.add("tcp_reassembly", "ooo_overlap", tcp_seed(cfg, [
        seg(0, 0x02, 0, 0, b""), seg(0, 0x18, 11, 0, b"BBBBB"), seg(0, 0x18, -2, 0, b"XXXXXXX"),
        seg(0, 0x18, -5, 0, b"AAAAA"), seg(1, 0x10, 0, 200, b"", op=5), seg(0, 0x14, 40, 0, b"")]))
    s.add("tcp_reassembly", "midstream_one_byte", tcp_seed([1, 1, 0, 0], [
        seg(0, 0x18, 3, 0, b"a"), seg(0, 0x18, 2, 0, b"c"), seg(0, 0x18, -1, 0, b"b"),
        seg(0, 0x18, 0, 0, b"", op=6), seg(0, 0x18, 0, 0, b"", op=7)]))

    # Policy YAML: the shipped examples and the unit-test files.
    for path in [os.path.join(ROOT, "config/aiqos.yaml")] + \
            sorted(glob.glob(os.path.join(ROOT, "config/examples/*.yaml"))) + \
            sorted(glob.glob(os.path.join(ROOT, "tests/unit/control/data/*.yaml"))):
        s.add("policy_yaml", os.path.basename(path)[:-5], open(path, "rb").read())

    # Control socket request lines (ctl_protocol_fuzz.cpp: the line without its '\n'): every
    # command of docs/cli.md, then the refusals of tests/unit/control/ctl_protocol_test.cpp.
    for i, line in enumerate([
            b'{"cmd":"status"}',
            b'{"cmd":"policy.show","args":{}}',
            b'{"cmd":"policy.reload","args":{"file":"/etc/aiqos/policy.yaml"}}',
            b'{"cmd":"policy.reload","args":{"file":"bad.yaml"}}',
            b'{"cmd":"classes","args":null}',
            b'{"cmd":"class.set","args":{"name":"interactive","rate":"20Mbit","burst":"64KB"}}',
            b'{"cmd":"class.set","args":{"name":"batch","rate":1000000,"burst":65536}}',
            b'{"cmd":"flows","args":{"top":5,"class":"batch","model":"llama-3-*"}}',
            b'{"cmd":"flows","args":{"top":0}}',
            b'{"cmd":"stats","args":{"by":"model"}}',
            b'{"cmd":"stats","args":{"by":"worker"}}',
            b'{"args":{},"cmd":"stats.reset"}\r',
            b'{"cmd":"class.set","args":{"name":"x","rate":"1.5Gbit","burst":"1 parsec"}}',
            b'{"cmd":"flows","args":{"top":-1,"limit":3}}',
            b'{"cmd":"status","x":1}',
            b'{"cmd":"\\u0001reboot\\ud83d\\ude00","args":[1,2.5e300,true,"\\"x"]}',
            b'{not json',
            b'[[[[[[[[[[[[[[[[{"cmd":"status"}]]]]]]]]]]]]]]]]',
            b'  {"cmd" : "stats" , "args" : { "by" : "tenant" } }  ',
            # nested past kMaxRequestDepth (64 KB of it overflowed the stack: DepthLimit test)
            b'{"cmd":"status","args":' + b'{"a":' * 2000 + b'1' + b'}' * 2001,
            b'{"cmd":"flows","args":{"top":' + b'[' * 6000 + b']' * 6000 + b'}}']):
        s.add("ctl_protocol", f"{i:02d}", line)

    # response_body: kind byte (response_body_fuzz.cpp kKinds), chunk byte, body.
    tok = b'data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
    for i, (kind, body) in enumerate([
            (0, tok * 3 + b'data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3}}\n\ndata: [DONE]\n\n'),
            (1, b'event: message_start\ndata: {"type":"message_start","message":{"model":"claude","usage":{"input_tokens":25,"output_tokens":1}}}\n\n'
                b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n'
                b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}\n\n'
                b'event: message_stop\ndata: {"type":"message_stop"}\n\n'),
            (2, b'data: {"type":"response.output_text.delta","delta":"Hi"}\n\n'
                b'data: {"type":"response.completed","response":{"model":"g","usage":{"input_tokens":9,"output_tokens":2}}}\n\n'),
            (3, b'data:{"token":{"id":1,"text":"Hi","special":false},"generated_text":null,"details":null}\n\n'
                b'data:{"token":{"id":2,"text":"</s>","special":true},"details":{"generated_tokens":2}}\n\n'),
            (4, b'{"model":"llama3","message":{"role":"assistant","content":"Hi"},"done":false}\n'
                b'{"model":"llama3","message":{"content":""},"done":true,"prompt_eval_count":8,"eval_count":1}'),
            (5, b'{"id":"x","model":"gpt","choices":[{"message":{"content":"Hello"}}],"usage":{"prompt_tokens":5,"completion_tokens":7}}'),
            (6, b'\0\0\0\0\4abcd\0\0\0\0\0\1\0\0\0\2xy'),
            (7, b'data: {"model_name":"m","text_output":"a"}\n\n' * 2),
            # hostile: unterminated line, overflowing usage, deep nesting, NDJSON without newlines
            (0, b'data: {"choices":[{"delta":{"content":"' + b'a' * 4000),
            (0, b'data: {"usage":{"completion_tokens":99999999999999999999999999}}\n\n'),
            (5, b'[' * 3000),
            (4, b'{"response":"x","done":false}' * 200),
            (0, b'data: [DONE\n\ndata: {"usage":{"prompt_tokens":-1}}\n\n')]):
        s.add("response_body", f"{i:02d}", bytes([kind, 7 + 13 * i]) + body)

    for t, n in sorted(s.written.items()):
        print(f"{t}: {n} seeds")


if __name__ == "__main__":
    main()
