// Passive HTTP/2 connection parser: observes both directions of one
// connection and reports request/response events (http_events.h).
//
// Frames are parsed incrementally: no frame payload is buffered, only the few
// fixed bytes of control frames (at most 8). Header block fragments of
// HEADERS / PUSH_PROMISE / CONTINUATION go straight to nghttp2's standalone
// HPACK inflater (one per direction) with in_final=0 until END_HEADERS, so a
// header block needs no reassembly buffer either.
//
// HPACK tables: the inflater decoding client->server headers is bounded by the
// SERVER's SETTINGS_HEADER_TABLE_SIZE (and vice versa), applied when the
// client's SETTINGS ACK passes, which is the point in the client's byte stream
// after which its encoder honours it. Values above max_hpack_table are clipped;
// an encoder that then grows its table past the clip fails with hpack_table_cap.
//
// All memory is sized from Http2Config and allocated in the constructor; the
// inflaters allocate through a counting nghttp2_mem capped at max_hpack_mem,
// from the worker's HpackPool (hpack_pool.h) when the config names one (the
// classifier always does), else from the heap (tests, fuzzers, benches).
// A pool with no block for an allocation is denied like the cap.
// Untrusted input never asserts: a violated rule or cap sets a sticky error,
// reports it once (on_parse_error), and every later byte is ignored.
#pragma once

#include <nghttp2/nghttp2.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "classify/http_events.h"

namespace aiqos {

class HpackPool;

struct Http2Config {
  uint32_t max_streams = 128;           // streams tracked at once; excess counted, ignored
  uint32_t max_frame_size = 1u << 20;   // larger frames fail the connection
  uint32_t max_header_block = 64 << 10; // compressed bytes of HEADERS+CONTINUATION
  uint32_t max_header_list = 64 << 10;  // decoded: sum(name + value + 32) per block
  uint32_t max_hpack_table = 64 << 10;  // dynamic table bound, whatever SETTINGS says
  uint32_t max_hpack_mem = 192 << 10;   // allocation cap per inflater (table + literals)
  HpackPool* hpack_pool = nullptr;      // the inflaters' memory; none: the heap
  CaptureConfig capture;
};

struct Http2Stats {
  std::array<uint64_t, 2> frames{};       // by Dir
  std::array<uint64_t, 2> bytes{};        // by Dir, bytes consumed while not failed
  uint64_t ignored_bytes = 0;             // fed after the connection failed
  uint32_t streams_opened = 0;            // request streams tracked
  uint32_t streams_dropped = 0;           // new streams beyond max_streams (ignored)
  uint32_t stray_frames = 0;              // frames for untracked/closed streams
  uint32_t unknown_frames = 0;            // extension frame types, skipped
  uint32_t push_promises = 0;             // decoded for HPACK sync, not reported
  uint32_t interim_responses = 0;         // 1xx header blocks, not reported
  uint32_t settings_clipped = 0;          // SETTINGS_HEADER_TABLE_SIZE above max_hpack_table
  uint32_t stray_settings_acks = 0;       // ACK with nothing outstanding
  uint32_t hpack_resets = 0;              // mid-stream pickup: blocks not decoded whole
  std::array<size_t, 2> hpack_mem_peak{}; // by decoded Dir, bytes incl. allocator headers
};

class Http2Connection {
 public:
  static constexpr std::array<uint8_t, 24> kPreface = {
      'P', 'R', 'I', ' ', '*', ' ', 'H', 'T', 'T', 'P', '/', '2', '.', '0',
      '\r', '\n', '\r', '\n', 'S', 'M', '\r', '\n', '\r', '\n'};

  Http2Connection(const Http2Config& cfg, RequestEvents& sink) noexcept;
  ~Http2Connection();
  // The inflaters hold a pointer to per-direction budgets inside this object.
  Http2Connection(const Http2Connection&) = delete;
  Http2Connection& operator=(const Http2Connection&) = delete;

  // Any split of each direction's bytes gives the same events (body chunks
  // may be cut differently; their concatenation is the same).
  void feed(Dir dir, std::span<const uint8_t> bytes) noexcept;

  // h2c upgrade (RFC 7540 3.2): the HTTP/1.1 request became stream 1, already
  // complete; the client's HTTP2-Settings header table size (if it carried
  // one) takes effect on the server's encoder with the 101. Call before the
  // first HTTP/2 byte of either direction.
  void start_upgraded(std::optional<uint32_t> client_header_table_size) noexcept;

  // A connection picked up mid-stream, both directions at a frame boundary
  // (classify/midstream.h found them): no preface, SETTINGS never seen, HPACK
  // tables empty. A header block that refers to a dynamic entry from before
  // the pickup cannot be decoded whole: its request is reported with what was
  // decoded (RequestHead::partial), the inflater starts afresh, and the
  // connection goes on (up to kMaxHpackResets times). Call before any byte.
  void start_midstream() noexcept;
  bool midstream() const noexcept { return midstream_; }
  static constexpr uint32_t kMaxHpackResets = 256;

  bool failed() const noexcept { return error_ != L7Error::none; }
  L7Error error() const noexcept { return error_; }
  const Http2Stats& stats() const noexcept {
    // The HPACK allocators' peaks, read when asked rather than after every feed.
    for (size_t i = 0; i < sides_.size(); ++i) stats_.hpack_mem_peak[i] = sides_[i].mem.peak;
    return stats_;
  }
  uint32_t open_streams() const noexcept { return n_open_; }
  // std::malloc calls of the inflaters' allocator, all connections (those
  // whose config names no pool): a test's count, never on a worker's path.
  static uint64_t heap_allocations() noexcept;

