// The police stage: per-class metering (rte_meter), DSCP and VLAN marking,
// and the drops of frames over a budget, through this worker's WorkerQos.
#include "dataplane/dataplane.h"
#include "dataplane/stages.h"

namespace aiqos {

uint16_t police_burst(WorkerCtx& w, rte_mbuf** pkts, uint16_t n, uint64_t tsc) noexcept {
  if (w.snap == nullptr) return n;
  const Shared& sh = *w.sh;
  uint16_t egress[kMaxBurst];
  for (uint16_t i = 0; i < n; ++i) {
    const PortPlan& in = sh.ports[meta(pkts[i])->in_port];
    egress[i] = in.has_peer ? in.peer : in.id;
  }
  return w.qos.apply(pkts, n, tsc, w.cls_ctr, w.ctr, egress);
}

}  // namespace aiqos
