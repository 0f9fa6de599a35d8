// Per-class QoS on the fast path: policing with rte_meter (srTCM, colour
// blind), exceed actions, DSCP and VLAN marking, and the traffic class and
// rate of each class for the strict-priority shaper of each egress port
// (dataplane/shaper.h).
//
// The control plane builds a PolicySnapshot (classifier rules + per-class
// meter profiles, already split across workers) and publishes it with RCU;
// each worker keeps its own meter state and re-arms it when the snapshot
// changes. Nothing here allocates or locks per frame.
#pragma once

#include <rte_mbuf.h>
#include <rte_meter.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "control/policy_engine.h"
#include "dataplane/qos_math.h"
#include "dataplane/shaper.h"  // for dataplane.h, which reaches Shaper through this header
#include "dataplane/stats.h"

namespace aiqos {

inline constexpr uint16_t kMaxQosClasses = 256;

// One class as the fast path applies it. Control path: wo at build; workers: ro.
struct QosClass {
  bool metered = false;  // policed by rte_meter (rate with exceed remark or demote)
  bool shaped = false;   // shaped in its own traffic class of the Shaper (rate with exceed drop)
  rte_meter_srtcm_profile profile{};  // this worker's share of rate and burst
  ExceedAction exceed = ExceedAction::drop;
  int16_t exceed_dscp = -1, exceed_pcp = -1;
  uint16_t demote_to = 0;
  int32_t vlan = -1;  // egress VLAN ID, -1: keep tags as they are
  int16_t pcp = -1;
  int16_t dscp = -1;
  uint8_t tc = kBestEffortTc;  // the Shaper's traffic class (strict priority, 0 first)
};

// What workers read through one RCU-protected pointer.
struct PolicySnapshot {
  uint32_t generation = 0;
  std::unique_ptr<PolicyEngine> engine;
  std::vector<QosClass> classes;
  // Some class is shaped to a rate: frames go through the shapers. Without
  // one (and without --egress-rate) they bypass the shapers entirely.
  bool any_shaped = false;
  // Per traffic class, this worker's share of the class rate in bytes/s (0: not limited).
  std::array<uint64_t, kTrafficClasses> tc_rate{};

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

}  // namespace aiqos
