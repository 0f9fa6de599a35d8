#!/usr/bin/env node
// Node clients for the pcap corpus (tests/pcap/capture/make_corpus.sh). Each mode sends real
// requests to server.js and appends one JSON line per request to --out: what the client sent and
// what it got back (the corpus's expected.jsonl; field meanings in tests/pcap/README.md).
//
// usage: client.js --mode MODE --host ADDR --port PORT --out FILE [--vlan N]
//   multiplex   one h2c connection, 72 concurrent requests over many APIs (HPACK reuse, SSE,
//               model after a long messages array, decoy "model" keys, a CONTINUATION header)
//   grpc        one h2c connection: ModelInfer with model_name first/middle/last, a large one,
//               an unknown model (grpc-status 5), and a ModelStreamInfer bidi stream
//   kserve      one h2c connection with padded frames: KServe v2 / Triton / TGI
//   big         one h2c connection: 100 KB body with the model last, 30 KB with it first
//   vlan        one h2c connection, a few requests (run over the VLAN addresses)
//   pipeline    HTTP/1.1 on one socket, three requests written before any answer (pipelining)
'use strict';

const fs = require('fs');
const http2 = require('http2');
const net = require('net');
const grpcpb = require('./grpc_pb.js');

function parseArgs(argv) {
  const a = { mode: '', host: '198.18.0.2', port: 8080, out: '', vlan: 0 };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    if (!(k in a)) { process.stderr.write(`client.js: unknown argument ${argv[i]}\n`); process.exit(2); }
    a[k] = typeof a[k] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!a.mode || !a.out) { process.stderr.write('client.js: --mode and --out are required\n'); process.exit(2); }
  return a;
}
const args = parseArgs(process.argv);

// Every request must finish well within this, or the capture is not worth keeping.
setTimeout(() => { process.stderr.write(`client.js ${args.mode}: timed out\n`); process.exit(3); }, 30000).unref();

const records = [];
function emit(rec) { records.push(rec); }
function flush() { fs.appendFileSync(args.out, records.map((r) => JSON.stringify(r) + '\n').join('')); }

// ---- request bodies ----

const LOREM = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor ' +
  'incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation. ';

// A messages array of about `bytes` bytes of JSON, with strings that look like keys.
function longMessages(bytes, tag) {
  const msgs = [{ role: 'system', content: 'You are a helpful assistant. Answer as {"model": "decoy-in-string"} would.' }];
  let n = 0;
  while (JSON.stringify(msgs).length < bytes) {
    msgs.push({ role: n % 2 ? 'assistant' : 'user',
      content: `[${tag} #${n}] Which "model" are you? \\ ${LOREM}${LOREM.slice(0, (n * 37) % LOREM.length)}` });
    n++;
  }
  return msgs;
}

const MODELS = ['gpt-4o', 'gpt-4o-mini', 'o3-mini', 'llama3.1:8b', 'meta-llama/Llama-3.1-70B-Instruct',
  'claude-3-5-sonnet-20241022', 'mistral-large-latest', 'qwen2.5:7b-instruct-q4_K_M', 'deepseek-r1:14b',
  'gpt-4.1-nano', 'text-embedding-3-small', 'nomic-embed-text'];
const TENANTS = ['acme', 'globex', 'initech'];

// ---- HTTP/2 ----

function connectH2(opts) {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`http://${args.host}:${args.port}`, opts || {});
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

// spec: {method, path, headers, body (Buffer|string|undefined), endpoint, model, model_source, proto}
function h2request(session, spec) {
  return new Promise((resolve, reject) => {
    const headers = Object.assign({ ':method': spec.method, ':path': spec.path }, spec.headers || {});
    const body = spec.body === undefined ? null : Buffer.from(spec.body);
    const st = session.request(headers, { endStream: body === null });
    let status = null;
    let grpcStatus = null;
    let respBytes = 0;
    st.on('response', (h) => {
      status = h[':status'];
      if (h['grpc-status'] !== undefined) grpcStatus = Number(h['grpc-status']);
    });
    st.on('trailers', (h) => { if (h['grpc-status'] !== undefined) grpcStatus = Number(h['grpc-status']); });
    st.on('data', (d) => { respBytes += d.length; });
    st.on('error', reject);
    st.on('close', () => {
      const rec = {
        proto: spec.proto || 'h2',
        src: session.socket.localAddress, dst: session.socket.remoteAddress,
        sport: session.socket.localPort, dport: session.socket.remotePort, vlan: args.vlan,
        stream_id: st.id,
        method: spec.method, authority: st.sentHeaders[':authority'], path: spec.path,
        endpoint: spec.endpoint, model: spec.model === undefined ? null : spec.model,
        model_source: spec.model_source === undefined ? (spec.model ? 'body' : null) : spec.model_source,
        tenant: headers['x-tenant'] === undefined ? null : headers['x-tenant'],
        status, req_bytes: body ? body.length : 0, resp_bytes: respBytes,
      };
      if (rec.proto === 'grpc') rec.grpc_status = grpcStatus;
      if (status === null) reject(new Error(`no response for ${spec.path}`));
      else resolve(rec);
    });
    if (spec.write) spec.write(st);
    else if (body) st.end(body);
  });
}

