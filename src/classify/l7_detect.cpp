#include "classify/l7_detect.h"

#include <algorithm>
#include <cstring>

namespace aiqos {
namespace {

constexpr size_t kMaxMethod = 16;

bool is_upper(uint8_t c) noexcept { return (c >= 'A' && c <= 'Z') || c == '-' || c == '_'; }

bool is_target_start(uint8_t c) noexcept {
  return c == '/' || c == '*' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '[';
}

}  // namespace

const char* l7_proto_name(L7Proto p) noexcept {
  switch (p) {
    case L7Proto::undecided: return "undecided";
    case L7Proto::http1: return "http1";
    case L7Proto::http2: return "http2";
    case L7Proto::tls_candidate: return "tls_candidate";
    case L7Proto::unknown: return "unknown";
  }
  return "?";
}

FirstBytes sniff_first_bytes(std::span<const uint8_t> b) noexcept {
  if (b.empty()) return FirstBytes::need_more;
  if (b[0] == 0x16) {
    if (b.size() < 6) return FirstBytes::need_more;
    return b[1] == 0x03 && b[5] == 0x01 ? FirstBytes::tls_client_hello : FirstBytes::tls_other;
  }
  if (b[0] == 0x00) {
    // Servers (Go, node, nghttpd) may send their SETTINGS as soon as the
    // connection opens, before the client's preface arrives: a 9-byte frame
    // header of type SETTINGS on stream 0 with a length that is a multiple
    // of 6. No request line or TLS record starts with a zero byte.
    if (b.size() < 9) return FirstBytes::need_more;
    uint32_t len = (uint32_t{b[0]} << 16) | (uint32_t{b[1]} << 8) | b[2];
    bool settings = b[3] == 0x04 && (b[4] & ~0x01) == 0 && b[5] == 0 && b[6] == 0 && b[7] == 0 && b[8] == 0 &&
                    len % 6 == 0 && len <= 16384;
    return settings ? FirstBytes::h2_server_settings : FirstBytes::other;
  }
  const auto& pre = Http2Connection::kPreface;
  size_t m = std::min(b.size(), pre.size());
  if (std::equal(b.begin(), b.begin() + m, pre.begin())) {
    return m == pre.size() ? FirstBytes::h2_preface : FirstBytes::need_more;
  }
  static constexpr char kResp[] = "HTTP/1.";
  m = std::min<size_t>(b.size(), 7);
  if (std::memcmp(b.data(), kResp, m) == 0) return m == 7 ? FirstBytes::h1_response : FirstBytes::need_more;
  size_t i = 0;
  while (i < b.size() && i <= kMaxMethod && is_upper(b[i])) ++i;
  if (i == b.size()) return i <= kMaxMethod ? FirstBytes::need_more : FirstBytes::other;
  if (i == 0 || i > kMaxMethod || b[i] != ' ') return FirstBytes::other;
  if (i + 1 == b.size()) return FirstBytes::need_more;
  return is_target_start(b[i + 1]) ? FirstBytes::h1_request : FirstBytes::other;
}

L7Connection::L7Connection(const L7Config& cfg, RequestEvents& sink) noexcept : cfg_(cfg), sink_(sink) {
  cfg_.http1.capture = cfg_.capture;
  cfg_.http2.capture = cfg_.capture;
  cfg_.http1.h2c_pause = true;
}

bool L7Connection::failed() const noexcept {
  return (h1_ && h1_->failed()) || (h2_ && h2_->failed()) || proto_ == L7Proto::unknown;
}

L7Error L7Connection::error() const noexcept {
  if (h1_ && h1_->failed()) return h1_->error();
  if (h2_ && h2_->failed()) return h2_->error();
  return proto_ == L7Proto::unknown ? L7Error::unknown_protocol : L7Error::none;
}

void L7Connection::feed(Dir labeled, std::span<const uint8_t> bytes) noexcept {
  if (bytes.empty() || failed() || proto_ == L7Proto::tls_candidate) return;
  if (proto_ != L7Proto::undecided) {
    route(swapped_ ? opposite(labeled) : labeled, bytes.data(), bytes.size());
    return;
  }
  auto& buf = sniff_[static_cast<size_t>(labeled)];
  uint8_t& have = sniff_len_[static_cast<size_t>(labeled)];
  const uint8_t held = have;
  size_t k = std::min(bytes.size(), kSniffBytes - have);
  std::memcpy(buf.data() + have, bytes.data(), k);
  have = static_cast<uint8_t>(have + k);
  FirstBytes what = sniff_first_bytes({buf.data(), have});
  if (what == FirstBytes::need_more && have < kSniffBytes) return;
  decide(labeled, what);
  if (proto_ != L7Proto::http1 && proto_ != L7Proto::http2) return;
  // Replay: the client's held bytes first, then the other side's (if any),
  // then the rest of this chunk.
  Dir other = opposite(labeled);
  Dir labeled_client = swapped_ ? Dir::s2c : Dir::c2s;
  auto replay = [&](Dir l, size_t n) {
    if (n) route(swapped_ ? opposite(l) : l, sniff_[static_cast<size_t>(l)].data(), n);
  };
  if (labeled == labeled_client) {
    replay(labeled, held);
    route(swapped_ ? opposite(labeled) : labeled, bytes.data(), bytes.size());
    replay(other, sniff_len_[static_cast<size_t>(other)]);
  } else {
    replay(other, sniff_len_[static_cast<size_t>(other)]);
    replay(labeled, held);
    route(swapped_ ? opposite(labeled) : labeled, bytes.data(), bytes.size());
  }
  sniff_len_ = {};
}

void L7Connection::decide(Dir labeled, FirstBytes what) noexcept {
  // Which labeled direction the client is, from what `labeled` sent.
  bool sender_is_client = true;
  switch (what) {
    case FirstBytes::h2_preface:
      proto_ = L7Proto::http2;
      break;
    case FirstBytes::h1_request:
      proto_ = L7Proto::http1;
      break;
    case FirstBytes::h1_response:
      proto_ = L7Proto::http1;
      sender_is_client = false;
      break;
    case FirstBytes::h2_server_settings:
      proto_ = L7Proto::http2;
      sender_is_client = false;
      break;
    case FirstBytes::tls_client_hello:
      proto_ = L7Proto::tls_candidate;
      break;
    case FirstBytes::tls_other:
      proto_ = L7Proto::tls_candidate;
      sender_is_client = false;
      break;
    case FirstBytes::need_more:
    case FirstBytes::other:
      proto_ = L7Proto::unknown;
      sink_.on_parse_error(L7Error::unknown_protocol);
      return;
  }
  Dir client = sender_is_client ? labeled : opposite(labeled);
  swapped_ = client == Dir::s2c;
  client_side_ = swapped_ ? ClientSide::swapped : ClientSide::as_labeled;
  if (proto_ == L7Proto::http1) {
    h1_.emplace(cfg_.http1, sink_);
  } else if (proto_ == L7Proto::http2) {
    h2_.emplace(cfg_.http2, sink_);
    route_ = {Route::http2, Route::http2};
  }
}

void L7Connection::ensure_h2() noexcept {
  if (h2_) return;
  h2c_ = true;
  proto_ = L7Proto::http2;
  h2_.emplace(cfg_.http2, sink_);
  h2_->start_upgraded(h1_->h2c_client_table_size());
}

void L7Connection::route(Dir d, const uint8_t* p, size_t n) noexcept {
  const auto& pre = Http2Connection::kPreface;
  while (n > 0 && !failed()) {
    if (route_[static_cast<size_t>(d)] == Route::http2) {
      h2_->feed(d, {p, n});
      return;
    }
    if (d == Dir::s2c && h1_->s2c_switched()) {
      ensure_h2();
      route_[1] = Route::http2;
      continue;
    }
    if (d == Dir::c2s && h1_->c2s_paused()) {
      // After an h2c upgrade request: the preface if the client switched.
      const uint8_t prev = preface_match_;
      size_t k = 0;
      while (k < n && preface_match_ < pre.size() && p[k] == pre[preface_match_]) {
        ++k;
        ++preface_match_;
      }
      if (preface_match_ == pre.size()) {
        ensure_h2();
        route_[0] = Route::http2;
        h2_->feed(Dir::c2s, pre);
        p += k;
        n -= k;
        continue;
      }
      if (k == n) return;  // a prefix so far
      preface_match_ = 0;  // not HTTP/2: the upgrade was declined
      h1_->resume_c2s();
      if (prev) h1_->feed(Dir::c2s, {pre.data(), prev});
      continue;
    }
    if (preface_match_ && d == Dir::c2s) {  // HTTP/1 resumed on its own mid-match
      const uint8_t prev = preface_match_;
      preface_match_ = 0;
      h1_->feed(Dir::c2s, {pre.data(), prev});
      continue;
    }
    size_t k = h1_->feed(d, {p, n});
    p += k;
    n -= k;
  }
}

void L7Connection::finish(Dir labeled) noexcept {
  // After an error (of either parser: an h2c connection whose HTTP/2 side
  // failed may still route a direction to HTTP/1) nothing more is reported.
  if (failed()) return;
  Dir d = swapped_ ? opposite(labeled) : labeled;
  if (h1_ && route_[static_cast<size_t>(d)] == Route::http1) h1_->finish(d);
}

}  // namespace aiqos
