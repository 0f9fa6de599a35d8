// Hands finished request records from a worker to the control plane: a slot
// from a shared mempool, filled by copy, then an SPSC ring per worker. Full
// pool or ring: the record is dropped and counted, the worker never waits.
#pragma once

#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <cstring>
#include <type_traits>

#include "classify/classifier.h"
#include "dataplane/stats.h"

namespace aiqos {

static_assert(std::is_trivially_copyable_v<RequestRecord>, "records cross threads by copy");

class RingRequestSink final : public RequestSink {
 public:
  // `wait`: when the ring or pool is full, wait (bounded, ~1 s) for the
  // control plane to drain it instead of dropping: offline replay only.
  RingRequestSink(rte_mempool* pool, rte_ring* ring, bool wait = false) noexcept
      : pool_(pool), ring_(ring), wait_(wait) {}
  void emit(const RequestRecord& r) noexcept override {
    void* obj;
    int tries = wait_ ? 100000 : 1;
    while (rte_mempool_get(pool_, &obj) != 0) {
      if (--tries <= 0) {
        dropped.add();
        return;
      }
      rte_pause_us();
    }
    std::memcpy(obj, &r, sizeof r);
    tries = wait_ ? 100000 : 1;
    while (rte_ring_sp_enqueue(ring_, obj) != 0) {
      if (--tries <= 0) {
        rte_mempool_put(pool_, obj);
        dropped.add();
        return;
      }
      rte_pause_us();
    }
    emitted.add();
  }
  rte_ring* ring() const noexcept { return ring_; }
  rte_mempool* pool() const noexcept { return pool_; }

  Counter emitted;  // worker: wo, control plane: ro
  Counter dropped;

 private:
  static void rte_pause_us() noexcept { rte_delay_us_block(10); }
  rte_mempool* pool_;
  rte_ring* ring_;
  bool wait_;
};

}  // namespace aiqos