function closeH2(session) {
  return new Promise((resolve) => session.close(resolve));
}

function commonHeaders(i) {
  const h = {
    'content-type': 'application/json',
    'user-agent': 'OpenAI/Python 1.54.4',
    'accept': 'application/json',
    'x-stainless-lang': 'python',
    'x-stainless-package-version': '1.54.4',
    'x-stainless-runtime': 'CPython',
    'x-stainless-runtime-version': '3.12.7',
    'authorization': `Bearer sk-aiqos-corpus-${TENANTS[i % 3]}-0123456789abcdefghijklmnopqrstuvwxyz`,
    // Unique per request: new dynamic-table entries that push old ones out.
    'x-request-id': `req-${String(i).padStart(4, '0')}-${'abcdef0123456789'.repeat(3).slice(i % 16, 16 + (i % 16))}`,
  };
  if (i % 7 !== 0) h['x-tenant'] = TENANTS[i % 3];
  return h;
}

async function modeMultiplex() {
  const session = await connectH2();
  const specs = [];
  for (let i = 0; i < 72; i++) {
    const model = MODELS[i % MODELS.length];
    const h = commonHeaders(i);
    const kind = i % 12;
    let s;
    if (kind === 0) {
      s = { path: '/v1/chat/completions', endpoint: 'chat_completions', model,
        body: JSON.stringify({ model, messages: [{ role: 'user', content: `Say hi #${i}` }], max_tokens: 8 }) };
    } else if (kind === 1) {
      s = { path: '/v1/chat/completions', endpoint: 'chat_completions', model,
        body: JSON.stringify({ model, stream: true, stream_options: { include_usage: true },
          messages: [{ role: 'user', content: `Stream a story #${i}` }], max_tokens: 12 }) };
      h.accept = 'text/event-stream';
    } else if (kind === 2) {
      s = { path: '/v1/chat/completions', endpoint: 'chat_completions', model,
        body: JSON.stringify({ messages: longMessages(3000 + 500 * (i % 5), `mux${i}`), temperature: 0.2,
          stream: i % 24 === 2, model }) };
    } else if (kind === 3) {
      s = { path: '/v1/completions', endpoint: 'completions', model,
        body: JSON.stringify({ prompt: `Once upon a time #${i}`, max_tokens: 6, model, stream: i % 2 === 1 }) };
    } else if (kind === 4) {
      s = { path: '/v1/embeddings', endpoint: 'embeddings', model: 'text-embedding-3-small',
        body: JSON.stringify({ input: [`embed me #${i}`, 'and me'], model: 'text-embedding-3-small', encoding_format: 'float' }) };
    } else if (kind === 5) {
      s = { path: '/v1/responses', endpoint: 'responses', model,
        body: JSON.stringify({ model, input: `Responses API #${i}`, metadata: { model: 'decoy-in-metadata' } }) };
    } else if (kind === 6) {
      s = { path: '/v1/messages', endpoint: 'anthropic_messages', model: 'claude-3-5-sonnet-20241022',
        body: JSON.stringify({ max_tokens: 64, system: [{ type: 'text', text: 'be brief', model: 'decoy-nested' }],
          messages: [{ role: 'user', content: `Hello Claude #${i}` }], model: 'claude-3-5-sonnet-20241022', stream: i % 24 === 6 }) };
      delete h.authorization;
      h['x-api-key'] = 'sk-ant-aiqos-corpus';
      h['anthropic-version'] = '2023-06-01';
    } else if (kind === 7) {
      s = { path: '/api/chat', endpoint: 'ollama_chat', model: 'llama3.1:8b',
        body: JSON.stringify({ model: 'llama3.1:8b', messages: [{ role: 'user', content: `ollama #${i}` }] }) };
    } else if (kind === 8) {
      s = { path: '/api/generate', endpoint: 'ollama_generate', model: 'qwen2.5:7b-instruct-q4_K_M',
        body: JSON.stringify({ model: 'qwen2.5:7b-instruct-q4_K_M', prompt: `generate #${i}`, stream: false, options: { num_predict: 8 } }) };
    } else if (kind === 9) {
      s = { path: `/v2/models/resnet50/versions/${1 + (i % 3)}/infer`, endpoint: 'kserve_infer', model: 'resnet50', model_source: 'path',
        body: JSON.stringify({ id: `r${i}`, inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }) };
    } else if (kind === 10) {
      // "model" keys at depth > 0 before the top-level one; pretty-printed on every other turn.
      const obj = { metadata: { model: 'decoy-nested', user: 'u1' }, tools: [{ type: 'function', function: { name: 'f', parameters: { model: { type: 'string' } } } }],
        messages: [{ role: 'user', content: 'model: decoy' }], model };
      s = { path: '/v1/chat/completions', endpoint: 'chat_completions', model,
        body: i % 24 === 10 ? JSON.stringify(obj, null, 2) : JSON.stringify(obj) };
    } else {
      const v = Math.floor(i / 12) % 6;
      if (v === 0) {
        s = { path: '/v1/unknown', endpoint: 'other', model: null, model_source: null,
          body: JSON.stringify({ prompt: 'no such API' }) };
      } else if (v === 1) {
        s = { method: 'GET', path: '/v1/models', endpoint: 'other', model: null, model_source: null };
        delete h['content-type'];
      } else if (v === 2) {
        s = { path: '/v1/chat/completions', endpoint: 'chat_completions', model: 'does-not-exist',
          body: JSON.stringify({ model: 'does-not-exist', messages: [{ role: 'user', content: 'hi' }] }) };
      } else if (v === 3) {
        s = { path: '/v1/chat/completions?api-version=2024-10-21', endpoint: 'chat_completions', model: 'gpt-4o',
          body: JSON.stringify({ model: 'gpt-4o' }) }; // no messages: 400
      } else if (v === 4) {
        // A serializer that escapes '/', as PHP's json_encode does by default.
        s = { path: '/v1/chat/completions', endpoint: 'chat_completions', model: 'meta-llama/Llama-3.1-8B-Instruct',
          body: '{"model":"meta-llama\\/Llama-3.1-8B-Instruct","messages":[{"role":"user","content":"escaped slash"}]}' };
      } else {
        // A header block larger than one frame: HEADERS + CONTINUATION.
        h.cookie = 'session=' + 'c0ffee'.repeat(5000); // > 16 KiB even after Huffman coding
        s = { path: '/v1/chat/completions', endpoint: 'chat_completions', model,
          body: JSON.stringify({ model, messages: [{ role: 'user', content: 'big headers' }] }) };
      }
    }
    s.method = s.method || 'POST';
    s.headers = h;
    specs.push(s);
  }
  // All requests are started before any answer comes back: one connection, 72 open streams.
  const recs = await Promise.all(specs.map((s) => h2request(session, s)));
  recs.sort((a, b) => a.stream_id - b.stream_id).forEach(emit);
  await closeH2(session);
}

