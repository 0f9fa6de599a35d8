// Dataplane stages: each is a function over a burst that fills per-packet
// results, testable with mbufs from any mempool and no NIC.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <span>

#include "dataplane/mbuf_meta.h"
#include "dataplane/stats.h"

namespace aiqos {

// Decodes L2-L4 of every frame into its MbufMeta, computes the symmetric
// flow hash, stamps ingress port and RX time, and counts parse outcomes.
void parse_burst(std::span<rte_mbuf* const> pkts, uint16_t in_port, uint64_t now_tsc,
                 WorkerCounters& ctr) noexcept;

// Worker that owns each frame's flow: both directions of a connection map to
// the same worker because the hash is symmetric and taken modulo the same count.
void dispatch_targets(std::span<rte_mbuf* const> pkts, uint16_t nb_workers,
                      std::span<uint16_t> worker_out) noexcept;

inline uint16_t worker_for_hash(uint64_t hash, uint16_t nb_workers) noexcept {
  // Upper bits: the low bits feed bucket selection in the flow table.
  return static_cast<uint16_t>((hash >> 40) % nb_workers);
}

}  // namespace aiqos
