#include "classify/http2.h"

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

}  // namespace
}  // namespace aiqos
