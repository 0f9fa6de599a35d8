// Dataplane stages, in the order a frame meets them: parse, dispatch,
// classify, police, forward. Each is a function over a burst that fills
// per-packet results (MbufMeta), one file each, testable with mbufs from any
// mempool and no NIC (tests/unit/dataplane/*_stage_test.cpp).
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
std::span<const uint8_t> frame_bytes_chained(rte_mbuf* m, std::span<uint8_t> scratch, WorkerCounters* ctr) noexcept;
inline std::span<const uint8_t> frame_bytes(rte_mbuf* m, std::span<uint8_t> scratch, WorkerCounters* ctr) noexcept {
  if (m->nb_segs == 1) [[likely]]
    return {rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m)};
  return frame_bytes_chained(m, scratch, ctr);
}

// Decodes L2-L4 of every frame into its MbufMeta, computes the symmetric
// flow hash, stamps ingress port and RX time, and counts parse outcomes.
// `scratch` (kLinearFrameBytes) holds a multi-segment frame while it is decoded.
void parse_burst(std::span<rte_mbuf* const> pkts, uint16_t in_port, uint64_t now_tsc, WorkerCounters& ctr,
                 std::span<uint8_t> scratch) noexcept;

// --- dispatch stage (stage_dispatch.cpp) ---
// Worker that owns each frame's flow: both directions of a connection map to
// the same worker because the hash is symmetric and taken modulo the same count.
void dispatch_targets(std::span<rte_mbuf* const> pkts, uint16_t nb_workers,
                      std::span<uint16_t> worker_out) noexcept;

inline uint16_t worker_for_hash(uint64_t hash, uint16_t nb_workers) noexcept {
  // Upper bits: the low bits feed bucket selection in the flow table.
  return static_cast<uint16_t>((hash >> 40) % nb_workers);
}

struct WorkerCtx;  // dataplane.h

// Keeps this worker's frames (written to `mine`, their count returned) and
// hands the others to their workers' inboxes; what an inbox refuses is
// dropped and counted (dispatch_full).
uint16_t dispatch_burst(WorkerCtx& w, rte_mbuf* const* pkts, uint16_t n, rte_mbuf** mine) noexcept;

// --- classify stage (stage_classify.cpp) ---
// Each frame through the worker's Classifier: MbufMeta's class_id,
// from_client, over_budget and worker are set. The frame's time is its RX
// timestamp when the port gives one (offline replay), else the worker's wall
// clock at RX (converted once per RX stamp).
void classify_burst(WorkerCtx& w, rte_mbuf* const* pkts, uint16_t n) noexcept;
// The worker's wall clock (ns) at TSC `tsc`: its anchor plus the cycles since.
uint64_t wall_ns(const WorkerCtx& w, uint64_t tsc) noexcept;

// --- police stage (stage_police.cpp) ---
// Metering, marking and budget drops per class: returns how many frames are
// left, compacted at the front of `pkts` (the others were freed and counted
// against their egress port).
uint16_t police_burst(WorkerCtx& w, rte_mbuf** pkts, uint16_t n, uint64_t tsc) noexcept;

// --- forward stage (stage_forward.cpp) ---
// Every frame to its ingress port's peer: into the TX buffer, or through the
// peer's shaper while one is in use (or still holds frames). Frames of a port
// without a peer are dropped (no_peer).
void forward_burst(WorkerCtx& w, rte_mbuf* const* pkts, uint16_t n) noexcept;
// Sends what is buffered for `port` (own TX queue, or the ring worker 0 drains).
void flush_port(WorkerCtx& w, uint16_t port) noexcept;
// Frames the shapers release now go out; true if there were any.
bool drain_shapers(WorkerCtx& w) noexcept;
// Operator bypass: straight to the peer port, unparsed, unclassified, unshaped.
void bypass_burst(WorkerCtx& w, uint16_t port, rte_mbuf** pkts, uint16_t n, uint64_t now) noexcept;
// Worker 0: sends what other workers queued for TX queue 0 of ports with fewer
// TX queues than workers; true if there was anything.
bool drain_tx_rings(WorkerCtx& w) noexcept;
// Frees and counts `n` frames as dropped on `port` for `why`.
void drop_frames(WorkerCtx& w, uint16_t port, DropReason why, rte_mbuf* const* pkts, uint16_t n) noexcept;

}  // namespace aiqos
