// Test helpers for the HTTP parsers: an event recorder that prints events as
// strings (body chunks coalesced, so any split gives the same list) and a
// script of (direction, bytes) segments fed whole, split, or byte by byte.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <string_view>
#include <vector>

#include "classify/http_events.h"

namespace aiqos::test {

using Bytes = std::vector<uint8_t>;

inline Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }
// Not a.insert(a.end(), first, last): GCC 12 at -O3 (release builds) inlines the vector's range
// insert and reports a false -Warray-bounds in its reallocating copy (GCC bug 107852). resize +
// memcpy says the same thing without that path.
inline void append(Bytes& a, const void* p, size_t n) {
  if (n == 0) return;
  const size_t at = a.size();
  a.resize(at + n);
  std::memcpy(a.data() + at, p, n);
}
inline void append(Bytes& a, const Bytes& b) { append(a, b.data(), b.size()); }
inline void append(Bytes& a, std::string_view b) { append(a, b.data(), b.size()); }

// One HTTP/2 frame: 9-byte header + payload.
inline Bytes h2_frame(uint8_t type, uint8_t flags, uint32_t stream, const Bytes& payload) {
  Bytes f = {uint8_t(payload.size() >> 16), uint8_t(payload.size() >> 8), uint8_t(payload.size()), type, flags,
             uint8_t(stream >> 24), uint8_t(stream >> 16), uint8_t(stream >> 8), uint8_t(stream)};
  append(f, payload);
  return f;
}

// A header block encoded by nghttp2's deflater (its dynamic table goes on
// from block to block, as a real encoder's does). Empty on failure.
inline Bytes hpack_block(nghttp2_hd_deflater* d, const std::vector<std::pair<std::string, std::string>>& hs) {
  std::vector<nghttp2_nv> nva;
  for (auto& [n, v] : hs)
    nva.push_back({const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(n.data())),
                   const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(v.data())), n.size(), v.size(),
                   NGHTTP2_NV_FLAG_NONE});
  Bytes out(nghttp2_hd_deflate_bound(d, nva.data(), nva.size()));
  ssize_t k = nghttp2_hd_deflate_hd(d, out.data(), out.size(), nva.data(), nva.size());
  out.resize(k < 0 ? 0 : size_t(k));
  return out;
}

inline const char* dir_name(Dir d) { return d == Dir::c2s ? "c2s" : "s2c"; }

struct Recorder : RequestEvents {
  std::vector<std::string> ev;
  size_t n_extra = 0;  // extras to print

  void on_request_headers(const RequestHead& h) noexcept override {
    std::string s = "req s=" + std::to_string(h.stream_id) + " " + std::string(h.method) + " " +
                    std::string(h.path) + " auth=" + std::string(h.authority) +
                    " ct=" + std::string(h.content_type);
    for (size_t i = 0; i < n_extra; ++i) s += " x" + std::to_string(i) + "=" + std::string(h.extra[i]);
    if (h.truncated) s += " trunc=" + std::to_string(h.truncated);
    if (h.end_stream) s += " es";
    if (h.partial) s += " partial";
    ev.push_back(s);
  }
  void body(const std::string& tag, uint32_t id, std::span<const uint8_t> b) {
    std::string head = tag + " s=" + std::to_string(id) + " ";
    if (!ev.empty() && ev.back().rfind(head, 0) == 0) {
      ev.back().append(b.begin(), b.end());
    } else {
      ev.push_back(head + std::string(b.begin(), b.end()));
    }
  }
  void on_request_body(uint32_t id, std::span<const uint8_t> b) noexcept override { body("reqbody", id, b); }
  void on_request_end(uint32_t id) noexcept override { ev.push_back("reqend s=" + std::to_string(id)); }
  void on_response_headers(const ResponseHead& h) noexcept override {
    std::string s = "resp s=" + std::to_string(h.stream_id) + " " + std::to_string(h.status);
    if (h.grpc_status >= 0) s += " grpc=" + std::to_string(h.grpc_status);
    if (!h.content_type.empty()) s += " ct=" + std::string(h.content_type);
    if (h.end_stream) s += " es";
    ev.push_back(s);
  }
  void on_response_body(uint32_t id, std::span<const uint8_t> b) noexcept override { body("respbody", id, b); }
  void on_response_trailers(uint32_t id, int grpc) noexcept override {
    ev.push_back("trailers s=" + std::to_string(id) + " grpc=" + std::to_string(grpc));
  }
  void on_response_end(uint32_t id) noexcept override { ev.push_back("respend s=" + std::to_string(id)); }
  void on_stream_reset(uint32_t id, uint32_t code, Dir from) noexcept override {
    ev.push_back("rst s=" + std::to_string(id) + " code=" + std::to_string(code) + " " + dir_name(from));
  }
  void on_goaway(Dir from, uint32_t last, uint32_t code) noexcept override {
    ev.push_back("goaway " + std::string(dir_name(from)) + " last=" + std::to_string(last) +
                 " code=" + std::to_string(code));
  }
  void on_parse_error(L7Error e) noexcept override { ev.push_back(std::string("error ") + l7_error_name(e)); }
};

struct Segment {
  Dir dir;
  Bytes data;
};
using Script = std::vector<Segment>;

inline size_t script_size(const Script& s) {
  size_t n = 0;
  for (const auto& seg : s) n += seg.data.size();
  return n;
}

// Feeds the script with every segment cut at the global offsets in `cuts`
// (sorted) and additionally every `step` bytes when step > 0. `feed` is
// called as feed(Dir, std::span<const uint8_t>).
template <class Feed>
void feed_script(const Script& script, Feed&& feed, const std::vector<size_t>& cuts = {}, size_t step = 0) {
  size_t base = 0, ci = 0;
  for (const auto& seg : script) {
    size_t pos = 0;
    while (pos < seg.data.size()) {
      size_t end = seg.data.size();
      while (ci < cuts.size() && cuts[ci] <= base + pos) ++ci;
      if (ci < cuts.size() && cuts[ci] < base + end) end = cuts[ci] - base;
      if (step && pos + step < end) end = pos + step;
      feed(seg.dir, std::span<const uint8_t>(seg.data.data() + pos, end - pos));
      pos = end;
    }
    base += seg.data.size();
  }
}

}  // namespace aiqos::test