const GRPC_HEADERS = {
  'content-type': 'application/grpc',
  'te': 'trailers',
  'user-agent': 'grpc-python/1.66.2 grpc-c/43.0.0 (linux; chttp2)',
  'grpc-accept-encoding': 'identity, deflate, gzip',
  'grpc-timeout': '30S',
};

function rawBytes(n, seed) {
  const b = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
}

async function modeGrpc() {
  const session = await connectH2();
  const unary = [
    { model: 'resnet50', order: ['model_name', 'model_version', 'id', 'inputs', 'raw'], raw: 64 },
    { model: 'bert-large-uncased', order: ['id', 'inputs', 'model_name', 'model_version', 'raw'], raw: 96 },
    { model: 'yolo_v8/ensemble', order: ['model_version', 'id', 'inputs', 'raw', 'model_name'], raw: 128 },
    { model: 'llama-3-8b-trtllm', order: ['id', 'inputs', 'raw', 'model_version', 'model_name'], raw: 24000 },
    { model: 'missing', order: ['model_name', 'id', 'inputs'], raw: 8, grpcStatus: 5 },
  ];
  const specs = unary.map((u, k) => {
    const msg = grpcpb.encodeModelInferRequest({ model_name: u.model, model_version: String(1 + k), id: `req-${k}`,
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, u.raw / 4] }], raw: [rawBytes(u.raw, k + 1)] }, u.order);
    return { proto: 'grpc', method: 'POST', path: '/inference.GRPCInferenceService/ModelInfer', headers: GRPC_HEADERS,
      body: grpcpb.frame(msg), endpoint: 'grpc_model_infer', model: u.model, model_source: 'grpc' };
  });
  // Bidi streaming: four messages for one model, written 20 ms apart, each answered as it comes.
  const msgs = [0, 1, 2, 3].map((k) => grpcpb.frame(grpcpb.encodeModelInferRequest({ model_name: 'whisper_streaming',
    model_version: '', id: `chunk-${k}`, inputs: [{ name: 'AUDIO', datatype: 'BYTES', shape: [1, 200] }],
    raw: [rawBytes(800, 100 + k)] }, k === 0 ? ['id', 'inputs', 'raw', 'model_name'] : undefined)));
  const streamBody = Buffer.concat(msgs);
  specs.push({ proto: 'grpc', method: 'POST', path: '/inference.GRPCInferenceService/ModelStreamInfer', headers: GRPC_HEADERS,
    body: streamBody, endpoint: 'grpc_model_infer', model: 'whisper_streaming', model_source: 'grpc',
    write: (st) => {
      let k = 0;
      const next = () => {
        if (k === msgs.length) { st.end(); return; }
        st.write(msgs[k++]);
        setTimeout(next, 20);
      };
      next();
    } });
  const recs = await Promise.all(specs.map((s) => h2request(session, s)));
  recs.sort((a, b) => a.stream_id - b.stream_id).forEach(emit);
  await closeH2(session);
}

