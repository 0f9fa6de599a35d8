// The dataplane: ports, mempools and poll-mode workers. Built and torn down
// by the control plane on the main lcore; the main lcore never touches frames.
#pragma once

#include <rte_ethdev.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <atomic>
#include <functional>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "classify/classifier.h"
#include "control/dp_stats.h"
#include "control/options.h"
#include "dataplane/latency.h"
#include "dataplane/qos.h"
#include "dataplane/request_ring.h"
#include "dataplane/stages.h"
#include "dataplane/stats.h"

namespace aiqos {

inline constexpr uint16_t kMaxBurst = 256;
using PortTotals = PortStats;  // one port's counters over all workers (control/dp_stats.h)
inline constexpr uint16_t kMaxWorkers = 128;

// How one port is wired to the workers. Written by the control plane before
// the workers start; read-only for workers afterwards.
struct PortPlan {
  uint16_t id = 0;
  uint16_t peer = 0;  // frames received here leave on `peer`
  bool has_peer = false;
  std::string name;
  uint16_t nb_rxq = 1;
  uint16_t nb_txq = 1;
  bool rss = false;           // the NIC spreads RX over one queue per worker
  uint16_t rx_owner = 0;      // without RSS: the worker polling queue 0 and dispatching
  rte_ring* tx_ring = nullptr;  // when nb_txq < workers: MPSC ring drained by worker 0
};

// A frame waiting to be sent, per egress port, per worker.
struct TxBuffer {
  uint16_t n = 0;
  rte_mbuf* pkts[kMaxBurst];
};

struct Shared;

struct alignas(RTE_CACHE_LINE_SIZE) WorkerCtx {
  uint16_t id = 0;      // worker index 0..W-1
  unsigned lcore = 0;
  struct RxQueue {
    uint16_t port, queue;
    bool dispatch;  // software dispatch: frames may belong to other workers
  };
  RxQueue rxq[kMaxPorts];
  // --rx-rate (benchmarking): per RX queue, frames it may still poll and the TSC of the last refill.
  struct RxPace {
    double tokens = 0;
    uint64_t tsc = 0;
  };
  RxPace rx_pace[kMaxPorts];
  uint16_t nb_rxq = 0;
  rte_ring* inbox = nullptr;  // MPSC: frames other workers dispatched to us
  const Shared* sh = nullptr;
  WorkerCounters ctr;  // dataplane: this worker writes; ctlplane: reads
  Classifier* cls = nullptr;        // this worker's flows and L7 state (worker: rw)
  RingRequestSink* req_sink = nullptr;
  std::atomic<bool> done{false};    // dataplane: wo when the loop has ended; ctlplane: ro
  // Clock: wall time = wall0_ns + (tsc - tsc0) * ns_per_tsc, unless frames
  // carry their own timestamps (offline replay), which then win.
  uint64_t wall0_ns = 0, tsc0 = 0;
  double ns_per_tsc = 0;
  uint64_t tsc_hz = 0;
  bool offline_clock = false;  // frames carried timestamps: expiry follows them
  // QoS: the snapshot this worker last saw (worker: rw), its meters, per-class
  // counters (worker: wo, ctlplane: ro) and a shaper per egress port (or none).
  const PolicySnapshot* snap = nullptr;
  WorkerQos qos;
  ClassCounters cls_ctr[kMaxQosClasses];
  Shaper* shaper[kMaxPorts] = {};
  LatencyHistogram latency;  // RX to TX of every frame sent (worker: wo, ctlplane: ro)
  // Flow dump for aiqosctl: ctlplane writes the filter and bumps dump_req;
  // the worker fills dump_buf at its next loop and sets dump_done = dump_req.
  std::atomic<uint32_t> dump_req{0};   // ctlplane: wo, dataplane: ro
  std::atomic<uint32_t> dump_done{0};  // dataplane: wo, ctlplane: ro
  FlowFilter dump_filter;              // ctlplane: wo before dump_req
  uint32_t dump_max = 0;
  FlowInfo* dump_buf = nullptr;        // dataplane: wo until dump_done
  size_t dump_n = 0;
  TxBuffer tx[kMaxPorts];
  // A multi-segment frame copied whole for parsing and classification (worker: rw).
  alignas(RTE_CACHE_LINE_SIZE) uint8_t linear[kLinearFrameBytes];
};

struct Shared {
  std::atomic<bool> stop{false};  // dataplane: ro, ctlplane: wo
  // Operator bypass (--bypass, aiqosctl bypass on): frames go port to port with no parsing,
  // classification or QoS. dataplane: ro (one relaxed load per poll loop), ctlplane: wo.
  std::atomic<bool> bypass{false};
  // Test only (aiqosd --test-stall-signal, SIGUSR2): worker 0 spins without advancing its heartbeat
  // (WorkerCounters::loops) until stop, as a worker stuck in a loop would; the systemd watchdog
  // must then stop being pinged. dataplane: ro (one relaxed load a loop), ctlplane: wo.
  std::atomic<bool> test_stall{false};
  int ts_offset = -1;             // mbuf dynfield of RX timestamps, -1 if none
  bool shape_ports = false;       // --egress-rate given: every frame goes through the shapers
  uint64_t ts_flag = 0;
  uint16_t nb_ports = 0;          // ctlplane wo before launch; dataplane ro
  uint16_t nb_workers = 0;
  uint16_t burst = 32;
  uint64_t rx_rate_pps = 0;       // --rx-rate (benchmarking): frames/s polled per RX queue, 0 = all
  uint16_t rx_rate_bank = 0;      // --rx-rate: frames a queue may bank while not polled (--rx-desc)
  PortPlan ports[kMaxPorts];
  WorkerCtx* workers[kMaxWorkers] = {};
  // The policy in force (RCU): ctlplane publishes, workers read and report
  // quiescence once per loop; the old snapshot is freed after all have.
  std::atomic<const PolicySnapshot*> policy{nullptr};  // dataplane: ro, ctlplane: wo
  rte_rcu_qsbr* qsv = nullptr;
};

class Dataplane {
 public:
  Dataplane() = default;
  ~Dataplane();
  Dataplane(const Dataplane&) = delete;
  Dataplane& operator=(const Dataplane&) = delete;

