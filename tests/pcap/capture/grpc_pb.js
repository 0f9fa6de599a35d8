// Hand-rolled protobuf for the KServe v2 / Triton gRPC messages the pcap corpus needs
// (inference.GRPCInferenceService, grpc_service.proto). Only what the corpus uses; field
// order is the caller's choice so captures can put model_name first, in the middle or last.
'use strict';

function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}

// Length-delimited field (wire type 2): strings, bytes, sub-messages, packed repeated.
function ld(field, payload) {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  return Buffer.concat([varint((field << 3) | 2), varint(p.length), p]);
}

// InferInputTensor: 1 name, 2 datatype, 3 shape (packed int64).
function inputTensor(t) {
  return Buffer.concat([ld(1, t.name), ld(2, t.datatype), ld(3, Buffer.concat(t.shape.map(varint)))]);
}

// ModelInferRequest: 1 model_name, 2 model_version, 3 id, 5 inputs, 7 raw_input_contents.
// `order` lists field names in the order they are written.
function encodeModelInferRequest(r, order) {
  const parts = {
    model_name: () => ld(1, r.model_name),
    model_version: () => ld(2, r.model_version || ''),
    id: () => ld(3, r.id || ''),
    inputs: () => Buffer.concat((r.inputs || []).map((t) => ld(5, inputTensor(t)))),
    raw: () => Buffer.concat((r.raw || []).map((b) => ld(7, b))),
  };
  return Buffer.concat((order || ['model_name', 'model_version', 'id', 'inputs', 'raw']).map((k) => parts[k]()));
}

// Top-level string fields of a message; enough for the server to answer.
function decodeModelInferRequest(buf) {
  const out = { model_name: '', model_version: '', id: '' };
  let i = 0;
  const rv = () => {
    let v = 0n;
    let s = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << s;
      s += 7n;
      if (!(b & 0x80)) return v;
    }
  };
  try {
    while (i < buf.length) {
      const key = Number(rv());
      const field = key >> 3;
      const wt = key & 7;
      if (wt === 0) { rv(); continue; }
      if (wt === 1) { i += 8; continue; }
      if (wt === 5) { i += 4; continue; }
      if (wt !== 2) break;
      const len = Number(rv());
      const v = buf.subarray(i, i + len);
      i += len;
      if (field === 1) out.model_name = v.toString('utf8');
      else if (field === 2) out.model_version = v.toString('utf8');
      else if (field === 3) out.id = v.toString('utf8');
    }
  } catch (e) { /* a partial answer is fine for a test server */ }
  return out;
}

// ModelInferResponse: 1 model_name, 2 model_version, 3 id, 5 outputs, 6 raw_output_contents.
function encodeModelInferResponse(req) {
  const out = Buffer.concat([ld(1, 'OUTPUT0'), ld(2, 'FP32'), ld(3, Buffer.concat([varint(1), varint(4)]))]);
  const raw = Buffer.alloc(16);
  for (let k = 0; k < 4; k++) raw.writeFloatLE(0.25 * (k + 1), 4 * k);
  return Buffer.concat([ld(1, req.model_name), ld(2, req.model_version || '1'), ld(3, req.id), ld(5, out), ld(6, raw)]);
}

// ModelStreamInferResponse: 1 error_message, 2 infer_response.
function encodeModelStreamInferResponse(req) {
  return ld(2, encodeModelInferResponse(req));
}

// gRPC length-prefixed message: 1 byte compressed flag, 4 bytes big-endian length.
function frame(msg) {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(msg.length, 1);
  return Buffer.concat([h, msg]);
}

// One whole message off the front of buf, or null.
function takeMessage(buf) {
  if (buf.length < 5) return null;
  const n = buf.readUInt32BE(1);
  if (buf.length < 5 + n) return null;
  return { body: buf.subarray(5, 5 + n), rest: buf.subarray(5 + n) };
}

module.exports = { encodeModelInferRequest, decodeModelInferRequest, encodeModelInferResponse,
  encodeModelStreamInferResponse, frame, takeMessage };
