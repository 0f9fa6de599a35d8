// The input format shared by the connection-level targets (http1, http2,
// l7_detect): a conversation of byte chunks in both directions, interleaved
// by a control byte, so that the fuzzer explores every split point and every
// interleaving of client and server bytes.
//
//   control byte c:  direction = c & 1 (0: client to server, 1: server to client)
//                    length    = c >> 1 (1..127 bytes follow; 0: an event, see
//                                the target)
//
// tests/fuzz/make_seeds.py writes seeds in this format from real captures.
#pragma once

#include <cstdint>
#include <span>

#include "classify/http_events.h"
#include "fuzz_input.h"

namespace aiqos::fuzz {

struct Chunk {
  Dir dir;
  std::span<const uint8_t> bytes;  // empty: an event
};

inline Chunk next_chunk(Input& in) noexcept {
  uint8_t c = in.u8();
  Dir d = (c & 1) ? Dir::s2c : Dir::c2s;
  return {d, in.bytes(c >> 1)};
}

// Sink that reads every view it is handed (ASan checks they are live) and
// checks the event contract: one on_parse_error at most, nothing after it.
class CheckingSink : public RequestEvents {
 public:
  uint32_t h = 0;
  bool error_seen = false;
  uint32_t requests = 0;

  void on_request_headers(const RequestHead& r) noexcept override {
    alive();
    ++requests;
    h += touch(r.method) + touch(r.path) + touch(r.authority) + touch(r.content_type);
    for (auto v : r.extra) h += touch(v);
  }
  void on_request_body(uint32_t, std::span<const uint8_t> b) noexcept override {
    alive();
    h += touch(b);
  }
  void on_request_end(uint32_t) noexcept override { alive(); }
  void on_response_headers(const ResponseHead& r) noexcept override {
    alive();
    h += touch(r.content_type) + r.status;
  }
  void on_response_body(uint32_t, std::span<const uint8_t> b) noexcept override {
    alive();
    h += touch(b);
  }
  void on_response_trailers(uint32_t, int) noexcept override { alive(); }
  void on_response_end(uint32_t) noexcept override { alive(); }
  void on_stream_reset(uint32_t, uint32_t, Dir) noexcept override { alive(); }
  void on_goaway(Dir, uint32_t, uint32_t) noexcept override { alive(); }
  void on_parse_error(L7Error e) noexcept override {
    alive();
    FUZZ_CHECK(e != L7Error::none);
    FUZZ_CHECK(static_cast<size_t>(e) < static_cast<size_t>(L7Error::count_));
    FUZZ_CHECK(l7_error_name(e) != nullptr);
    error_seen = true;
  }

 private:
  void alive() const noexcept { FUZZ_CHECK(!error_seen); }
};

// Capture of two extra headers, one of them long enough to be cut.
inline CaptureConfig fuzz_capture() {
  CaptureConfig c;
  c.extra.add("x-tenant");
  c.extra.add("user-agent");
  c.max_value_len = 48;
  return c;
}

}  // namespace aiqos::fuzz
