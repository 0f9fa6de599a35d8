// The poll loop of one worker: RX burst -> parse -> (software dispatch) ->
// pipeline -> TX on the peer port. No allocation, lock, syscall or log line
// per frame; everything a worker writes is its own.
#include <rte_cycles.h>

#include <algorithm>
#include <ctime>
#include <rte_ethdev.h>
#include <rte_mbuf_dyn.h>
#include <rte_pause.h>

#include "dataplane/dataplane.h"
#include "dataplane/stages.h"

namespace aiqos {
namespace {

void drop(WorkerCtx& w, uint16_t port, DropReason why, rte_mbuf* const* pkts, uint16_t n) noexcept {
  if (n == 0) return;
  w.ctr.port[port].drops[static_cast<size_t>(why)].add(n);
  rte_pktmbuf_free_bulk(const_cast<rte_mbuf**>(pkts), n);
}

// Time inside the appliance of frames about to be handed to the PMD (which
// may free them): one TSC read per burst.
void stamp_latency(WorkerCtx& w, rte_mbuf* const* pkts, uint16_t n) noexcept {
  if (n == 0) return;
  const uint64_t now = rte_rdtsc();
  for (uint16_t i = 0; i < n; ++i) w.latency.add(now - meta(pkts[i])->rx_tsc);
}

void count_tx(WorkerCtx& w, uint16_t port, rte_mbuf* const* pkts, uint16_t n) noexcept {
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < n; ++i) bytes += rte_pktmbuf_pkt_len(pkts[i]);
  w.ctr.port[port].tx_packets.add(n);
  w.ctr.port[port].tx_bytes.add(bytes);
}

// Sends what is buffered for `port`. A worker with its own TX queue sends
// directly; otherwise the frames go to the ring drained by worker 0, which
// owns queue 0. What a queue or ring refuses is freed and counted.
void flush(WorkerCtx& w, uint16_t port) noexcept {
  TxBuffer& b = w.tx[port];
  if (b.n == 0) return;
  const PortPlan& p = w.sh->ports[port];
  if (w.id < p.nb_txq) {
    stamp_latency(w, b.pkts, b.n);
    uint16_t sent = rte_eth_tx_burst(port, w.id, b.pkts, b.n);
    count_tx(w, port, b.pkts, sent);
    drop(w, port, DropReason::tx_full, b.pkts + sent, static_cast<uint16_t>(b.n - sent));
  } else {
    unsigned q = rte_ring_mp_enqueue_burst(p.tx_ring, reinterpret_cast<void* const*>(b.pkts), b.n, nullptr);
    drop(w, port, DropReason::tx_ring_full, b.pkts + q, static_cast<uint16_t>(b.n - q));
  }
  b.n = 0;
}

// The forwarding stage: every frame leaves on its ingress port's peer.
// Later stages (classification, QoS, tagging) run before this one.
void forward(WorkerCtx& w, rte_mbuf* const* pkts, uint16_t n) noexcept {
  const Shared& sh = *w.sh;
  // Frames for shaped ports are queued in the shaper by traffic class.
  // Shapers are bypassed (no rte_sched cost) unless a class is shaped or the
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
      drop(w, in.id, DropReason::no_peer, &m, 1);
      continue;
    }
    if (Shaper* s = w.shaper[in.peer]; s != nullptr && (use_shapers || s->queued() != 0)) {
      uint16_t k = nsh[in.peer]++;
      shq[in.peer][k] = m;
      shflow[in.peer][k] = md->hash;
      shtc[in.peer][k] =
          (w.snap && md->class_id < w.snap->classes.size()) ? w.snap->classes[md->class_id].tc : kBestEffortTc;
      shaped = true;
      continue;
    }
    TxBuffer& b = w.tx[in.peer];
    b.pkts[b.n++] = m;
    if (b.n == sh.burst) flush(w, in.peer);
  }
  if (!shaped) return;
  for (uint16_t p = 0; p < sh.nb_ports; ++p) {
    if (nsh[p] == 0) continue;
    uint32_t held = 0;
    uint32_t ok = w.shaper[p]->enqueue(shq[p], nsh[p], shtc[p], shflow[p], &held);
    // The shaper has freed the frames it refused.
    if (ok < nsh[p]) w.ctr.port[p].drops[static_cast<size_t>(DropReason::queue_full)].add(nsh[p] - ok);
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
    if (b.n != 0) flush(w, p);
    uint32_t k = s->dequeue(b.pkts, sh.burst);
    if (k == 0) continue;
    any = true;
    b.n = static_cast<uint16_t>(k);
    flush(w, p);
  }
  return any;
}

uint64_t wall_ns(const WorkerCtx& w, uint64_t tsc) noexcept {
  // Signed: a frame stamped (by another worker) just before the last re-anchoring.
  return w.wall0_ns + static_cast<uint64_t>(static_cast<double>(static_cast<int64_t>(tsc - w.tsc0)) * w.ns_per_tsc);
}

