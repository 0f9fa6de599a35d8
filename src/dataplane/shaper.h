// The egress shaper: strict priority between traffic classes, a token
// bucket per shaped class and one for the port, order kept within a flow.
// The control path picks each class's traffic class and rate (dataplane/qos.h,
// PolicySnapshot); each worker owns one Shaper per egress port.
#pragma once

#include <rte_mbuf.h>

#include <array>
#include <cstdint>
#include <string>

#include "dataplane/qos_math.h"

namespace aiqos {

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
  static constexpr size_t kTcs = kTrafficClasses;
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
