// Events shared by the passive HTTP/1.1 and HTTP/2 connection parsers.
//
// The parsers observe both directions of one TCP connection as in-order byte
// chunks (reassembled upstream) and report what a classifier needs: which
// endpoint and model a request targets, how its body flows, how it ends.
// One virtual call per event, never per byte. Every std::string_view and span
// handed to a sink is valid only for the duration of that call.
//
// Credentials are never captured: only the fixed request fields below and the
// extra header names configured in CaptureConfig are kept, so authorization,
// cookie or x-api-key appear only if an operator names them explicitly.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace aiqos {

// Direction of a byte chunk relative to the connection's client.
enum class Dir : uint8_t { c2s = 0, s2c = 1 };
constexpr Dir opposite(Dir d) noexcept { return d == Dir::c2s ? Dir::s2c : Dir::c2s; }

// Why a connection stopped being parsed. Sticky: the first one wins and the
// parser ignores every later byte. Each value maps to a per-worker counter, so
// keep names stable.
#define AIQOS_L7_ERROR(X)                                                               \
  X(none, "no error")                                                                   \
  X(bad_preface, "client bytes are not the HTTP/2 connection preface")                  \
  X(frame_too_large, "HTTP/2 frame length above max_frame_size")                        \
  X(bad_frame, "HTTP/2 frame violates its type's length, padding or stream rules")      \
  X(continuation_expected, "HTTP/2 header block interrupted by another frame")          \
  X(header_block_too_large, "HTTP/2 header block above max_header_block")               \
  X(header_list_too_large, "decoded header list above max_header_list")                 \
  X(hpack_error, "HPACK decoding failed (bad encoding or table size update)")           \
  X(hpack_table_cap, "HPACK table size update above the configured max_hpack_table")    \
  X(hpack_memory, "HPACK inflater memory above max_hpack_mem")                          \
  X(settings_backlog, "too many unacknowledged HTTP/2 SETTINGS frames")                 \
  X(h1_bad_start_line, "HTTP/1 request or status line malformed")                       \
  X(h1_header_too_large, "HTTP/1 header section above max_header_section")              \
  X(h1_bad_header, "HTTP/1 header line malformed or a framing header unusable")         \
  X(h1_bad_length, "HTTP/1 Content-Length invalid or conflicting")                      \
  X(h1_bad_chunk, "HTTP/1 chunked body malformed")                                      \
  X(h1_pipeline_overflow, "more pipelined HTTP/1 requests than max_pipeline")           \
  X(unknown_protocol, "first client bytes are neither HTTP/1 nor the HTTP/2 preface")

enum class L7Error : uint8_t {
#define X(name, desc) name,
  AIQOS_L7_ERROR(X)
#undef X
      count_
};
const char* l7_error_name(L7Error e) noexcept;

inline constexpr size_t kMaxExtraHeaders = 8;
inline constexpr size_t kMaxExtraNameLen = 32;

// Lowercase names of extra request headers whose values are reported with the
// request (x-tenant, x-priority, user-agent...). Fixed storage: a config value
// that the control plane builds once and every connection copies.
class ExtraHeaderNames {
 public:
  // False when full, empty, too long, or not a lowercase header token.
  bool add(std::string_view lower_name) noexcept;
  size_t size() const noexcept { return n_; }
  std::string_view name(size_t i) const noexcept { return {names_[i].data(), lens_[i]}; }
  // Index of `name` (exact, lowercase), or -1.
  int find(std::string_view name) const noexcept;

 private:
  std::array<std::array<char, kMaxExtraNameLen>, kMaxExtraHeaders> names_{};
  std::array<uint8_t, kMaxExtraHeaders> lens_{};
  uint8_t n_ = 0;
};

struct CaptureConfig {
  ExtraHeaderNames extra;
  // Captured values longer than this are cut (RequestHead::truncated says so).
  uint16_t max_value_len = 256;
};

// Index of each captured request field in the per-connection scratch.
enum ReqField : uint8_t { kMethod, kPath, kAuthority, kContentType, kFixedFields };

