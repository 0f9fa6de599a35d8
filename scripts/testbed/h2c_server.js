#!/usr/bin/env node
// Cleartext HTTP/2 (h2c, prior knowledge) server shaped like an LLM inference API.
// Test fixture for aiqos: it runs in the testbed's server namespace, behind aiqosd.
//
//   POST /v1/chat/completions  OpenAI chat.completion; echoes the request's "model";
//                              "stream": true answers as SSE chat.completion.chunk events
//   POST /v1/embeddings        OpenAI embedding list, deterministic vector per input
//   GET  /v1/models            model list
//   GET  /download/<N>         N deterministic bytes (same as `--gen N`)
//   GET  /healthz              "ok"
//
// Usage: h2c_server.js [--host 198.18.0.2] [--port 8080]
//        h2c_server.js --gen N        write the /download/<N> bytes to stdout
//
// nghttpd would also answer POST, but it ignores the request body, so it cannot
// echo the model or stream; this script exists for that.
'use strict';

const http2 = require('http2');
const crypto = require('crypto');

// Deterministic, incompressible byte stream: the AES-128-CTR keystream of a fixed key and IV
// (equivalently, AES-128-CTR encryption of zeros). Fast enough that the server is never the
// bottleneck of a download, and reproducible with `openssl enc -aes-128-ctr -K ... -iv ...`.
const GEN_KEY = Buffer.from('6169716f732d646f776e6c6f61642d31', 'hex'); // "aiqos-download-1"
const GEN_IV = Buffer.alloc(16, 0);
const GEN_BLOCK = 64 * 1024;
function writeGenerated(total, write, done) {
  const cipher = crypto.createCipheriv('aes-128-ctr', GEN_KEY, GEN_IV);
  const zeros = Buffer.alloc(GEN_BLOCK, 0);
  let sent = 0;
  const step = () => {
    while (sent < total) {
      const n = Math.min(GEN_BLOCK, total - sent);
      const buf = cipher.update(n === GEN_BLOCK ? zeros : zeros.subarray(0, n));
      sent += n;
      if (!write(buf, step)) return; // write() arranges for step() to run again on 'drain'
    }
    done();
  };
  step();
}

function parseArgs(argv) {
  const a = { host: '198.18.0.2', port: 8080, gen: null };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--host') { a.host = v; i++; }
    else if (k === '--port') { a.port = Number(v); i++; }
    else if (k === '--gen') { a.gen = Number(v); i++; }
    else if (k === '--help' || k === '-h') {
      process.stdout.write('usage: h2c_server.js [--host ADDR] [--port N] | --gen N\n');
      process.exit(0);
    } else { process.stderr.write(`h2c_server.js: unknown argument ${k}\n`); process.exit(2); }
  }
  return a;
}

const args = parseArgs(process.argv);

if (args.gen !== null) {
  if (!Number.isSafeInteger(args.gen) || args.gen < 0) { process.stderr.write('--gen needs N >= 0\n'); process.exit(2); }
  process.stdout.on('error', () => process.exit(0)); // reader went away (e.g. `| head`)
  writeGenerated(args.gen,
    (buf, again) => process.stdout.write(buf) || (process.stdout.once('drain', again), false),
    () => {});
  return;
}

const MAX_BODY = 1 << 20;
const MAX_DOWNLOAD = 1 << 30;
let seq = 0;

function sendJson(stream, status, obj) {
  const body = JSON.stringify(obj);
  stream.respond({ ':status': status, 'content-type': 'application/json',
                   'content-length': Buffer.byteLength(body) });
  stream.end(body);
}

function words(n) {
  const w = ['The', 'quick', 'brown', 'fox', 'jumps', 'over', 'the', 'lazy', 'dog', 'again.'];
  const out = [];
  for (let i = 0; i < n; i++) out.push(w[i % w.length]);
  return out;
}

