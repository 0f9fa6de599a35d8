// The dispatch stage (software dispatch, when a port's frames are not spread
// over the workers by the NIC): the worker that polls the port keeps the
// frames of its own flows and hands the others to their workers' inboxes.
// The symmetric hash sends both directions of a connection to one worker.
#include <rte_ring.h>

#include "dataplane/dataplane.h"
#include "dataplane/stages.h"

namespace aiqos {

void dispatch_targets(std::span<rte_mbuf* const> pkts, uint16_t nb_workers,
                      std::span<uint16_t> worker_out) noexcept {
  for (size_t i = 0; i < pkts.size(); ++i) worker_out[i] = worker_for_hash(meta(pkts[i])->flow.hash, nb_workers);
}

// Software dispatch: keep our own frames, hand the others to their workers.
uint16_t dispatch_burst(WorkerCtx& w, rte_mbuf* const* pkts, uint16_t n, rte_mbuf** mine) noexcept {
  const Shared& sh = *w.sh;
  uint16_t target[kMaxBurst];
  dispatch_targets({pkts, n}, sh.nb_workers, {target, n});
  uint16_t nmine = 0;
  for (uint16_t t = 0; t < sh.nb_workers; ++t) {
    rte_mbuf* out[kMaxBurst];
    uint16_t nout = 0;
    for (uint16_t i = 0; i < n; ++i) {
      if (target[i] != t) continue;
      if (t == w.id) {
        mine[nmine++] = pkts[i];
      } else {
        out[nout++] = pkts[i];
      }
    }
    if (nout == 0) continue;
    unsigned q = rte_ring_mp_enqueue_burst(sh.workers[t]->inbox, reinterpret_cast<void* const*>(out), nout, nullptr);
    w.ctr.dispatched_out.add(q);
    for (unsigned i = q; i < nout; ++i) drop_frames(w, meta(out[i])->in_port, DropReason::dispatch_full, &out[i], 1);
  }
  return nmine;
}

}  // namespace aiqos
