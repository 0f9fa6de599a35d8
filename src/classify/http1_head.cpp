// HTTP/1.x message heads (http1.h): the header fields that matter
// (framing, upgrade, the captured ones), and a whole head as request or
// response events with what the body that follows will be. The byte-level
// state machine that finds the fields is in http1.cpp.
#include <algorithm>
#include <cstring>
#include <string_view>

#include "classify/http1.h"

namespace aiqos {
namespace {

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c; }

bool ieq(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view v) noexcept {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// True if the comma-separated list holds `tok` (case-insensitive).
bool has_token(std::string_view list, std::string_view tok) noexcept {
  while (!list.empty()) {
    size_t c = list.find(',');
    if (ieq(trim(list.substr(0, c)), tok)) return true;
    if (c == std::string_view::npos) break;
    list.remove_prefix(c + 1);
  }
  return false;
}

int b64url(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-' || c == '+') return 62;
  if (c == '_' || c == '/') return 63;
  return -1;
}

}  // namespace

void Http1Connection::on_name(Dir d) noexcept {
  Side& s = side(d);
  s.fh = Fh::none;
  s.cap_slot = -1;
  s.tmp_len = 0;
  s.tmp_overflow = false;
  if (s.trailers) s.trailer_fields = true;
  if (s.name_overflow) return;
  std::string_view name(s.name.data(), s.name_len);
  if (s.trailers) {
    if (d == Dir::s2c && name == "grpc-status") s.fh = Fh::grpc_status;
    return;
  }
  if (name == "content-length") {
    s.fh = Fh::content_length;
  } else if (name == "transfer-encoding") {
    s.fh = Fh::transfer_encoding;
  } else if (name == "upgrade") {
    s.fh = Fh::upgrade;
  } else if (d == Dir::c2s && name == "http2-settings") {
    s.fh = Fh::http2_settings;
  } else if (d == Dir::s2c && name == "grpc-status") {
    s.fh = Fh::grpc_status;
  } else if (d == Dir::s2c && name == "content-type" && s.ctype_len == 0) {
    s.fh = Fh::content_type;
  } else if (d == Dir::s2c && name == "content-encoding") {
    s.fh = Fh::content_encoding;
  }
  if (d == Dir::c2s) {
    int slot = req_.slot_for(name);
    if (slot >= 0 && !req_.has(slot)) {
      req_.mark_set(slot);
      s.cap_slot = static_cast<int8_t>(slot);
    }
  }
}

void Http1Connection::on_value(Dir d) noexcept {
  Side& s = side(d);
  if (s.cap_slot >= 0) req_.trim_trailing_ows(s.cap_slot);
  std::string_view v = trim({s.tmp.data(), s.tmp_len});
  switch (s.fh) {
    case Fh::content_length: {
      if (s.tmp_overflow || v.empty() || v.size() > 18) return fail(L7Error::h1_bad_length);
      uint64_t x = 0;
      for (char ch : v) {
        if (ch < '0' || ch > '9') return fail(L7Error::h1_bad_length);
        x = x * 10 + static_cast<uint64_t>(ch - '0');
      }
      if (s.has_cl && x != s.cl) return fail(L7Error::h1_bad_length);
      s.has_cl = true;
      s.cl = x;
      break;
    }
    case Fh::transfer_encoding: {
      if (s.tmp_overflow) return fail(L7Error::h1_bad_header);
      s.te = true;
      size_t c = v.rfind(',');
      s.te_chunked = ieq(trim(c == std::string_view::npos ? v : v.substr(c + 1)), "chunked");
      break;
    }
    case Fh::upgrade:
      s.upgrade = true;
      if (has_token(v, "h2c")) s.upgrade_h2c = true;
      break;
    case Fh::http2_settings:
      s.h2_settings = true;
      decode_h2_settings(s);
      break;
    case Fh::grpc_status: {
      // At most 4 digits, checked before accumulating: a longer value once
      // overflowed `x` (signed, UB; found by http1_fuzz).
      if (v.empty() || v.size() > 4) break;
      int x = 0;
      bool ok = true;
      for (char ch : v) {
        ok = ok && ch >= '0' && ch <= '9';
        x = x * 10 + (ch - '0');
      }
      if (ok) s.grpc_status = static_cast<int16_t>(x);
      break;
    }
    case Fh::content_type:
      while (s.ctype_len > 0 && (resp_ctype_[s.ctype_len - 1] == ' ' || resp_ctype_[s.ctype_len - 1] == '\t'))
        --s.ctype_len;
      break;
    case Fh::content_encoding:
      s.encoded = s.encoded || s.tmp_overflow || !(v.empty() || ieq(v, "identity"));
      break;
    case Fh::none:
      break;
  }
  s.fh = Fh::none;
  s.cap_slot = -1;
}

void Http1Connection::decode_h2_settings(Side& s) noexcept {
  // base64url (RFC 7540 3.2.1) of a SETTINGS payload: 6-byte entries.
  std::array<uint8_t, 96> raw{};
  size_t nraw = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < s.tmp_len && nraw < raw.size(); ++i) {
    int v = b64url(s.tmp[i]);
    if (v < 0) break;  // '=' padding or junk ends the value
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      raw[nraw++] = static_cast<uint8_t>(acc >> bits);
    }
  }
  for (size_t i = 0; i + 6 <= nraw; i += 6) {
    if (raw[i] == 0 && raw[i + 1] == 1) {
      s.h2_hts = (uint32_t{raw[i + 2]} << 24) | (uint32_t{raw[i + 3]} << 16) |
                 (uint32_t{raw[i + 4]} << 8) | raw[i + 5];
      s.has_h2_hts = true;
    }
  }
}

