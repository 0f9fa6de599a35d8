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

// rte_sched parameters of one worker's share of an egress port shaped to
// `rate_bps` (wire rate: rte_sched adds the 24 bytes of preamble, SFD, FCS
// and inter-frame gap per frame).
struct ShaperShare {
  uint64_t port_bytes_per_s = 0;
  uint64_t tb_size = 0;        // token bucket of the subport/pipe, bytes
  uint64_t tc_period_ms = 10;  // TC credit refresh period
  uint32_t frame_overhead = 24;
};

constexpr ShaperShare shaper_share(uint64_t rate_bps, uint16_t workers) noexcept {
  if (rate_bps == 0 || workers == 0) return {};
  ShaperShare s;
  s.port_bytes_per_s = std::max<uint64_t>(rate_bps / 8 / workers, 1);
  // Enough credit for 10 ms at the rate, never less than a few frames.
  s.tb_size = std::max<uint64_t>(s.port_bytes_per_s / 100, 4 * kMaxFrameBytes);
  return s;
}

// rte_sched refills traffic-class credit once per period and does not carry
// it over: credit left at the end of a period, less than one frame, is lost.
// A period holding 64 full frames at the lowest class rate bounds that loss
// to 1/64 of the rate (and a class can always send).
inline constexpr uint64_t kFramesPerTcPeriod = 64;
constexpr uint64_t tc_period_ms_for(uint64_t min_rate_bytes_per_s) noexcept {
  if (min_rate_bytes_per_s == 0) return 10;
  uint64_t need = (kFramesPerTcPeriod * kMaxFrameBytes * 1000 + min_rate_bytes_per_s - 1) / min_rate_bytes_per_s;
  return std::clamp<uint64_t>(need, 10, 1000);
}

// rte_sched has 12 strict-priority traffic classes (0 first) and a best-effort
// one (12). Classes get one each, in order of priority (then of appearance),
// so each can be shaped to its own rate and a more urgent class always goes
// first. Classes beyond the 12th share the best-effort class.
inline constexpr uint8_t kStrictTcs = 12;
inline constexpr uint8_t kBestEffortTc = 12;


}  // namespace aiqos
