#include "classify/http1.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <string_view>

namespace aiqos {
namespace {

bool is_tchar(uint8_t c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c; }

int hexval(uint8_t c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// First index in [p, p+n) holding one of the stop bytes, or n.
size_t scan(const uint8_t* p, size_t n, uint8_t a, uint8_t b, uint8_t c) noexcept {
  for (size_t i = 0; i < n; ++i)
    if (p[i] == a || p[i] == b || p[i] == c) return i;
  return n;
}

bool is_http1_version(std::string_view v) noexcept {
  return v.size() == 8 && v.substr(0, 7) == "HTTP/1." && v[7] >= '0' && v[7] <= '9';
}

}  // namespace

Http1Connection::Http1Connection(const Http1Config& cfg, RequestEvents& sink) noexcept
    : cfg_(cfg), sink_(sink) {
  bool ok = req_.init(cfg_.capture);
  resp_ctype_ = new (std::nothrow) char[cfg_.capture.max_value_len + 1];
  queue_ = new (std::nothrow) PendingReq[std::max<uint16_t>(cfg_.max_pipeline, 1)];
  if (!ok || !resp_ctype_ || !queue_) fail(L7Error::h1_pipeline_overflow);
}

Http1Connection::~Http1Connection() {
  delete[] resp_ctype_;
  delete[] queue_;
}

void Http1Connection::fail(L7Error e) noexcept {
  if (error_ != L7Error::none) return;
  error_ = e;
  sink_.on_parse_error(e);
}

bool Http1Connection::c2s_paused() const noexcept { return sides_[0].st == St::paused; }
bool Http1Connection::s2c_switched() const noexcept { return s2c_switched_; }

void Http1Connection::resume_c2s() noexcept {
  if (sides_[0].st == St::paused) sides_[0].st = St::start;
}

size_t Http1Connection::feed(Dir d, std::span<const uint8_t> bytes) noexcept {
  const uint8_t* p = bytes.data();
  size_t n = bytes.size(), done = 0;
  while (done < n && !failed()) {
    Side& s = side(d);
    if (s.st == St::paused) return done;
    if (s.st == St::tunnel) {
      stats_.tunnel_bytes += n - done;
      return n;
    }
    done += step(d, p + done, n - done);
  }
  stats_.ignored_bytes += n - done;
  return n;
}

void Http1Connection::finish(Dir d) noexcept {
  if (!failed() && d == Dir::s2c && side(d).st == St::body_close) message_end(d);
}

void Http1Connection::begin_message(Dir d) noexcept {
  Side& s = side(d);
  St st = s.st;
  s = Side{};
  s.st = st;
  if (d == Dir::c2s) {
    req_.reset();
    req_.mark_set(kPath);
  }
}

size_t Http1Connection::step(Dir d, const uint8_t* p, size_t n) noexcept {
  Side& s = side(d);
  bool in_section = s.st <= St::end_lf;
  if (in_section && s.section >= cfg_.max_header_section) {
    fail(L7Error::h1_header_too_large);
    return 0;
  }
  if (in_section) {
    size_t k = header_bytes(d, p, n);
    s.section += static_cast<uint32_t>(k);
    return k;
  }

  const uint8_t c = p[0];
  size_t k = 0;
  switch (s.st) {
    case St::body_len: {
      k = static_cast<size_t>(std::min<uint64_t>(n, s.left));
      s.left -= k;
      body(d, p, k);
      if (s.left == 0) message_end(d);
      return k;
    }
    case St::body_close:
      body(d, p, n);
      return n;
    case St::chunk_size: {
      // The hex digits of the size in one pass; the delimiter on the next call.
      size_t i = 0;
      for (int v; i < n && (v = hexval(p[i])) >= 0; ++i) {
        if (++s.chunk_digits > 15) {
          fail(L7Error::h1_bad_chunk);
          return i + 1;
        }
        s.left = s.left * 16 + static_cast<uint64_t>(v);
      }
      // The common case, "<hex>\r\n" whole in this segment: on to the data.
      if (i > 0 && i + 1 < n && p[i] == '\r' && p[i + 1] == '\n') {
        s.st = St::chunk_size_lf;
        return i + 1 + step(d, p + i + 1, n - i - 1);
      }
      if (i > 0) return i;
      if (s.chunk_digits == 0) {
        fail(L7Error::h1_bad_chunk);
        return 1;
      }
      if (c == ';' || c == ' ' || c == '\t') {
        s.st = St::chunk_ext;
      } else if (c == '\r') {
        s.st = St::chunk_size_lf;
      } else if (c == '\n') {
        s.st = St::chunk_size_lf;
        return 0;  // handled as the LF below
      } else {
        fail(L7Error::h1_bad_chunk);
      }
      return 1;
    }
    case St::chunk_ext: {
      k = scan(p, n, '\r', '\n', '\n');
      if (k < n) s.st = St::chunk_size_lf;
      return k + (k < n && p[k] == '\r' ? 1 : 0);
    }
    case St::chunk_size_lf:
      if (c != '\n') {
        fail(L7Error::h1_bad_chunk);
        return 1;
      }
      s.chunk_digits = 0;
      if (s.left == 0) {  // last chunk: a trailer section follows
        s.trailers = true;
        s.section = 0;
        s.grpc_status = -1;
        s.st = St::line_start;
      } else {
        s.st = St::chunk_data;
      }
      return 1;
    case St::chunk_data: {
      k = static_cast<size_t>(std::min<uint64_t>(n, s.left));
      s.left -= k;
      body(d, p, k);
      if (s.left != 0) return k;
      // The common case, the chunk's CRLF right behind it in this segment.
      if (k + 1 < n && p[k] == '\r' && p[k + 1] == '\n') {
        s.st = St::chunk_size;
        return k + 2;
      }
      s.st = St::chunk_data_cr;
      return k;
    }
    case St::chunk_data_cr:
      if (c == '\r') {
        s.st = St::chunk_data_lf;
        return 1;
      }
      s.st = St::chunk_data_lf;
      return 0;
    case St::chunk_data_lf:
      if (c != '\n') {
        fail(L7Error::h1_bad_chunk);
        return 1;
      }
      s.st = St::chunk_size;
      s.left = 0;
      return 1;
    default:
      return n;
  }
}

// States of start lines and header sections (request, response, trailers).
// Returns bytes consumed; 0 only with a state change (the byte is re-read).
size_t Http1Connection::header_bytes(Dir d, const uint8_t* p, size_t n) noexcept {
  Side& s = side(d);
  const uint8_t c = p[0];
  switch (s.st) {
    case St::start:
      if (c == '\r' || c == '\n') return 1;  // empty lines before a message (RFC 9112 2.2)
      begin_message(d);
      s.st = d == Dir::c2s ? St::method : St::version;
      return 0;
    case St::method:
      if (c == ' ' && s.tmp_len > 0) {
        std::string_view m(s.tmp.data(), s.tmp_len);
        req_.set(kMethod, m);
        s.head = m == "HEAD";
        s.connect = m == "CONNECT";
        s.tmp_len = 0;
        s.st = St::target;
      } else if (is_tchar(c) && s.tmp_len < 32) {
        s.tmp[s.tmp_len++] = static_cast<char>(c);
      } else {
        fail(L7Error::h1_bad_start_line);
      }
      return 1;
    case St::target: {
      size_t k = scan(p, n, ' ', '\r', '\n');
      req_.append(kPath, {reinterpret_cast<const char*>(p), k});
      if (k == n) return k;
      if (p[k] != ' ' || req_.get(kPath).empty()) {
        fail(L7Error::h1_bad_start_line);
        return k + 1;
      }
      s.st = St::version;
      return k + 1;
    }
    case St::version: {
      bool end = d == Dir::c2s ? (c == '\r' || c == '\n') : c == ' ';
      if (!end) {
        if (s.tmp_len >= 8) {
          fail(L7Error::h1_bad_start_line);
          return 1;
        }
        s.tmp[s.tmp_len++] = static_cast<char>(c);
        return 1;
      }
      if (!is_http1_version({s.tmp.data(), s.tmp_len})) {
        fail(L7Error::h1_bad_start_line);
        return 1;
      }
      s.tmp_len = 0;
      if (d == Dir::s2c) {
        s.st = St::status_code;
        return 1;
      }
      s.st = St::start_lf;
      return c == '\r' ? 1 : 0;
    }
    case St::status_code:
      if (c >= '0' && c <= '9' && s.status_digits < 3) {
        s.status = static_cast<uint16_t>(s.status * 10 + (c - '0'));
        ++s.status_digits;
        return 1;
      }
      if (s.status_digits != 3 || (c != ' ' && c != '\r' && c != '\n')) {
        fail(L7Error::h1_bad_start_line);
        return 1;
      }
      s.st = c == ' ' ? St::reason : St::start_lf;
      return c == '\n' ? 0 : 1;
    case St::reason: {
      size_t k = scan(p, n, '\r', '\n', '\n');
      if (k == n) return k;
      s.st = St::start_lf;
      return p[k] == '\r' ? k + 1 : k;
    }
    case St::start_lf:
      if (c != '\n') {
        fail(L7Error::h1_bad_start_line);
        return 1;
      }
      s.st = St::line_start;
      return 1;
    case St::line_start:
      if (c == '\r') {
        s.st = St::end_lf;
        return 1;
      }
      if (c == '\n') {
        s.st = St::end_lf;
        return 0;
      }
      if (c == ' ' || c == '\t') {  // obs-fold: rejected (RFC 9112 5.2)
        fail(L7Error::h1_bad_header);
        return 1;
      }
      s.name_len = 0;
      s.name_overflow = false;
      s.st = St::name;
      return 0;
    case St::name:
      if (is_tchar(c)) {  // a run of name characters in one pass
        size_t i = 0;
        for (; i < n && is_tchar(p[i]); ++i) {
          if (s.name_len < s.name.size()) {
            s.name[s.name_len++] = lower(static_cast<char>(p[i]));
          } else {
            s.name_overflow = true;
          }
        }
        return i;
      }
      if (c == ':' && (s.name_len > 0 || s.name_overflow)) {
        on_name(d);
        s.st = St::ows;
      } else if (is_tchar(c)) {
        if (s.name_len < s.name.size()) {
          s.name[s.name_len++] = lower(static_cast<char>(c));
        } else {
          s.name_overflow = true;
        }
      } else {
        fail(L7Error::h1_bad_header);
      }
      return 1;
    case St::ows:
      if (c == ' ' || c == '\t') return 1;
      s.st = St::value;
      return 0;
    case St::value: {
      size_t k = scan(p, n, '\r', '\n', '\n');
      std::string_view run(reinterpret_cast<const char*>(p), k);
      if (s.cap_slot >= 0) req_.append(s.cap_slot, run);
      if (s.fh == Fh::content_type) {
        size_t m = std::min<size_t>(run.size(), cfg_.capture.max_value_len - s.ctype_len);
        std::memcpy(resp_ctype_ + s.ctype_len, run.data(), m);
        s.ctype_len = static_cast<uint16_t>(s.ctype_len + m);
      } else if (s.fh != Fh::none) {
        size_t m = std::min<size_t>(run.size(), s.tmp.size() - s.tmp_len);
        std::memcpy(s.tmp.data() + s.tmp_len, run.data(), m);
        s.tmp_len = static_cast<uint8_t>(s.tmp_len + m);
        if (m < run.size()) s.tmp_overflow = true;
      }
      if (k == n) return k;
      s.st = St::value_lf;
      return p[k] == '\r' ? k + 1 : k;
    }
    case St::value_lf:
      if (c != '\n') {
        fail(L7Error::h1_bad_header);
        return 1;
      }
      on_value(d);
      s.st = St::line_start;
      return 1;
    case St::end_lf:
      if (c != '\n') {
        fail(L7Error::h1_bad_header);
        return 1;
      }
      on_section_end(d);
      return 1;
    default:
      return 0;
  }
}

void Http1Connection::body(Dir d, const uint8_t* p, size_t n) noexcept {
  if (n == 0) return;
  if (d == Dir::c2s) {
    sink_.on_request_body(cur_req_stream_, {p, n});
  } else {
    sink_.on_response_body(cur_resp_.stream_id, {p, n});
  }
}

void Http1Connection::message_end(Dir d) noexcept {
  Side& s = side(d);
  s.st = St::start;
  if (d == Dir::c2s) {
    sink_.on_request_end(cur_req_stream_);
    if (cur_req_h2c_ && cfg_.h2c_pause) s.st = St::paused;
    return;
  }
  if (s.trailers && s.trailer_fields) sink_.on_response_trailers(cur_resp_.stream_id, s.grpc_status);
  sink_.on_response_end(cur_resp_.stream_id);
}

}  // namespace aiqos
