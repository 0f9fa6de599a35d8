// The response tracker's internals shared by its two halves: the framings
// and line templates (response_tracker.cpp: SSE, NDJSON, gRPC, a line like the
// last ones counted without a scan) and the JSON scanner (response_json.cpp).
// Private to those two files.
#pragma once

#include <cstdint>

#include "classify/response_tracker.h"

namespace aiqos {
namespace resp {

// Scanner states.
enum J : uint8_t { j_value, j_key_or_end, j_key_start, j_key, j_key_esc, j_colon, j_after, j_str, j_str_esc, j_str_u, j_num, j_lit };
// Per-document flags.
constexpr uint8_t kDocContent = 1, kDocError = 2, kDocDone = 4;

}  // namespace resp

// One content-bearing event: the first token's time, the last one's, a count.
inline void ResponseTracker::content() noexcept {
  if (u_.first_ns == 0) u_.first_ns = now_;
  u_.last_ns = now_;
  ++u_.events;
}

}  // namespace aiqos
