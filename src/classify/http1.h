// Passive HTTP/1.1 connection parser: observes both directions of one
// connection and reports request/response events (http_events.h).
//
// A byte-level state machine per direction; nothing is buffered beyond the
// captured values (HeadCapture) and one 128-byte scratch per direction for
// framing headers, so a header section costs no memory proportional to its
// size, only a bounded count (max_header_section).
//
// Requests queue in order (pipelining, up to max_pipeline); each response is
// matched to the oldest unanswered request, which decides whether it has a
// body (HEAD, CONNECT) and what it upgrades to. 1xx other than 101 are
// interim (100-continue) and not reported.
//
// h2c (RFC 7540 3.2): a first request carrying `Upgrade: h2c` and
// `HTTP2-Settings` is reported as stream 1. With Http1Config::h2c_pause set
// (L7Connection sets it), feed() stops consuming client bytes after that
// request (the next bytes are the HTTP/2 preface if the server agrees) and
// server bytes after a 101 (the next bytes are HTTP/2 frames), returning the
// count consumed so the caller can route the rest to Http2Connection.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "classify/http_events.h"

namespace aiqos {

struct Http1Config {
  uint32_t max_header_section = 16 << 10;  // start line + fields (+ trailers), per message
  uint16_t max_pipeline = 16;              // requests awaiting a response
  bool h2c_pause = false;                  // stop at h2c switch points (see above)
  CaptureConfig capture;
};

struct Http1Stats {
  uint32_t requests = 0;
  uint32_t responses = 0;
  uint32_t interim_responses = 0;  // 1xx other than 101
  uint32_t unsolicited_responses = 0;  // no request queued
  uint64_t tunnel_bytes = 0;       // after CONNECT 2xx / 101 (not parsed)
  uint64_t ignored_bytes = 0;      // after the connection failed
};

class Http1Connection {
 public:
  Http1Connection(const Http1Config& cfg, RequestEvents& sink) noexcept;
  ~Http1Connection();
  Http1Connection(const Http1Connection&) = delete;
  Http1Connection& operator=(const Http1Connection&) = delete;

  // Returns bytes consumed: all of them unless the direction paused at an h2c
  // switch point (c2s_paused() / s2c_switched()).
  size_t feed(Dir dir, std::span<const uint8_t> bytes) noexcept;
  // The direction's FIN: ends a response delimited by the close.
  void finish(Dir dir) noexcept;

  // Client sent a complete h2c upgrade request and paused (h2c_pause only).
  bool c2s_paused() const noexcept;
  // Client bytes after the upgrade request were not the preface: go on as HTTP/1.
  void resume_c2s() noexcept;
  // Server answered 101 to the h2c request: its next bytes are HTTP/2.
  bool s2c_switched() const noexcept;
  // SETTINGS_HEADER_TABLE_SIZE from the upgrade request's HTTP2-Settings.
  std::optional<uint32_t> h2c_client_table_size() const noexcept { return h2c_hts_; }
  // After CONNECT 2xx or a non-h2c 101: the rest is not HTTP.
  bool tunneled() const noexcept { return tunnel_; }

  bool failed() const noexcept { return error_ != L7Error::none; }
  L7Error error() const noexcept { return error_; }
  const Http1Stats& stats() const noexcept { return stats_; }

 private:
  enum class St : uint8_t {
    start, method, target, version, status_code, reason, start_lf,
    line_start, name, ows, value, value_lf, end_lf,
    body_len, chunk_size, chunk_ext, chunk_size_lf, chunk_data, chunk_data_cr, chunk_data_lf,
    body_close, paused, tunnel,
  };
  // Headers that frame the message, read into Side::tmp.
  enum class Fh : uint8_t { none, content_length, transfer_encoding, upgrade, http2_settings, grpc_status, content_type,
                          content_encoding };

  struct PendingReq {
    uint32_t stream_id;
    bool head, connect, upgrade, h2c;
  };

  struct Side {
    St st = St::start;
    bool trailers = false;     // header section being read is a chunked trailer section
    bool name_overflow = false;
    uint8_t name_len = 0;
    uint8_t tmp_len = 0;
    Fh fh = Fh::none;
    int8_t cap_slot = -1;
    uint16_t status = 0;
    uint8_t status_digits = 0;
    uint8_t chunk_digits = 0;
    int16_t grpc_status = -1;
    uint16_t ctype_len = 0;
    bool has_cl = false, te = false, te_chunked = false, upgrade = false, upgrade_h2c = false,
         h2_settings = false, has_h2_hts = false, trailer_fields = false, tmp_overflow = false,
         head = false, connect = false, encoded = false;
    uint32_t h2_hts = 0;
    uint32_t section = 0;      // bytes of the current header section
    uint64_t cl = 0;
    uint64_t left = 0;         // body or chunk bytes left
    std::array<char, kMaxExtraNameLen> name{};
    std::array<char, 128> tmp{};
  };

  void fail(L7Error e) noexcept;
  Side& side(Dir d) noexcept { return sides_[static_cast<size_t>(d)]; }
  size_t step(Dir d, const uint8_t* p, size_t n) noexcept;
  size_t header_bytes(Dir d, const uint8_t* p, size_t n) noexcept;
  void begin_message(Dir d) noexcept;
  void on_name(Dir d) noexcept;
  void on_value(Dir d) noexcept;
  void on_section_end(Dir d) noexcept;
  void on_request_head(Side& s) noexcept;
  void on_response_head(Side& s) noexcept;
  void body(Dir d, const uint8_t* p, size_t n) noexcept;
  void message_end(Dir d) noexcept;
  void decode_h2_settings(Side& s) noexcept;

  Http1Config cfg_;
  RequestEvents& sink_;
  std::array<Side, 2> sides_;
  HeadCapture req_;
  char* resp_ctype_ = nullptr;
  PendingReq* queue_ = nullptr;  // ring of cfg_.max_pipeline
  uint16_t q_head_ = 0, q_len_ = 0;
  PendingReq cur_resp_{};        // request the response being read answers
  uint32_t cur_req_stream_ = 0;  // stream id of the request being read
  bool cur_req_h2c_ = false;
  bool s2c_switched_ = false;
  bool tunnel_ = false;
  std::optional<uint32_t> h2c_hts_;
  L7Error error_ = L7Error::none;
  Http1Stats stats_;
};

}  // namespace aiqos
