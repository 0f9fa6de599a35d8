#include "classify/l7_detect.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <string>
#include <vector>

#include "http_test_util.h"

// In aiqos::test, beside the HTTP test helpers (Bytes, Script, Recorder, h2_frame, ...).
namespace aiqos::test {
namespace {

constexpr Dir C = Dir::c2s, S = Dir::s2c;

Bytes preface() { return Bytes(Http2Connection::kPreface.begin(), Http2Connection::kPreface.end()); }

L7Config test_config() {
  L7Config c;
  EXPECT_TRUE(c.capture.extra.add("x-tenant"));
  return c;
}

struct Outcome {
  std::vector<std::string> ev;
  L7Proto proto;
  ClientSide side;
  bool h2c;
};

Outcome run(const Script& s, const std::vector<size_t>& cuts = {}, size_t step = 0) {
  L7Config cfg = test_config();
  Recorder r;
  r.n_extra = 1;
  L7Connection c(cfg, r);
  feed_script(s, [&](Dir d, std::span<const uint8_t> b) { c.feed(d, b); }, cuts, step);
  c.finish(S);
  return {r.ev, c.proto(), c.client_side(), c.h2c_upgraded()};
}

void expect_split_invariant(const Script& s) {
  Outcome whole = run(s);
  size_t n = test::script_size(s);
  for (size_t k = 1; k < n; ++k) {
    Outcome split = run(s, {k});
    ASSERT_EQ(split.ev, whole.ev) << "split at " << k;
    ASSERT_EQ(split.proto, whole.proto);
    ASSERT_EQ(split.side, whole.side);
  }
  EXPECT_EQ(run(s, {}, 1).ev, whole.ev);
}

TEST(L7Detect, SniffFirstBytes) {
  auto sniff = [](const std::string& s) { return sniff_first_bytes({(const uint8_t*)s.data(), s.size()}); };
  EXPECT_EQ(sniff(""), FirstBytes::need_more);
  EXPECT_EQ(sniff("PRI * HTTP/2.0\r\n"), FirstBytes::need_more);
  EXPECT_EQ(sniff("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), FirstBytes::h2_preface);
  EXPECT_EQ(sniff("GET"), FirstBytes::need_more);
  EXPECT_EQ(sniff("GET "), FirstBytes::need_more);
  EXPECT_EQ(sniff("GET /"), FirstBytes::h1_request);
  EXPECT_EQ(sniff("POST /v1/chat"), FirstBytes::h1_request);
  EXPECT_EQ(sniff("OPTIONS * HTTP/1.1"), FirstBytes::h1_request);
  EXPECT_EQ(sniff("CONNECT api.example.com:443 HTTP/1.1"), FirstBytes::h1_request);
  EXPECT_EQ(sniff("HTTP/1"), FirstBytes::need_more);
  EXPECT_EQ(sniff("HTTP/1.1 200 OK"), FirstBytes::h1_response);
  EXPECT_EQ(sniff(std::string("\x16\x03\x01\x02\x00\x01", 6)), FirstBytes::tls_client_hello);
  EXPECT_EQ(sniff(std::string("\x16\x03\x03\x00\x5a\x02", 6)), FirstBytes::tls_other);
  EXPECT_EQ(sniff(std::string("\x16\x03", 2)), FirstBytes::need_more);
  EXPECT_EQ(sniff("SSH-2.0-OpenSSH_9.2"), FirstBytes::other);
  EXPECT_EQ(sniff("get / HTTP/1.1"), FirstBytes::other);
  EXPECT_EQ(sniff("GET  /"), FirstBytes::other);
  EXPECT_EQ(sniff("ABCDEFGHIJKLMNOPQRSTUVWXYZ /"), FirstBytes::other);
  // A server's SETTINGS sent before the client's preface (node, Go, nghttpd).
  EXPECT_EQ(sniff(std::string("\x00\x00\x12\x04\x00", 5)), FirstBytes::need_more);
  EXPECT_EQ(sniff(std::string("\x00\x00\x12\x04\x00\x00\x00\x00\x00", 9)), FirstBytes::h2_server_settings);
  EXPECT_EQ(sniff(std::string("\x00\x00\x06\x04\x01\x00\x00\x00\x00", 9)), FirstBytes::h2_server_settings);
  EXPECT_EQ(sniff(std::string("\x00\x00\x12\x01\x04\x00\x00\x00\x01", 9)), FirstBytes::other);  // HEADERS
  EXPECT_EQ(sniff(std::string("\x00\x00\x07\x04\x00\x00\x00\x00\x00", 9)), FirstBytes::other);  // bad length
}

TEST(L7Detect, Http1AsLabeledAndSwapped) {
  Script s = {{C, bytes_of("GET /v1/models HTTP/1.1\r\nHost: h\r\nX-Tenant: t\r\n\r\n")},
              {S, bytes_of("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]")}};
  Outcome got = run(s);
  std::vector<std::string> want = {"req s=0 GET /v1/models auth=h ct= x0=t es", "reqend s=0", "resp s=0 200",
                                   "respbody s=0 []", "respend s=0"};
  EXPECT_EQ(got.ev, want);
  EXPECT_EQ(got.proto, L7Proto::http1);
  EXPECT_EQ(got.side, ClientSide::as_labeled);
  expect_split_invariant(s);

  // The flow table missed the handshake and labeled the client as server.
  Script r = {{S, s[0].data}, {C, s[1].data}};
  got = run(r);
  EXPECT_EQ(got.ev, want);
  EXPECT_EQ(got.side, ClientSide::swapped);
  expect_split_invariant(r);
}

TEST(L7Detect, Http2PriorKnowledge) {
  nghttp2_hd_deflater *ce, *se;
  ASSERT_EQ(nghttp2_hd_deflate_new(&ce, 4096), 0);
  ASSERT_EQ(nghttp2_hd_deflate_new(&se, 4096), 0);
  Bytes c = preface();
  append(c, h2_frame(4, 0, 0, {}));
  append(c, h2_frame(1, 5, 1, hpack_block(ce, {{":method", "GET"}, {":path", "/v1/models"}, {":authority", "a"}})));
  Bytes sv = h2_frame(4, 0, 0, {});
  append(sv, h2_frame(1, 5, 1, hpack_block(se, {{":status", "200"}})));
  Script s = {{C, c}, {S, sv}};
  Outcome got = run(s);
  EXPECT_EQ(got.proto, L7Proto::http2);
  EXPECT_EQ(got.side, ClientSide::as_labeled);
  EXPECT_EQ(got.ev, (std::vector<std::string>{"req s=1 GET /v1/models auth=a ct= x0= es", "reqend s=1",
                                               "resp s=1 200 es", "respend s=1"}));
  expect_split_invariant(s);
  Script r = {{S, c}, {C, sv}};
  got = run(r);
  EXPECT_EQ(got.side, ClientSide::swapped);
  EXPECT_EQ(got.ev.size(), 4u);
  nghttp2_hd_deflate_del(ce);
  nghttp2_hd_deflate_del(se);
}

TEST(L7Detect, TlsAndUnknown) {
  Outcome got = run({{C, Bytes{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00}}});
  EXPECT_EQ(got.proto, L7Proto::tls_candidate);
  EXPECT_EQ(got.side, ClientSide::as_labeled);
  EXPECT_TRUE(got.ev.empty());
  got = run({{S, Bytes{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00}}});
  EXPECT_EQ(got.side, ClientSide::swapped);
  got = run({{C, bytes_of("SSH-2.0-OpenSSH_9.2\r\n")}, {S, bytes_of("SSH-2.0-x\r\n")}});
  EXPECT_EQ(got.proto, L7Proto::unknown);
  EXPECT_EQ(got.ev, std::vector<std::string>{"error unknown_protocol"});
  got = run({{C, Bytes(40, 0)}});
  EXPECT_EQ(got.proto, L7Proto::unknown);
  // Fewer than 24 ambiguous bytes: still undecided.
  got = run({{C, bytes_of("PRI * HTTP/2.0")}});
  EXPECT_EQ(got.proto, L7Proto::undecided);
}

// h2c upgrade (RFC 7540 3.2): the HTTP/1.1 request becomes stream 1, its
// response comes as HTTP/2, the client goes on with stream 3. The server's
// encoder honours the client's HTTP2-Settings table size (256).
Script h2c_script() {
  nghttp2_hd_deflater *ce, *se;
  EXPECT_EQ(nghttp2_hd_deflate_new(&ce, 4096), 0);
  EXPECT_EQ(nghttp2_hd_deflate_new(&se, 256), 0);
  EXPECT_EQ(nghttp2_hd_deflate_change_table_size(se, 256), 0);
  Script s;
  s.push_back({C, bytes_of("POST /v1/embeddings HTTP/1.1\r\nHost: svc\r\nX-Tenant: red\r\n"
                           "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                           "HTTP2-Settings: AAEAAAEAAAMAAABk\r\nContent-Length: 4\r\n\r\nbody")});
  Bytes sv = bytes_of("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n");
  append(sv, h2_frame(4, 0, 0, {}));
  append(sv, h2_frame(1, 4, 1, hpack_block(se, {{":status", "200"}, {"content-type", "application/json"}})));
  append(sv, h2_frame(0, 1, 1, bytes_of("[0.1]")));
  s.push_back({S, sv});
  Bytes c = preface();
  append(c, h2_frame(4, 0, 0, {}));
  append(c, h2_frame(4, 1, 0, {}));
  append(c, h2_frame(1, 5, 3, hpack_block(ce, {{":method", "GET"}, {":path", "/health"}, {":authority", "svc"}})));
  s.push_back({C, c});
  Bytes s2 = h2_frame(4, 1, 0, {});
  append(s2, h2_frame(1, 5, 3, hpack_block(se, {{":status", "204"}})));
  s.push_back({S, s2});
  nghttp2_hd_deflate_del(ce);
  nghttp2_hd_deflate_del(se);
  return s;
}

TEST(L7Detect, H2cUpgrade) {
  Script s = h2c_script();
  Outcome got = run(s);
  std::vector<std::string> want = {
      "req s=1 POST /v1/embeddings auth=svc ct= x0=red",
      "reqbody s=1 body",
      "reqend s=1",
      "resp s=1 200 ct=application/json",
      "respbody s=1 [0.1]",
      "respend s=1",
      "req s=3 GET /health auth=svc ct= x0= es",
      "reqend s=3",
      "resp s=3 204 es",
      "respend s=3",
  };
  EXPECT_EQ(got.ev, want);
  EXPECT_EQ(got.proto, L7Proto::http2);
  EXPECT_TRUE(got.h2c);
  expect_split_invariant(s);
}

TEST(L7Detect, H2cUpgradeDeclined) {
  Script s;
  s.push_back({C, bytes_of("GET /a HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                           "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n\r\n")});
  s.push_back({S, bytes_of("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")});
  // The next request starts with "P", like the preface, then diverges.
  s.push_back({C, bytes_of("PUT /b HTTP/1.1\r\nHost: svc\r\nContent-Length: 0\r\n\r\n")});
  s.push_back({S, bytes_of("HTTP/1.1 204 No Content\r\n\r\n")});
  Outcome got = run(s);
  std::vector<std::string> want = {
      "req s=1 GET /a auth=svc ct= x0= es", "reqend s=1", "resp s=1 200", "respbody s=1 x", "respend s=1",
      "req s=0 PUT /b auth=svc ct= x0= es", "reqend s=0", "resp s=0 204 es", "respend s=0",
  };
  EXPECT_EQ(got.ev, want);
  EXPECT_EQ(got.proto, L7Proto::http1);
  EXPECT_FALSE(got.h2c);
  expect_split_invariant(s);

  // The client pipelines its next request before the server answered.
  Script p = {s[0], s[2], s[1], s[3]};
  std::vector<std::string> want_p = {want[0], want[1], want[5], want[6], want[2],
                                     want[3], want[4], want[7], want[8]};
  EXPECT_EQ(run(p).ev, want_p);
  expect_split_invariant(p);
}

}  // namespace
}  // namespace aiqos::test
