// The classify stage: the flow table, reassembly and L7 parsers of this
// worker's Classifier decide each frame's class and direction (and whether a
// request over its budget drops it). Lookups go a burst at a time, with the
// flow buckets prefetched first.
#include <rte_mbuf_dyn.h>

#include "dataplane/dataplane.h"
#include "dataplane/stages.h"

namespace aiqos {

uint64_t wall_ns(const WorkerCtx& w, uint64_t tsc) noexcept {
  // Signed: a frame stamped (by another worker) just before the last re-anchoring.
  return w.wall0_ns + static_cast<uint64_t>(static_cast<double>(static_cast<int64_t>(tsc - w.tsc0)) * w.ns_per_tsc);
}

void classify_burst(WorkerCtx& w, rte_mbuf* const* pkts, uint16_t n) noexcept {
  const Shared& sh = *w.sh;
  // Burst lookups, as l3fwd does: the buckets of the whole burst first, then
  // the entry at the head of each chain a few frames ahead of its lookup.
  constexpr uint16_t kAhead = 4;
  const FlowTable& ft = w.cls->flows();
  for (uint16_t i = 0; i < n; ++i) ft.prefetch_bucket(meta(pkts[i])->flow.hash);
  for (uint16_t i = 0; i < n && i < kAhead; ++i) ft.prefetch_flow(meta(pkts[i])->flow.hash);
  // Frames of one RX burst share their RX stamp: convert it once.
  uint64_t last_tsc = 0, last_wall = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    MbufMeta* md = meta(m);
    if (i + kAhead < n) ft.prefetch_flow(meta(pkts[i + kAhead])->flow.hash);
    md->worker = w.id;
    if (md->rx_tsc != last_tsc || i == 0) {
      last_tsc = md->rx_tsc;
      last_wall = wall_ns(w, last_tsc);
    }
    uint64_t t = last_wall;
    if (sh.ts_offset >= 0 && (m->ol_flags & sh.ts_flag)) {
      // net_pcap (22.11) gives microseconds since the epoch; NICs give
      // nanoseconds. Anything below 1e17 cannot be nanoseconds after 1973.
      t = *RTE_MBUF_DYNFIELD(m, sh.ts_offset, const rte_mbuf_timestamp_t*);
      if (t < 100000000000000000ULL) t *= 1000;
      w.offline_clock = true;
    }
    // Counted once, by parse_burst.
    std::span<const uint8_t> frame = frame_bytes(m, w.linear, nullptr);
    PacketClass pc = w.cls->on_packet(md->pkt, frame, t, md->flow);
    md->class_id = pc.class_id;
    md->from_client = pc.from_client;
    md->over_budget = pc.drop;
  }
}

}  // namespace aiqos