// The classification stage: flow table, reassembly, HTTP/TLS parsers. A
// frame's time is its RX timestamp when the port gives one (offline replay of
// a capture), else the worker's wall clock at RX.
void classify(WorkerCtx& w, rte_mbuf* const* pkts, uint16_t n) noexcept {
  const Shared& sh = *w.sh;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    MbufMeta* md = meta(m);
    md->worker = w.id;
    uint64_t t = wall_ns(w, md->rx_tsc);
    if (sh.ts_offset >= 0 && (m->ol_flags & sh.ts_flag)) {
      // net_pcap (22.11) gives microseconds since the epoch; NICs give
      // nanoseconds. Anything below 1e17 cannot be nanoseconds after 1973.
      t = *RTE_MBUF_DYNFIELD(m, sh.ts_offset, const rte_mbuf_timestamp_t*);
      if (t < 100000000000000000ULL) t *= 1000;
      w.offline_clock = true;
    }
    // Counted once, by parse_burst.
    std::span<const uint8_t> frame = frame_bytes(m, w.linear, nullptr);
    PacketClass pc = w.cls->on_packet(md->pkt, frame, t, md->hash);
    md->class_id = pc.class_id;
    md->from_client = pc.from_client;
    md->over_budget = pc.drop;
  }
}

// The QoS stage: policing and marking per class (frames may be dropped and
// the burst compacted).
uint16_t police(WorkerCtx& w, rte_mbuf** pkts, uint16_t n, uint64_t tsc) noexcept {
  if (w.snap == nullptr) return n;
  const Shared& sh = *w.sh;
  uint16_t egress[kMaxBurst];
  for (uint16_t i = 0; i < n; ++i) {
    const PortPlan& in = sh.ports[meta(pkts[i])->in_port];
    egress[i] = in.has_peer ? in.peer : in.id;
  }
  return w.qos.apply(pkts, n, tsc, w.cls_ctr, w.ctr, egress);
}

// Operator bypass: straight to the peer port, unparsed, unclassified, unshaped.
void bypass_forward(WorkerCtx& w, uint16_t port, rte_mbuf** pkts, uint16_t n, uint64_t now) noexcept {
  const PortPlan& in = w.sh->ports[port];
  w.ctr.bypassed.add(n);
  if (!in.has_peer) return drop(w, port, DropReason::no_peer, pkts, n);
  TxBuffer& b = w.tx[in.peer];
  for (uint16_t i = 0; i < n; ++i) {
    meta(pkts[i])->rx_tsc = now;  // latency stamp at TX
    b.pkts[b.n++] = pkts[i];
    if (b.n == w.sh->burst) flush(w, in.peer);
  }
}

void process(WorkerCtx& w, rte_mbuf** pkts, uint16_t n) noexcept {
  classify(w, pkts, n);
  n = police(w, pkts, n, rte_rdtsc());
  forward(w, pkts, n);
}

// Software dispatch: keep our own frames, hand the others to their workers.
void dispatch(WorkerCtx& w, rte_mbuf** pkts, uint16_t n) noexcept {
  const Shared& sh = *w.sh;
  uint16_t target[kMaxBurst];
  dispatch_targets({pkts, n}, sh.nb_workers, {target, n});
  rte_mbuf* mine[kMaxBurst];
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
    for (unsigned i = q; i < nout; ++i) drop(w, meta(out[i])->in_port, DropReason::dispatch_full, &out[i], 1);
  }
  process(w, mine, nmine);
}

}  // namespace

