#!/usr/bin/env node
// Inference-API-shaped server for the pcap corpus (tests/pcap/capture/make_corpus.sh).
// It runs in the capture's server namespace; its answers only need to look like the real
// APIs on the wire (status, framing, streaming), not to be right.
//
//   --h2c PORT   cleartext HTTP/2 with prior knowledge (REST and gRPC)
//   --h1 PORT    HTTP/1.1 (keep-alive, chunked requests, pipelining, 100-continue)
//   --host ADDR  listen address (default 0.0.0.0: the namespace has only the capture's links)
//   --log FILE   one JSON line per timed streamed response (below): what the server sent, when
//
// Timed streaming (the llm_timing case): a request with `x-aiqos-timing: FIRST/GAP` (ms) gets its
// response headers at once, its first token FIRST ms after the request ended, then one token every
// GAP ms; the events that carry no token follow the previous one at once. Streams report usage
// (OpenAI with stream_options.include_usage, Anthropic, Ollama, TGI details, responses).
//
// Routes (POST unless said):
//   /v1/chat/completions     OpenAI; "stream": true -> SSE chunks; model "does-not-exist" -> 404;
//                            no "messages" -> 400
//   /v1/completions /v1/embeddings /v1/responses   OpenAI-shaped JSON
//   /v1/messages             Anthropic; "stream": true -> SSE events
//   /api/chat /api/generate  Ollama; NDJSON unless "stream": false
//   /v2/models/{m}[/versions/{v}]/infer              KServe v2 JSON
//   /v2/models/{m}[/versions/{v}]/generate[_stream]  Triton generate (SSE for _stream)
//   /generate /generate_stream                       TGI
//   /inference.GRPCInferenceService/ModelInfer       gRPC unary; model "missing" -> grpc-status 5
//   /inference.GRPCInferenceService/ModelStreamInfer gRPC bidi: one response per request message
//   GET /v1/models, GET /healthz
//   anything else -> 404
'use strict';

const http = require('http');
const http2 = require('http2');
const grpcpb = require('./grpc_pb.js');

function parseArgs(argv) {
  const a = { host: '0.0.0.0', h2c: 0, h1: 0, log: '' };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--host') a.host = v;
    else if (k === '--h2c') a.h2c = Number(v);
    else if (k === '--h1') a.h1 = Number(v);
    else if (k === '--log') a.log = v;
    else { process.stderr.write(`server.js: unknown argument ${k}\n`); process.exit(2); }
  }
  return a;
}

const CREATED = 1700000000;
let seq = 0;

function words(n) {
  const w = ['The', 'quick', 'brown', 'fox', 'jumps', 'over', 'the', 'lazy', 'dog', 'again.'];
  const out = [];
  for (let i = 0; i < n; i++) out.push(w[i % w.length]);
  return out;
}

// A transport-neutral reply: {status, headers, body} or {status, headers, chunks[]} (streamed).
function json(status, obj) {
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(obj) };
}
// tok[i]: chunk i carries one token (timed streaming paces those); usage: the figures it reports.
function streamed(contentType, chunks, tok, usage) {
  return { status: 200, headers: { 'content-type': contentType, 'cache-control': 'no-cache' }, chunks,
    tok: tok || chunks.map(() => false), usage: usage || null };
}
const PROMPT_TOKENS = 9;

function sse(events) { return events.map((e) => 'data: ' + JSON.stringify(e) + '\n\n'); }

