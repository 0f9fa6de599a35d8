// The parse stage: L2-L4 of every frame of a burst into its MbufMeta, the
// flow identity (canonical key, direction, symmetric hash), ingress port and RX time.
#include "dataplane/stages.h"

#include "classify/flow_key.h"

namespace aiqos {

std::span<const uint8_t> frame_bytes_chained(rte_mbuf* m, std::span<uint8_t> scratch, WorkerCounters* ctr) noexcept {
  const uint32_t len = rte_pktmbuf_pkt_len(m);
  if (len <= scratch.size()) {
    if (ctr != nullptr) ctr->multi_seg.add();
    const void* p = rte_pktmbuf_read(m, 0, len, scratch.data());
    if (p != nullptr) return {static_cast<const uint8_t*>(p), len};
  }
  if (ctr != nullptr) ctr->multi_seg_too_long.add();
  return {rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m)};
}

void parse_burst(std::span<rte_mbuf* const> pkts, uint16_t in_port, uint64_t now_tsc, WorkerCounters& ctr,
                 std::span<uint8_t> scratch) noexcept {
  for (size_t i = 0; i < pkts.size(); ++i) {
    rte_mbuf* m = pkts[i];
    if (i + 1 < pkts.size()) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void*));
    MbufMeta* md = meta(m);
    // PacketInfo keeps offsets only, the same in the copy as in the chain:
    // the classify stage copies the frame again when it runs.
    std::span<const uint8_t> bytes = frame_bytes(m, scratch, &ctr);
    ParseStatus st = parse_packet(bytes, md->pkt);
    ctr.parse[static_cast<size_t>(st)].add();
    compute_flow_id(md->pkt, md->flow);
    md->rx_tsc = now_tsc;
    md->in_port = in_port;
  }
}


}  // namespace aiqos
