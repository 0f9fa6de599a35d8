// Mid-stream pickup: start points in HTTP/1 and HTTP/2 byte streams
// (midstream.h) and L7Connection picking up a connection at every possible
// cut point of a real-shaped conversation: what it reports after the cut is
// never wrong, and every request that starts after the cut is reported.
#include "classify/midstream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "classify/l7_detect.h"
#include "http_test_util.h"

namespace aiqos {
namespace {

using test::append;
using test::Bytes;
using test::bytes_of;
using test::h2_frame;
using test::hpack_block;
using test::Recorder;
using test::Script;

constexpr Dir C = Dir::c2s, S = Dir::s2c;
constexpr uint8_t kData = 0, kHeaders = 1, kSettings = 4, kContinuation = 9, kWindowUpdate = 8;
constexpr uint8_t kEndStream = 1, kEndHeaders = 4;

std::span<const uint8_t> sp(const Bytes& b) { return {b.data(), b.size()}; }

TEST(Midstream, RequestLineEveryPrefixNeedsMore) {
  Bytes line = bytes_of("POST /v1/chat/completions HTTP/1.1\r\n");
  for (size_t n = 1; n < line.size(); ++n)
    EXPECT_EQ(h1_request_line_at(sp(line).first(n)), Resync::need_more) << n;
  EXPECT_EQ(h1_request_line_at(sp(line)), Resync::yes);
  EXPECT_EQ(h1_request_line_at(sp(bytes_of("GET / HTTP/1.0\n"))), Resync::yes);
}

TEST(Midstream, RequestLineRejectsTailsAndText) {
  for (const char* s : {"T /v1/chat/completions HTTP/1.1\r\n", "ST /x HTTP/1.1\r\n", "FOO /x HTTP/1.1\r\n",
                        "POST  /x HTTP/1.1\r\n", "POST /x HTTP/2.0\r\n", "POST /x HTTP/1.1\rX",
                        "post /x HTTP/1.1\r\n", "{\"model\": \"x\"}", "POST x y"})
    EXPECT_EQ(h1_request_line_at(sp(bytes_of(s))), Resync::no) << s;
}

TEST(Midstream, StatusLine) {
  EXPECT_EQ(h1_status_line_at(sp(bytes_of("HTTP/1.1 200 OK\r\n"))), Resync::yes);
  EXPECT_EQ(h1_status_line_at(sp(bytes_of("HTTP/1.1 204\r\n"))), Resync::yes);
  EXPECT_EQ(h1_status_line_at(sp(bytes_of("HTTP/1.1 2"))), Resync::need_more);
  EXPECT_EQ(h1_status_line_at(sp(bytes_of("HTTP/1.1 20x "))), Resync::no);
  EXPECT_EQ(h1_status_line_at(sp(bytes_of("HTTP/1.1 700 "))), Resync::no);
  EXPECT_EQ(h1_status_line_at(sp(bytes_of("data: {\"x\"}"))), Resync::no);
}

struct Encoders {
  nghttp2_hd_deflater *c = nullptr, *s = nullptr;
  Encoders() {
    EXPECT_EQ(nghttp2_hd_deflate_new(&c, 4096), 0);
    EXPECT_EQ(nghttp2_hd_deflate_new(&s, 4096), 0);
  }
  ~Encoders() {
    nghttp2_hd_deflate_del(c);
    nghttp2_hd_deflate_del(s);
  }
};

Bytes request_block(Encoders& e, int i) {
  return hpack_block(e.c, {{":method", "POST"},
                           {":scheme", "http"},
                           {":path", "/v1/chat/completions"},
                           {":authority", "api.example"},
                           {"content-type", "application/json"},
                           {"x-request-id", "req-" + std::to_string(i)}});
}

TEST(Midstream, H2ChainAndRoles) {
  Encoders e;
  Bytes req = h2_frame(kHeaders, kEndHeaders, 1, request_block(e, 1));
  append(req, h2_frame(kData, kEndStream, 1, bytes_of("{\"model\":\"m\"}")));
  H2Chain c = h2_chain_at(sp(req), 16384);
  EXPECT_EQ(c.found, Resync::yes);  // two frames ending where the bytes end
  EXPECT_EQ(c.frames, 2);
  EXPECT_EQ(c.role, H2Role::client);
  Bytes one = h2_frame(kHeaders, kEndHeaders, 1, request_block(e, 2));
  EXPECT_EQ(h2_chain_at(sp(one), 16384).found, Resync::need_more);  // one frame proves nothing
  Bytes resp = h2_frame(kHeaders, kEndHeaders, 1, hpack_block(e.s, {{":status", "200"}}));
  append(resp, h2_frame(kData, 0, 1, bytes_of("data: x\n\n")));
  append(resp, h2_frame(kWindowUpdate, 0, 0, {0, 0, 1, 0}));
  c = h2_chain_at(sp(resp), 16384);
  EXPECT_EQ(c.found, Resync::yes);
  EXPECT_EQ(c.frames, 3);
  EXPECT_EQ(c.role, H2Role::server);
  // CONTINUATION cannot start a chain; a block must be continued.
  Bytes cont = h2_frame(kContinuation, kEndHeaders, 1, {0x82});
  append(cont, req);
  EXPECT_EQ(h2_chain_at(sp(cont), 16384).found, Resync::no);
  Bytes open = h2_frame(kHeaders, 0, 3, {0x83});
  append(open, h2_frame(kData, 0, 3, {1, 2}));
  EXPECT_EQ(h2_chain_at(sp(open), 16384).found, Resync::no);
  // Bad lengths and stream rules.
  EXPECT_EQ(h2_chain_at(sp(h2_frame(kSettings, 0, 1, Bytes(6))), 16384).found, Resync::no);
  EXPECT_EQ(h2_chain_at(sp(h2_frame(kSettings, 0, 0, Bytes(5))), 16384).found, Resync::no);
  EXPECT_EQ(h2_chain_at(sp(h2_frame(kData, 0, 1, Bytes(20000))), 16384).found, Resync::no);
}

TEST(Midstream, FindsFrameBoundaryAfterJunk) {
  Encoders e;
  Bytes b = bytes_of("ages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}");
  size_t start = b.size();
  append(b, h2_frame(kHeaders, kEndHeaders, 5, request_block(e, 5)));
  append(b, h2_frame(kData, kEndStream, 5, bytes_of("{\"model\":\"gpt-4o\"}")));
  ResyncPoint p = find_resync(sp(b), 0, ResyncKind::h2, 16384);
  ASSERT_EQ(p.found, Resync::yes);
  EXPECT_EQ(p.offset, start);
  EXPECT_EQ(p.role, H2Role::client);
  // Fed in pieces, the search resumes where it left off and finds the same point.
  size_t resume = 0;
  ResyncPoint q;
  for (size_t n = 1; n <= b.size(); ++n) {
    q = find_resync(sp(b).first(n), resume, ResyncKind::h2, 16384);
    if (q.found == Resync::yes) break;
    resume = q.resume;
  }
  EXPECT_EQ(q.found, Resync::yes);
  EXPECT_EQ(q.offset, start);
}

// A conversation of `n` requests: c2s and s2c segments as a real client and
// server would send them, with where each request's first byte lies.
struct Conv {
  Script script;
  struct Req {
    uint32_t stream;
    std::string body;
    size_t start;  // global script offset of its first byte
  };
  std::vector<Req> reqs;
};

Conv h2_conversation(int n) {
  Encoders e;
  Conv cv;
  Bytes c = Bytes(Http2Connection::kPreface.begin(), Http2Connection::kPreface.end());
  append(c, h2_frame(kSettings, 0, 0, {0, 4, 0, 0x10, 0, 0}));
  cv.script.push_back({C, c});
  Bytes s = h2_frame(kSettings, 0, 0, {0, 3, 0, 0, 0, 100});
  append(s, h2_frame(kSettings, 1, 0, {}));
  cv.script.push_back({S, s});
  cv.script.push_back({C, h2_frame(kSettings, 1, 0, {})});
  size_t off = 0;
  for (auto& seg : cv.script) off += seg.data.size();
  for (int i = 0; i < n; ++i) {
    uint32_t id = 1 + 2 * uint32_t(i);
    std::string body = "{\"model\":\"gpt-4o-" + std::to_string(i) +
                       "\",\"messages\":[{\"role\":\"user\",\"content\":\"question " + std::to_string(i) + "\"}]}";
    Bytes r = h2_frame(kHeaders, kEndHeaders, id, request_block(e, i));
    append(r, h2_frame(kData, kEndStream, id, bytes_of(body)));
    cv.reqs.push_back({id, body, off});
    off += r.size();
    cv.script.push_back({C, r});
    Bytes a = h2_frame(kHeaders, kEndHeaders, id,
                       hpack_block(e.s, {{":status", "200"}, {"content-type", "text/event-stream"}}));
    append(a, h2_frame(kData, 0, id, bytes_of("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n")));
    append(a, h2_frame(kData, kEndStream, id, bytes_of("data: [DONE]\n\n")));
    off += a.size();
    cv.script.push_back({S, a});
    cv.script.push_back({C, h2_frame(kWindowUpdate, 0, 0, {0, 0, 0, 100})});
    off += 13;
  }
  return cv;
}

Conv h1_conversation(int n) {
  Conv cv;
  size_t off = 0;
  for (int i = 0; i < n; ++i) {
    std::string body = "{\"model\":\"llama-3." + std::to_string(i) + "\",\"prompt\":\"GET / HTTP/1.1\"}";
    std::string req = "POST /v1/completions HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/json\r\n"
                      "Content-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body;
    cv.reqs.push_back({0, body, off});
    cv.script.push_back({C, bytes_of(req)});
    off += req.size();
    std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"id\":\"x\"}\n";
    cv.script.push_back({S, bytes_of(resp)});
    off += resp.size();
  }
  return cv;
}

// The script from global offset `cut` on.
Script cut_script(const Script& s, size_t cut) {
  Script out;
  size_t base = 0;
  for (const auto& seg : s) {
    if (base + seg.data.size() > cut) {
      size_t from = cut > base ? cut - base : 0;
      out.push_back({seg.dir, Bytes(seg.data.begin() + std::ptrdiff_t(from), seg.data.end())});
    }
    base += seg.data.size();
  }
  return out;
}

std::vector<std::string> pick_up(const Script& s, size_t step = 0) {
  L7Config cfg;
  Recorder r;
  L7Connection c(cfg, r);
  c.start_midstream(C);
  test::feed_script(s, [&](Dir d, std::span<const uint8_t> b) { c.feed(d, b); }, {}, step);
  return r.ev;
}

// What was reported: request bodies by stream (HTTP/1: in order, key 0, 1, ...).
void check_pickup(const Conv& cv, size_t cut, const std::vector<std::string>& ev, bool h2) {
  std::map<uint32_t, std::string> bodies;
  uint32_t h1_next = 0;
  std::vector<uint32_t> h1_ids;
  for (const std::string& e : ev) {
    ASSERT_EQ(e.rfind("error", 0), std::string::npos) << "cut " << cut << ": " << e;
    if (e.rfind("req s=", 0) == 0) {
      if (!h2) h1_ids.push_back(h1_next++);
      EXPECT_NE(e.find("POST"), std::string::npos) << "cut " << cut << ": " << e;
    }
    if (e.rfind("reqbody s=", 0) == 0) {
      size_t sp1 = e.find(' ', 10);
      uint32_t id = h2 ? uint32_t(std::stoul(e.substr(10, sp1 - 10))) : h1_next - 1;
      bodies[id] += e.substr(sp1 + 1);
    }
  }
  // Nothing wrong: each body reported is one that was sent, whole.
  size_t first_after = 0;
  while (first_after < cv.reqs.size() && cv.reqs[first_after].start < cut) ++first_after;
  for (auto& [id, body] : bodies) {
    bool found = false;
    for (const auto& r : cv.reqs) found |= r.body == body && (!h2 || r.stream == id);
    EXPECT_TRUE(found) << "cut " << cut << ": unexpected body " << body;
  }
  // Every request that started after the cut is there.
  size_t want = cv.reqs.size() - first_after;
  size_t got = 0;
  for (size_t i = first_after; i < cv.reqs.size(); ++i)
    for (auto& [id, body] : bodies) got += body == cv.reqs[i].body;
  EXPECT_EQ(got, want) << "cut " << cut;
}

TEST(Midstream, Http2PickedUpAtEveryCut) {
  Conv cv = h2_conversation(6);
  size_t total = test::script_size(cv.script);
  for (size_t cut = 0; cut <= total; ++cut) {
    std::vector<std::string> ev = pick_up(cut_script(cv.script, cut));
    check_pickup(cv, cut, ev, true);
    if (cut % 61 == 0) {
      EXPECT_EQ(pick_up(cut_script(cv.script, cut), 7), ev) << "cut " << cut << " fed in 7s";
    }
  }
}

// A direction picked up inside a frame stays on the resync path until it
// finds a frame start, even after the other direction synced and the
// connection is known to be HTTP/2: a response frame continued in a later
// segment, after the client's next request (multiplexing), is never parsed
// from its middle. The inline steady-state route (L7Connection::feed) must
// not take such a direction.
TEST(Midstream, Http2UnsyncedDirectionWaitsForFrameStart) {
  Conv cv = h2_conversation(4);
  const Bytes& resp1 = cv.script[4 + 3 * 1].data;  // the response to request 1
  ASSERT_GT(resp1.size(), 30u);
  Script s;
  s.push_back({S, Bytes(resp1.begin() + 5, resp1.begin() + 12)});  // inside its HEADERS frame
  s.push_back({C, cv.script[5 + 3 * 1].data});                    // WINDOW_UPDATE
  s.push_back({C, cv.script[3 + 3 * 2].data});                    // request 2: the client syncs
  s.push_back({S, Bytes(resp1.begin() + 12, resp1.end())});      // the rest of response 1
  for (size_t i = 4 + 3 * 2; i < cv.script.size(); ++i) s.push_back(cv.script[i]);
  std::vector<std::string> ev = pick_up(s);
  std::string bodies;
  for (const std::string& e : ev) {
    EXPECT_EQ(e.rfind("error", 0), std::string::npos) << e;
    if (e.rfind("reqbody s=", 0) == 0) bodies += e;
  }
  EXPECT_NE(bodies.find(cv.reqs[2].body), std::string::npos);
  EXPECT_NE(bodies.find(cv.reqs[3].body), std::string::npos);
  // The server's direction found its frame start: the later responses are there.
  for (const char* want : {"respbody s=5 data:", "respend s=5", "respbody s=7 data:", "respend s=7"})
    EXPECT_TRUE(std::any_of(ev.begin(), ev.end(), [&](const std::string& e) { return e.rfind(want, 0) == 0; }))
        << want;
}

TEST(Midstream, Http2LostTableGivesPartialHeaders) {
  Conv cv = h2_conversation(4);
  // From the third request on: :path and :authority were indexed by the first.
  std::vector<std::string> ev = pick_up(cut_script(cv.script, cv.reqs[2].start));
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev[0].rfind("req s=5 POST", 0), 0u) << ev[0];
  EXPECT_NE(ev[0].find("partial"), std::string::npos) << ev[0];
}

TEST(Midstream, Http1PickedUpAtEveryCut) {
  Conv cv = h1_conversation(5);
  size_t total = test::script_size(cv.script);
  for (size_t cut = 0; cut <= total; ++cut) {
    std::vector<std::string> ev = pick_up(cut_script(cv.script, cut));
    check_pickup(cv, cut, ev, false);
    if (cut % 37 == 0) {
      EXPECT_EQ(pick_up(cut_script(cv.script, cut), 5), ev) << "cut " << cut << " fed in 5s";
    }
  }
}

TEST(Midstream, GivesUpOnUnknownBytesWithinBound) {
  L7Config cfg;
  cfg.midstream_buffer = 1024;
  cfg.midstream_scan_limit = 8192;
  MidstreamBudget budget;
  cfg.midstream_budget = &budget;
  Recorder r;
  {
    L7Connection c(cfg, r);
    c.start_midstream(C);
    Bytes junk(1000, 'x');
    for (int i = 0; i < 20; ++i) c.feed(C, sp(junk));
    EXPECT_EQ(c.proto(), L7Proto::unknown);
    EXPECT_EQ(budget.used, 0u);  // given back once given up
  }
  EXPECT_EQ(r.ev, std::vector<std::string>{"error unknown_protocol"});
  EXPECT_EQ(budget.used, 0u);
}

TEST(Midstream, BudgetBoundsWhatIsHeld) {
  L7Config cfg;
  MidstreamBudget budget;
  budget.cap = 8192;
  cfg.midstream_budget = &budget;
  Recorder r1, r2;
  L7Connection a(cfg, r1), b(cfg, r2);
  a.start_midstream(C);
  b.start_midstream(C);
  Bytes junk(6000, 'y');
  a.feed(C, sp(junk));
  EXPECT_LE(budget.used, budget.cap);
  b.feed(C, sp(junk));  // no room left: gives up rather than grow
  EXPECT_LE(budget.used, budget.cap);
  EXPECT_EQ(budget.refused, 1u);
  EXPECT_EQ(b.proto(), L7Proto::unknown);
}

TEST(Midstream, TlsHandshakeKeepsNormalPath) {
  L7Config cfg;
  Recorder r;
  L7Connection c(cfg, r);
  c.start_midstream(C);
  c.feed(C, sp(Bytes{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00}));
  EXPECT_EQ(c.proto(), L7Proto::tls_candidate);
  EXPECT_FALSE(c.midstream());
}

}  // namespace
}  // namespace aiqos
