#include "classify/http1.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "http_test_util.h"

namespace aiqos {
namespace {

using test::Bytes;
using test::bytes_of;
using test::Recorder;
using test::Script;

Http1Config test_config() {
  Http1Config c;
  EXPECT_TRUE(c.capture.extra.add("x-tenant"));
  EXPECT_TRUE(c.capture.extra.add("user-agent"));
  return c;
}

struct Outcome {
  std::vector<std::string> ev;
  Http1Stats stats;
  L7Error error = L7Error::none;
};

// Feeds the script (finish(s2c) at the end when `close`), with cuts/step as
// in test::feed_script.
Outcome run(const Script& s, const Http1Config& cfg, const std::vector<size_t>& cuts = {}, size_t step = 0,
            bool close = false) {
  Recorder r;
  r.n_extra = cfg.capture.extra.size();
  Http1Connection c(cfg, r);
  test::feed_script(s, [&](Dir d, std::span<const uint8_t> b) { EXPECT_EQ(c.feed(d, b), b.size()); }, cuts, step);
  if (close) c.finish(Dir::s2c);
  return {r.ev, c.stats(), c.error()};
}

void expect_split_invariant(const Script& s, const Http1Config& cfg, bool close = false) {
  Outcome whole = run(s, cfg, {}, 0, close);
  size_t n = test::script_size(s);
  for (size_t k = 1; k < n; ++k) {
    Outcome split = run(s, cfg, {k}, 0, close);
    ASSERT_EQ(split.ev, whole.ev) << "split at " << k;
  }
  EXPECT_EQ(run(s, cfg, {}, 1, close).ev, whole.ev);
}

Script script(std::initializer_list<std::pair<Dir, std::string>> segs) {
  Script s;
  for (const auto& [d, str] : segs) s.push_back({d, bytes_of(str)});
  return s;
}

constexpr Dir C = Dir::c2s, S = Dir::s2c;

TEST(Http1, GetAndPostKeepAlive) {
  Script s = script({
      {C, "GET /v1/models HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: curl/8.0\r\n"
          "Authorization: Bearer sk-secret\r\n\r\n"},
      {S, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"},
      {C, "POST /v1/chat/completions HTTP/1.1\r\nhost: api.example.com  \r\nContent-Type:application/json\r\n"
          "X-Tenant: \tacme \r\nContent-Length: 17\r\n\r\n{\"model\":\"llama\"}"},
      {S, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/event-stream\r\n\r\ndata:"},
  });
  Outcome got = run(s, test_config());
  std::vector<std::string> want = {
      "req s=0 GET /v1/models auth=api.example.com ct= x0= x1=curl/8.0 es",
      "reqend s=0",
      "resp s=0 200 ct=application/json",
      "respbody s=0 []",
      "respend s=0",
      "req s=0 POST /v1/chat/completions auth=api.example.com ct=application/json x0=acme x1=",
      "reqbody s=0 {\"model\":\"llama\"}",
      "reqend s=0",
      "resp s=0 200 ct=text/event-stream",
      "respbody s=0 data:",
      "respend s=0",
  };
  EXPECT_EQ(got.ev, want);
  EXPECT_EQ(got.error, L7Error::none);
  EXPECT_EQ(got.stats.requests, 2u);
  for (const auto& e : got.ev) EXPECT_EQ(e.find("sk-secret"), std::string::npos);
  expect_split_invariant(s, test_config());
}

TEST(Http1, ChunkedBodiesExtensionsTrailers) {
  Script s = script({
      {C, "POST /v1/completions HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
          "5;ext=1;q=\"x\"\r\nhello\r\n6 \r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n"},
      {S, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/grpc\r\n\r\n"
          "3\r\nabc\r\nA\r\n0123456789\r\n0\r\ngrpc-status: 7\r\ngrpc-message: denied\r\n\r\n"},
      {C, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"},
      {S, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
  });
  Outcome got = run(s, test_config());
  std::vector<std::string> want = {
      "req s=0 POST /v1/completions auth=h ct= x0= x1=",
      "reqbody s=0 hello world",
      "reqend s=0",
      "resp s=0 200 ct=application/grpc",
      "respbody s=0 abc0123456789",
      "trailers s=0 grpc=7",
      "respend s=0",
      "req s=0 GET /next auth=h ct= x0= x1= es",
      "reqend s=0",
      "resp s=0 200",
      "respend s=0",
  };
  EXPECT_EQ(got.ev, want);
  expect_split_invariant(s, test_config());
}

TEST(Http1, GrpcStatusOfMoreThanFourDigitsIgnored) {
  // http1_fuzz: a long grpc-status value overflowed an int (UB) while it was
  // read, before its length was checked.
  Script s = script({
      {C, "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"},
      {S, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\ngrpc-status: 5610626581234567890123\r\n\r\n"},
      {C, "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"},
      {S, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\ngrpc-status: 14\r\n\r\n"},
  });
  Outcome got = run(s, test_config());
  EXPECT_EQ(got.error, L7Error::none);
  std::vector<std::string> resp;
  for (const auto& e : got.ev)
    if (e.rfind("resp ", 0) == 0) resp.push_back(e);
  EXPECT_EQ(resp, (std::vector<std::string>{"resp s=0 200 es", "resp s=0 200 grpc=14 es"}));
}

TEST(Http1, PipelinedHeadAndNoBodyStatuses) {
  Script s = script({
      {C, "GET /a HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\nHost: h\r\n\r\n"
          "POST /c HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
          "GET /d HTTP/1.1\r\nHost: h\r\n\r\n"},
      {S, "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"
          "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"  // HEAD: no body despite the length
          "HTTP/1.1 204 No Content\r\n\r\n"
          "HTTP/1.0 200 OK\r\n\r\nuntil close"},
  });
  Outcome got = run(s, test_config(), {}, 0, true);
  std::vector<std::string> want = {
      "req s=0 GET /a auth=h ct= x0= x1= es", "reqend s=0",
      "req s=0 HEAD /b auth=h ct= x0= x1= es", "reqend s=0",
      "req s=0 POST /c auth=h ct= x0= x1=",    "reqbody s=0 xyz", "reqend s=0",
      "req s=0 GET /d auth=h ct= x0= x1= es", "reqend s=0",
      "resp s=0 304 es",                        "respend s=0",
      "resp s=0 200 es",                        "respend s=0",
      "resp s=0 204 es",                        "respend s=0",
      "resp s=0 200",                           "respbody s=0 until close", "respend s=0",
  };
  EXPECT_EQ(got.ev, want);
  EXPECT_EQ(got.stats.responses, 4u);
  expect_split_invariant(s, test_config(), true);
}

TEST(Http1, ExpectContinue) {
  Script s = script({
      {C, "PUT /upload HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"},
      {S, "HTTP/1.1 100 Continue\r\n\r\n"},
      {C, "data"},
      {S, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"},
  });
  Outcome got = run(s, test_config());
  std::vector<std::string> want = {
      "req s=0 PUT /upload auth=h ct= x0= x1=", "reqbody s=0 data", "reqend s=0", "resp s=0 201 es", "respend s=0",
  };
  EXPECT_EQ(got.ev, want);
  EXPECT_EQ(got.stats.interim_responses, 1u);
  expect_split_invariant(s, test_config());
}

TEST(Http1, TolerantLineEndingsAndLeadingBlankLines) {
  Script s = script({
      {C, "\r\nGET /x HTTP/1.1\nHost: h\n\n"},
      {S, "HTTP/1.1 200\nContent-Length: 1\n\nz"},
  });
  Outcome got = run(s, test_config());
  EXPECT_EQ(got.error, L7Error::none);
  ASSERT_EQ(got.ev.size(), 5u);
  EXPECT_EQ(got.ev[3], "respbody s=0 z");
}

TEST(Http1, UpgradeAndConnectTunnel) {
  Script ws = script({
      {C, "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"},
      {S, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"},
      {C, "\x81\x85garbage that is not HTTP"},
  });
  Outcome got = run(ws, test_config());
  EXPECT_EQ(got.error, L7Error::none);
  EXPECT_EQ(got.ev.back(), "respend s=0");
  EXPECT_GT(got.stats.tunnel_bytes, 0u);
  expect_split_invariant(ws, test_config());

  Script conn = script({
      {C, "CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n"},
      {S, "HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01"},
      {C, "\x16\x03\x01\x02\x00"},
  });
  got = run(conn, test_config());
  EXPECT_EQ(got.error, L7Error::none);
  EXPECT_EQ(got.ev[0], "req s=0 CONNECT api.example.com:443 auth=api.example.com:443 ct= x0= x1= es");
  EXPECT_EQ(got.ev[2], "resp s=0 200 es");
}

// HTTP2-Settings: base64url of SETTINGS_HEADER_TABLE_SIZE=256, MAX_CONCURRENT_STREAMS=100.
constexpr const char* kH2Settings = "AAEAAAEAAAMAAABk";

TEST(Http1, H2cUpgradePausePoints) {
  Http1Config cfg = test_config();
  cfg.h2c_pause = true;
  Recorder r;
  r.n_extra = 2;
  Http1Connection c(cfg, r);
  std::string req = std::string("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n") +
                    "Upgrade: h2c\r\nHTTP2-Settings: " + kH2Settings + "\r\n\r\n";
  std::string after = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  Bytes in = bytes_of(req + after);
  EXPECT_EQ(c.feed(C, in), req.size());
  EXPECT_TRUE(c.c2s_paused());
  EXPECT_EQ(c.feed(C, in), 0u);
  ASSERT_TRUE(c.h2c_client_table_size().has_value());
  EXPECT_EQ(*c.h2c_client_table_size(), 256u);
  std::string resp = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
  Bytes out = bytes_of(resp + "\x00\x00\x00\x04");
  EXPECT_EQ(c.feed(S, out), resp.size());
  EXPECT_TRUE(c.s2c_switched());
  EXPECT_EQ(r.ev, (std::vector<std::string>{"req s=1 GET / auth=h ct= x0= x1= es", "reqend s=1"}));

  // Declined: a normal response resumes the client side.
  Recorder r2;
  Http1Connection d(cfg, r2);
  EXPECT_EQ(d.feed(C, bytes_of(req)), req.size());
  EXPECT_TRUE(d.c2s_paused());
  d.feed(S, bytes_of("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_FALSE(d.c2s_paused());
  EXPECT_FALSE(d.s2c_switched());
  EXPECT_EQ(r2.ev.back(), "respend s=1");
}

TEST(Http1, Caps) {
  Http1Config cfg = test_config();
  cfg.max_header_section = 64;
  auto err = [&](const std::string& c2s, const std::string& s2c = "") {
    Script s = script({{C, c2s}});
    if (!s2c.empty()) s.push_back({S, bytes_of(s2c)});
    return run(s, cfg).error;
  };
  EXPECT_EQ(err("GET / HTTP/1.1\r\nHost: h\r\nX-Long: " + std::string(100, 'a') + "\r\n\r\n"),
            L7Error::h1_header_too_large);
  EXPECT_EQ(err("GET /" + std::string(100, 'a') + " HTTP/1.1\r\n\r\n"), L7Error::h1_header_too_large);
  EXPECT_EQ(err("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), L7Error::none);
  cfg.max_header_section = 16 << 10;
  cfg.max_pipeline = 2;
  EXPECT_EQ(err("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n"), L7Error::h1_pipeline_overflow);
  cfg = test_config();
  EXPECT_EQ(err("POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"), L7Error::h1_bad_length);
  EXPECT_EQ(err("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"), L7Error::h1_bad_length);
  EXPECT_EQ(err("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"), L7Error::none);
  EXPECT_EQ(err("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), L7Error::h1_bad_length);
  EXPECT_EQ(err("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), L7Error::h1_bad_chunk);
  EXPECT_EQ(err("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n"), L7Error::h1_bad_chunk);
  EXPECT_EQ(err("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1234567890abcdef0\r\n"), L7Error::h1_bad_chunk);
  EXPECT_EQ(err("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n"), L7Error::h1_bad_header);
  EXPECT_EQ(err("GET / HTTP/1.1\r\nHost h\r\n\r\n"), L7Error::h1_bad_header);
  EXPECT_EQ(err("GET / HTTP/1.1\r\nBad Name: h\r\n\r\n"), L7Error::h1_bad_header);
  EXPECT_EQ(err("GET / HTTP/2.0\r\n\r\n"), L7Error::h1_bad_start_line);
  EXPECT_EQ(err("GET /\r\n\r\n"), L7Error::h1_bad_start_line);
  EXPECT_EQ(err("G(T / HTTP/1.1\r\n\r\n"), L7Error::h1_bad_start_line);
  EXPECT_EQ(err("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n"), L7Error::h1_bad_start_line);
  EXPECT_EQ(err("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n"), L7Error::h1_bad_start_line);
  EXPECT_EQ(err("GET / HTTP/1.1\r\n\r\n", "SSH-2.0-OpenSSH\r\n"), L7Error::h1_bad_start_line);
}

TEST(Http1, CapturedValuesBounded) {
  Http1Config cfg = test_config();
  cfg.capture.max_value_len = 8;
  Script s = script({{C, "GET /0123456789abcdef HTTP/1.1\r\nHost: a-very-long-host\r\nX-Tenant: t\r\n\r\n"}});
  Outcome got = run(s, cfg);
  ASSERT_FALSE(got.ev.empty());
  EXPECT_EQ(got.ev[0], "req s=0 GET /0123456 auth=a-very-l ct= x0=t x1= trunc=6 es");
  expect_split_invariant(s, cfg);
}

TEST(Http1, GarbageNeverCrashesAndIsSticky) {
  std::mt19937 rng(7);
  Script good = script({
      {C, "POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"},
      {S, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
  });
  int failed = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    Script m = good;
    auto& seg = m[rng() % 2].data;
    for (int f = 0; f < 1 + iter % 3; ++f) seg[rng() % seg.size()] ^= uint8_t(1u << (rng() % 8));
    if (iter % 5 == 0) {
      seg.resize(rng() % 300);
      for (auto& b : seg) b = uint8_t(rng());
    }
    Recorder r;
    Http1Connection c(test_config(), r);
    test::feed_script(m, [&](Dir d, std::span<const uint8_t> b) { c.feed(d, b); }, {}, 1 + iter % 11);
    c.finish(S);
    if (c.failed()) {
      ++failed;
      size_t n = r.ev.size();
      c.feed(C, good[0].data);
      c.feed(S, good[1].data);
      EXPECT_EQ(r.ev.size(), n);
    }
  }
  EXPECT_GT(failed, 0);
}

}  // namespace
}  // namespace aiqos
