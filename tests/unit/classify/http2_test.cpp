#include "classify/http2.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstdio>
#include <random>
#include <string>
#include <utility>
#include <vector>

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

Bytes frame(uint8_t type, uint8_t flags, uint32_t stream, const Bytes& payload) {
  Bytes f = {uint8_t(payload.size() >> 16), uint8_t(payload.size() >> 8), uint8_t(payload.size()), type, flags,
             uint8_t(stream >> 24), uint8_t(stream >> 16), uint8_t(stream >> 8), uint8_t(stream)};
  append(f, payload);
  return f;
}

Bytes u32(uint32_t v) { return {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)}; }

Bytes settings(std::vector<std::pair<uint16_t, uint32_t>> kv) {
  Bytes p;
  for (auto [k, v] : kv) {
    p.push_back(uint8_t(k >> 8));
    p.push_back(uint8_t(k));
    append(p, u32(v));
  }
  return frame(kSettings, 0, 0, p);
}
Bytes settings_ack() { return frame(kSettings, kAck, 0, {}); }

Bytes preface() {
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

Http2Config test_config() {
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

Outcome run(const Script& s, const Http2Config& cfg, const std::vector<size_t>& cuts = {}, size_t step = 0) {
  Recorder r;
  r.n_extra = cfg.capture.extra.size();
  Http2Connection c(cfg, r);
  test::feed_script(s, [&](Dir d, std::span<const uint8_t> b) { c.feed(d, b); }, cuts, step);
  return {r.ev, c.stats(), c.error()};
}

// Checks that two-chunk splits at every offset and one-byte chunks give the
// events of the unsplit script.
void expect_split_invariant(const Script& s, const Http2Config& cfg) {
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

std::string req_line(uint32_t id, const std::string& method, const std::string& path, bool es,
                     const std::string& tenant = "acme") {
  return "req s=" + std::to_string(id) + " " + method + " " + path +
         " auth=api.example.com ct=application/json x0=" + tenant + " x1=openai-python/1.0" + (es ? " es" : "");
}

TEST(Http2, SimpleGetAndPost) {
  Conv c;
  c.start();
  c.c2s(c.req_headers(1, "/v1/models", true));
  Bytes post = c.req_headers(3, "/v1/chat/completions", false);
  append(post, frame(kData, 0, 3, bytes_of("{\"model\":")));
  append(post, frame(kData, kEndStream, 3, bytes_of("\"llama\"}")));
  c.c2s(post);
  Bytes r = c.resp_headers(1, "200", false);
  append(r, frame(kData, kEndStream, 1, bytes_of("[]")));
  append(r, c.resp_headers(3, "200", false));
  append(r, frame(kData, 0, 3, bytes_of("{\"id\":1}")));
  append(r, frame(kData, kEndStream, 3, {}));
  c.s2c(r);
  Outcome got = run(c.script, test_config());
  std::vector<std::string> want = {
      req_line(1, "GET", "/v1/models", true),
      "reqend s=1",
      req_line(3, "POST", "/v1/chat/completions", false),
      "reqbody s=3 {\"model\":\"llama\"}",
      "reqend s=3",
      "resp s=1 200 ct=application/json",
      "respbody s=1 []",
      "respend s=1",
      "resp s=3 200 ct=application/json",
      "respbody s=3 {\"id\":1}",
      "respend s=3",
  };
  EXPECT_EQ(got.ev, want);
  EXPECT_EQ(got.error, L7Error::none);
  EXPECT_EQ(got.stats.streams_opened, 2u);
  expect_split_invariant(c.script, test_config());
}

TEST(Http2, CredentialsNotCapturedUnlessConfigured) {
  Conv c;
  c.start();
  c.c2s(c.req_headers(1, "/v1/models", true));
  Http2Config cfg = test_config();
  ASSERT_TRUE(cfg.capture.extra.add("authorization"));
  Outcome got = run(c.script, cfg);
  ASSERT_FALSE(got.ev.empty());
  EXPECT_NE(got.ev[0].find("x2=Bearer sk-secret"), std::string::npos);
  Outcome plain = run(c.script, test_config());
  EXPECT_EQ(plain.ev[0].find("Bearer"), std::string::npos);
}

// 100 requests on one connection, headers indexed in the dynamic tables of
// both sides (Huffman on: nghttp2's deflater picks it when shorter), with
// gRPC-style trailers, and every split point.
Script hundred_requests(std::vector<std::string>* want) {
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

TEST(Http2, HundredRequestsDynamicTable) {
  std::vector<std::string> want;
  Script s = hundred_requests(&want);
  Outcome got = run(s, test_config());
  EXPECT_EQ(got.ev, want);
  EXPECT_EQ(got.error, L7Error::none);
  EXPECT_EQ(got.stats.streams_opened, 100u);
  EXPECT_GT(got.stats.hpack_mem_peak[0], 0u);
  std::printf("hpack inflater peak bytes: c2s %zu s2c %zu; sizeof(Http2Connection) %zu\n",
              got.stats.hpack_mem_peak[0], got.stats.hpack_mem_peak[1], sizeof(Http2Connection));
}

TEST(Http2, HundredRequestsEverySplit) {
  Script s = hundred_requests(nullptr);
  // Two-chunk splits over the whole connection would be quadratic in a big
  // script; cut every offset of the first 2 KiB plus a stride over the rest.
  Outcome whole = run(s, test_config());
  size_t n = test::script_size(s);
  for (size_t k = 1; k < n; k += (k < 2048 ? 1 : 7)) {
    Outcome split = run(s, test_config(), {k});
    ASSERT_EQ(split.ev, whole.ev) << "split at " << k;
  }
  EXPECT_EQ(run(s, test_config(), {}, 1).ev, whole.ev);
  EXPECT_EQ(run(s, test_config(), {}, 5).ev, whole.ev);
}

TEST(Http2, PaddingPriorityContinuation) {
  Conv c;
  c.start();
  Bytes block = c.cenc.encode({{":method", "POST"},
                               {":scheme", "https"},
                               {":authority", "llm.internal"},
                               {":path", "/v1/embeddings"},
                               {"x-tenant", "blue"}});
  ASSERT_GT(block.size(), 12u);
  // HEADERS: PADDED + PRIORITY, first 5 bytes of the block, then two CONTINUATIONs.
  Bytes h = {3};  // pad length
  append(h, {0x80, 0, 0, 1, 16});  // exclusive dep on stream 1, weight 16
  h.insert(h.end(), block.begin(), block.begin() + 5);
  append(h, {0, 0, 0});
  Bytes b = frame(kHeaders, kPadded | kPrio, 1, h);
  append(b, frame(kCont, 0, 1, Bytes(block.begin() + 5, block.begin() + 9)));
  append(b, frame(kCont, kEndHeaders, 1, Bytes(block.begin() + 9, block.end())));
  // Padded DATA, then an empty padded DATA with END_STREAM.
  Bytes d = {4};
  append(d, bytes_of("hello"));
  append(d, {0, 0, 0, 0});
  append(b, frame(kData, kPadded, 1, d));
  append(b, frame(kPriority, 0, 3, {0, 0, 0, 1, 200}));
  append(b, frame(kWindowUpdate, 0, 0, u32(1000)));
  append(b, frame(kPing, 0, 0, Bytes(8, 7)));
  append(b, frame(0xfa, 0xff, 1, bytes_of("extension")));  // unknown type: ignored
  append(b, frame(kData, kPadded | kEndStream, 1, {2, 0, 0}));
  c.c2s(b);
  Bytes r = c.resp_headers(1, "200", true);
  c.s2c(r);
  Http2Config cfg;
  ASSERT_TRUE(cfg.capture.extra.add("x-tenant"));
  Outcome got = run(c.script, cfg);
  std::vector<std::string> want = {
      "req s=1 POST /v1/embeddings auth=llm.internal ct= x0=blue",
      "reqbody s=1 hello",
      "reqend s=1",
      "resp s=1 200 ct=application/json es",
      "respend s=1",
  };
  EXPECT_EQ(got.ev, want);
  EXPECT_EQ(got.stats.unknown_frames, 1u);
  expect_split_invariant(c.script, cfg);
}

TEST(Http2, ContinuationRules) {
  Deflater enc;
  Bytes block = enc.encode({{":method", "GET"}, {":path", "/"}, {":scheme", "http"}, {":authority", "a"}});
  Bytes first(block.begin(), block.begin() + 2), rest(block.begin() + 2, block.end());
  auto check = [&](const Bytes& tail, L7Error want) {
    Bytes b = preface();
    append(b, frame(kHeaders, 0, 1, first));
    append(b, tail);
    Script s = {{Dir::c2s, b}};
    Outcome got = run(s, test_config());
    EXPECT_EQ(got.error, want);
    ASSERT_FALSE(got.ev.empty());
    EXPECT_EQ(got.ev.back(), std::string("error ") + l7_error_name(want));
  };
  check(frame(kData, 0, 1, bytes_of("x")), L7Error::continuation_expected);
  check(frame(kCont, kEndHeaders, 3, rest), L7Error::continuation_expected);
  check(frame(kPing, 0, 0, Bytes(8)), L7Error::continuation_expected);
  // CONTINUATION with no header block open.
  Bytes b = preface();
  append(b, frame(kCont, kEndHeaders, 1, block));
  EXPECT_EQ(run({{Dir::c2s, b}}, test_config()).error, L7Error::bad_frame);
}

TEST(Http2, MalformedFrames) {
  auto err = [](const Bytes& f, Dir d = Dir::c2s) {
    Bytes b = d == Dir::c2s ? preface() : Bytes{};
    append(b, f);
    return run({{d, b}}, test_config()).error;
  };
  EXPECT_EQ(err(frame(kSettings, 0, 0, Bytes(5))), L7Error::bad_frame);
  EXPECT_EQ(err(frame(kSettings, kAck, 0, Bytes(6))), L7Error::bad_frame);
  EXPECT_EQ(err(frame(kSettings, 0, 1, {})), L7Error::bad_frame);
  EXPECT_EQ(err(frame(kPing, 0, 0, Bytes(7))), L7Error::bad_frame);
  EXPECT_EQ(err(frame(kRst, 0, 1, Bytes(5))), L7Error::bad_frame);
  EXPECT_EQ(err(frame(kRst, 0, 0, Bytes(4))), L7Error::bad_frame);
  EXPECT_EQ(err(frame(kPriority, 0, 1, Bytes(4))), L7Error::bad_frame);
  EXPECT_EQ(err(frame(kGoaway, 0, 0, Bytes(7))), L7Error::bad_frame);
  EXPECT_EQ(err(frame(kWindowUpdate, 0, 0, Bytes(3))), L7Error::bad_frame);
  EXPECT_EQ(err(frame(kData, 0, 0, bytes_of("x"))), L7Error::bad_frame);
  EXPECT_EQ(err(frame(kData, kPadded, 1, {})), L7Error::bad_frame);
  EXPECT_EQ(err(frame(kData, kPadded, 1, {5, 1, 2})), L7Error::bad_frame);  // pad > payload
  EXPECT_EQ(err(frame(kHeaders, kPadded | kPrio, 1, {1, 0, 0, 0, 0, 0})), L7Error::bad_frame);
  EXPECT_EQ(err(frame(kPush, kEndHeaders, 1, Bytes(4))), L7Error::bad_frame);  // client push
  EXPECT_EQ(err(frame(kData, 0, 1, Bytes(20000))), L7Error::none);
  Http2Config small = test_config();
  small.max_frame_size = 16384;
  Bytes b = preface();
  append(b, frame(kData, 0, 1, Bytes(16385)));
  EXPECT_EQ(run({{Dir::c2s, b}}, small).error, L7Error::frame_too_large);
}

TEST(Http2, BadPrefaceIsSticky) {
  Script s = {{Dir::c2s, bytes_of("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")}, {Dir::c2s, preface()}};
  Recorder r;
  Http2Connection c(test_config(), r);
  test::feed_script(s, [&](Dir d, std::span<const uint8_t> b) { c.feed(d, b); });
  EXPECT_EQ(c.error(), L7Error::bad_preface);
  EXPECT_EQ(r.ev, std::vector<std::string>{"error bad_preface"});
  EXPECT_EQ(c.stats().ignored_bytes, 6u + 24u);  // mismatch at byte 18
  c.feed(Dir::s2c, settings({}));
  EXPECT_EQ(r.ev.size(), 1u);
  EXPECT_EQ(c.error(), L7Error::bad_preface);
}

TEST(Http2, RstStreamAndGoaway) {
  Conv c;
  c.start();
  Bytes b = c.req_headers(1, "/v1/chat/completions", false);
  append(b, frame(kData, 0, 1, bytes_of("part")));
  append(b, c.req_headers(3, "/v1/models", true));
  c.c2s(b);
  c.s2c(c.resp_headers(3, "200", false));
  Bytes rst = frame(kRst, 0, 1, u32(8));  // CANCEL by the client
  append(rst, frame(kData, kEndStream, 1, bytes_of("late")));  // ignored: stream gone
  c.c2s(rst);
  Bytes g = frame(kRst, 0, 3, u32(2));  // server resets stream 3
  Bytes ga = u32(3);
  append(ga, u32(0));
  append(ga, bytes_of("bye"));
  append(g, frame(kGoaway, 0, 0, ga));
  c.s2c(g);
  Outcome got = run(c.script, test_config());
  std::vector<std::string> want = {
      req_line(1, "POST", "/v1/chat/completions", false),
      "reqbody s=1 part",
      req_line(3, "GET", "/v1/models", true),
      "reqend s=3",
      "resp s=3 200 ct=application/json",
      "rst s=1 code=8 c2s",
      "rst s=3 code=2 s2c",
      "goaway s2c last=3 code=0",
  };
  EXPECT_EQ(got.ev, want);
  EXPECT_EQ(got.stats.stray_frames, 1u);
  expect_split_invariant(c.script, test_config());
}

TEST(Http2, StreamTableCap) {
  Conv c;
  c.start();
  Bytes b;
  for (uint32_t i = 0; i < 10; ++i) append(b, c.req_headers(1 + 2 * i, "/p" + std::to_string(i), true));
  c.c2s(b);
  Bytes r;
  for (uint32_t i = 0; i < 10; ++i) append(r, c.resp_headers(1 + 2 * i, "200", true));
  c.s2c(r);
  // Once the tracked streams closed, new ones are tracked again; HPACK stayed in sync.
  c.c2s(c.req_headers(21, "/after", true));
  c.s2c(c.resp_headers(21, "204", true));
  Http2Config cfg = test_config();
  cfg.max_streams = 4;
  Outcome got = run(c.script, cfg);
  EXPECT_EQ(got.error, L7Error::none);
  EXPECT_EQ(got.stats.streams_opened, 5u);
  EXPECT_EQ(got.stats.streams_dropped, 6u);
  size_t reqs = 0;
  for (const auto& e : got.ev) reqs += e.rfind("req s=", 0) == 0;
  EXPECT_EQ(reqs, 5u);
  EXPECT_EQ(got.ev[got.ev.size() - 2], "resp s=21 204 ct=application/json es");
  expect_split_invariant(c.script, cfg);
}

// Streams whose home slots collide (ids 1, 17, 33, 49 with 8 slots), one
// closing in the middle: each response still finds its own stream.
TEST(Http2, CollidingStreamSlotsStillFindTheirStream) {
  Conv c;
  c.start();
  c.c2s(c.req_headers(1, "/a", true));
  c.c2s(c.req_headers(17, "/b", true));
  c.c2s(c.req_headers(33, "/c", true));
  c.s2c(c.resp_headers(1, "200", true));  // stream 1 closes: its slot is free again
  c.c2s(c.req_headers(49, "/d", true));
  c.s2c(c.resp_headers(33, "201", true));
  c.s2c(c.resp_headers(49, "202", true));
  c.s2c(c.resp_headers(17, "203", true));
  c.s2c(c.resp_headers(99, "500", true));  // never opened: stray
  Http2Config cfg = test_config();
  cfg.max_streams = 8;
  Outcome got = run(c.script, cfg);
  EXPECT_EQ(got.error, L7Error::none);
  EXPECT_EQ(got.stats.streams_opened, 4u);
  EXPECT_EQ(got.stats.streams_dropped, 0u);
  EXPECT_EQ(got.stats.stray_frames, 1u);
  std::vector<std::string> resp;
  for (const auto& e : got.ev)
    if (e.rfind("resp s=", 0) == 0) resp.push_back(e.substr(0, e.find(" ct=")));
  EXPECT_EQ(resp, (std::vector<std::string>{"resp s=1 200", "resp s=33 201", "resp s=49 202", "resp s=17 203"}));
  expect_split_invariant(c.script, cfg);
}

TEST(Http2, HeaderBlockAndListCaps) {
  Conv c;
  c.start();
  std::string big(3000, 'x');
  c.c2s(frame(kHeaders, kEndHeaders | kEndStream, 1,
              c.cenc.encode({{":method", "GET"}, {":path", "/"}, {"x-big", big}})));
  Http2Config cfg = test_config();
  cfg.max_header_block = 1024;
  EXPECT_EQ(run(c.script, cfg).error, L7Error::header_block_too_large);
  cfg = test_config();
  cfg.max_header_list = 2048;
  EXPECT_EQ(run(c.script, cfg).error, L7Error::header_list_too_large);
  cfg = test_config();
  cfg.max_hpack_mem = 2048;
  EXPECT_EQ(run(c.script, cfg).error, L7Error::hpack_memory);
  // Header block split over many CONTINUATIONs counts as a whole.
  Deflater enc;
  Bytes block = enc.encode({{":method", "GET"}, {":path", "/"}, {"x-big", big}});
  Bytes b = preface();
  append(b, frame(kHeaders, 0, 1, Bytes(block.begin(), block.begin() + 600)));
  append(b, frame(kCont, 0, 1, Bytes(block.begin() + 600, block.begin() + 1200)));
  append(b, frame(kCont, kEndHeaders, 1, Bytes(block.begin() + 1200, block.end())));
  cfg = test_config();
  cfg.max_header_block = 1500;
  Outcome got = run({{Dir::c2s, b}}, cfg);
  EXPECT_EQ(got.error, L7Error::header_block_too_large);
  cfg.max_header_block = 4096;
  EXPECT_EQ(run({{Dir::c2s, b}}, cfg).error, L7Error::none);
}

TEST(Http2, CapturedValuesTruncated) {
  Conv c;
  c.start();
  std::string path = "/v1/" + std::string(300, 'a');
  c.c2s(c.req_headers(1, path, true));
  Http2Config cfg = test_config();
  cfg.capture.max_value_len = 16;
  Outcome got = run(c.script, cfg);
  ASSERT_FALSE(got.ev.empty());
  EXPECT_EQ(got.ev[0].substr(0, 31), "req s=1 GET /v1/aaaaaaaaaaaa au");
  // Bits: kPath (1 << 1) and the user-agent extra (1 << (kFixedFields + 1)).
  EXPECT_NE(got.ev[0].find("x1=openai-python/1. trunc=34"), std::string::npos) << got.ev[0];
}

// Server lowers SETTINGS_HEADER_TABLE_SIZE: it binds the CLIENT's encoder,
// i.e. the c2s inflater, from the client's ACK on.
TEST(Http2, TableSizeFromPeerSettings) {
  Conv c;
  Bytes cb = preface();
  append(cb, settings({}));
  c.c2s(cb);
  Bytes sb = settings({{1, 256}});
  append(sb, settings_ack());
  c.s2c(sb);
  // Before the client acknowledges, it still encodes against 4096.
  c.c2s(c.req_headers(1, "/before", true));
  c.c2s(settings_ack());
  ASSERT_EQ(nghttp2_hd_deflate_change_table_size(c.cenc.d, 256), 0);
  Bytes h = c.req_headers(3, "/after", true);
  EXPECT_EQ(h[9] & 0xe0, 0x20);  // block starts with a dynamic table size update
  c.c2s(h);
  c.s2c(c.resp_headers(1, "200", true));
  Outcome got = run(c.script, test_config());
  EXPECT_EQ(got.error, L7Error::none);
  ASSERT_GE(got.ev.size(), 4u);
  EXPECT_EQ(got.ev[2], req_line(3, "GET", "/after", true));
  expect_split_invariant(c.script, test_config());

  // Without the ACK the update to 256 is fine too (a lower size is always
  // allowed), but an update above what the server allowed is an error.
  Conv bad;
  bad.c2s(cb);
  bad.s2c(sb);
  bad.c2s(settings_ack());
  Deflater big(8192);
  ASSERT_EQ(nghttp2_hd_deflate_change_table_size(big.d, 8192), 0);
  bad.c2s(frame(kHeaders, kEndHeaders | kEndStream, 1, big.encode({{":method", "GET"}, {":path", "/"}})));
  EXPECT_EQ(run(bad.script, test_config()).error, L7Error::hpack_error);
}

TEST(Http2, TableSizeAboveConfiguredCap) {
  // The server allows 65536, the client grows its table to it, we only keep 4096.
  Bytes cb = preface();
  append(cb, settings({}));
  Bytes sb = settings({{1, 65536}});
  Deflater enc(65536);
  ASSERT_EQ(nghttp2_hd_deflate_change_table_size(enc.d, 65536), 0);
  Bytes h = frame(kHeaders, kEndHeaders | kEndStream, 1, enc.encode({{":method", "GET"}, {":path", "/"}}));
  Script s = {{Dir::c2s, cb}, {Dir::s2c, sb}, {Dir::c2s, settings_ack()}, {Dir::c2s, h}};
  Http2Config cfg = test_config();
  cfg.max_hpack_table = 4096;
  Outcome got = run(s, cfg);
  EXPECT_EQ(got.error, L7Error::hpack_table_cap);
  EXPECT_EQ(got.stats.settings_clipped, 1u);
  cfg.max_hpack_table = 65536;
  EXPECT_EQ(run(s, cfg).error, L7Error::none);
}

TEST(Http2, TableSizeUpdateWithoutSettingsFails) {
  Deflater enc(8192);
  ASSERT_EQ(nghttp2_hd_deflate_change_table_size(enc.d, 8192), 0);
  Bytes b = preface();
  append(b, frame(kHeaders, kEndHeaders | kEndStream, 1, enc.encode({{":method", "GET"}, {":path", "/"}})));
  EXPECT_EQ(run({{Dir::c2s, b}}, test_config()).error, L7Error::hpack_error);
}

TEST(Http2, SettingsBacklog) {
  Bytes s;
  for (int i = 0; i < 10; ++i) append(s, settings({{1, 100}}));
  Outcome got = run({{Dir::s2c, s}}, test_config());
  EXPECT_EQ(got.error, L7Error::settings_backlog);
}

// PUSH_PROMISE header blocks change the server encoder's table: skipping
// them would desynchronise every later response.
TEST(Http2, PushPromiseKeepsHpackInSync) {
  Conv c;
  c.start();
  c.c2s(c.req_headers(1, "/index", true));
  Bytes pp = u32(2);
  append(pp, c.senc.encode({{":method", "GET"},
                            {":path", "/pushed.css"},
                            {":authority", "api.example.com"},
                            {":scheme", "http"},
                            {"x-push-marker", "abc"}}));
  Bytes r = frame(kPush, kEndHeaders, 1, pp);
  append(r, frame(kHeaders, kEndHeaders, 1,
                  c.senc.encode({{":status", "200"}, {"x-push-marker", "abc"}, {"grpc-status", "0"}})));
  append(r, frame(kHeaders, kEndHeaders | kEndStream, 2, c.senc.encode({{":status", "200"}})));
  append(r, frame(kData, kEndStream, 1, bytes_of("ok")));
  c.s2c(r);
  Outcome got = run(c.script, test_config());
  std::vector<std::string> want = {
      req_line(1, "GET", "/index", true),
      "reqend s=1",
      "resp s=1 200 grpc=0",
      "respbody s=1 ok",
      "respend s=1",
  };
  EXPECT_EQ(got.ev, want);
  EXPECT_EQ(got.stats.push_promises, 1u);
  expect_split_invariant(c.script, test_config());
}

TEST(Http2, GrpcTrailersOnlyAndInterim) {
  Conv c;
  c.start();
  c.c2s(c.req_headers(1, "/pkg.Svc/Method", false));
  c.c2s(frame(kData, kEndStream, 1, Bytes{0, 0, 0, 0, 2, 'h', 'i'}));
  Bytes r = frame(kHeaders, kEndHeaders, 1, c.senc.encode({{":status", "100"}}));
  append(r, frame(kHeaders, kEndHeaders | kEndStream, 1,
                  c.senc.encode({{":status", "200"}, {"content-type", "application/grpc"}, {"grpc-status", "14"}})));
  c.s2c(r);
  Outcome got = run(c.script, test_config());
  ASSERT_EQ(got.ev.size(), 5u);
  EXPECT_EQ(got.ev[3], "resp s=1 200 grpc=14 ct=application/grpc es");
  EXPECT_EQ(got.ev[4], "respend s=1");
  EXPECT_EQ(got.stats.interim_responses, 1u);
}

TEST(Http2, UpgradedStreamOne) {
  Recorder r;
  Http2Connection c(test_config(), r);
  c.start_upgraded(256u);  // client's HTTP2-Settings: header table 256
  Deflater senc(256);
  ASSERT_EQ(nghttp2_hd_deflate_change_table_size(senc.d, 256), 0);
  Bytes s = settings({});
  append(s, frame(kHeaders, kEndHeaders, 1, senc.encode({{":status", "200"}})));
  append(s, frame(kData, kEndStream, 1, bytes_of("body")));
  c.feed(Dir::s2c, s);
  c.feed(Dir::c2s, preface());
  c.feed(Dir::c2s, settings_ack());
  EXPECT_EQ(r.ev, (std::vector<std::string>{"resp s=1 200", "respbody s=1 body", "respend s=1"}));
  EXPECT_EQ(c.open_streams(), 0u);
}

// Bit flips and garbage: never a crash; once failed, sticky and silent.
TEST(Http2, GarbageAndBitFlips) {
  Script s = hundred_requests(nullptr);
  std::mt19937 rng(12345);
  size_t n = test::script_size(s);
  int failed = 0;
  for (int iter = 0; iter < 600; ++iter) {
    Script m = s;
    int flips = 1 + iter % 4;
    for (int f = 0; f < flips; ++f) {
      size_t pos = rng() % n;
      for (auto& seg : m) {
        if (pos < seg.data.size()) {
          seg.data[pos] ^= uint8_t(1u << (rng() % 8));
          break;
        }
        pos -= seg.data.size();
      }
    }
    Recorder r;
    Http2Connection c(test_config(), r);
    test::feed_script(m, [&](Dir d, std::span<const uint8_t> b) { c.feed(d, b); }, {}, 1 + iter % 13);
    if (c.failed()) {
      ++failed;
      ASSERT_EQ(r.ev.back().rfind("error ", 0), 0u);
      size_t before = r.ev.size();
      L7Error e = c.error();
      c.feed(Dir::c2s, preface());
      c.feed(Dir::s2c, settings({}));
      EXPECT_EQ(r.ev.size(), before);
      EXPECT_EQ(c.error(), e);
    }
  }
  EXPECT_GT(failed, 0);
  for (int iter = 0; iter < 200; ++iter) {
    Bytes g = preface();
    size_t len = rng() % 4096;
    for (size_t i = 0; i < len; ++i) g.push_back(uint8_t(rng()));
    Bytes g2(rng() % 4096);
    for (auto& x : g2) x = uint8_t(rng());
    Recorder r;
    Http2Connection c(test_config(), r);
    c.feed(Dir::c2s, g);
    c.feed(Dir::s2c, g2);
  }
}

// Real client and server bytes: nghttp against nghttpd --no-tls on loopback,
// captured with tcpdump (data/nghttp_capture.inc says how).
#include "data/nghttp_capture.inc"

template <size_t N>
Script capture_script(const CaptureSegment (&segs)[N]) {
  Script s;
  for (const auto& seg : segs) s.push_back({seg.c2s ? Dir::c2s : Dir::s2c, Bytes(seg.data, seg.data + seg.len)});
  return s;
}

TEST(Http2, CaptureFromNghttp) {
  Script get = capture_script(kNghttpGetSegments);
  Outcome got = run(get, test_config());
  EXPECT_EQ(got.error, L7Error::none);
  std::vector<std::string> want = {
      "req s=13 GET /models auth=127.0.0.1:18080 ct= x0=acme x1=openai-python/1.0 es",
      "reqend s=13",
      "req s=15 GET /embed auth=127.0.0.1:18080 ct= x0=acme x1=openai-python/1.0 es",
      "reqend s=15",
      "resp s=13 200",
      "resp s=15 200",
      "respbody s=13 {\"data\":[{\"id\":\"llama\"}]}\n",
      "respend s=13",
      "respbody s=15 " + std::string(300, 'e'),
      "respend s=15",
      "goaway c2s last=0 code=0",
  };
  EXPECT_EQ(got.ev, want);
  expect_split_invariant(get, test_config());

  Script post = capture_script(kNghttpPostSegments);
  got = run(post, test_config());
  EXPECT_EQ(got.error, L7Error::none);
  ASSERT_GE(got.ev.size(), 3u);
  EXPECT_EQ(got.ev[0], "req s=13 POST /models auth=127.0.0.1:18080 ct=application/json x0=acme x1=nghttp2/1.52.0");
  EXPECT_EQ(got.ev[1], "reqbody s=13 {\"model\":\"llama\",\"input\":\"hi\"}\n");
  expect_split_invariant(post, test_config());
}

}  // namespace
}  // namespace aiqos
