#!/usr/bin/python3
"""Writes the benchmark traffic mixes, reproducibly (fixed seed, fixed times).

usage: gen_mixes.py OUTDIR [--quick]

  llm.pcap         AI-inference traffic as an LLM gateway sees it: few requests, realistic
                   bodies, long streaming responses. h2c connections (synthetic: client
                   preface, SETTINGS, WINDOW_UPDATE; HEADERS with a hand-encoded HPACK block,
                   literal without indexing, static-table names, no Huffman; a JSON body in
                   DATA) with 2-6 concurrent streams each, in 1-2 rounds, whose responses
                   stream 100-400 token events, one DATA frame and one TCP segment each,
                   streams interleaved (OpenAI chat, Anthropic messages, Ollama chat,
                   embeddings); HTTP/1.1 /v1/chat/completions with SSE responses (100-400
                   events, one a segment); gRPC ModelInfer and TLS ClientHellos (the real
                   captures tests/pcap/cases/{grpc_modelinfer,tls_sni}, a few replicas).
                   Model names hit the rules of tests/bench/bench_policy.yaml.
  llm_dense.pcap   the request-dense worst case (the former llm mix): every real capture in
                   tests/pcap/cases (h2c curl/h2load/node, HTTP/1.1, gRPC, KServe REST, TLS,
                   VLAN h2c, 100 KB body) replayed as many distinct connections (client
                   address rewritten), plus synthetic HTTP/1.1 /v1/chat/completions requests
                   with chat JSON bodies (2-12 KB) and SSE responses (100-300 events).
  h2_replay.pcap   the multiplexed HTTP/2 captures of tests/pcap/cases (h2c curl/h2load/node,
                   llm_timing, VLAN h2c, gRPC) replayed as thousands of distinct connections
                   (client address and ports rewritten), 256 replicas interleaved.
  background.pcap  bulk TCP (iperf-like 1448-byte segments, ACK every other), UDP 1200-byte
                   datagrams, and 64-byte frames (TCP ACKs, small UDP).
  many_flows.pcap  100000 distinct TCP connections (50000 with --quick), 3 frames each
                   (SYN, SYN-ACK, ACK).
  *_N.pcap         the first N frames of a mix, for bounded callgrind replays.

Frames are built as raw bytes (scapy only reads the captures): same seed, same bytes. A file
is written only when missing; OUTDIR/stamp holds a hash of this script and the captures, and
a change rewrites everything.
"""
import array
import glob
import hashlib
import os
import random
import struct
import sys

SEED = 20240607
T0 = 1700000000.0
HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "..", "pcap", "cases")
CLI_MAC = bytes.fromhex("02000a000001")
SRV_MAC = bytes.fromhex("02000a000002")
SERVER = bytes([10, 255, 0, 1])
MODELS = ["meta-llama/Llama-3.1-8B-Instruct", "mistralai/Mistral-7B-Instruct-v0.3",
          "Qwen/Qwen2.5-72B-Instruct", "gpt-4o-mini", "claude-3-5-sonnet", "llama3.2:3b"]
WORDS = ("the model returns a streaming answer with tokens about networks queues latency "
         "packets shaping policy tenant inference batch GPU kernel attention context").split()


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(array.array("H", b))  # native (little-endian) words: result is byte-swapped
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return struct.pack("<H", ~s & 0xFFFF)


def ipv4(src, dst, proto, l4, ident=0, vlan=None):
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident & 0xFFFF, 0x4000,
                                64, proto, 0, src, dst))
    hdr[10:12] = csum(bytes(hdr))
    l4 = bytearray(l4)
    off = 16 if proto == 6 else 6
    l4[off:off + 2] = b"\0\0"
    l4[off:off + 2] = csum(src + dst + struct.pack("!BBH", 0, proto, len(l4)) + bytes(l4))
    eth = SRV_MAC + CLI_MAC
    eth += (struct.pack("!HH", 0x8100, vlan) if vlan is not None else b"") + b"\x08\x00"
    return eth + bytes(hdr) + bytes(l4)


def tcp(src, dst, sport, dport, seq, ack, flags, payload=b"", vlan=None):
    l4 = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4,
                     flags, 65535, 0, 0) + payload
    return ipv4(src, dst, 6, l4, vlan=vlan)


