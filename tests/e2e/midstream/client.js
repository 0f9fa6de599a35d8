#!/usr/bin/env node
// Long-lived HTTP/2 clients, as SDKs and gateways hold them: CONNS h2c connections opened once,
// each sending a chat request every PERIOD_MS (model in the JSON body) until DURATION_S is over.
// One JSON line per finished request on stdout:
//   {"conn":i,"sport":P,"stream_id":N,"model":"...","t0":s,"t1":s,"status":200}
// (t0/t1: wall clock in seconds when sent / answered). Used by tests/e2e/midstream_test.sh.
//
// usage: client.js URL CONNS PERIOD_MS DURATION_S
'use strict';
const http2 = require('http2');

const [url, conns, periodMs, durationS] = [process.argv[2], +process.argv[3], +process.argv[4], +process.argv[5]];
const MODELS = ['gpt-4o-mini', 'llama-3.1-8b-instruct', 'mistral-small-latest'];
const end = Date.now() + durationS * 1000;
let open = 0;

function run(i) {
  const session = http2.connect(url);
  session.on('error', (e) => process.stderr.write(`conn ${i}: ${e.message}\n`));
  open++;
  let n = 0;
  const tick = () => {
    if (Date.now() >= end) {
      session.close();
      if (--open === 0) setTimeout(() => process.exit(0), 100);
      return;
    }
    const model = MODELS[(i + n++) % MODELS.length];
    const body = JSON.stringify({
      messages: [{ role: 'user', content: `connection ${i} request ${n}: ${'x'.repeat(40 + (n % 7) * 30)}` }],
      model,  // after the messages, as many SDKs serialise it
      max_tokens: 16,
    });
    const t0 = Date.now() / 1000;
    const req = session.request({
      ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json',
      'x-request-id': `c${i}-r${n}`,
    });
    let status = 0;
    req.on('response', (h) => { status = h[':status']; });
    req.on('data', () => {});
    req.on('end', () => {
      process.stdout.write(JSON.stringify({ conn: i, sport: session.socket.localPort, stream_id: req.id, model,
                                            t0, t1: Date.now() / 1000, status }) + '\n');
    });
    req.on('error', (e) => process.stderr.write(`conn ${i} req ${n}: ${e.message}\n`));
    req.setTimeout(20000, () => req.close(http2.constants.NGHTTP2_CANCEL));
    req.end(body);
    setTimeout(tick, periodMs);
  };
  session.on('connect', tick);
}
for (let i = 0; i < conns; i++) run(i);
setTimeout(() => process.exit(0), (durationS + 30) * 1000).unref();
