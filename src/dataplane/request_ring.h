// Hands finished request records from a worker to the control plane: a slot
// from a shared mempool, filled by copy, then an SPSC ring per worker. Full
// pool or ring: the record is dropped and counted, the worker never waits.
#pragma once

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
  RingRequestSink(rte_mempool* pool, rte_ring* ring) noexcept : pool_(pool), ring_(ring) {}
  void emit(const RequestRecord& r) noexcept override {
    void* obj;
    if (rte_mempool_get(pool_, &obj) != 0) {
      dropped.add();
      return;
    }
    std::memcpy(obj, &r, sizeof r);
    if (rte_ring_sp_enqueue(ring_, obj) != 0) {
      rte_mempool_put(pool_, obj);
      dropped.add();
      return;
    }
    emitted.add();
  }
  rte_ring* ring() const noexcept { return ring_; }
  rte_mempool* pool() const noexcept { return pool_; }

  Counter emitted;  // worker: wo, control plane: ro
  Counter dropped;

 private:
  rte_mempool* pool_;
  rte_ring* ring_;
};

}  // namespace aiqos
