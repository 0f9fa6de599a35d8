// Per-class QoS on the fast path: policing with rte_meter (srTCM, colour
// blind), exceed actions, DSCP and VLAN marking, and strict-priority shaping
// of each egress port with rte_sched.
//
// The control plane builds a PolicySnapshot (classifier rules + per-class
// meter profiles, already split across workers) and publishes it with RCU;
// each worker keeps its own meter state and re-arms it when the snapshot
// changes. Nothing here allocates or locks per frame.
#pragma once

#include <rte_mbuf.h>
#include <rte_meter.h>
#include <rte_sched.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "control/policy_engine.h"
#include "dataplane/qos_math.h"
#include "dataplane/stats.h"

namespace aiqos {

inline constexpr uint16_t kMaxQosClasses = 256;

// One class as the fast path applies it. Control path: wo at build; workers: ro.
struct QosClass {
  bool metered = false;  // policed by rte_meter (rate with exceed remark or demote)
  bool shaped = false;   // shaped by its own rte_sched traffic class (rate with exceed drop)
  rte_meter_srtcm_profile profile{};  // this worker's share of rate and burst
  ExceedAction exceed = ExceedAction::drop;
  int16_t exceed_dscp = -1, exceed_pcp = -1;
  uint16_t demote_to = 0;
  int32_t vlan = -1;  // egress VLAN ID, -1: keep tags as they are
  int16_t pcp = -1;
  int16_t dscp = -1;
  uint8_t tc = kBestEffortTc;  // rte_sched traffic class (strict priority, 0 first)
};

// What workers read through one RCU-protected pointer.
struct PolicySnapshot {
  uint32_t generation = 0;
  std::unique_ptr<PolicyEngine> engine;
  std::vector<QosClass> classes;
  // Some class is shaped to a rate: frames go through the shapers. Without
  // one (and without --egress-rate) they bypass rte_sched entirely.
  bool any_shaped = false;
  // Per traffic class, this worker's share of the class rate in bytes/s (0: not limited).
  std::array<uint64_t, RTE_SCHED_TRAFFIC_CLASSES_PER_PIPE> tc_rate{};

  // Builds the fast-path view of `engine` for `workers` workers; empty string
  // on success, else what is wrong.
  static std::unique_ptr<PolicySnapshot> build(std::unique_ptr<PolicyEngine> engine, uint16_t workers,
                                               uint32_t generation, std::string& error);
};

// Counters of one class on one worker (worker: wo, control plane: ro).
struct alignas(RTE_CACHE_LINE_SIZE) ClassCounters {
  Counter frames, bytes;  // charged to the class (after demotion)
  Counter policed;        // dropped by the exceed action
  Counter remarked;       // re-marked by the exceed action
  Counter demoted;        // moved to demote_to by the exceed action
};

class WorkerQos {
 public:
  // Worker side, when a new snapshot is seen: arm a meter per metered class.
  void reconfigure(const PolicySnapshot* s) noexcept;
  // Polices and marks a burst in place. Frames the policy drops are freed and
  // counted on their egress port; the kept ones are compacted to the front.
  // Returns how many are kept. Each frame's class comes from its MbufMeta.
  uint16_t apply(rte_mbuf** pkts, uint16_t n, uint64_t tsc, ClassCounters* cc, WorkerCounters& ctr,
                 const uint16_t* egress_port) noexcept;

