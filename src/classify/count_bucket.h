// A token bucket counted in requests (requests per second) or LLM tokens
// (per minute): refill by elapsed time, take if available. Pure, no clock.
#pragma once

#include <algorithm>
#include <cstdint>

namespace aiqos {

struct CountBucket {
  double tokens = 0;
  double capacity = 0;
  double per_ns = 0;  // refill per nanosecond
  uint64_t last_ns = 0;

  static constexpr CountBucket make(double per_second, double burst) noexcept {
    CountBucket b;
    b.capacity = burst;
    b.tokens = burst;
    b.per_ns = per_second / 1e9;
    return b;
  }
  constexpr bool take(double n, uint64_t now_ns) noexcept {
    if (now_ns > last_ns) {
      tokens = std::min(capacity, tokens + static_cast<double>(now_ns - last_ns) * per_ns);
      last_ns = now_ns;
    }
    if (tokens < n) return false;
    tokens -= n;
    return true;
  }
  // Corrects an earlier take by `delta` tokens (positive: charge more,
  // negative: refund), whether or not they are available: the bucket may go
  // into debt (below zero), which later takes must wait out; never above capacity.
  constexpr void adjust(double delta, uint64_t now_ns) noexcept {
    if (now_ns > last_ns) {
      tokens = std::min(capacity, tokens + static_cast<double>(now_ns - last_ns) * per_ns);
      last_ns = now_ns;
    }
    tokens = std::min(capacity, tokens - delta);
  }
};

}  // namespace aiqos