struct RequestHead {
  uint32_t stream_id = 0;  // HTTP/2 stream; 0 for HTTP/1.1 (1 for an h2c upgrade request)
  std::string_view method, path, authority, content_type;  // authority: :authority or Host
  std::array<std::string_view, kMaxExtraHeaders> extra{};  // in CaptureConfig::extra order
  uint16_t truncated = 0;  // bit i: field i (ReqField, then kFixedFields + extra index) was cut
  bool end_stream = false;  // no body follows (on_request_end comes next)
  // Some fields could not be decoded (a connection picked up mid-stream: its
  // HPACK dynamic table was never seen); the fields above are those that were.
  bool partial = false;
};

struct ResponseHead {
  uint32_t stream_id = 0;
  uint16_t status = 0;
  int16_t grpc_status = -1;  // -1: absent from these headers
  std::string_view content_type;
  bool end_stream = false;  // no body follows (gRPC trailers-only, 204, HEAD...)
  bool encoded = false;     // content-encoding other than identity: the body is compressed
};

// Sink for parser events. Default bodies ignore the event, so a consumer
// overrides only what it needs. Called on the worker that feeds the parser.
class RequestEvents {
 public:
  virtual ~RequestEvents() = default;
  virtual void on_request_headers(const RequestHead&) noexcept {}
  virtual void on_request_body(uint32_t /*stream_id*/, std::span<const uint8_t>) noexcept {}
  virtual void on_request_end(uint32_t /*stream_id*/) noexcept {}
  virtual void on_response_headers(const ResponseHead&) noexcept {}
  virtual void on_response_body(uint32_t /*stream_id*/, std::span<const uint8_t>) noexcept {}
  // grpc_status: -1 when the trailers carry none.
  virtual void on_response_trailers(uint32_t /*stream_id*/, int /*grpc_status*/) noexcept {}
  virtual void on_response_end(uint32_t /*stream_id*/) noexcept {}
  // RST_STREAM sent by `from`.
  virtual void on_stream_reset(uint32_t /*stream_id*/, uint32_t /*error_code*/, Dir /*from*/) noexcept {}
  virtual void on_goaway(Dir /*from*/, uint32_t /*last_stream_id*/, uint32_t /*error_code*/) noexcept {}
  // Once per connection, when it becomes unclassifiable; nothing follows.
  virtual void on_parse_error(L7Error) noexcept {}
};

// Collects captured request values into one buffer allocated per connection:
// (kFixedFields + extra) slots of max_value_len bytes each. Used by both
// parsers; names are matched lowercase.
class HeadCapture {
 public:
  HeadCapture() = default;
  HeadCapture(const HeadCapture&) = delete;
  HeadCapture& operator=(const HeadCapture&) = delete;
  ~HeadCapture() { delete[] buf_; }

  // False if the buffer cannot be allocated.
  bool init(const CaptureConfig& cfg) noexcept;
  void reset() noexcept;
  // Slot for a lowercase header name: kMethod.. or kFixedFields + extra index;
  // -1 when not captured. Both ":authority" and "host" map to kAuthority; the
  // first one seen wins, which is ":authority" in HTTP/2 (pseudo-headers lead).
  int slot_for(std::string_view lower_name) const noexcept;
  // Sets a slot's value if not already set (first occurrence wins).
  void set(int slot, std::string_view value) noexcept;
  // Appends to a slot (streaming HTTP/1 values); cut at max_value_len.
  void append(int slot, std::string_view part) noexcept;
  bool has(int slot) const noexcept { return set_mask_ & (1u << slot); }
  void mark_set(int slot) noexcept { set_mask_ |= 1u << slot; }
  void trim_trailing_ows(int slot) noexcept;
  std::string_view get(int slot) const noexcept { return {buf_ + size_t(slot) * cap_, lens_[slot]}; }
  void fill(RequestHead& h) const noexcept;
  size_t bytes() const noexcept { return size_t(cap_) * n_slots_; }

 private:
  const CaptureConfig* cfg_ = nullptr;
  char* buf_ = nullptr;
  std::array<uint16_t, kFixedFields + kMaxExtraHeaders> lens_{};
  uint16_t cap_ = 0;
  uint16_t truncated_ = 0;
  uint16_t set_mask_ = 0;
  uint8_t n_slots_ = 0;
};

}  // namespace aiqos