 private:
  const PolicySnapshot* snap_ = nullptr;
  rte_meter_srtcm meters_[kMaxQosClasses];
};

// Strict-priority shaper of one egress port, owned by one worker: a FIFO per
// traffic class (class priority order), a real-time token bucket per shaped
// class and one for the port. Each dequeue serves the most urgent class whose
// head frame has both the class's and the port's tokens.
//
// Order within a flow: every frame is queued with its flow key (the symmetric
// flow hash). While a flow has frames in one traffic class, its later frames
// join that class's FIFO whatever their own class says (counted as held), and
// the flow moves to its new class once the old FIFO holds none of its frames,
// as per-flow queueing schedulers do. Otherwise a connection whose class
// changed mid-flight (handshake queued in the default class, the request in a
// more urgent one) would leave out of order. The per-flow state is a
// fixed-size open-addressing table holding only flows with frames queued, so
// it never holds more entries than queued frames and never fills.
//
// Why not rte_sched: with every class in one pipe (the only way to get strict
// priority between them), a shaped class next to a busy unshaped one lost 40%
// of its rate (its traffic-class credit is refreshed only when the grinder
// reloads the pipe), and the port rate is not paced in real time (bursts, then
// silence). Both measured in tests/e2e/qos_test.sh; see docs/qos.md.
class Shaper {
 public:
  static constexpr size_t kTcs = RTE_SCHED_TRAFFIC_CLASSES_PER_PIPE;
  Shaper() = default;
  ~Shaper();
  Shaper(const Shaper&) = delete;
  Shaper& operator=(const Shaper&) = delete;
  // rate_bps: this worker's share of the port; queue_frames: per traffic class.
  bool init(const std::string& name, uint64_t rate_bps, uint16_t queue_frames, int socket, std::string& error);
  // Worker side, when a snapshot changes: limit each traffic class to its
  // class's rate (bytes/s; 0: only the port rate).
  bool set_tc_rates(const std::array<uint64_t, kTcs>& bytes_per_s) noexcept;
  bool active() const noexcept { return slots_ != nullptr; }
  // Queues frames, each with its class's traffic class and its flow key;
  // returns how many were accepted. A frame whose flow has frames queued goes
  // to their traffic class instead (adds 1 to *held). Refused frames (the
  // queue they must join is full) are freed.
  uint32_t enqueue(rte_mbuf** pkts, uint32_t n, const uint8_t* tcs, const uint64_t* flows,
                   uint32_t* held = nullptr) noexcept;
  // The short path of an idle shaper: while nothing is queued (no more urgent
  // class waits, no frame of the same flow is ahead), a frame whose traffic
  // class and port buckets hold its bytes leaves at once, charged as if it
  // had been queued and dequeued. Returns how many of pkts[0..n), in order,
  // passed (and were charged); the caller queues the rest with enqueue().
  // `now` is the TSC (one read per burst).
  uint32_t pass(rte_mbuf* const* pkts, uint32_t n, const uint8_t* tcs, uint64_t now) noexcept;
  // Frames whose time has come, in strict priority order.
  uint32_t dequeue(rte_mbuf** pkts, uint32_t n) noexcept;
  uint32_t queued() const noexcept;
  // Flows with frames queued (tests).
  uint32_t flows_queued() const noexcept { return pinned_; }

 private:
  struct Bucket {
    double tokens = 0, burst = 0, per_tsc = 0;  // per_tsc 0: unlimited
  };
  struct Fifo {
    uint32_t head = 0, count = 0;
  };
  // A flow with frames queued: all of them are in traffic class `tc`.
  struct Pin {
    uint64_t flow = 0;
    uint32_t count = 0;  // frames queued; 0: free entry
    uint8_t tc = 0;
  };
  void refill(uint64_t now) noexcept;
  uint32_t pin_slot(uint64_t flow) const noexcept;
  void pin_release(uint64_t flow) noexcept;

  rte_mbuf** slots_ = nullptr;  // kTcs FIFOs of qsize_ frames each
  uint64_t* flows_ = nullptr;   // the flow key of each slot
  Pin* pins_ = nullptr;         // linear probing, 2x the slots rounded up to a power of two
  uint32_t pin_mask_ = 0;
  uint32_t pinned_ = 0;
  uint32_t queued_ = 0;  // frames in all FIFOs
  uint32_t qsize_ = 0;
  std::array<Fifo, kTcs> fifo_{};
  std::array<Bucket, kTcs> tc_{};
  Bucket port_;
  uint64_t last_tsc_ = 0;
  double tsc_hz_ = 0;
  std::array<uint64_t, kTcs> rates_{};  // in force
};

}  // namespace aiqos