function route(method, fullPath, bodyBuf) {
  const path = fullPath.split('?')[0];
  if (method === 'GET' || method === 'HEAD') {
    if (path === '/healthz') return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'ok\n' };
    if (path === '/v1/models') {
      return json(200, { object: 'list', data: ['gpt-4o', 'llama3.1:8b', 'claude-3-5-sonnet']
        .map((id) => ({ id, object: 'model', created: CREATED, owned_by: 'aiqos-corpus' })) });
    }
    return json(404, { error: { message: `no route for ${method} ${path}` } });
  }
  if (method !== 'POST') return json(405, { error: { message: 'method not allowed' } });

  let req = {};
  const text = bodyBuf.toString('utf8');
  if (text.length) {
    try { req = JSON.parse(text); } catch (e) { return json(400, { error: { message: 'invalid JSON body' } }); }
  }
  const model = typeof req.model === 'string' ? req.model : 'unknown';
  const id = `aiqos-${++seq}`;
  const toks = words(Number.isInteger(req.max_tokens) ? Math.min(Math.max(req.max_tokens, 1), 64) : 8);

  if (path === '/v1/chat/completions' || path.endsWith('/v1/chat/completions')) {
    if (model === 'does-not-exist') {
      return json(404, { error: { message: `The model '${model}' does not exist`, type: 'invalid_request_error', code: 'model_not_found' } });
    }
    if (!Array.isArray(req.messages)) return json(400, { error: { message: "'messages' is required" } });
    if (req.stream === true) {
      const ev = [{ id, object: 'chat.completion.chunk', created: CREATED, model, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }];
      toks.forEach((t, i) => ev.push({ id, object: 'chat.completion.chunk', created: CREATED, model, choices: [{ index: 0, delta: { content: (i ? ' ' : '') + t }, finish_reason: null }] }));
      ev.push({ id, object: 'chat.completion.chunk', created: CREATED, model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
      const tok = ev.map((_, i) => i > 0 && i <= toks.length);
      let usage = null;
      if (req.stream_options && req.stream_options.include_usage === true) {
        usage = { prompt_tokens: PROMPT_TOKENS, completion_tokens: toks.length, total_tokens: PROMPT_TOKENS + toks.length };
        ev.push({ id, object: 'chat.completion.chunk', created: CREATED, model, choices: [], usage });
        tok.push(false);
        usage = { input: PROMPT_TOKENS, output: toks.length };
      }
      return streamed('text/event-stream', sse(ev).concat(['data: [DONE]\n\n']), tok.concat([false]), usage);
    }
    return json(200, { id: 'chatcmpl-' + id, object: 'chat.completion', created: CREATED, model,
      choices: [{ index: 0, message: { role: 'assistant', content: toks.join(' ') }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 9, completion_tokens: toks.length, total_tokens: 9 + toks.length } });
  }
  if (path === '/v1/completions') {
    if (req.stream === true) {
      const ev = toks.map((t) => ({ id, object: 'text_completion', created: CREATED, model, choices: [{ index: 0, text: ' ' + t, finish_reason: null }] }));
      return streamed('text/event-stream', sse(ev).concat(['data: [DONE]\n\n']), ev.map(() => true).concat([false]));
    }
    return json(200, { id: 'cmpl-' + id, object: 'text_completion', created: CREATED, model,
      choices: [{ index: 0, text: toks.join(' '), finish_reason: 'length' }] });
  }
  if (path === '/v1/embeddings') {
    const inputs = Array.isArray(req.input) ? req.input : [req.input || ''];
    return json(200, { object: 'list', model, usage: { prompt_tokens: inputs.length, total_tokens: inputs.length },
      data: inputs.map((_, index) => ({ object: 'embedding', index, embedding: [0.0123, -0.0456, 0.0789, 0.1011] })) });
  }
  if (path === '/v1/responses') {
    if (req.stream === true) {
      const ev = [{ type: 'response.created', response: { id: 'resp_' + id, object: 'response', model, status: 'in_progress', usage: null } }];
      toks.forEach((t, i) => ev.push({ type: 'response.output_text.delta', item_id: 'msg_' + id, output_index: 0, content_index: 0, delta: (i ? ' ' : '') + t }));
      ev.push({ type: 'response.completed', response: { id: 'resp_' + id, object: 'response', model, status: 'completed',
        usage: { input_tokens: PROMPT_TOKENS, output_tokens: toks.length, total_tokens: PROMPT_TOKENS + toks.length } } });
      const chunks = ev.map((e) => 'event: ' + e.type + '\ndata: ' + JSON.stringify(e) + '\n\n');
      return streamed('text/event-stream', chunks, ev.map((_, i) => i > 0 && i <= toks.length), { input: PROMPT_TOKENS, output: toks.length });
    }
    return json(200, { id: 'resp_' + id, object: 'response', created_at: CREATED, model, status: 'completed',
      output: [{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: toks.join(' ') }] }] });
  }
  if (path === '/v1/messages') {
    if (req.stream === true) {
      const ev = ['event: message_start\ndata: ' + JSON.stringify({ type: 'message_start', message: { id: 'msg_' + id, model, role: 'assistant', content: [], usage: { input_tokens: PROMPT_TOKENS, output_tokens: 1 } } }) + '\n\n'];
      toks.forEach((t) => ev.push('event: content_block_delta\ndata: ' + JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: ' ' + t } }) + '\n\n'));
      ev.push('event: message_delta\ndata: ' + JSON.stringify({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: toks.length } }) + '\n\n');
      ev.push('event: message_stop\ndata: {"type":"message_stop"}\n\n');
      return streamed('text/event-stream', ev, ev.map((_, i) => i > 0 && i <= toks.length), { input: PROMPT_TOKENS, output: toks.length });
    }
    return json(200, { id: 'msg_' + id, type: 'message', role: 'assistant', model,
      content: [{ type: 'text', text: toks.join(' ') }], stop_reason: 'end_turn',
      usage: { input_tokens: 9, output_tokens: toks.length } });
  }
  if (path === '/api/chat' || path === '/api/generate') {
    const chat = path === '/api/chat';
    const piece = (t, done) => JSON.stringify(Object.assign({ model, created_at: '2024-01-01T00:00:00Z', done },
      chat ? { message: { role: 'assistant', content: t } } : { response: t })) + '\n';
    if (req.stream === false) return { status: 200, headers: { 'content-type': 'application/json' }, body: piece(toks.join(' '), true).trim() };
    const last = JSON.stringify(Object.assign(JSON.parse(piece('', true)), { done_reason: 'stop', prompt_eval_count: PROMPT_TOKENS, eval_count: toks.length })) + '\n';
    return streamed('application/x-ndjson', toks.map((t) => piece(t + ' ', false)).concat([last]),
      toks.map(() => true).concat([false]), { input: PROMPT_TOKENS, output: toks.length });
  }
  let m = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?\/(infer|generate|generate_stream)$/.exec(path);
  if (m) {
    const name = decodeURIComponent(m[1]);
    if (m[3] === 'infer') {
      return json(200, { model_name: name, model_version: m[2] || '1', id: req.id || id,
        outputs: [{ name: 'OUTPUT0', datatype: 'FP32', shape: [1, 4], data: [0.1, 0.2, 0.3, 0.4] }] });
    }
    if (m[3] === 'generate') return json(200, { model_name: name, model_version: m[2] || '1', text_output: toks.join(' ') });
    return streamed('text/event-stream', sse(toks.map((t) => ({ model_name: name, model_version: m[2] || '1', text_output: t }))), toks.map(() => true));
  }
  if (path === '/generate') return json(200, { generated_text: toks.join(' ') });
  if (path === '/generate_stream') {
    const ev = toks.map((t, i) => ({ index: i, token: { id: i, text: ' ' + t, logprob: -0.1, special: false }, generated_text: null, details: null }));
    ev[ev.length - 1].generated_text = toks.join(' ');
    ev[ev.length - 1].details = { finish_reason: 'length', generated_tokens: toks.length, seed: null };
    return streamed('text/event-stream', sse(ev), toks.map(() => true), { output: toks.length });
  }
  return json(404, { error: { message: `no route for POST ${path}` } });
}