async function modeKserve() {
  const session = await connectH2({ paddingStrategy: http2.constants.PADDING_STRATEGY_ALIGNED });
  const h = { 'content-type': 'application/json', 'user-agent': 'tritonclient/2.51.0' };
  const specs = [
    { path: '/v2/models/resnet50/infer', endpoint: 'kserve_infer', model: 'resnet50', model_source: 'path',
      body: JSON.stringify({ id: '1', inputs: [{ name: 'INPUT0', shape: [1, 3, 2, 2], datatype: 'FP32', data: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] }] }) },
    { path: '/v2/models/llama/versions/2/generate', endpoint: 'triton_generate', model: 'llama', model_source: 'path',
      body: JSON.stringify({ text_input: 'What is Triton?', parameters: { max_tokens: 8, stream: false } }) },
    { path: '/v2/models/ensemble%5Fv1/infer', endpoint: 'kserve_infer', model: 'ensemble_v1', model_source: 'path',
      body: JSON.stringify({ inputs: [{ name: 'TEXT', shape: [1], datatype: 'BYTES', data: ['hello'] }], model: 'decoy-body' }) },
    { path: '/v2/models/llama/generate_stream', endpoint: 'triton_generate', model: 'llama', model_source: 'path',
      body: JSON.stringify({ text_input: 'Stream please', parameters: { max_tokens: 6 } }) },
    { path: '/generate', endpoint: 'tgi_generate', model: null, model_source: null,
      body: JSON.stringify({ inputs: 'What is Deep Learning?', parameters: { max_new_tokens: 8 } }) },
    { path: '/generate_stream', endpoint: 'tgi_generate', model: null, model_source: null,
      body: JSON.stringify({ inputs: 'Stream it', parameters: { max_new_tokens: 5 } }) },
    { method: 'GET', path: '/v2/models/resnet50', endpoint: 'other', model: null, model_source: null },
  ].map((s) => Object.assign({ method: 'POST', headers: h }, s));
  const recs = [];
  for (const s of specs) recs.push(await h2request(session, s)); // one at a time, in order
  recs.forEach(emit);
  await closeH2(session);
}

async function modeBig() {
  const session = await connectH2();
  const h = { 'content-type': 'application/json', 'user-agent': 'aiqos-corpus/1.0', 'x-tenant': 'bigco' };
  const after = JSON.stringify({ messages: longMessages(100 * 1024, 'big-after'), max_tokens: 4, model: 'gpt-4o-2024-08-06' });
  const before = JSON.stringify({ model: 'llama3.1:70b', messages: longMessages(30 * 1024, 'big-before'), max_tokens: 4 });
  emit(await h2request(session, { method: 'POST', path: '/v1/chat/completions', headers: h, body: after,
    endpoint: 'chat_completions', model: 'gpt-4o-2024-08-06' }));
  emit(await h2request(session, { method: 'POST', path: '/api/chat', headers: h, body: before,
    endpoint: 'ollama_chat', model: 'llama3.1:70b' }));
  await closeH2(session);
}

