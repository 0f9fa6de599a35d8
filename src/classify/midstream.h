// Resynchronisation on a connection picked up mid-stream (aiqosd started, or
// restarted, while the connection was open: no handshake, no HTTP/2 preface,
// no SETTINGS, an HPACK table never seen). What Suricata calls midstream.
//
// Given the bytes one direction sent from an arbitrary point, find where a
// parser can start:
//  - HTTP/1: a complete request line with a registered method
//    (`METHOD SP target SP HTTP/1.x CRLF`), or a status line
//    (`HTTP/1.x SP 3DIGIT SP`) for the server side once the client side is in
//    sync. Anywhere, not only at a line start: a message follows a body
//    delimited by its length directly.
//  - HTTP/2: a chain of frame headers, each one valid for its type (length,
//    flags, stream id rules, no CONTINUATION first), every one found exactly
//    where the previous frame's length says: three of them, or two whose
//    chain ends exactly at the end of the bytes seen so far when one is a
//    HEADERS frame that reads as a request or a response (a request is often
//    HEADERS + DATA in one segment). A HEADERS frame in the chain also
//    tells the sender's role: a request block starts with a request
//    pseudo-header (:method, :path, :scheme, :authority), a response block
//    with :status; PUSH_PROMISE comes only from servers.
// Pure functions over byte spans: no state, no allocation, no EAL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace aiqos {

enum class Resync : uint8_t { no, need_more, yes };

// What a chain of HTTP/2 frames says of its sender.
enum class H2Role : uint8_t { unknown, client, server };

struct H2Chain {
  Resync found = Resync::no;
  uint8_t frames = 0;  // headers validated
  H2Role role = H2Role::unknown;
};

// A complete HTTP/1 request line starts at b[0].
Resync h1_request_line_at(std::span<const uint8_t> b) noexcept;
// An HTTP/1 status line starts at b[0] (`HTTP/1.x 3DIGIT SP`).
Resync h1_status_line_at(std::span<const uint8_t> b) noexcept;
// A chain of valid HTTP/2 frame headers starts at b[0].
H2Chain h2_chain_at(std::span<const uint8_t> b, uint32_t max_frame_size) noexcept;

enum class ResyncKind : uint8_t { h1_request, h1_status, h2 };

struct ResyncPoint {
  Resync found = Resync::no;
  size_t offset = 0;  // where the parser starts (found == yes)
  // The smallest offset worth looking at again once more bytes arrived
  // (everything before it was ruled out).
  size_t resume = 0;
  H2Role role = H2Role::unknown;
};

// The first start point for `kind` in b[from..].
ResyncPoint find_resync(std::span<const uint8_t> b, size_t from, ResyncKind kind,
                        uint32_t max_frame_size) noexcept;

}  // namespace aiqos
