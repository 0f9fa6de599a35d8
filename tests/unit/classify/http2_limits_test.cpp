// The HTTP/2 parser at its limits: header block and list caps, captured value truncation,
// HPACK table sizes, push promises, gRPC trailers, h2c upgrade, garbage, a real capture.
#include "classify/http2.h"

#include "classify/hpack_pool.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstdio>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "http_test_util.h"

#include "http2_harness.h"

namespace aiqos {
namespace {

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

// The inflaters' memory from a pool (hpack_pool.h): the budget counts as with
// the heap; a pool with no block for an allocation fails the connection as
// the budget does (hpack_memory), and the pool counts it.
TEST(Http2, PoolRunsDryFailsOpenAndCounts) {
  Conv c;
  c.start();
  c.c2s(frame(kHeaders, kEndHeaders | kEndStream, 1,
              c.cenc.encode({{":method", "GET"}, {":path", "/"}, {"x-big", std::string(3000, 'x')}})));
  c.s2c(c.resp_headers(1, "200", true));
  Http2Config cfg = test_config();
  const uint64_t heap0 = Http2Connection::heap_allocations();
  Outcome heap = run(c.script, cfg);
  ASSERT_EQ(heap.error, L7Error::none);
  EXPECT_GT(Http2Connection::heap_allocations(), heap0) << "no pool: the heap";

  HpackPool roomy(1 << 20, cfg.max_hpack_mem);
  cfg.hpack_pool = &roomy;
  const uint64_t heap1 = Http2Connection::heap_allocations();
  Outcome pooled = run(c.script, cfg);
  EXPECT_EQ(Http2Connection::heap_allocations(), heap1) << "a pool: never the heap";
  EXPECT_EQ(pooled.ev, heap.ev);
  EXPECT_EQ(pooled.stats.hpack_mem_peak, heap.stats.hpack_mem_peak) << "the budget counts the same";
  EXPECT_GT(roomy.peak(), 0u);
  EXPECT_EQ(roomy.in_use(), 0u) << "all given back with the connection";
  EXPECT_EQ(roomy.exhausted(), 0u);

  // One 8 KiB block: the inflaters fit, the 3000-byte literal (Huffman: twice
  // its coded length) does not; the budget (192 KiB) would have let it.
  HpackPool dry(0, 8192);
  cfg.hpack_pool = &dry;
  Outcome failed = run(c.script, cfg);
  EXPECT_EQ(failed.error, L7Error::hpack_memory);
  EXPECT_EQ(dry.exhausted(), 1u);
  EXPECT_EQ(dry.in_use(), 0u);
  // What a budget denial does, event for event.
  cfg = test_config();
  cfg.max_hpack_mem = 2048;
  Outcome denied = run(c.script, cfg);
  EXPECT_EQ(denied.error, L7Error::hpack_memory);
  EXPECT_EQ(failed.ev, denied.ev);
}

// Connection after connection, request after request on one pool: the blocks
// freed are the blocks taken again; the pool touches no more memory after the
// first connection, and the heap is never asked.
TEST(Http2, PoolBlocksReusedAcrossConnections) {
  std::vector<std::string> want;
  Script s = hundred_requests(&want);
  Http2Config cfg = test_config();
  HpackPool pool(4 << 20, cfg.max_hpack_mem);
  cfg.hpack_pool = &pool;
  const uint64_t heap0 = Http2Connection::heap_allocations();
  Outcome first = run(s, cfg);
  ASSERT_EQ(first.ev, want);
  const uint64_t touched = pool.touched(), peak = pool.peak();
  EXPECT_GT(touched, 0u);
  for (int i = 0; i < 20; ++i) {
    Outcome again = run(s, cfg, {}, 1 + i % 5);
    ASSERT_EQ(again.ev, want);
    ASSERT_EQ(pool.in_use(), 0u);
  }
  EXPECT_EQ(pool.touched(), touched);
  EXPECT_EQ(pool.peak(), peak);
  EXPECT_EQ(pool.exhausted(), 0u);
  EXPECT_EQ(Http2Connection::heap_allocations(), heap0);
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
