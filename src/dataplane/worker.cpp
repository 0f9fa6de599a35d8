// The poll loop of one worker: RX burst -> parse -> (software dispatch) ->
// classify -> police -> forward -> TX on the peer port, each stage a function
// over the burst (stages.h, one file each). No allocation, lock, syscall or
// log line per frame; everything a worker writes is its own.
#include <rte_cycles.h>

#include <algorithm>
#include <ctime>
#include <rte_ethdev.h>
#include <rte_pause.h>

#include "dataplane/dataplane.h"
#include "dataplane/stages.h"

namespace aiqos {
namespace {

void process(WorkerCtx& w, rte_mbuf** pkts, uint16_t n) noexcept {
  classify_burst(w, pkts, n);
  n = police_burst(w, pkts, n, rte_rdtsc());
  forward_burst(w, pkts, n);
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
        bypass_burst(w, q.port, pkts, n, now);
        continue;
      }
      parse_burst({pkts, n}, q.port, now, w.ctr, w.linear);
      if (q.dispatch) {
        rte_mbuf* mine[kMaxBurst];
        process(w, mine, dispatch_burst(w, pkts, n, mine));
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
    if (w.id == 0 && drain_tx_rings(w)) busy = true;
    if (drain_shapers(w)) busy = true;
    for (uint16_t p = 0; p < sh.nb_ports; ++p) flush_port(w, p);
    if (busy) w.ctr.busy_loops.add();
    rte_rcu_qsbr_quiescent(sh.qsv, w.id);
    // A bounded step of flow expiry (O(1) per expired flow). Offline, the
    // clock is the capture's: 0 means "the latest frame time seen".
    w.cls->expire(w.offline_clock ? 0 : wall_ns(w, now), 32);
  }

  // Leave nothing behind: pending TX is flushed, frames still queued to us
  // are dropped and counted (the control plane stops every worker together).
  for (uint16_t p = 0; p < sh.nb_ports; ++p) flush_port(w, p);
  // Requests still open are logged as incomplete; the control plane drains.
  w.cls->flush();
  rte_rcu_qsbr_thread_offline(sh.qsv, w.id);
  w.done.store(true, std::memory_order_release);
  return 0;
}

}  // namespace aiqos