void Http1Connection::on_section_end(Dir d) noexcept {
  Side& s = side(d);
  if (s.trailers) return message_end(d);
  if (d == Dir::c2s) return on_request_head(s);
  on_response_head(s);
}

void Http1Connection::on_request_head(Side& s) noexcept {
  if (s.te && !s.te_chunked) return fail(L7Error::h1_bad_length);  // RFC 9112 6.3 (4)
  bool chunked = s.te;
  s.left = chunked ? 0 : s.cl;
  bool h2c = s.upgrade_h2c && s.h2_settings && stats_.requests == 0;
  if (q_len_ >= std::max<uint16_t>(cfg_.max_pipeline, 1)) return fail(L7Error::h1_pipeline_overflow);
  ++stats_.requests;
  PendingReq r{h2c ? 1u : 0u, s.head, s.connect, s.upgrade, h2c};
  queue_[(q_head_ + q_len_) % std::max<uint16_t>(cfg_.max_pipeline, 1)] = r;
  ++q_len_;
  if (h2c && s.has_h2_hts) h2c_hts_ = s.h2_hts;
  cur_req_stream_ = r.stream_id;
  cur_req_h2c_ = h2c;

  RequestHead h;
  h.stream_id = r.stream_id;
  req_.fill(h);
  h.end_stream = !chunked && s.left == 0;
  sink_.on_request_headers(h);
  if (chunked) {
    s.st = St::chunk_size;
  } else if (s.left > 0) {
    s.st = St::body_len;
  } else {
    message_end(Dir::c2s);
  }
}

void Http1Connection::on_response_head(Side& s) noexcept {
  const uint16_t cap = std::max<uint16_t>(cfg_.max_pipeline, 1);
  if (s.status >= 100 && s.status < 200 && s.status != 101) {
    ++stats_.interim_responses;
    s.st = St::start;
    return;
  }
  PendingReq r{};
  if (q_len_ > 0) {
    r = queue_[q_head_];
    q_head_ = static_cast<uint16_t>((q_head_ + 1) % cap);
    --q_len_;
  } else {
    ++stats_.unsolicited_responses;
  }
  ++stats_.responses;
  cur_resp_ = r;
  Side& c2s = side(Dir::c2s);
  if (r.h2c && s.status == 101 && cfg_.h2c_pause) {
    s2c_switched_ = true;  // stream 1's response comes as HTTP/2
    s.st = St::paused;
    return;
  }
  if (r.h2c && c2s.st == St::paused) c2s.st = St::start;  // upgrade declined

  bool tunnel = s.status == 101 || (r.connect && s.status >= 200 && s.status < 300);
  bool no_body = tunnel || r.head || s.status == 204 || s.status == 304;
  ResponseHead h;
  h.stream_id = r.stream_id;
  h.status = s.status;
  h.grpc_status = s.grpc_status;
  h.content_type = {resp_ctype_, s.ctype_len};
  h.encoded = s.encoded;
  if (no_body) {
    s.left = 0;
    s.st = St::start;
  } else if (s.te_chunked) {
    s.left = 0;
    s.st = St::chunk_size;
  } else if (s.te || !s.has_cl) {
    s.st = St::body_close;
  } else {
    s.left = s.cl;
    s.st = s.cl ? St::body_len : St::start;
  }
  h.end_stream = s.st == St::start;
  sink_.on_response_headers(h);
  if (h.end_stream) message_end(Dir::s2c);
  if (tunnel) {
    tunnel_ = true;
    for (Side& x : sides_) x.st = St::tunnel;
  }
}

}  // namespace aiqos