  // Configures ports, pools and rings; throws std::runtime_error with a
  // message for the operator on failure (control path only).
  // `extra_capture`: request headers the policy needs captured (besides --capture-header).
  void init(const Options& opts, const std::vector<std::string>& extra_capture = {});
  // Publishes a policy snapshot (before or after start) and returns once no
  // worker can still be using the previous one, which is then freed.
  void publish(std::unique_ptr<PolicySnapshot> snap);
  const PolicySnapshot* policy() const noexcept { return current_.get(); }
  // The request headers every classifier captures (fixed at init).
  const std::vector<std::string>& capture_headers() const noexcept { return capture_; }
  void start();  // launches workers on every worker lcore
  // Asks workers to stop and waits (returns within a burst). Request records
  // the workers emit while finishing go to the consumer, as do all others.
  void stop();
  using RequestConsumer = std::function<void(const RequestRecord&)>;
  void set_request_consumer(RequestConsumer fn) { consumer_ = std::move(fn); }
  // Control path: hands every queued request record to the consumer.
  size_t drain_requests();
  void close();  // stops and closes ports; after this mbufs_in_use() is final
  // Operator bypass: workers see it at their next poll loop.
  void set_bypass(bool on) noexcept { sh_.bypass.store(on, std::memory_order_relaxed); }
  bool bypass() const noexcept { return sh_.bypass.load(std::memory_order_relaxed); }
  uint64_t total_bypassed() const;
  // Worker w's heartbeat: its poll-loop count, bumped once a loop (the watchdog reads it).
  uint64_t heartbeat(uint16_t w) const noexcept { return sh_.workers[w]->ctr.loops.get(); }
  void test_stall_worker0() noexcept { sh_.test_stall.store(true, std::memory_order_relaxed); }

  uint16_t nb_ports() const noexcept { return sh_.nb_ports; }
  uint16_t nb_workers() const noexcept { return sh_.nb_workers; }
  const PortPlan& port(uint16_t p) const noexcept { return sh_.ports[p]; }
  const WorkerCtx& worker(uint16_t w) const noexcept { return *sh_.workers[w]; }

  // Every counter, summed over workers into the typed aggregate the renderers
  // read (control/dp_stats.h). Control path: reads the workers' counters as
  // they run; takes no lock the workers know of.
  DataplaneStats stats() const;
  PortStats port_totals(uint16_t p) const;  // stats().ports[p]
  // Frames received plus frames sent, all ports (cheap: --idle-exit polls it,
  // so that frames handed between workers are out before an idle stop).
  uint64_t total_rx_tx() const;
  uint64_t mbufs_in_use() const;
  // The largest flows over all workers (each worker scans its own table at
  // its next poll loop; waits up to a second). Control path.
  static constexpr size_t kMaxFlowDump = 1000;
  std::vector<FlowInfo> top_flows(size_t top, const FlowFilter& filter);
  // Fleet budgets (classify/fleet_view.h): the fleet sync thread writes the
  // view and reads each worker's usage.
  FleetView& fleet_view() noexcept { return fleet_view_; }
  const FleetUsage& fleet_usage(uint16_t w) const noexcept { return fleet_usage_[w]; }

 private:
  void plan_ports(const Options& opts);
  void setup_port(PortPlan& p, const Options& opts);

  RequestConsumer consumer_;
  std::unique_ptr<PolicySnapshot> current_;
  std::vector<std::string> capture_;
  std::vector<std::unique_ptr<Shaper>> shapers_;
  rte_mempool* req_pool_ = nullptr;
  Shared sh_;
  std::vector<rte_mempool*> pools_;  // one per socket in use
  rte_mempool* pool_ = nullptr;
  std::vector<rte_ring*> rings_;
  std::vector<rte_ring*> rings_req_;
  rte_eth_stats hw_final_[kMaxPorts] = {};  // PMD counters saved when ports close
  bool started_ = false, closed_ = false;
  FleetView fleet_view_;                              // control: wo, workers: ro
  std::array<FleetUsage, kMaxWorkers> fleet_usage_{};  // per worker (worker: wo, control: ro)
};

// Entry point of a worker lcore (rte_eal_remote_launch).
int worker_main(void* ctx);

}  // namespace aiqos
