#include "classify/tls.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "data/tls_fixtures.h"

namespace aiqos {
namespace {

using Bytes = std::string;

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
Bytes fixture(const unsigned char* p, unsigned n) {
  return Bytes(reinterpret_cast<const char*>(p), n);
}
const Bytes kCurl = fixture(tls_client_hello_curl_bin, tls_client_hello_curl_bin_len);
const Bytes kSClient = fixture(tls_client_hello_s_client_bin, tls_client_hello_s_client_bin_len);

// --- ClientHello builder --------------------------------------------------------
Bytes u8(unsigned v) { return Bytes(1, static_cast<char>(v)); }
Bytes u16(unsigned v) { return u8(v >> 8) + u8(v); }
Bytes u24(unsigned v) { return u8(v >> 16) + u16(v & 0xffff); }
Bytes ext(unsigned type, const Bytes& body) { return u16(type) + u16(body.size()) + body; }
Bytes sni_ext(const std::vector<std::pair<unsigned, Bytes>>& names) {
  Bytes list;
  for (auto& [t, n] : names) list += u8(t) + u16(n.size()) + n;
  return ext(0, u16(list.size()) + list);
}
Bytes alpn_ext(const std::vector<Bytes>& protos) {
  Bytes list;
  for (const Bytes& p : protos) list += u8(p.size()) + p;
  return ext(16, u16(list.size()) + list);
}
Bytes hello_body(const Bytes& exts, const Bytes& ciphers = u16(0x1301) + u16(0xc02f),
                 const Bytes& session = Bytes(32, 's')) {
  Bytes b = u16(0x0303) + Bytes(32, 'r') + u8(session.size()) + session + u16(ciphers.size()) +
            ciphers + u8(1) + u8(0);
  return b + u16(exts.size()) + exts;
}
Bytes handshake(const Bytes& body) { return u8(1) + u24(body.size()) + body; }
// The handshake message cut into records of at most `frag` bytes.
Bytes records(const Bytes& hs, size_t frag = 16384) {
  Bytes out;
  for (size_t p = 0; p < hs.size(); p += frag) {
    Bytes part = hs.substr(p, frag);
    out += u8(22) + u16(0x0301) + u16(part.size()) + part;
  }
  return out;
}
Bytes client_hello(const Bytes& exts) { return records(handshake(hello_body(exts))); }

// --- running the parser -----------------------------------------------------------
struct Seen {
  TlsStatus status;
  std::string sni;
  std::vector<std::string> alpn;
  bool has_sni, has_alpn, alpn_truncated, tls13, ech;
  unsigned n_ext, n_grease, record_version, legacy_version;
  uint64_t consumed;
  bool operator==(const Seen&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Seen& s) {
  os << tls_status_name(s.status) << " sni=" << s.sni << " alpn=";
  for (auto& a : s.alpn) os << a << ",";
  return os << " ext=" << s.n_ext << " grease=" << s.n_grease << " consumed=" << s.consumed;
}

Seen seen(const TlsClientHelloParser& p) {
  Seen s{p.status(), {}, {}, false, false, false, false, false, 0, 0, 0, 0, 0};
  if (p.status() != TlsStatus::done) return s;
  const TlsClientHello& h = p.hello();
  s.sni = h.sni;
  for (std::string_view a : h.alpn_list()) s.alpn.emplace_back(a);
  s.has_sni = h.has_sni;
  s.has_alpn = h.has_alpn;
  s.alpn_truncated = h.alpn_truncated;
  s.tls13 = h.offers_tls13;
  s.ech = h.has_ech;
  s.n_ext = h.n_extensions;
  s.n_grease = h.n_grease;
  s.record_version = h.record_version;
  s.legacy_version = h.legacy_version;
  s.consumed = p.consumed();
  return s;
}

Seen run_chunks(std::string_view in, const std::vector<size_t>& cuts, size_t cap = 16384) {
  TlsClientHelloParser p(cap);
  size_t pos = 0;
  for (size_t c : cuts) {
    p.feed(bytes(in.substr(pos, c - pos)));
    pos = c;
  }
  p.feed(bytes(in.substr(pos)));
  return seen(p);
}

Seen run_all_splits(std::string_view in, size_t cap = 16384) {
  Seen whole = run_chunks(in, {}, cap);
  for (size_t i = 0; i <= in.size(); ++i) {
    Seen s = run_chunks(in, {i}, cap);
    EXPECT_EQ(s, whole) << "split at " << i;
    if (!(s == whole)) break;
  }
  TlsClientHelloParser p(cap);
  for (size_t i = 0; i < in.size(); ++i) p.feed(bytes(in.substr(i, 1)));
  EXPECT_EQ(seen(p), whole) << "1-byte chunks";
  return whole;
}

// --- real captures ------------------------------------------------------------------
TEST(TlsClientHello, CurlCapture) {
  Seen s = run_all_splits(kCurl);
  ASSERT_EQ(s.status, TlsStatus::done) << s;
  EXPECT_EQ(s.sni, "api.openai.com");
  EXPECT_EQ(s.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_TRUE(s.has_sni);
  EXPECT_TRUE(s.tls13);
  EXPECT_FALSE(s.ech);
  EXPECT_EQ(s.record_version, 0x0301u);
  EXPECT_EQ(s.legacy_version, 0x0303u);
  EXPECT_EQ(s.consumed, kCurl.size());
  EXPECT_GT(s.n_ext, 5u);
  EXPECT_EQ(s.n_grease, 0u);  // OpenSSL does not GREASE
}

TEST(TlsClientHello, OpensslSClientCapture) {
  Seen s = run_all_splits(kSClient);
  ASSERT_EQ(s.status, TlsStatus::done) << s;
  EXPECT_EQ(s.sni, "inference.example.com");
  EXPECT_EQ(s.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_TRUE(s.tls13);
  EXPECT_EQ(s.consumed, kSClient.size());
}

TEST(TlsClientHello, CaptureRefragmentedIntoManyRecords) {
  const Bytes hs = kCurl.substr(5);  // the handshake message of the one record
  Seen want = run_chunks(kCurl, {});
  for (size_t frag : {1u, 2u, 3u, 4u, 5u, 17u, 100u, 511u}) {
    Bytes r = records(hs, frag);
    Seen s = frag < 20 ? run_chunks(r, {r.size() / 2}) : run_all_splits(r);
    want.consumed = r.size();
    EXPECT_EQ(s, want) << "fragment " << frag;
  }
}

TEST(TlsClientHello, TrailingBytesIgnored) {
  Bytes in = kCurl + "\x14\x03\x03\x00\x01\x01" + Bytes(100, 'x');
  TlsClientHelloParser p;
  EXPECT_EQ(p.feed(bytes(in)), TlsStatus::done);
  EXPECT_EQ(p.consumed(), kCurl.size());
  EXPECT_EQ(p.feed(bytes("garbage")), TlsStatus::done);
  EXPECT_EQ(p.hello().sni, "api.openai.com");
}

TEST(TlsClientHello, ResetReusesBuffer) {
  TlsClientHelloParser p;
  p.feed(bytes(kCurl));
  p.reset();
  EXPECT_EQ(p.status(), TlsStatus::need_more);
  EXPECT_EQ(p.feed(bytes(kSClient)), TlsStatus::done);
  EXPECT_EQ(p.hello().sni, "inference.example.com");
}

// --- synthetic ---------------------------------------------------------------------------
TEST(TlsClientHello, GreaseAndUnknownExtensions) {
  Bytes exts = ext(0x0a0a, "") + ext(0x1234, "unknown payload") +
               sni_ext({{0, "chat.example.org"}}) + ext(10, u16(4) + u16(0x2a2a) + u16(29)) +
               alpn_ext({"\x3a\x3a", "h2", "http/1.1"}) +
               ext(43, u8(6) + u16(0x5a5a) + u16(0x0304) + u16(0x0303)) + ext(0xfafa, "\x00") +
               ext(0xfe0d, "ech-config-opaque");
  Bytes ciphers = u16(0x7a7a) + u16(0x1301) + u16(0x1302);
  Bytes in = records(handshake(hello_body(exts, ciphers)));
  Seen s = run_all_splits(in);
  ASSERT_EQ(s.status, TlsStatus::done) << s;
  EXPECT_EQ(s.sni, "chat.example.org");
  EXPECT_EQ(s.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_TRUE(s.tls13);
  EXPECT_TRUE(s.ech);
  EXPECT_EQ(s.n_ext, 8u);
  EXPECT_EQ(s.n_grease, 6u);  // cipher, 2 extensions, group, ALPN, version
}

TEST(TlsClientHello, SniAndAlpnVariants) {
  // The first host_name wins; other name types skipped.
  Seen s = run_all_splits(client_hello(sni_ext({{7, "other"}, {0, "a.b"}, {0, "c.d"}})));
  EXPECT_EQ(s.sni, "a.b");
  // No SNI, no ALPN.
  s = run_all_splits(client_hello(ext(23, "")));
  ASSERT_EQ(s.status, TlsStatus::done);
  EXPECT_FALSE(s.has_sni);
  EXPECT_FALSE(s.has_alpn);
  EXPECT_FALSE(s.tls13);
  // More protocols than kept.
  std::vector<Bytes> many;
  for (int i = 0; i < 12; ++i) many.push_back("p" + std::to_string(i));
  s = run_chunks(client_hello(alpn_ext(many)), {});
  EXPECT_EQ(s.alpn.size(), kMaxAlpn);
  EXPECT_EQ(s.alpn[7], "p7");
  EXPECT_TRUE(s.alpn_truncated);
  // No extensions block at all (old clients).
  Bytes body = u16(0x0301) + Bytes(32, 'r') + u8(0) + u16(2) + u16(0x002f) + u8(1) + u8(0);
  s = run_all_splits(records(handshake(body)));
  EXPECT_EQ(s.status, TlsStatus::done);
  EXPECT_EQ(s.n_ext, 0u);
  // A 255-byte host name, binary bytes reported as sent.
  s = run_chunks(client_hello(sni_ext({{0, Bytes(255, 'h')}})), {});
  EXPECT_EQ(s.sni, Bytes(255, 'h'));
  TlsClientHelloParser p;
  p.feed(bytes(client_hello(alpn_ext({"h2"}))));
  EXPECT_TRUE(p.hello().offers_alpn("h2"));
  EXPECT_FALSE(p.hello().offers_alpn("http/1.1"));
}

TEST(TlsClientHello, NotTls) {
  struct C {
    Bytes in;
    TlsStatus want;
    size_t decided_after;  // bytes needed to decide
  } cases[] = {
      {"GET / HTTP/1.1\r\n", TlsStatus::not_tls, 1},
      {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", TlsStatus::not_tls, 1},
      {Bytes("\x00\x00\x00", 3), TlsStatus::not_tls, 1},
      {"\x16\x02\x01\x00\x10", TlsStatus::not_tls, 2},
      {"\x16\x03\x05\x00\x10", TlsStatus::not_tls, 3},
      {Bytes("\x80\x2e\x01\x03\x01", 5), TlsStatus::sslv2, 3},
      {Bytes("\x80\x2e\x02\x03\x01", 5), TlsStatus::not_tls, 3},
      {"\x15\x03\x03\x00\x02\x02\x28", TlsStatus::not_tls, 1},  // an alert
  };
  for (const C& c : cases) {
    TlsClientHelloParser p;
    for (size_t i = 0; i < c.in.size(); ++i) {
      TlsStatus st = p.feed(bytes(c.in.substr(i, 1)));
      if (i + 1 < c.decided_after) {
        EXPECT_EQ(st, TlsStatus::need_more) << i;
      }
    }
    EXPECT_EQ(p.status(), c.want) << c.in;
    EXPECT_STRNE(tls_status_name(p.status()), "?");
  }
  EXPECT_EQ(run_chunks("", {}).status, TlsStatus::need_more);
  EXPECT_EQ(run_chunks(kCurl.substr(0, kCurl.size() - 1), {}).status, TlsStatus::need_more);
}

TEST(TlsClientHello, Malformed) {
  const Bytes good_exts = sni_ext({{0, "x.y"}}) + alpn_ext({"h2"});
  const Bytes hs = handshake(hello_body(good_exts));
  struct C {
    const char* name;
    Bytes in;
  } cases[] = {
      {"zero-length record", u8(22) + u16(0x0301) + u16(0) + hs},
      {"record over 2^14", u8(22) + u16(0x0301) + u16(16385) + hs},
      {"server hello", records(u8(2) + hs.substr(1))},
      {"alert between records",
       records(hs.substr(0, 10)) + "\x15\x03\x03\x00\x02\x02\x28" + records(hs.substr(10))},
      {"bad version in 2nd record",
       records(hs.substr(0, 10)) + "\x16\x02\x01\x00\x10" + records(hs.substr(10))},
      {"duplicate SNI", client_hello(sni_ext({{0, "a"}}) + sni_ext({{0, "b"}}))},
      {"duplicate ALPN", client_hello(alpn_ext({"h2"}) + alpn_ext({"h2"}))},
      {"empty host_name", client_hello(sni_ext({{0, ""}}))},
      {"empty SNI list", client_hello(ext(0, u16(0)))},
      {"SNI list past ext", client_hello(ext(0, u16(10) + "ab"))},
      {"SNI ext with trailing byte", client_hello(ext(0, u16(6) + u8(0) + u16(3) + "abc" + "z"))},
      {"empty ALPN proto", client_hello(ext(16, u16(3) + u8(0) + u8(1) + "x"))},
      {"empty ALPN list", client_hello(ext(16, u16(0)))},
      {"ALPN proto past list", client_hello(ext(16, u16(3) + u8(5) + "h2"))},
      {"ext past block",
       records(handshake(hello_body("").substr(0, 75) + u16(8) + u16(0) + u16(10) + "abcd"))},
      {"odd versions", client_hello(ext(43, u8(3) + u16(0x0304) + u8(3)))},
      {"odd groups", client_hello(ext(10, u16(3) + "abc"))},
      {"session id 33", records(handshake(hello_body(good_exts, u16(0x1301), Bytes(33, 's'))))},
      {"odd cipher bytes", records(handshake(hello_body(good_exts, u16(0x1301) + u8(1))))},
      {"no ciphers", records(handshake(hello_body(good_exts, "")))},
      {"bytes after extensions", records(handshake(hello_body(good_exts) + "x"))},
      {"short hello", records(handshake(Bytes(10, '\x03')))},
  };
  for (const C& c : cases) {
    Seen s = run_all_splits(c.in);
    EXPECT_EQ(s.status, TlsStatus::error) << c.name;
  }
}

TEST(TlsClientHello, TooLargeForBuffer) {
  Bytes big = client_hello(sni_ext({{0, "big.example"}}) + ext(21, Bytes(20000, '\0')));
  EXPECT_EQ(run_chunks(big, {}).status, TlsStatus::too_large);
  EXPECT_EQ(run_chunks(big, {}, 32 * 1024).status, TlsStatus::done);
  EXPECT_EQ(run_chunks(big, {}, 32 * 1024).sni, "big.example");
  EXPECT_EQ(run_all_splits(kCurl, 511).status, TlsStatus::too_large);
  EXPECT_EQ(run_chunks(kCurl, {}, 512).status, TlsStatus::done);  // exactly fits
  // Declared length of 16 MB: refused from the 4-byte header alone.
  TlsClientHelloParser p;
  EXPECT_EQ(p.feed(bytes(Bytes("\x16\x03\x01\x00\x04\x01\xff\xff\xff", 9))), TlsStatus::too_large);
}

TEST(TlsClientHello, MutationsNeverCrash) {
  std::mt19937 rng(3);
  for (const Bytes* seed : {&kCurl, &kSClient}) {
    for (int iter = 0; iter < 10000; ++iter) {
      Bytes b = *seed;
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        size_t pos = rng() % b.size();
        if (rng() % 2)
          b[pos] = static_cast<char>(b[pos] ^ (1 << (rng() % 8)));
        else
          b[pos] = static_cast<char>(rng());
      }
      Seen whole = run_chunks(b, {});
      EXPECT_EQ(run_chunks(b, {rng() % (b.size() + 1)}), whole);
      if (whole.status == TlsStatus::done) {
        EXPECT_LE(whole.sni.size(), b.size());
        EXPECT_LE(whole.alpn.size(), kMaxAlpn);
      }
    }
    for (size_t n = 0; n < seed->size(); ++n)
      EXPECT_EQ(run_chunks(seed->substr(0, n), {}).status, TlsStatus::need_more) << n;
  }
}

}  // namespace
}  // namespace aiqos
