// First-bytes protocol detection and routing for one TCP connection.
//
// L7Connection looks at the first bytes of whichever direction speaks first
// and decides: HTTP/2 with prior knowledge (the client preface), HTTP/1.x (a
// request line), a TLS handshake (first byte 0x16: reported, not parsed), or
// unknown. It then routes each direction's bytes to Http1Connection or
// Http2Connection, switching to HTTP/2 after an h2c upgrade: the client side
// at the preface that follows the upgrade request, the server side after its
// 101 (each direction switches at its own byte boundary, so no bytes are held
// beyond the 24-byte sniff buffer).
//
// Direction repair: the flow table labels directions from the TCP handshake
// and may have missed it. If the first decisive bytes say the side labeled
// server is the client (it sent a request line or the preface), the labels
// are swapped internally and client_side() says so, for the flow table to fix
// its own. Parsers are created on detection (one allocation per connection).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "classify/http1.h"
#include "classify/http2.h"
#include "classify/http_events.h"
#include "classify/midstream.h"

namespace aiqos {

enum class L7Proto : uint8_t { undecided, http1, http2, tls_candidate, unknown };
const char* l7_proto_name(L7Proto p) noexcept;

// What the first bytes of one direction look like (a prefix is enough).
enum class FirstBytes : uint8_t {
  need_more,         // a prefix of something recognisable
  h2_preface,        // client: PRI * HTTP/2.0 ... (all 24 bytes)
  h1_request,        // client: METHOD SP target-start
  h1_response,       // server: HTTP/1.x
  h2_server_settings,  // server: an HTTP/2 SETTINGS frame sent before the client's preface
  tls_client_hello,  // client: 0x16 0x03 .. with handshake type 1
  tls_other,         // 0x16, not a ClientHello (ServerHello: the server)
  other,
};
FirstBytes sniff_first_bytes(std::span<const uint8_t> prefix) noexcept;

enum class ClientSide : uint8_t { unknown, as_labeled, swapped };

// Bytes held by mid-stream resynchronisation buffers, shared by every
// connection of one worker (worker: rw). Picked-up connections are many only
// right after a (re)start; this bounds what they hold together.
struct MidstreamBudget {
  uint64_t used = 0;
  uint64_t cap = 16 << 20;
  uint64_t refused = 0;  // directions that gave up for lack of budget
};

struct L7Config {
  Http1Config http1;
  Http2Config http2;
  CaptureConfig capture;  // replaces http1.capture and http2.capture
  // Mid-stream pickup (start_midstream): bytes kept per direction while
  // looking for a start point, and bytes looked at before giving up.
  uint32_t midstream_buffer = 64 << 10;
  uint32_t midstream_scan_limit = 1 << 20;
  MidstreamBudget* midstream_budget = nullptr;  // none: unbounded (tests)
};

class L7Connection {
 public:
  static constexpr size_t kSniffBytes = 24;

  L7Connection(const L7Config& cfg, RequestEvents& sink) noexcept;
  L7Connection(const L7Connection&) = delete;
  L7Connection& operator=(const L7Connection&) = delete;
  ~L7Connection();

  // The connection was picked up mid-stream (its handshake was never seen):
  // each direction is resynchronised (classify/midstream.h) instead of being
  // judged by its first bytes. Until a direction finds its start point, its
  // bytes are kept (up to midstream_buffer, the oldest dropped first) and
  // replayed from there. `client_guess`: the labeled direction believed to be
  // the client when the bytes do not tell (HTTP/2 without a HEADERS frame to
  // read). A first byte of 0x16 (a TLS handshake) keeps the normal path.
  // Call before the first byte.
  void start_midstream(Dir client_guess) noexcept;
  bool midstream() const noexcept { return midstream_; }

  // `dir` as the flow table labels it; see client_side().
  void feed(Dir dir, std::span<const uint8_t> bytes) noexcept {
    // The steady state inline: a decided connection whose direction goes to
    // HTTP/2 (and, picked up midstream, is synced) hands the bytes over.
    const Dir d = swapped_ ? opposite(dir) : dir;
    if (route_[static_cast<size_t>(d)] == Route::http2 && proto_ != L7Proto::undecided &&
        (!midstream_ || ms_[static_cast<size_t>(dir)].synced) && !bytes.empty() && !failed()) [[likely]] {
      h2_->feed(d, bytes);
      return;
    }
    feed_any(dir, bytes);
  }
  // FIN in `dir` (labeled): ends an HTTP/1 response delimited by the close.
  void finish(Dir dir) noexcept;

  L7Proto proto() const noexcept { return proto_; }
  ClientSide client_side() const noexcept { return client_side_; }
  bool h2c_upgraded() const noexcept { return h2c_; }
  bool failed() const noexcept {
    return (h1_ && h1_->failed()) || (h2_ && h2_->failed()) || proto_ == L7Proto::unknown;
  }
  L7Error error() const noexcept;
  const Http1Connection* http1() const noexcept { return h1_ ? &*h1_ : nullptr; }
  const Http2Connection* http2() const noexcept { return h2_ ? &*h2_ : nullptr; }

 private:
  enum class Route : uint8_t { http1, http2 };

  void decide(Dir labeled, FirstBytes what) noexcept;
  void feed_any(Dir dir, std::span<const uint8_t> bytes) noexcept;  // feed(), every case
  void route(Dir d, const uint8_t* p, size_t n) noexcept;  // d: true direction
  void ensure_h2() noexcept;
  void midstream_feed(Dir labeled, std::span<const uint8_t> bytes) noexcept;
  bool midstream_try(Dir labeled) noexcept;
  void midstream_lock(Dir labeled, size_t offset) noexcept;
  void midstream_give_up() noexcept;

  // One direction being resynchronised (by labeled Dir).
  struct Resyncer {
    std::vector<uint8_t> buf;  // grown in steps (charged to the budget), released once in sync
    size_t resume_h1 = 0, resume_h2 = 0;
    uint64_t seen = 0;
    bool synced = false;
  };
  void midstream_release(Resyncer& r) noexcept;

  L7Config cfg_;
  RequestEvents& sink_;
  std::array<std::array<uint8_t, kSniffBytes>, 2> sniff_{};  // by labeled Dir
  std::array<uint8_t, 2> sniff_len_{};
  L7Proto proto_ = L7Proto::undecided;
  ClientSide client_side_ = ClientSide::unknown;
  bool swapped_ = false;
  bool h2c_ = false;
  std::array<Route, 2> route_{Route::http1, Route::http1};  // by true Dir
  uint8_t preface_match_ = 0;  // preface bytes seen after a paused h2c request
  bool midstream_ = false;
  Dir client_guess_ = Dir::c2s;
  std::array<Resyncer, 2> ms_{};
  std::optional<Http1Connection> h1_;
  std::optional<Http2Connection> h2_;
};

}  // namespace aiqos
