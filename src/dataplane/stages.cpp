#include "dataplane/stages.h"

#include "classify/flow_key.h"

namespace aiqos {

void parse_burst(std::span<rte_mbuf* const> pkts, uint16_t in_port, uint64_t now_tsc,
                 WorkerCounters& ctr) noexcept {
  for (size_t i = 0; i < pkts.size(); ++i) {
    rte_mbuf* m = pkts[i];
    if (i + 1 < pkts.size()) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void*));
    MbufMeta* md = meta(m);
    // Multi-segment frames are decoded over their first segment only; the
    // headers of every frame this appliance forwards fit there.
    std::span<const uint8_t> bytes(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m));
    ParseStatus st = parse_packet(bytes, md->pkt);
    ctr.parse[static_cast<size_t>(st)].add();
    md->hash = symmetric_hash(md->pkt);
    md->rx_tsc = now_tsc;
    md->in_port = in_port;
  }
}

void dispatch_targets(std::span<rte_mbuf* const> pkts, uint16_t nb_workers,
                      std::span<uint16_t> worker_out) noexcept {
  for (size_t i = 0; i < pkts.size(); ++i) worker_out[i] = worker_for_hash(meta(pkts[i])->hash, nb_workers);
}

}  // namespace aiqos