 private:
  enum class St : uint8_t { preface, frame_header, pad_len, prefix, body, padding };
  enum class Block : uint8_t { none, request, req_trailers, response, resp_trailers, push, ignored };

  struct MemBudget {
    size_t used = 0, peak = 0, cap = 0;
    HpackPool* pool = nullptr;
    bool denied = false;  // by the cap or the pool
  };

  struct PendingSettings {
    uint32_t table_size;
    bool has_table_size;
  };
  static constexpr size_t kMaxPendingSettings = 8;

  struct Side {
    St st = St::frame_header;
    uint8_t hdr_have = 0;
    uint8_t fix_have = 0;  // bytes collected in fix (prefix / settings entry)
    uint8_t fix_need = 0;
    uint8_t type = 0, flags = 0;
    uint8_t pad_len = 0;
    std::array<uint8_t, 9> hdr{};
    std::array<uint8_t, 8> fix{};
    uint32_t len = 0;        // payload length of the current frame
    uint32_t stream = 0;
    uint32_t left = 0;       // bytes left in the current state's region
    uint32_t body_left = 0;  // header-block or data bytes after the prefix
    // Header block in progress (HEADERS/PUSH_PROMISE + CONTINUATIONs).
    Block block = Block::none;
    bool in_block = false;   // END_HEADERS not seen: only CONTINUATION may follow
    bool block_lost = false; // mid-stream: HPACK failed in this block, the rest is skipped
    bool block_end_stream = false;
    uint32_t block_stream = 0;
    uint32_t block_bytes = 0;
    uint32_t list_bytes = 0;
    // Response fields of the block in progress.
    uint16_t status = 0;
    int16_t grpc_status = -1;
    uint16_t ctype_len = 0;
    bool encoded = false;  // content-encoding other than identity
    // SETTINGS this side sent, waiting for the peer's ACK.
    std::array<PendingSettings, kMaxPendingSettings> pending{};
    uint8_t n_pending = 0;
    uint8_t preface_have = 0;
    uint32_t table_limit = 4096;  // applied to this side's inflater
    bool clipped = false;         // a SETTINGS value above max_hpack_table was clipped
    nghttp2_hd_inflater* inflater = nullptr;
    MemBudget mem;
    // nghttp2 1.52 keeps a pointer to this (hd_context_init stores `mem`),
    // despite its documentation: it must live as long as the inflater.
    nghttp2_mem allocator{};
  };

  struct StreamSlot {
    uint32_t id;  // 0: free
    uint8_t flags;
  };
  enum : uint8_t { kReqEnded = 1, kRespFinal = 2, kRespEnded = 4 };

  void fail(L7Error e) noexcept;
  Side& side(Dir d) noexcept { return sides_[static_cast<size_t>(d)]; }
  size_t step(Dir d, const uint8_t* p, size_t n) noexcept;
  [[gnu::always_inline]] inline void start_frame(Side& s, Dir d, const uint8_t* h, uint32_t len) noexcept;
  void on_frame_header(Dir d) noexcept;
  size_t whole_data_frame(Dir d, const uint8_t* p, uint32_t len) noexcept;
  void data_body(Dir d, StreamSlot& st, const uint8_t* p, size_t n) noexcept;
  void data_end(Dir d, StreamSlot* st) noexcept;
  void begin_payload(Dir d) noexcept;
  void on_prefix(Dir d) noexcept;
  void on_settings_entry(Dir d) noexcept;
  void on_body(Dir d, const uint8_t* p, size_t n, bool last) noexcept;
  void on_frame_end(Dir d) noexcept;
  void begin_block(Dir d, Block kind) noexcept;
  void inflate(Dir d, const uint8_t* p, size_t n, bool final) noexcept;
  void on_header(Dir d, const nghttp2_nv& nv) noexcept;
  void end_block(Dir d) noexcept;
  void apply_table_size(Dir d, uint32_t v) noexcept;
  bool reset_inflater(Side& s) noexcept;

  uint32_t home_slot(uint32_t id) const noexcept;
  StreamSlot* find_stream(uint32_t id) noexcept;
  StreamSlot* open_stream(uint32_t id, uint8_t flags) noexcept;
  void maybe_close(StreamSlot* s) noexcept;

  static void* mem_malloc(size_t size, void* ud);
  static void mem_free(void* ptr, void* ud);
  static void* mem_calloc(size_t nmemb, size_t size, void* ud);
  static void* mem_realloc(void* ptr, size_t size, void* ud);

  Http2Config cfg_;
  RequestEvents& sink_;
  std::array<Side, 2> sides_;
  StreamSlot* streams_ = nullptr;  // cfg_.max_streams entries
  uint32_t n_open_ = 0;
  uint32_t max_client_stream_ = 0;  // highest client-initiated stream seen
  HeadCapture req_;                 // request fields of the c2s block in progress
  char* resp_ctype_ = nullptr;      // content-type of the s2c block in progress
  L7Error error_ = L7Error::none;
  mutable Http2Stats stats_;  // mutable: stats() fills in the HPACK peaks
  bool midstream_ = false;
};

}  // namespace aiqos
