// tests/e2e/qos_test.sh (e), order: N h2c connections, each a batch download and, DELAY ms later,
// an interactive one on the same connection (curl -Z cannot multiplex with h2 prior knowledge in
// 7.88). usage: node order_client.js HOST PORT N LOCAL_PORT0 BYTES DELAY_MS; prints one line per
// connection: "ok" or what went wrong.
const http2 = require('http2');
const net = require('net');
const [host, port, n, port0, bytes, delay] = process.argv.slice(2).map((v, i) => (i === 0 ? v : Number(v)));
function get(s, path, cls) {
  return new Promise((resolve) => {
    const r = s.request({ ':path': path, 'x-class': cls });
    let len = 0, status = 0;
    r.on('response', (h) => { status = h[':status']; });
    r.on('data', (d) => { len += d.length; });
    r.on('end', () => resolve(`${status}/${len}`));
    r.on('error', (e) => resolve(`error ${e.code}`));
    r.end();
  });
}
async function one(k) {
  const s = http2.connect(`http://${host}:${port}`, {
    createConnection: () => net.connect({ host, port, localPort: port0 + k }),
  });
  s.on('error', () => {});
  const a = get(s, `/download/${bytes}`, 'batch');
  await new Promise((r) => setTimeout(r, delay));
  const b = get(s, '/download/3000', 'interactive');
  const res = await Promise.all([a, b]);
  s.close();
  return res[0] === `200/${bytes}` && res[1] === '200/3000' ? 'ok' : `bad ${res.join(' ')}`;
}
(async () => {
  const timer = setTimeout(() => { console.log('timeout'); process.exit(1); }, 30000);
  for (let k = 0; k < n; k++) console.log(await one(k));
  clearTimeout(timer);
})();
