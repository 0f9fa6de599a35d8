// Test helpers of the HTTP/2 parser tests: frames, a deflater for header
// blocks, scripted conversations run whole and at every split point.
#pragma once

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "classify/http2.h"
#include "http_test_util.h"

namespace aiqos {
namespace {

using test::append;
using test::Bytes;
using test::bytes_of;
using test::Recorder;
using test::Script;

using Header = std::pair<std::string, std::string>;

constexpr uint8_t kData = 0, kHeaders = 1, kPriority = 2, kRst = 3, kSettings = 4, kPush = 5, kPing = 6,
                  kGoaway = 7, kWindowUpdate = 8, kCont = 9;
constexpr uint8_t kEndStream = 1, kAck = 1, kEndHeaders = 4, kPadded = 8, kPrio = 0x20;

inline Bytes frame(uint8_t type, uint8_t flags, uint32_t stream, const Bytes& payload) {
  Bytes f = {uint8_t(payload.size() >> 16), uint8_t(payload.size() >> 8), uint8_t(payload.size()), type, flags,
             uint8_t(stream >> 24), uint8_t(stream >> 16), uint8_t(stream >> 8), uint8_t(stream)};
  append(f, payload);
  return f;
}

Bytes u32(uint32_t v) { return {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)}; }

inline Bytes settings(std::vector<std::pair<uint16_t, uint32_t>> kv) {
  Bytes p;
  for (auto [k, v] : kv) {
    p.push_back(uint8_t(k >> 8));
    p.push_back(uint8_t(k));
    append(p, u32(v));
  }
  return frame(kSettings, 0, 0, p);
}
inline Bytes settings_ack() { return frame(kSettings, kAck, 0, {}); }

inline Bytes preface() {
  return Bytes(Http2Connection::kPreface.begin(), Http2Connection::kPreface.end());
}

struct Deflater {
  nghttp2_hd_deflater* d = nullptr;
  explicit Deflater(size_t max = 4096) { EXPECT_EQ(nghttp2_hd_deflate_new(&d, max), 0); }
  ~Deflater() { nghttp2_hd_deflate_del(d); }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
  Bytes encode(const std::vector<Header>& hs) {
    std::vector<nghttp2_nv> nva;
    for (const auto& [n, v] : hs)
      nva.push_back({(uint8_t*)n.data(), (uint8_t*)v.data(), n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    Bytes out(nghttp2_hd_deflate_bound(d, nva.data(), nva.size()));
    ssize_t n = nghttp2_hd_deflate_hd(d, out.data(), out.size(), nva.data(), nva.size());
    EXPECT_GE(n, 0);
    out.resize(size_t(n < 0 ? 0 : n));
    return out;
  }
};

inline Http2Config test_config() {
  Http2Config c;
  EXPECT_TRUE(c.capture.extra.add("x-tenant"));
  EXPECT_TRUE(c.capture.extra.add("user-agent"));
  return c;
}

struct Outcome {
  std::vector<std::string> ev;
  Http2Stats stats;
  L7Error error = L7Error::none;
};

inline Outcome run(const Script& s, const Http2Config& cfg, const std::vector<size_t>& cuts = {}, size_t step = 0) {
  Recorder r;
  r.n_extra = cfg.capture.extra.size();
  Http2Connection c(cfg, r);
  test::feed_script(s, [&](Dir d, std::span<const uint8_t> b) { c.feed(d, b); }, cuts, step);
  return {r.ev, c.stats(), c.error()};
}

// Checks that two-chunk splits at every offset and one-byte chunks give the
// events of the unsplit script.
inline void expect_split_invariant(const Script& s, const Http2Config& cfg) {
  Outcome whole = run(s, cfg);
  size_t n = test::script_size(s);
  for (size_t k = 1; k < n; ++k) {
    Outcome split = run(s, cfg, {k});
    ASSERT_EQ(split.ev, whole.ev) << "split at " << k;
  }
  Outcome bytewise = run(s, cfg, {}, 1);
  EXPECT_EQ(bytewise.ev, whole.ev);
}

// A conversation: both encoders, a script in wire order.
struct Conv {
  Deflater cenc, senc;
  Script script;
  void c2s(const Bytes& b) { script.push_back({Dir::c2s, b}); }
  void s2c(const Bytes& b) { script.push_back({Dir::s2c, b}); }
  void start() {
    Bytes c = preface();
    append(c, settings({{3, 100}}));
    c2s(c);
    Bytes s = settings({{3, 100}, {4, 65535}});
    append(s, settings_ack());
    s2c(s);
    c2s(settings_ack());
  }
  Bytes req_headers(uint32_t id, const std::string& path, bool end_stream, const std::string& tenant = "acme") {
    return frame(kHeaders, kEndHeaders | (end_stream ? kEndStream : 0), id,
                 cenc.encode({{":method", end_stream ? "GET" : "POST"},
                              {":scheme", "http"},
                              {":authority", "api.example.com"},
                              {":path", path},
                              {"content-type", "application/json"},
                              {"authorization", "Bearer sk-secret"},
                              {"x-tenant", tenant},
                              {"user-agent", "openai-python/1.0"}}));
  }
  Bytes resp_headers(uint32_t id, const std::string& status, bool end_stream) {
    return frame(kHeaders, kEndHeaders | (end_stream ? kEndStream : 0), id,
                 senc.encode({{":status", status}, {"content-type", "application/json"}, {"server", "vllm"}}));
  }
};

inline std::string req_line(uint32_t id, const std::string& method, const std::string& path, bool es,
                     const std::string& tenant = "acme") {
  return "req s=" + std::to_string(id) + " " + method + " " + path +
         " auth=api.example.com ct=application/json x0=" + tenant + " x1=openai-python/1.0" + (es ? " es" : "");
}


// 100 requests on one connection, headers indexed in the dynamic tables of
// both sides (Huffman on: nghttp2's deflater picks it when shorter), with
// gRPC-style trailers, and every split point.
inline Script hundred_requests(std::vector<std::string>* want) {
  Conv c;
  c.start();
  for (uint32_t i = 0; i < 100; ++i) {
    uint32_t id = 1 + 2 * i;
    std::string tenant = "tenant-" + std::to_string(i % 7);
    bool get = i % 3 == 0;
    Bytes b = c.req_headers(id, get ? "/v1/models" : "/v1/chat/completions", get, tenant);
    if (!get) append(b, frame(kData, kEndStream, id, bytes_of("{\"model\":\"m" + std::to_string(i) + "\"}")));
    c.c2s(b);
    Bytes r = frame(kHeaders, kEndHeaders, id,
                    c.senc.encode({{":status", "200"}, {"content-type", "application/grpc"}}));
    append(r, frame(kData, 0, id, bytes_of("out" + std::to_string(i))));
    append(r, frame(kHeaders, kEndHeaders | kEndStream, id, c.senc.encode({{"grpc-status", std::to_string(i % 3)}})));
    c.s2c(r);
    if (want) {
      want->push_back(req_line(id, get ? "GET" : "POST", get ? "/v1/models" : "/v1/chat/completions", get, tenant));
      if (!get) want->push_back("reqbody s=" + std::to_string(id) + " {\"model\":\"m" + std::to_string(i) + "\"}");
      want->push_back("reqend s=" + std::to_string(id));
      want->push_back("resp s=" + std::to_string(id) + " 200 ct=application/grpc");
      want->push_back("respbody s=" + std::to_string(id) + " out" + std::to_string(i));
      want->push_back("trailers s=" + std::to_string(id) + " grpc=" + std::to_string(i % 3));
      want->push_back("respend s=" + std::to_string(id));
    }
  }
  // Later requests are a few bytes each: indexed fields, except :path and
  // the short authorization value, which nghttp2 never indexes.
  EXPECT_LT(c.script[c.script.size() - 2].data.size() * 2, c.script[3].data.size());
  EXPECT_GT(nghttp2_hd_deflate_get_num_table_entries(c.cenc.d), 61u);
  return c.script;
}

}  // namespace
}  // namespace aiqos