function chatCompletion(stream, req) {
  const model = typeof req.model === 'string' ? req.model : 'unknown';
  const id = `chatcmpl-aiqos-${++seq}`;
  const created = 1700000000; // fixed so responses are reproducible
  const maxTokens = Number.isInteger(req.max_tokens) && req.max_tokens > 0 ? Math.min(req.max_tokens, 256) : 16;
  const toks = words(maxTokens);
  if (req.stream === true) {
    stream.respond({ ':status': 200, 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const chunk = (delta, finish) => 'data: ' + JSON.stringify({
      id, object: 'chat.completion.chunk', created, model,
      choices: [{ index: 0, delta, finish_reason: finish }],
    }) + '\n\n';
    stream.write(chunk({ role: 'assistant', content: '' }, null));
    toks.forEach((t, i) => stream.write(chunk({ content: (i ? ' ' : '') + t }, null)));
    stream.write(chunk({}, 'stop'));
    stream.end('data: [DONE]\n\n');
    return;
  }
  const promptTokens = JSON.stringify(req.messages || []).length >> 2;
  sendJson(stream, 200, {
    id, object: 'chat.completion', created, model,
    choices: [{ index: 0, message: { role: 'assistant', content: toks.join(' ') }, finish_reason: 'stop' }],
    usage: { prompt_tokens: promptTokens, completion_tokens: toks.length, total_tokens: promptTokens + toks.length },
  });
}

function embeddings(stream, req) {
  const model = typeof req.model === 'string' ? req.model : 'unknown';
  const inputs = Array.isArray(req.input) ? req.input : [req.input === undefined ? '' : req.input];
  const dim = 8;
  const data = inputs.map((inp, index) => {
    const h = crypto.createHash('sha256').update(String(inp)).digest();
    const embedding = [];
    for (let i = 0; i < dim; i++) embedding.push(Number(((h[i] - 128) / 128).toFixed(6)));
    return { object: 'embedding', index, embedding };
  });
  sendJson(stream, 200, { object: 'list', data, model, usage: { prompt_tokens: inputs.length, total_tokens: inputs.length } });
}

const server = http2.createServer({ settings: { maxConcurrentStreams: 256 } });
server.on('sessionError', () => {});
server.on('stream', (stream, headers) => {
  stream.on('error', () => {});
  const method = headers[':method'];
  const path = (headers[':path'] || '/').split('?')[0];

  if (method === 'GET' || method === 'HEAD') {
    if (path === '/healthz') { stream.respond({ ':status': 200, 'content-type': 'text/plain' }); stream.end('ok\n'); return; }
    if (path === '/v1/models') {
      sendJson(stream, 200, { object: 'list', data: ['gpt-4o', 'llama-3.1-8b-instruct', 'text-embedding-3-small']
        .map((id) => ({ id, object: 'model', created: 1700000000, owned_by: 'aiqos-testbed' })) });
      return;
    }
    const m = /^\/download\/(\d+)$/.exec(path);
    if (m) {
      const n = Number(m[1]);
      if (n > MAX_DOWNLOAD) { sendJson(stream, 413, { error: { message: 'too large' } }); return; }
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': n });
      if (method === 'HEAD') { stream.end(); return; }
      writeGenerated(n, (buf, again) => stream.write(buf) || (stream.once('drain', again), false), () => stream.end());
      return;
    }
    sendJson(stream, 404, { error: { message: `no route for ${method} ${path}` } });
    return;
  }

  if (method !== 'POST') { sendJson(stream, 405, { error: { message: 'method not allowed' } }); return; }
  const parts = [];
  let size = 0;
  stream.on('data', (d) => {
    size += d.length;
    if (size > MAX_BODY) { sendJson(stream, 413, { error: { message: 'body too large' } }); stream.destroy(); return; }
    parts.push(d);
  });
  stream.on('end', () => {
    if (stream.destroyed || stream.headersSent) return;
    let req;
    try { req = JSON.parse(Buffer.concat(parts).toString('utf8') || '{}'); } catch (e) {
      sendJson(stream, 400, { error: { message: 'invalid JSON body', type: 'invalid_request_error' } });
      return;
    }
    if (path === '/v1/chat/completions') chatCompletion(stream, req);
    else if (path === '/v1/embeddings') embeddings(stream, req);
    else sendJson(stream, 404, { error: { message: `no route for POST ${path}` } });
  });
});

const stop = () => server.close(() => process.exit(0)) && setTimeout(() => process.exit(0), 500).unref();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
server.listen(args.port, args.host, () => {
  process.stdout.write(`h2c_server listening on ${args.host}:${args.port}\n`);
});