// ---- Sending a streamed reply ----

let LOG = '';
const fs = require('fs');

function parseTiming(v) {
  const m = /^(\d+)\/(\d+)$/.exec(String(v || ''));
  return m ? { first: BigInt(m[1]) * 1000000n, gap: BigInt(m[2]) * 1000000n } : null;
}

// Writes r.chunks one per tick, or, when timed, the token chunks at their due times (from the
// request's end: first, then gap after the previous token as actually sent). A timed reply is
// logged: when its tokens really left, and the figures its stream reports.
function sendChunks(r, io, timing, reqEnd, meta) {
  const times = [];
  let i = 0;
  const due = () => {
    if (!timing || !r.tok[i]) return 0;
    const at = times.length ? times[times.length - 1] + timing.gap : reqEnd + timing.first;
    return Number(at - process.hrtime.bigint()) / 1e6;
  };
  const next = () => {
    if (io.gone()) return;
    if (i === r.chunks.length) {
      io.end();
      if (timing && LOG && times.length) {
        const ms = (a, b) => Number(b - a) / 1e6;
        const n = times.length;
        fs.appendFileSync(LOG, JSON.stringify(Object.assign({
          sport: meta.port, stream_id: meta.stream, path: meta.path, tokens_sent: n,
          ttft_ms: ms(reqEnd, times[0]), tpot_ms: n > 1 ? ms(times[0], times[n - 1]) / (n - 1) : null,
        }, r.usage ? { usage: r.usage } : {})) + '\n');
      }
      return;
    }
    if (r.tok[i]) times.push(process.hrtime.bigint());
    io.write(r.chunks[i++]);
    const d = due();
    if (d > 0) setTimeout(next, d); else setImmediate(next);
  };
  const d = due();
  if (d > 0) setTimeout(next, d); else next();
}

