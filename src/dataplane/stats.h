// Per-worker, per-port counters. Workers write plain increments (one writer
// per counter, no locked RMW); the control plane reads and sums them.
#pragma once

#include <rte_common.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "classify/packet_parse.h"

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

// Why a frame did not leave the appliance. Names are shown by aiqosctl and in
// the stats JSON; keep them stable.
#define AIQOS_DROP_REASONS(X)                                                   \
  X(tx_full, "the peer port's TX queue refused the frame")                      \
  X(dispatch_full, "the software dispatch ring to the owning worker was full")  \
  X(tx_ring_full, "the ring to the worker owning the peer's TX queue was full") \
  X(no_peer, "the port has no peer port (odd port count)")                     \
  X(policed, "over its class rate, and the class's exceed action is drop")      \
  X(queue_full, "the egress shaper's queue for the frame's class was full")     \
  X(over_budget, "a request on its connection is over a request or token budget")

enum class DropReason : uint8_t {
#define X(name, desc) name,
  AIQOS_DROP_REASONS(X)
#undef X
      count_
};
inline constexpr size_t kDropReasons = static_cast<size_t>(DropReason::count_);
inline constexpr size_t kParseStatuses = static_cast<size_t>(ParseStatus::count_);
const char* drop_reason_name(DropReason r) noexcept;

inline constexpr uint16_t kMaxPorts = 16;

// Counters one worker keeps for one port. rx_* count frames received on the
// port; tx_* frames sent on it; drops are charged to the port the frame was
// going out on.
struct alignas(RTE_CACHE_LINE_SIZE) PortCounters {
  Counter rx_packets, rx_bytes;
  Counter tx_packets, tx_bytes;
  Counter drops[kDropReasons];
  // Frames queued in their flow's earlier traffic class rather than their
  // own, because frames of the flow were still waiting there (order kept).
  Counter class_held;
};

struct alignas(RTE_CACHE_LINE_SIZE) WorkerCounters {
  Counter loops;           // poll-loop iterations
  Counter busy_loops;      // iterations that received at least one frame
  Counter dispatched_out;  // frames handed to another worker
  Counter dispatched_in;   // frames received from another worker
  Counter bypassed;        // frames forwarded port to port in operator bypass (no parsing)
  Counter multi_seg;       // multi-segment frames decoded over a linear copy (stages.h)
  Counter multi_seg_too_long;  // ... longer than kLinearFrameBytes: payload not classified
  Counter parse[kParseStatuses];
  PortCounters port[kMaxPorts];
};

// Sums, as the control plane presents them.
struct PortTotals {
  uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
  uint64_t drops[kDropReasons] = {};
  uint64_t class_held = 0;
  // From the PMD (rte_eth_stats): frames the NIC could not take in.
  uint64_t hw_imissed = 0, hw_rx_nombuf = 0, hw_ierrors = 0, hw_oerrors = 0;
  uint64_t drops_total() const noexcept {
    uint64_t s = 0;
    for (auto d : drops) s += d;
    return s;
  }
};

}  // namespace aiqos