def udp(src, dst, sport, dport, payload):
    return ipv4(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)


def pad60(f):
    return f + b"\0" * (60 - len(f)) if len(f) < 60 else f


def write_pcap(path, frames):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            fr = pad60(fr)
            t = T0 + i * 1e-5
            f.write(struct.pack("<IIII", int(t), int(round((t % 1) * 1e6)) % 1000000, len(fr),
                                len(fr)))
            f.write(fr)
    os.replace(tmp, path)


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    end = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off, out = 24, []
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
        out.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return out


class TcpConn:
    """Both directions of one synthetic TCP connection, as frame bytes."""

    def __init__(self, cli, srv, sport, dport, rnd):
        self.cli, self.srv, self.sport, self.dport = cli, srv, sport, dport
        self.cseq, self.sseq = rnd.getrandbits(32), rnd.getrandbits(32)
        self.frames = []

    def handshake(self):
        c, s = self.cseq, self.sseq
        self.frames += [tcp(self.cli, self.srv, self.sport, self.dport, c, 0, 0x02),
                        tcp(self.srv, self.cli, self.dport, self.sport, s, c + 1, 0x12),
                        tcp(self.cli, self.srv, self.sport, self.dport, c + 1, s + 1, 0x10)]
        self.cseq, self.sseq = c + 1, s + 1

    def send(self, from_client, data, mss=1448, ack_every=2):
        n = 0
        for i in range(0, len(data), mss):
            seg = data[i:i + mss]
            if from_client:
                self.frames.append(tcp(self.cli, self.srv, self.sport, self.dport, self.cseq,
                                       self.sseq, 0x18, seg))
                self.cseq += len(seg)
            else:
                self.frames.append(tcp(self.srv, self.cli, self.dport, self.sport, self.sseq,
                                       self.cseq, 0x18, seg))
                self.sseq += len(seg)
            n += 1
            if n % ack_every == 0:
                self.ack(not from_client)
        if n % ack_every:
            self.ack(not from_client)

    def ack(self, from_client):
        if from_client:
            self.frames.append(tcp(self.cli, self.srv, self.sport, self.dport, self.cseq,
                                   self.sseq, 0x10))
        else:
            self.frames.append(tcp(self.srv, self.cli, self.dport, self.sport, self.sseq,
                                   self.cseq, 0x10))

    def close(self):
        c, s = self.cseq, self.sseq
        self.frames += [tcp(self.cli, self.srv, self.sport, self.dport, c, s, 0x11),
                        tcp(self.srv, self.cli, self.dport, self.sport, s, c + 1, 0x11),
                        tcp(self.cli, self.srv, self.sport, self.dport, c + 1, s + 1, 0x10)]


def chat_body(rnd, models=MODELS):
    target = rnd.randint(2000, 12000)
    msgs, size = [], 0
    while size < target:
        text = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(20, 200)))
        m = '{"role":"%s","content":"%s"}' % (rnd.choice(["user", "assistant"]), text)
        msgs.append(m)
        size += len(m)
    return ('{"messages":[%s],"model":"%s","stream":true,"max_tokens":%d,"temperature":0.7}'
            % (",".join(msgs), rnd.choice(models), rnd.randint(64, 2048))).encode()