// ---- HTTP/2 (REST + gRPC) ----

function h2Reply(stream, r, timing, reqEnd) {
  const headers = Object.assign({ ':status': r.status }, r.headers);
  if (r.body !== undefined) {
    headers['content-length'] = Buffer.byteLength(r.body);
    stream.respond(headers);
    stream.end(r.body);
    return;
  }
  stream.respond(headers);
  // One chunk per tick (or per due time) so streamed answers really are several DATA frames.
  sendChunks(r, { gone: () => stream.destroyed, write: (c) => stream.write(c), end: () => stream.end() }, timing, reqEnd,
    { port: stream.session && stream.session.socket ? stream.session.socket.remotePort : null, stream: stream.id, path: null });
}

function grpcStream(stream, path) {
  const unary = path.endsWith('/ModelInfer');
  let buf = Buffer.alloc(0);
  let responded = false;
  let status = 0;
  const respond = () => {
    if (responded) return;
    responded = true;
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  };
  stream.on('wantTrailers', () => {
    const t = { 'grpc-status': String(status) };
    if (status) t['grpc-message'] = 'model not found';
    stream.sendTrailers(t);
  });
  stream.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const msg = grpcpb.takeMessage(buf);
      if (!msg) break;
      buf = msg.rest;
      const req = grpcpb.decodeModelInferRequest(msg.body);
      if (unary) {
        if (req.model_name === 'missing') { status = 5; continue; }
        respond();
        stream.write(grpcpb.frame(grpcpb.encodeModelInferResponse(req)));
      } else {
        respond();
        stream.write(grpcpb.frame(grpcpb.encodeModelStreamInferResponse(req)));
      }
    }
  });
  stream.on('end', () => {
    if (status && !responded) {
      // Trailers-only response, as grpc servers send for an early error.
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(status),
        'grpc-message': 'model not found' }, { endStream: true });
      return;
    }
    respond();
    stream.end();
  });
}

function startH2c(host, port) {
  const server = http2.createServer({ settings: { maxConcurrentStreams: 256 }, maxSessionMemory: 64 });
  server.on('sessionError', () => {});
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const method = headers[':method'];
    const path = headers[':path'] || '/';
    if (method === 'POST' && String(headers['content-type'] || '').startsWith('application/grpc')) {
      grpcStream(stream, path.split('?')[0]);
      return;
    }
    const parts = [];
    stream.on('data', (d) => parts.push(d));
    stream.on('end', () => {
      const reqEnd = process.hrtime.bigint();
      if (!stream.destroyed) h2Reply(stream, route(method, path, Buffer.concat(parts)), parseTiming(headers['x-aiqos-timing']), reqEnd);
    });
  });
  server.listen(port, host, () => process.stdout.write(`h2c listening on ${host}:${port}\n`));
  return server;
}

// ---- HTTP/1.1 ----

function startH1(host, port) {
  const server = http.createServer({ keepAliveTimeout: 30000 }, (req, res) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      const reqEnd = process.hrtime.bigint();
      const r = route(req.method, req.url, Buffer.concat(parts));
      if (r.body !== undefined) {
        res.writeHead(r.status, Object.assign({ 'content-length': Buffer.byteLength(r.body) }, r.headers));
        res.end(r.body);
        return;
      }
      res.writeHead(r.status, r.headers); // chunked transfer coding
      const timing = parseTiming(req.headers['x-aiqos-timing']);
      if (timing) res.flushHeaders(); // the headers at once, as streaming servers do
      sendChunks(r, { gone: () => res.destroyed, write: (c) => res.write(c), end: () => res.end() }, timing, reqEnd,
        { port: req.socket.remotePort, stream: null, path: req.url });
    });
  });
  server.listen(port, host, () => process.stdout.write(`h1 listening on ${host}:${port}\n`));
  return server;
}

const args = parseArgs(process.argv);
LOG = args.log;
const servers = [];
if (args.h2c) servers.push(startH2c(args.host, args.h2c));
if (args.h1) servers.push(startH1(args.host, args.h1));
if (!servers.length) { process.stderr.write('server.js: give --h2c PORT and/or --h1 PORT\n'); process.exit(2); }
const stop = () => { servers.forEach((s) => s.close()); setTimeout(() => process.exit(0), 300).unref(); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
