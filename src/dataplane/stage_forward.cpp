// The forward stage: frames leave on their ingress port's peer, through the
// port's shaper when it has one in use (an idle shaper with tokens lets them
// straight through: Shaper::pass), buffered per egress port and sent a burst
// at a time; the TX paths (own queue, or the ring worker 0 drains), the
// latency stamps and the drop counters live here.
#include <rte_cycles.h>
#include <rte_ethdev.h>

#include "dataplane/dataplane.h"
#include "dataplane/stages.h"

namespace aiqos {
namespace {

// Time inside the appliance of frames about to be handed to the PMD (which
// may free them): one TSC read per burst.
void stamp_latency(WorkerCtx& w, rte_mbuf* const* pkts, uint16_t n) noexcept {
  if (n == 0) return;
  const uint64_t now = rte_rdtsc();
  // Runs of frames with one RX stamp (received in one burst) count at once.
  for (uint16_t i = 0; i < n;) {
    const uint64_t rx = meta(pkts[i])->rx_tsc;
    uint16_t j = static_cast<uint16_t>(i + 1);
    while (j < n && meta(pkts[j])->rx_tsc == rx) ++j;
    w.latency.add(now - rx, j - i);
    i = j;
  }
}

void count_tx(WorkerCtx& w, uint16_t port, rte_mbuf* const* pkts, uint16_t n) noexcept {
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < n; ++i) bytes += rte_pktmbuf_pkt_len(pkts[i]);
  w.ctr.port[port].tx_packets.add(n);
  w.ctr.port[port].tx_bytes.add(bytes);
}

}  // namespace

void drop_frames(WorkerCtx& w, uint16_t port, DropReason why, rte_mbuf* const* pkts, uint16_t n) noexcept {
  if (n == 0) return;
  w.ctr.port[port].drops[static_cast<size_t>(why)].add(n);
  rte_pktmbuf_free_bulk(const_cast<rte_mbuf**>(pkts), n);
}

// Sends what is buffered for `port`. A worker with its own TX queue sends
// directly; otherwise the frames go to the ring drained by worker 0, which
// owns queue 0. What a queue or ring refuses is freed and counted.
void flush_port(WorkerCtx& w, uint16_t port) noexcept {
  TxBuffer& b = w.tx[port];
  if (b.n == 0) return;
  const PortPlan& p = w.sh->ports[port];
  if (w.id < p.nb_txq) {
    stamp_latency(w, b.pkts, b.n);
    uint16_t sent = rte_eth_tx_burst(port, w.id, b.pkts, b.n);
    count_tx(w, port, b.pkts, sent);
    drop_frames(w, port, DropReason::tx_full, b.pkts + sent, static_cast<uint16_t>(b.n - sent));
  } else {
    unsigned q = rte_ring_mp_enqueue_burst(p.tx_ring, reinterpret_cast<void* const*>(b.pkts), b.n, nullptr);
    drop_frames(w, port, DropReason::tx_ring_full, b.pkts + q, static_cast<uint16_t>(b.n - q));
  }
  b.n = 0;
}

