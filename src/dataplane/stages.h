// Dataplane stages: each is a function over a burst that fills per-packet
// results, testable with mbufs from any mempool and no NIC.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <span>

#include "dataplane/mbuf_meta.h"
#include "dataplane/stats.h"

namespace aiqos {

// Multi-segment frames (jumbo frames received into chained mbufs, as
// net_pcap does beyond the data room; LRO) are decoded and classified over a
// copy in the worker's linear buffer of this size. A longer frame is decoded
// over its first segment only (its payload is not classified: fail open),
// counted as multi_seg_too_long.
inline constexpr uint32_t kLinearFrameBytes = 16384;

// The bytes of frame `m` as one span: the mbuf's own data when it is one
// segment, else a copy in `scratch` (counted multi_seg), else its first
// segment (counted multi_seg_too_long). Valid until `scratch` is reused.
std::span<const uint8_t> frame_bytes(rte_mbuf* m, std::span<uint8_t> scratch, WorkerCounters* ctr) noexcept;

// Decodes L2-L4 of every frame into its MbufMeta, computes the symmetric
// flow hash, stamps ingress port and RX time, and counts parse outcomes.
// `scratch` (kLinearFrameBytes) holds a multi-segment frame while it is decoded.
void parse_burst(std::span<rte_mbuf* const> pkts, uint16_t in_port, uint64_t now_tsc, WorkerCounters& ctr,
                 std::span<uint8_t> scratch) noexcept;

// Worker that owns each frame's flow: both directions of a connection map to
// the same worker because the hash is symmetric and taken modulo the same count.
void dispatch_targets(std::span<rte_mbuf* const> pkts, uint16_t nb_workers,
                      std::span<uint16_t> worker_out) noexcept;

inline uint16_t worker_for_hash(uint64_t hash, uint16_t nb_workers) noexcept {
  // Upper bits: the low bits feed bucket selection in the flow table.
  return static_cast<uint16_t>((hash >> 40) % nb_workers);
}

}  // namespace aiqos