int worker_main(void* arg) {
  WorkerCtx& w = *static_cast<WorkerCtx*>(arg);
  const Shared& sh = *w.sh;
  const uint16_t burst = sh.burst;
  rte_mbuf* pkts[kMaxBurst];
  // --rx-rate: frames each RX queue may poll per TSC cycle (0: no limit).
  const double rx_per_tsc =
      sh.rx_rate_pps != 0 ? static_cast<double>(sh.rx_rate_pps) / static_cast<double>(rte_get_tsc_hz()) : 0.0;
  for (uint16_t i = 0; i < w.nb_rxq; ++i) w.rx_pace[i] = {0.0, rte_rdtsc()};  // start with an empty bank

  rte_rcu_qsbr_thread_online(sh.qsv, w.id);
  while (!sh.stop.load(std::memory_order_relaxed)) {
    if (sh.test_stall.load(std::memory_order_relaxed) && w.id == 0) [[unlikely]] {
      while (!sh.stop.load(std::memory_order_relaxed)) rte_pause();  // test only: stuck, no heartbeat
      continue;
    }
    w.ctr.loops.add();  // the heartbeat the control lcore's watchdog reads
    bool busy = false;
    // Re-anchor the TSC to the wall clock once a second: rte_get_tsc_hz() is
    // an estimate, and request timestamps must not drift (clock_gettime is a
    // vDSO call, once a second per worker).
    if (uint64_t t = rte_rdtsc(); t - w.tsc0 > w.tsc_hz) {
      timespec ts{};
      clock_gettime(CLOCK_REALTIME, &ts);
      w.wall0_ns = uint64_t(ts.tv_sec) * 1000000000ULL + uint64_t(ts.tv_nsec);
      w.tsc0 = rte_rdtsc();
    }
    // aiqosctl flows: a scan of this worker's table, on request only.
    if (uint32_t req = w.dump_req.load(std::memory_order_acquire); req != w.dump_done.load(std::memory_order_relaxed)) {
      w.dump_n = w.cls->top_flows(w.dump_buf, w.dump_max, w.dump_filter);
      w.dump_done.store(req, std::memory_order_release);
    }
    // A new policy snapshot: classify and police with it from now on.
    if (const PolicySnapshot* snap = sh.policy.load(std::memory_order_acquire); snap != w.snap) {
      w.snap = snap;
      w.cls->set_policy(snap ? snap->engine.get() : nullptr, snap ? snap->generation : 0, w.id, sh.nb_workers);
      w.qos.reconfigure(snap);
      if (snap != nullptr)
        for (uint16_t p = 0; p < sh.nb_ports; ++p)
          if (w.shaper[p] != nullptr) w.shaper[p]->set_tc_rates(snap->tc_rate);
    }
    const uint64_t now = rte_rdtsc();
    const bool bypass = sh.bypass.load(std::memory_order_relaxed);
    for (uint16_t i = 0; i < w.nb_rxq; ++i) {
      const auto& q = w.rxq[i];
      uint16_t want = burst;
      if (rx_per_tsc != 0) {
        // Benchmarking: a token bucket paces what this queue polls, at most a
        // burst a poll; a frame "arrives" when it is polled. Time away from
        // the queue banks up to what a NIC RX ring (--rx-desc) would hold.
        WorkerCtx::RxPace& pace = w.rx_pace[i];
        pace.tokens = std::min(static_cast<double>(sh.rx_rate_bank),
                               pace.tokens + static_cast<double>(now - pace.tsc) * rx_per_tsc);
        pace.tsc = now;
        if (pace.tokens < 1.0) continue;
        want = static_cast<uint16_t>(std::min(pace.tokens, static_cast<double>(burst)));
      }
      uint16_t n = rte_eth_rx_burst(q.port, q.queue, pkts, want);
      if (rx_per_tsc != 0) w.rx_pace[i].tokens -= n;
      if (n == 0) continue;
      busy = true;
      uint64_t bytes = 0;
      for (uint16_t k = 0; k < n; ++k) bytes += rte_pktmbuf_pkt_len(pkts[k]);
      w.ctr.port[q.port].rx_packets.add(n);
      w.ctr.port[q.port].rx_bytes.add(bytes);
      if (bypass) {
        bypass_forward(w, q.port, pkts, n, now);
        continue;
      }
      parse_burst({pkts, n}, q.port, now, w.ctr, w.linear);
      if (q.dispatch) {
        dispatch(w, pkts, n);
      } else {
        process(w, pkts, n);
      }
    }
    if (w.inbox != nullptr) {
      unsigned n = rte_ring_sc_dequeue_burst(w.inbox, reinterpret_cast<void**>(pkts), burst, nullptr);
      if (n > 0) {
        busy = true;
        w.ctr.dispatched_in.add(n);
        process(w, pkts, static_cast<uint16_t>(n));
      }
    }
    // Worker 0 owns queue 0 of ports with fewer TX queues than workers.
    if (w.id == 0) {
      for (uint16_t p = 0; p < sh.nb_ports; ++p) {
        rte_ring* r = sh.ports[p].tx_ring;
        if (r == nullptr) continue;
        unsigned n = rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(pkts), burst, nullptr);
        if (n == 0) continue;
        busy = true;
        stamp_latency(w, pkts, static_cast<uint16_t>(n));
        uint16_t sent = rte_eth_tx_burst(p, 0, pkts, static_cast<uint16_t>(n));
        count_tx(w, p, pkts, sent);
        drop(w, p, DropReason::tx_full, pkts + sent, static_cast<uint16_t>(n - sent));
      }
    }
    if (drain_shapers(w)) busy = true;
    for (uint16_t p = 0; p < sh.nb_ports; ++p) flush(w, p);
    if (busy) w.ctr.busy_loops.add();
    rte_rcu_qsbr_quiescent(sh.qsv, w.id);
    // A bounded step of flow expiry (O(1) per expired flow). Offline, the
    // clock is the capture's: 0 means "the latest frame time seen".
    w.cls->expire(w.offline_clock ? 0 : wall_ns(w, now), 32);
  }

  // Leave nothing behind: pending TX is flushed, frames still queued to us
  // are dropped and counted (the control plane stops every worker together).
  for (uint16_t p = 0; p < sh.nb_ports; ++p) flush(w, p);
  // Requests still open are logged as incomplete; the control plane drains.
  w.cls->flush();
  rte_rcu_qsbr_thread_offline(sh.qsv, w.id);
  w.done.store(true, std::memory_order_release);
  return 0;
}

}  // namespace aiqos
