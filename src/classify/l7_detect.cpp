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

L7Error L7Connection::error() const noexcept {
  if (h1_ && h1_->failed()) return h1_->error();
  if (h2_ && h2_->failed()) return h2_->error();
  return proto_ == L7Proto::unknown ? L7Error::unknown_protocol : L7Error::none;
}

void L7Connection::feed_any(Dir labeled, std::span<const uint8_t> bytes) noexcept {
  if (bytes.empty() || failed() || proto_ == L7Proto::tls_candidate) return;
  if (midstream_ && !ms_[static_cast<size_t>(labeled)].synced) {
    // A TLS handshake as the first bytes: the normal path parses its ClientHello.
    const bool first = ms_[0].seen == 0 && ms_[1].seen == 0;
    if (!(first && proto_ == L7Proto::undecided && bytes[0] == 0x16)) return midstream_feed(labeled, bytes);
    midstream_ = false;
  }
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
  if (midstream_ && !ms_[static_cast<size_t>(labeled)].synced) return;  // never parsed
  Dir d = swapped_ ? opposite(labeled) : labeled;
  if (h1_ && route_[static_cast<size_t>(d)] == Route::http1) h1_->finish(d);
}

void L7Connection::start_midstream(Dir client_guess) noexcept {
  if (proto_ != L7Proto::undecided || sniff_len_[0] || sniff_len_[1]) return;
  midstream_ = true;
  client_guess_ = client_guess;
}

void L7Connection::midstream_feed(Dir labeled, std::span<const uint8_t> bytes) noexcept {
  Resyncer& r = ms_[static_cast<size_t>(labeled)];
  if (r.seen >= cfg_.midstream_scan_limit) {
    // This direction never showed a start point: nothing more is looked at.
    if (proto_ == L7Proto::undecided) midstream_give_up();
    return;
  }
  r.seen += bytes.size();
  const size_t cap = std::max<size_t>(cfg_.midstream_buffer, 64);
  if (bytes.size() >= cap) {
    bytes = bytes.last(cap);
    r.buf.clear();
    r.resume_h1 = r.resume_h2 = 0;
  } else if (r.buf.size() + bytes.size() > cap) {
    // The oldest bytes go: a start point is looked for in the newest.
    size_t drop = r.buf.size() + bytes.size() - cap;
    r.buf.erase(r.buf.begin(), r.buf.begin() + static_cast<std::ptrdiff_t>(drop));
    r.resume_h1 = r.resume_h1 > drop ? r.resume_h1 - drop : 0;
    r.resume_h2 = r.resume_h2 > drop ? r.resume_h2 - drop : 0;
  }
  if (r.buf.size() + bytes.size() > r.buf.capacity()) {
    // Grow by doubling from 4 KiB up to the cap: a few allocations per
    // picked-up direction, each charged to the worker's budget.
    size_t want = std::max<size_t>(r.buf.capacity(), 4096);
    while (want < r.buf.size() + bytes.size()) want *= 2;
    want = std::min(want, cap);
    MidstreamBudget* mb = cfg_.midstream_budget;
    const size_t more = want - r.buf.capacity();
    if (mb != nullptr && mb->used + more > mb->cap) {
      ++mb->refused;
      if (proto_ == L7Proto::undecided) return midstream_give_up();
      midstream_release(r);
      r.seen = cfg_.midstream_scan_limit;  // this direction stays unparsed
      return;
    }
    if (mb != nullptr) mb->used += more;
    r.buf.reserve(want);
  }
  r.buf.insert(r.buf.end(), bytes.begin(), bytes.end());
  midstream_try(labeled);
}

bool L7Connection::midstream_try(Dir labeled) noexcept {
  Resyncer& r = ms_[static_cast<size_t>(labeled)];
  if (r.buf.empty() || r.synced) return false;
  const std::span<const uint8_t> b(r.buf);
  const uint32_t max_frame = cfg_.http2.max_frame_size;
  if (proto_ == L7Proto::undecided) {
    ResyncPoint h1 = find_resync(b, r.resume_h1, ResyncKind::h1_request, max_frame);
    ResyncPoint h2 = find_resync(b, r.resume_h2, ResyncKind::h2, max_frame);
    r.resume_h1 = h1.resume;
    r.resume_h2 = h2.resume;
    if (h1.found == Resync::yes && (h2.found != Resync::yes || h1.offset <= h2.offset)) {
      proto_ = L7Proto::http1;  // a request line: its sender is the client
      swapped_ = labeled == Dir::s2c;
      client_side_ = swapped_ ? ClientSide::swapped : ClientSide::as_labeled;
      h1_.emplace(cfg_.http1, sink_);
      // What the server sent so far answers requests from before the pickup.
      Resyncer& o = ms_[static_cast<size_t>(opposite(labeled))];
      o.buf.clear();
      o.resume_h1 = o.resume_h2 = 0;
      midstream_lock(labeled, h1.offset);
      return true;
    }
    if (h2.found == Resync::yes) {
      Dir client = h2.role == H2Role::client   ? labeled
                   : h2.role == H2Role::server ? opposite(labeled)
                                               : client_guess_;
      proto_ = L7Proto::http2;
      swapped_ = client == Dir::s2c;
      client_side_ = swapped_ ? ClientSide::swapped : ClientSide::as_labeled;
      h2_.emplace(cfg_.http2, sink_);
      h2_->start_midstream();
      route_ = {Route::http2, Route::http2};
      midstream_lock(labeled, h2.offset);
      if (!failed()) midstream_try(opposite(labeled));  // the other side's bytes so far
      return true;
    }
    if (r.seen >= cfg_.midstream_scan_limit) midstream_give_up();
    return false;
  }
  // The protocol is known: this direction looks for its own start point (a
  // frame boundary; for an HTTP/1 server, the next status line).
  const Dir d = swapped_ ? opposite(labeled) : labeled;
  const bool h2 = proto_ == L7Proto::http2;
  ResyncKind kind = h2 ? ResyncKind::h2 : (d == Dir::s2c ? ResyncKind::h1_status : ResyncKind::h1_request);
  size_t& resume = h2 ? r.resume_h2 : r.resume_h1;
  ResyncPoint p = find_resync(b, resume, kind, max_frame);
  resume = p.resume;
  if (p.found != Resync::yes) return false;
  midstream_lock(labeled, p.offset);
  return true;
}

void L7Connection::midstream_lock(Dir labeled, size_t offset) noexcept {
  Resyncer& r = ms_[static_cast<size_t>(labeled)];
  r.synced = true;
  std::vector<uint8_t> held;
  held.swap(r.buf);  // nothing is kept once in sync
  if (offset < held.size()) route(swapped_ ? opposite(labeled) : labeled, held.data() + offset, held.size() - offset);
  if (cfg_.midstream_budget != nullptr) cfg_.midstream_budget->used -= held.capacity();
}

void L7Connection::midstream_release(Resyncer& r) noexcept {
  if (cfg_.midstream_budget != nullptr) cfg_.midstream_budget->used -= r.buf.capacity();
  std::vector<uint8_t>().swap(r.buf);
}

void L7Connection::midstream_give_up() noexcept {
  proto_ = L7Proto::unknown;
  for (Resyncer& r : ms_) midstream_release(r);
  sink_.on_parse_error(L7Error::unknown_protocol);
}

L7Connection::~L7Connection() {
  for (Resyncer& r : ms_) midstream_release(r);
}

}  // namespace aiqos