async function modeVlan() {
  const session = await connectH2();
  const specs = [0, 1, 2].map((i) => ({ method: 'POST', path: ['/v1/chat/completions', '/v1/embeddings', '/api/generate'][i],
    endpoint: ['chat_completions', 'embeddings', 'ollama_generate'][i], model: ['gpt-4o-mini', 'nomic-embed-text', 'phi3:mini'][i],
    headers: Object.assign(commonHeaders(i + 1), { 'x-tenant': 'vlan100' }) }));
  specs[0].body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'over vlan' }], stream: true });
  specs[1].body = JSON.stringify({ model: 'nomic-embed-text', input: 'over vlan' });
  specs[2].body = JSON.stringify({ prompt: 'over vlan', model: 'phi3:mini', stream: false });
  const recs = await Promise.all(specs.map((s) => h2request(session, s)));
  recs.sort((a, b) => a.stream_id - b.stream_id).forEach(emit);
  await closeH2(session);
}

// ---- HTTP/1.1 pipelining on a raw socket ----

function modePipeline() {
  return new Promise((resolve, reject) => {
    const authority = `${args.host}:${args.port}`;
    const reqs = [
      { method: 'POST', path: '/v1/chat/completions', endpoint: 'chat_completions', model: 'gpt-4o',
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'pipelined 1' }] }) },
      { method: 'POST', path: '/api/generate', endpoint: 'ollama_generate', model: 'llama3.2:3b',
        body: JSON.stringify({ prompt: 'pipelined 2', stream: false, model: 'llama3.2:3b' }) },
      { method: 'GET', path: '/v1/models', endpoint: 'other', model: null },
      { method: 'POST', path: '/v1/embeddings', endpoint: 'embeddings', model: 'text-embedding-3-large',
        body: JSON.stringify({ model: 'text-embedding-3-large', input: 'pipelined 4' }) },
    ];
    const sock = net.connect(args.port, args.host);
    let buf = Buffer.alloc(0);
    let k = 0;
    sock.on('connect', () => {
      const wire = reqs.map((r) => {
        const body = r.body ? Buffer.from(r.body) : Buffer.alloc(0);
        let head = `${r.method} ${r.path} HTTP/1.1\r\nHost: ${authority}\r\nUser-Agent: aiqos-pipeline/1.0\r\nAccept: */*\r\nX-Tenant: pipeco\r\n`;
        if (r.body) head += `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n`;
        return Buffer.concat([Buffer.from(head + '\r\n'), body]);
      });
      sock.write(Buffer.concat(wire)); // all four in one write: they share segments
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const status = Number(head.split(' ')[1]);
        const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
        if (!cl) { reject(new Error('pipeline: answer without content-length')); sock.destroy(); return; }
        const n = Number(cl[1]);
        if (buf.length < end + 4 + n) return;
        buf = buf.subarray(end + 4 + n);
        const r = reqs[k++];
        emit({ proto: 'h1', src: sock.localAddress, dst: sock.remoteAddress, sport: sock.localPort, dport: sock.remotePort,
          vlan: args.vlan, stream_id: null, method: r.method, authority, path: r.path, endpoint: r.endpoint, model: r.model,
          model_source: r.model ? 'body' : null, tenant: 'pipeco', status,
          req_bytes: r.body ? Buffer.byteLength(r.body) : 0, resp_bytes: n });
        if (k === reqs.length) { sock.end(); resolve(); return; }
      }
    });
    sock.on('error', reject);
  });
}

const modes = { multiplex: modeMultiplex, grpc: modeGrpc, kserve: modeKserve, big: modeBig, vlan: modeVlan, pipeline: modePipeline };
if (!modes[args.mode]) { process.stderr.write(`client.js: unknown mode ${args.mode}\n`); process.exit(2); }
modes[args.mode]().then(() => {
  flush();
  process.stdout.write(`client.js ${args.mode}: ${records.length} requests\n`);
  // Let the FIN exchange finish before exiting.
  setTimeout(() => process.exit(0), 100);
}, (e) => { process.stderr.write(`client.js ${args.mode}: ${e.stack || e}\n`); process.exit(1); });
