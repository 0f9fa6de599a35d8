// Per-worker, per-port counters. Workers write plain increments (one writer
// per counter, no locked RMW); the control plane reads and sums them.
#pragma once

#include <rte_common.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "classify/packet_parse.h"
#include "dataplane/stats_fields.h"

namespace aiqos {

// A counter with exactly one writer: the increment compiles to a plain add
// (no lock prefix); relaxed atomics only make the concurrent read well defined.
class Counter {
 public:
  void add(uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

inline constexpr size_t kParseStatuses = static_cast<size_t>(ParseStatus::count_);

inline constexpr uint16_t kMaxPorts = 16;

// Counters one worker keeps for one port. rx_* count frames received on the
// port; tx_* frames sent on it; drops are charged to the port the frame was
// going out on.
struct alignas(RTE_CACHE_LINE_SIZE) PortCounters {
#define X(name, kind, prom, labels, help) Counter name;
  AIQOS_PORT_COUNTERS(X)
#undef X
  Counter drops[kDropReasons];
};

// The worker's own counters (AIQOS_WORKER_COUNTERS: loops, busy_loops,
// dispatched_in/out, bypassed, multi_seg, ...), per parse status, per port.
struct alignas(RTE_CACHE_LINE_SIZE) WorkerCounters {
#define X(name, kind, prom, labels, help) Counter name;
  AIQOS_WORKER_COUNTERS(X)
#undef X
  Counter parse[kParseStatuses];
  PortCounters port[kMaxPorts];
};

}  // namespace aiqos
