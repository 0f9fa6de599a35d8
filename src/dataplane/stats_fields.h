// The dataplane's counters, each declared once: the worker's Counter members
// (stats.h), the plain snapshot the control plane reads (control/dp_stats.h)
// and every renderer (JSON, Prometheus, telemetry, the exit report) expand
// these lists. No DPDK here: the control library includes it.
//
// X(name, kind, prometheus family, fixed labels, help)
//   name    the member, the JSON and telemetry key, the name in the exit report
//   kind    counter | gauge (Prometheus TYPE)
//   family  the Prometheus metric; its HELP is the help of the first field
//           that names it. Names that dashboards and alerts query
//           (deploy/) must not change.
//
// Adding a per-worker counter is one line in AIQOS_WORKER_COUNTERS (and the
// worker's ctr.NAME.add() where it counts): the snapshot, the sum, the
// JSON, Prometheus, telemetry and the exit report all follow, and
// tests/unit/control/dp_stats_test.cpp checks that each of them shows it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace aiqos {

enum class StatKind : uint8_t { counter, gauge };

// One scalar of a stats struct, as the renderers see it.
struct StatField {
  const char* name;
  StatKind kind;
  const char* prom;    // Prometheus family
  const char* labels;  // fixed labels of its series ("" or e.g. `budget="rps"`)
  const char* help;
};

// A counter per enum value (drop reason, parse status, ...), named by the enum.
struct StatArray {
  const char* name;  // JSON / telemetry object key
  StatKind kind;
  const char* prom;   // Prometheus family
  const char* label;  // the label naming the element ("reason")
  const char* help;
  size_t first;                      // elements before it are never shown (a "none" value)
  bool nonzero_only;                 // only non-zero elements are shown
  const char* (*element)(size_t i);  // the element's name
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

constexpr const char* drop_reason_name(DropReason r) noexcept {
  switch (r) {
#define X(name, desc) \
  case DropReason::name: return #name;
    AIQOS_DROP_REASONS(X)
#undef X
    default: return "unknown";
  }
}

// Counters a worker keeps per port (rx_* frames received on the port, tx_*
// frames sent on it), besides drops[] by DropReason (charged to the port the
// frame was going out on).
#define AIQOS_PORT_COUNTERS(X)                                                                  \
  X(rx_packets, counter, "aiqos_port_rx_packets_total", "", "Frames received on a port.")      \
  X(rx_bytes, counter, "aiqos_port_rx_bytes_total", "", "Bytes received on a port.")           \
  X(tx_packets, counter, "aiqos_port_tx_packets_total", "", "Frames sent on a port.")          \
  X(tx_bytes, counter, "aiqos_port_tx_bytes_total", "", "Bytes sent on a port.")               \
  X(class_held, counter, "aiqos_port_class_held_total", "",                                     \
    "Frames queued in their flow's earlier traffic class rather than their own, because frames " \
    "of the flow were still waiting there (order kept).")

// Counters a worker keeps for itself.
#define AIQOS_WORKER_COUNTERS(X)                                                                        \
  X(loops, counter, "aiqos_worker_loops_total", "",                                                     \
    "Poll loops of a worker: its heartbeat. A worker whose rate is 0 is stuck.")                        \
  X(busy_loops, counter, "aiqos_worker_busy_loops_total", "", "Poll loops that received at least one frame.") \
  X(dispatched_out, counter, "aiqos_worker_dispatched_out_total", "", "Frames a worker handed to another worker.") \
  X(dispatched_in, counter, "aiqos_worker_dispatched_in_total", "", "Frames a worker received from another worker.") \
  X(bypassed, counter, "aiqos_worker_bypassed_total", "",                                               \
    "Frames forwarded port to port in operator bypass (no parsing).")                                  \
  X(multi_seg, counter, "aiqos_worker_multi_seg_total", "",                                             \
    "Multi-segment frames decoded over a linear copy.")                                                 \
  X(multi_seg_too_long, counter, "aiqos_worker_multi_seg_too_long_total", "",                           \
    "Multi-segment frames too long for the linear copy: payload not classified.")

}  // namespace aiqos
