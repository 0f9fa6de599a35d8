// The arithmetic of policing and shaping, kept apart from DPDK so that it is
// unit-tested on its own.
//
// How a class rate holds for the whole appliance with W workers: each worker
// polices its own share, rate / W, with burst / W (but never less than one
// full frame, or a maximum-size frame could never conform). Flows are spread
// over workers by a symmetric hash, so with many flows each worker carries
// about 1/W of a class; a class concentrated on few flows (one download) gets
// less than its rate when W > 1. Documented in docs/qos.md.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "classify/count_bucket.h"  // CountBucket, for request and token budgets

namespace aiqos {

inline constexpr uint64_t kMaxFrameBytes = 1522;  // with one VLAN tag

struct MeterShare {
  uint64_t cir_bytes_per_s = 0;  // 0: unlimited (no meter)
  uint64_t cbs_bytes = 0;
};

constexpr MeterShare meter_share(uint64_t rate_bps, uint64_t burst_bytes, uint16_t workers) noexcept {
  if (rate_bps == 0 || workers == 0) return {};
  MeterShare s;
  s.cir_bytes_per_s = std::max<uint64_t>(rate_bps / 8 / workers, 1);
  s.cbs_bytes = std::max<uint64_t>(burst_bytes / workers, kMaxFrameBytes);
  return s;
}

// The shaper (dataplane/shaper.h) has 12 strict-priority traffic classes
// (0 first) and a best-effort one (12). Classes get one each, in order of
// priority (then of appearance), so each can be shaped to its own rate and a
// more urgent class always goes first. Classes beyond the 12th share the
// best-effort class.
inline constexpr uint8_t kStrictTcs = 12;
inline constexpr uint8_t kBestEffortTc = 12;
inline constexpr size_t kTrafficClasses = kStrictTcs + 1;

}  // namespace aiqos