def sse_flow(i, rnd, net=1, n_events=(100, 300), models=MODELS):
    cli = bytes([10, net, (i >> 8) & 0xFF, i & 0xFF])
    c = TcpConn(cli, SERVER, 30000 + i, 8000, rnd)
    c.handshake()
    body = chat_body(rnd, models)
    head = ("POST /v1/chat/completions HTTP/1.1\r\nHost: llm.example\r\n"
            "Authorization: Bearer sk-bench\r\nContent-Type: application/json\r\n"
            "Accept: text/event-stream\r\nContent-Length: %d\r\n\r\n" % len(body)).encode()
    c.send(True, head + body)
    c.send(False, b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                  b"Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n\r\n")
    events = []
    for k in range(rnd.randint(*n_events)):
        ev = ('data: {"id":"chatcmpl-%d","object":"chat.completion.chunk","created":1700000000,'
              '"choices":[{"index":0,"delta":{"content":" %s"}}]}\n\n'
              % (i, rnd.choice(WORDS))).encode()
        events.append(b"%x\r\n%s\r\n" % (len(ev), ev))
    events.append(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
    # One SSE event a segment, as a token streamer writes them; the client ACKs every other.
    n = 0
    for ev in events:
        c.frames.append(tcp(c.srv, c.cli, c.dport, c.sport, c.sseq, c.cseq, 0x18, ev))
        c.sseq += len(ev)
        n += 1
        if n % 2 == 0:
            c.ack(True)
    c.close()
    return c.frames


def capture_flows(replicas, names=None, new_ports=False):
    """Each real capture (or those in `names`), replayed `replicas` times with a new client
    address each time (and, with `new_ports`, new client ports: a bijection of the
    original port per replica, so a capture's connections stay distinct)."""
    out = []
    for ci, path in enumerate(sorted(glob.glob(os.path.join(CASES, "*", "in.pcap")))):
        if names and os.path.basename(os.path.dirname(path)) not in names:
            continue
        frames = read_pcap(path)
        for r in range(replicas):
            new = bytes([10, 2 + ci, (r >> 8) & 0xFF, r & 0xFF])
            flows = []
            client = None
            for fr in frames:
                fr = bytearray(fr)
                l3 = 14
                et = struct.unpack("!H", fr[12:14])[0]
                while et in (0x8100, 0x88A8):
                    et = struct.unpack("!H", fr[l3 + 2:l3 + 4])[0]
                    l3 += 4
                if et != 0x0800:
                    flows.append(bytes(fr))
                    continue
                ihl = (fr[l3] & 0xF) * 4
                src, dst = bytes(fr[l3 + 12:l3 + 16]), bytes(fr[l3 + 16:l3 + 20])
                if client is None:
                    client = src
                if src == client:
                    fr[l3 + 12:l3 + 16] = new
                if dst == client:
                    fr[l3 + 16:l3 + 20] = new
                fr[l3 + 10:l3 + 12] = b"\0\0"
                fr[l3 + 10:l3 + 12] = csum(bytes(fr[l3:l3 + ihl]))
                proto = fr[l3 + 9]
                tot = struct.unpack("!H", fr[l3 + 2:l3 + 4])[0]
                l4 = l3 + ihl
                if proto in (6, 17) and new_ports:
                    sp = l4 if src == client else l4 + 2 if dst == client else None
                    if sp is not None:
                        port = struct.unpack("!H", fr[sp:sp + 2])[0]
                        fr[sp:sp + 2] = struct.pack("!H", 1024 + (port * 7 + r * 131) % 64000)
                if proto in (6, 17):
                    off = l4 + (16 if proto == 6 else 6)
                    fr[off:off + 2] = b"\0\0"
                    seg = bytes(fr[l4:l3 + tot])
                    fr[off:off + 2] = csum(bytes(fr[l3 + 12:l3 + 20]) +
                                           struct.pack("!BBH", 0, proto, len(seg)) + seg)
                flows.append(bytes(fr))
            out.append(flows)
    return out


def interleave(flows, active, rnd):
    """Round-robin over up to `active` concurrent flows, each flow's own order kept."""
    pending = list(flows)
    rnd.shuffle(pending)
    live, out = [], []
    while pending or live:
        while pending and len(live) < active:
            live.append([pending.pop(), 0])
        k = rnd.randrange(len(live))
        f = live[k]
        out.append(f[0][f[1]])
        f[1] += 1
        if f[1] == len(f[0]):
            live.pop(k)
    return out


def llm_dense_mix(quick):
    """The request-dense worst case (formerly `llm`): one request per ~7 frames."""
    rnd = random.Random(SEED)
    flows = capture_flows(8 if quick else 24)
    flows += [sse_flow(i, rnd) for i in range(40 if quick else 100)]
    return interleave(flows, 64, rnd)


# --- HTTP/2 cleartext (prior knowledge), built by hand ---
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_DATA, H2_HEADERS, H2_SETTINGS, H2_WINDOW_UPDATE = 0x0, 0x1, 0x4, 0x8
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
# HPACK static table (RFC 7541 appendix A) indices of the names used.
HP_AUTHORITY, HP_METHOD, HP_PATH, HP_SCHEME, HP_STATUS = 1, 2, 4, 6, 8
HP_ACCEPT, HP_AUTHORIZATION, HP_CONTENT_LENGTH, HP_CONTENT_TYPE, HP_DATE = 19, 23, 28, 31, 33
HP_SERVER, HP_USER_AGENT = 54, 58


def h2_frame(ftype, flags, sid, payload=b""):
    return struct.pack("!I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack("!I", sid) \
        + payload


def hpack_int(v, bits, first=0):
    top = (1 << bits) - 1
    if v < top:
        return bytes([first | v])
    out, v = [first | top], v - top
    while v >= 128:
        out.append((v & 127) | 128)
        v >>= 7
    return bytes(out + [v])


def hpack_literal(name_index, value):
    """Literal header field without indexing, indexed name, raw (non-Huffman) value."""
    v = value.encode()
    return hpack_int(name_index, 4) + hpack_int(len(v), 7) + v


def h2_settings(pairs):
    return h2_frame(H2_SETTINGS, 0, 0, b"".join(struct.pack("!HI", k, v) for k, v in pairs))


# What an H2 client asks for: (endpoint path, models, body builder, response content-type).
H2_APIS = [
    ("/v1/chat/completions", ["gpt-4o-mini", "gpt-4o-2024-08-06",
                              "meta-llama/Llama-3.1-70B-Instruct",
                              "mistralai/Mistral-7B-Instruct-v0.3", "Qwen/Qwen2.5-72B-Instruct"],
     "openai", "text/event-stream", 6),
    ("/v1/messages", ["claude-3-5-sonnet-20241022", "claude-3-5-haiku-20241022"], "anthropic",
     "text/event-stream", 2),
    ("/api/chat", ["llama3.1:70b", "llama3.2:3b"], "ollama", "application/x-ndjson", 1),
    ("/v1/embeddings", ["text-embedding-3-small"], "embed", "application/json", 1),
]


def h2_request(rnd, api, model):
    path, _, kind, _, _ = api
    if kind == "embed":
        inputs = ['"%s"' % " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(20, 120)))
                  for _ in range(rnd.randint(1, 8))]
        return path, ('{"model":"%s","input":[%s],"encoding_format":"float"}'
                      % (model, ",".join(inputs))).encode()
    body = chat_body(rnd, [model]).decode()
    if kind == "anthropic":
        body = body.replace('"temperature":0.7}', '"system":"You are a helpful assistant."}')
    elif kind == "ollama":
        body = body.replace('"max_tokens"', '"num_predict"')
    return path, body.encode()


def h2_events(rnd, sid, kind, model):
    """The response body of one stream, as the server writes it: one chunk per token event."""
    if kind == "embed":
        vec = ",".join("%.6f" % (rnd.random() * 2 - 1) for _ in range(384))
        return [('{"object":"list","data":[{"object":"embedding","index":0,"embedding":[%s]}],'
                 '"model":"%s","usage":{"prompt_tokens":%d,"total_tokens":%d}}'
                 % (vec, model, 64, 64)).encode()]
    out = []
    for k in range(rnd.randint(100, 400)):
        w = rnd.choice(WORDS)
        if kind == "openai":
            ev = ('data: {"id":"chatcmpl-%d","object":"chat.completion.chunk","created":1700000000,'
                  '"model":"%s","choices":[{"index":0,"delta":{"content":" %s"},'
                  '"finish_reason":null}]}\n\n' % (sid, model, w))
        elif kind == "anthropic":
            ev = ('event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                  '"delta":{"type":"text_delta","text":" %s"}}\n\n' % w)
        else:
            ev = ('{"model":"%s","created_at":"2024-11-22T06:45:00.%06dZ","message":'
                  '{"role":"assistant","content":" %s"},"done":false}\n' % (model, k, w))
        out.append(ev.encode())
    out.append(b"data: [DONE]\n\n" if kind != "ollama" else
               b'{"model":"%s","done":true,"done_reason":"stop"}\n' % model.encode())
    return out


def h2c_flow(i, rnd):
    """One h2c connection: 1-2 rounds of 2-6 concurrent streaming requests."""
    cli = bytes([10, 7, (i >> 8) & 0xFF, i & 0xFF])
    c = TcpConn(cli, SERVER, 33000 + i, 8000, rnd)
    c.handshake()
    # Client preface, SETTINGS (no push, 4 MiB stream windows), a 1 GiB connection window.
    c.send(True, H2_PREFACE + h2_settings([(2, 0), (4, 4 << 20)]) +
           h2_frame(H2_WINDOW_UPDATE, 0, 0, struct.pack("!I", (1 << 30) - 65535)))
    c.send(False, h2_settings([(3, 100), (4, 65535), (5, 16384)]) + h2_frame(H2_SETTINGS, ACK, 0))
    c.send(True, h2_frame(H2_SETTINGS, ACK, 0))
    sid = 1
    weights = [a[4] for a in H2_APIS]
    for _ in range(rnd.randint(1, 2)):
        streams = []
        req = b""
        for _ in range(rnd.randint(2, 6)):
            api = rnd.choices(H2_APIS, weights)[0]
            model = rnd.choice(api[1])
            path, body = h2_request(rnd, api, model)
            block = (hpack_literal(HP_METHOD, "POST") + hpack_literal(HP_SCHEME, "http") +
                     hpack_literal(HP_AUTHORITY, "llm.example:8000") + hpack_literal(HP_PATH, path) +
                     hpack_literal(HP_CONTENT_TYPE, "application/json") +
                     hpack_literal(HP_ACCEPT, api[3]) +
                     hpack_literal(HP_AUTHORIZATION, "Bearer sk-bench-%04d" % i) +
                     hpack_literal(HP_USER_AGENT, "AsyncOpenAI/Python 1.54.0") +
                     hpack_literal(HP_CONTENT_LENGTH, str(len(body))))
            req += h2_frame(H2_HEADERS, END_HEADERS, sid, block)
            for k in range(0, len(body), 16384):
                last = k + 16384 >= len(body)
                req += h2_frame(H2_DATA, END_STREAM if last else 0, sid, body[k:k + 16384])
            streams.append([sid, api, model])
            sid += 2
        c.send(True, req)
        # Response headers of every stream, then the token events of all streams interleaved
        # (each stream's own order kept), one DATA frame a TCP segment; the client ACKs every other.
        hdrs = b""
        for s_id, api, model in streams:
            hdrs += h2_frame(H2_HEADERS, END_HEADERS, s_id,
                             hpack_literal(HP_STATUS, "200") +
                             hpack_literal(HP_CONTENT_TYPE, api[3]) +
                             hpack_literal(HP_DATE, "Fri, 22 Nov 2024 06:45:00 GMT") +
                             hpack_literal(HP_SERVER, "uvicorn"))
        c.send(False, hdrs)
        pending = [(s_id, h2_events(rnd, s_id, api[2], model)) for s_id, api, model in streams]
        pos = [0] * len(pending)
        n = 0
        while pending:
            k = rnd.randrange(len(pending))
            s_id, evs = pending[k]
            last = pos[k] + 1 == len(evs)
            seg = h2_frame(H2_DATA, END_STREAM if last else 0, s_id, evs[pos[k]])
            if len(seg) > 1448:  # a large non-streamed body (embeddings): MSS segments
                c.send(False, seg)
            else:
                c.frames.append(tcp(c.srv, c.cli, c.dport, c.sport, c.sseq, c.cseq, 0x18, seg))
                c.sseq += len(seg)
                n += 1
                if n % 2 == 0:
                    c.ack(True)
            pos[k] += 1
            if last:
                pending.pop(k)
                pos.pop(k)
    c.close()
    return c.frames


# Chat models of the HTTP/1.1 SSE flows in the llm mix (OpenAI-compatible servers).
H1_MODELS = ["gpt-4o-mini", "meta-llama/Llama-3.1-8B-Instruct", "mistralai/Mistral-7B-Instruct-v0.3",
             "Qwen/Qwen2.5-72B-Instruct", "claude-3-5-sonnet-20241022", "llama3.2:3b"]


def llm_mix(quick):
    """Few requests, long streams: h2c, HTTP/1.1 SSE, gRPC ModelInfer, TLS ClientHellos."""
    rnd = random.Random(SEED + 3)
    flows = [h2c_flow(i, rnd) for i in range(8 if quick else 20)]
    flows += [sse_flow(i, rnd, net=8, n_events=(100, 400), models=H1_MODELS)
              for i in range(16 if quick else 40)]
    flows += capture_flows(3 if quick else 6, ["grpc_modelinfer", "tls_sni"])
    return interleave(flows, 64, rnd)


H2_CAPTURES = ["h2c_curl", "h2c_h2load", "h2c_multiplex_node", "llm_timing", "vlan_h2c",
               "grpc_modelinfer"]


def h2_replay_mix(quick):
    """Real multiplexed HTTP/2 captures (curl, h2load, node, the LLM timing server, VLAN
    h2c, gRPC) replayed as thousands of connections: ~20 connections a replica, client
    address and ports rewritten, 256 replicas in flight at once."""
    rnd = random.Random(SEED + 4)
    flows = capture_flows(50 if quick else 120, H2_CAPTURES, new_ports=True)
    return interleave(flows, 256, rnd)


def background_mix(quick):
    rnd = random.Random(SEED + 1)
    flows = []
    for i in range(16):  # bulk TCP
        c = TcpConn(bytes([10, 3, 0, i]), bytes([10, 254, 0, 1]), 40000 + i, 5001, rnd)
        c.handshake()
        c.send(True, bytes(rnd.getrandbits(8) for _ in range(1448)) * (400 if quick else 1000))
        c.close()
        flows.append(c.frames)
    for i in range(64):  # UDP 1200-byte datagrams
        src, dst = bytes([10, 4, 0, i]), bytes([10, 254, 0, 2])
        pl = bytes(rnd.getrandbits(8) for _ in range(1200))
        flows.append([udp(src, dst, 50000 + i, 4433, pl) if k % 4 else udp(dst, src, 4433,
                      50000 + i, pl[:200]) for k in range(60 if quick else 160)])
    for i in range(256):  # 64-byte frames: small UDP and bare TCP ACKs
        src, dst = bytes([10, 5, i >> 8, i & 0xFF]), bytes([10, 254, 0, 3])
        if i % 2:
            flows.append([udp(src, dst, 20000 + i, 53, b"q" * 18) for _ in range(64)])
        else:
            seq = rnd.getrandbits(32)
            flows.append([tcp(src, dst, 20000 + i, 80, seq, k * 1448, 0x10) for k in range(64)])
    return interleave(flows, 128, rnd)


def many_flows_mix(quick):
    rnd = random.Random(SEED + 2)
    n = 50000 if quick else 100000
    out = []
    for i in range(n):
        cli = bytes([10, 6 + (i >> 16), (i >> 8) & 0xFF, i & 0xFF])
        c = TcpConn(cli, bytes([10, 254, 1, 1]), 1024 + rnd.randrange(60000), 443, rnd)
        c.handshake()
        out += c.frames
    return out


MIXES = {"llm": llm_mix, "llm_dense": llm_dense_mix, "h2_replay": h2_replay_mix,
         "background": background_mix, "many_flows": many_flows_mix}
BOUNDED = {"llm": 20000, "llm_dense": 20000, "h2_replay": 20000, "background": 20000,
           "many_flows": 30000}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    outdir, quick = sys.argv[1], "--quick" in sys.argv[2:]
    os.makedirs(outdir, exist_ok=True)
    h = hashlib.sha256(open(__file__, "rb").read() + (b"q" if quick else b"f"))
    for p in sorted(glob.glob(os.path.join(CASES, "*", "in.pcap"))):
        h.update(open(p, "rb").read())
    stamp = os.path.join(outdir, "stamp")
    if not os.path.exists(stamp) or open(stamp).read() != h.hexdigest():
        for p in glob.glob(os.path.join(outdir, "*.pcap")):
            os.remove(p)
    for name, fn in MIXES.items():
        path = os.path.join(outdir, name + ".pcap")
        bounded = os.path.join(outdir, "%s_%d.pcap" % (name, BOUNDED[name]))
        if os.path.exists(path) and os.path.exists(bounded):
            continue
        frames = fn(quick)
        write_pcap(path, frames)
        write_pcap(bounded, frames[:BOUNDED[name]])
        print("%s: %d frames, %d bytes on the wire" % (path, len(frames),
                                                      sum(max(60, len(f)) for f in frames)))
    with open(stamp, "w") as f:
        f.write(h.hexdigest())


if __name__ == "__main__":
    main()