void forward_burst(WorkerCtx& w, rte_mbuf* const* pkts, uint16_t n) noexcept {
  const Shared& sh = *w.sh;
  // Frames for shaped ports go through the shaper by traffic class: straight
  // on while it is idle and has tokens (Shaper::pass), else into its queues.
  // Shapers are bypassed (no queue, no token bucket) unless a class is shaped or the
  // ports are: without a rate there is no queue for priority to act on.
  // A shaper that still holds frames (the policy stopped shaping) keeps
  // taking them until it is empty: frames behind queued ones of their flow
  // must not overtake them.
  const bool use_shapers = sh.shape_ports || (w.snap != nullptr && w.snap->any_shaped);
  rte_mbuf* shq[kMaxPorts][kMaxBurst];
  uint8_t shtc[kMaxPorts][kMaxBurst];
  uint64_t shflow[kMaxPorts][kMaxBurst];
  uint16_t nsh[kMaxPorts] = {};
  bool shaped = false;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    const MbufMeta* md = meta(m);
    const PortPlan& in = sh.ports[md->in_port];
    if (!in.has_peer) {
      drop_frames(w, in.id, DropReason::no_peer, &m, 1);
      continue;
    }
    if (Shaper* s = w.shaper[in.peer]; s != nullptr && (use_shapers || s->queued() != 0)) {
      uint16_t k = nsh[in.peer]++;
      shq[in.peer][k] = m;
      shflow[in.peer][k] = md->flow.hash;
      shtc[in.peer][k] =
          (w.snap && md->class_id < w.snap->classes.size()) ? w.snap->classes[md->class_id].tc : kBestEffortTc;
      shaped = true;
      continue;
    }
    TxBuffer& b = w.tx[in.peer];
    b.pkts[b.n++] = m;
    if (b.n == sh.burst) flush_port(w, in.peer);
  }
  if (!shaped) return;
  const uint64_t now = rte_rdtsc();
  for (uint16_t p = 0; p < sh.nb_ports; ++p) {
    if (nsh[p] == 0) continue;
    // An idle shaper with tokens lets frames straight through (Shaper::pass).
    const uint32_t k = w.shaper[p]->pass(shq[p], nsh[p], shtc[p], now);
    TxBuffer& b = w.tx[p];
    for (uint32_t i = 0; i < k; ++i) {
      b.pkts[b.n++] = shq[p][i];
      if (b.n == sh.burst) flush_port(w, p);
    }
    if (k == nsh[p]) continue;
    const uint32_t rest = nsh[p] - k;
    uint32_t held = 0;
    uint32_t ok = w.shaper[p]->enqueue(shq[p] + k, rest, shtc[p] + k, shflow[p] + k, &held);
    // The shaper has freed the frames it refused.
    if (ok < rest) w.ctr.port[p].drops[static_cast<size_t>(DropReason::queue_full)].add(rest - ok);
    if (held != 0) w.ctr.port[p].class_held.add(held);
  }
}

// Frames the shapers release now go to their TX buffers.
bool drain_shapers(WorkerCtx& w) noexcept {
  const Shared& sh = *w.sh;
  bool any = false;
  for (uint16_t p = 0; p < sh.nb_ports; ++p) {
    Shaper* s = w.shaper[p];
    if (s == nullptr) continue;
    TxBuffer& b = w.tx[p];
    if (b.n != 0) flush_port(w, p);
    uint32_t k = s->dequeue(b.pkts, sh.burst);
    if (k == 0) continue;
    any = true;
    b.n = static_cast<uint16_t>(k);
    flush_port(w, p);
  }
  return any;
}

// Operator bypass: straight to the peer port, unparsed, unclassified, unshaped.
void bypass_burst(WorkerCtx& w, uint16_t port, rte_mbuf** pkts, uint16_t n, uint64_t now) noexcept {
  const PortPlan& in = w.sh->ports[port];
  w.ctr.bypassed.add(n);
  if (!in.has_peer) return drop_frames(w, port, DropReason::no_peer, pkts, n);
  TxBuffer& b = w.tx[in.peer];
  for (uint16_t i = 0; i < n; ++i) {
    meta(pkts[i])->rx_tsc = now;  // latency stamp at TX
    b.pkts[b.n++] = pkts[i];
    if (b.n == w.sh->burst) flush_port(w, in.peer);
  }
}

// Worker 0 owns queue 0 of ports with fewer TX queues than workers: it
// sends what the other workers left in those ports' rings.
bool drain_tx_rings(WorkerCtx& w) noexcept {
  const Shared& sh = *w.sh;
  bool any = false;
  rte_mbuf* pkts[kMaxBurst];
  for (uint16_t p = 0; p < sh.nb_ports; ++p) {
    rte_ring* r = sh.ports[p].tx_ring;
    if (r == nullptr) continue;
    unsigned n = rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(pkts), sh.burst, nullptr);
    if (n == 0) continue;
    any = true;
    stamp_latency(w, pkts, static_cast<uint16_t>(n));
    uint16_t sent = rte_eth_tx_burst(p, 0, pkts, static_cast<uint16_t>(n));
    count_tx(w, p, pkts, sent);
    drop_frames(w, p, DropReason::tx_full, pkts + sent, static_cast<uint16_t>(n - sent));
  }
  return any;
}

}  // namespace aiqos
