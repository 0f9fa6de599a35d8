#include "dataplane/dataplane.h"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf_dyn.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <new>
#include <stdexcept>

#include "dataplane/classifier_config.h"
#include "dataplane/mbuf_meta.h"
#include "dataplane/stats_snapshot.h"

namespace aiqos {
namespace {

std::string errstr(int rc) { return rte_strerror(rc < 0 ? -rc : rc); }

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

// The 0x6d5a pattern makes the Toeplitz hash symmetric (Woo and Park, 2012):
// swapping source and destination gives the same hash, so both directions
// of a connection reach the same queue, hence the same worker.
void symmetric_rss_key(uint8_t* key, size_t len) {
  for (size_t i = 0; i < len; ++i) key[i] = (i % 2 == 0) ? 0x6d : 0x5a;
}

bool port_can_rss(uint16_t port, uint16_t nb_workers) {
  rte_eth_dev_info info{};
  if (rte_eth_dev_info_get(port, &info) != 0) return false;
  return info.flow_type_rss_offloads != 0 && info.max_rx_queues >= nb_workers &&
         info.hash_key_size > 0 && info.hash_key_size <= 64;
}

}  // namespace

Dataplane::~Dataplane() {
  if (started_) stop();
  if (!closed_) close();
  for (uint16_t w = 0; w < sh_.nb_workers; ++w) {
    WorkerCtx* wc = sh_.workers[w];
    if (wc == nullptr) continue;
    delete wc->cls;
    delete wc->req_sink;
    delete[] wc->dump_buf;
    wc->~WorkerCtx();
    rte_free(wc);
  }
  rte_free(sh_.qsv);
}

void Dataplane::plan_ports(const Options& opts) {
  uint16_t n = rte_eth_dev_count_avail();
  if (n == 0) fail("no ports: give NICs (-a PCI) or vdevs (--vdev net_af_packet0,iface=...) to EAL");
  if (n > kMaxPorts) fail("at most " + std::to_string(kMaxPorts) + " ports are supported");
  if (n % 2 != 0) spdlog::warn("odd number of ports ({}): the last port has no peer, its frames are dropped", n);
  sh_.nb_ports = n;
  uint16_t w = sh_.nb_workers;
  uint16_t i = 0;
  uint16_t pid;
  RTE_ETH_FOREACH_DEV(pid) {
    if (pid != i) fail("port ids are not contiguous; detach unused ports");
    PortPlan& p = sh_.ports[i];
    p.id = pid;
    p.has_peer = (i ^ 1u) < n;
    p.peer = static_cast<uint16_t>(i ^ 1u);
    char name[RTE_ETH_NAME_MAX_LEN];
    p.name = rte_eth_dev_get_name_by_port(pid, name) == 0 ? name : "port" + std::to_string(pid);
    ++i;
  }
  // RSS is decided per port pair: both directions of a flow enter on the two
  // ports of a pair, and only the same symmetric function on both sides
  // sends them to the same worker.
  for (uint16_t a = 0; a < n; a += 2) {
    bool rss = w > 1 && opts.dispatch != DispatchMode::software && port_can_rss(a, w) &&
               (a + 1 >= n || port_can_rss(static_cast<uint16_t>(a + 1), w));
    if (opts.dispatch == DispatchMode::rss && w > 1 && !rss)
      fail("--dispatch rss: port " + std::to_string(a) + " or its peer cannot spread RX over " +
           std::to_string(w) + " queues with RSS");
    for (uint16_t b = a; b < n && b < a + 2; ++b) {
      PortPlan& p = sh_.ports[b];
      rte_eth_dev_info info{};
      if (int rc = rte_eth_dev_info_get(b, &info); rc != 0) fail("port " + p.name + ": " + errstr(rc));
      p.rss = rss;
      p.nb_rxq = rss ? w : 1;
      p.nb_txq = std::min<uint16_t>(w, info.max_tx_queues);
      if (p.nb_txq == 0) fail("port " + p.name + " has no TX queue");
      p.rx_owner = static_cast<uint16_t>(b % w);
    }
  }
}

void Dataplane::setup_port(PortPlan& p, const Options& opts) {
  rte_eth_dev_info info{};
  if (int rc = rte_eth_dev_info_get(p.id, &info); rc != 0) fail("port " + p.name + ": " + errstr(rc));
  rte_eth_conf conf{};
  uint8_t key[64];
  if (p.rss) {
    symmetric_rss_key(key, info.hash_key_size);
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_key = key;
    conf.rx_adv_conf.rss_conf.rss_key_len = info.hash_key_size;
    conf.rx_adv_conf.rss_conf.rss_hf =
        (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
  }
  // Offline replay: frames carry their capture time, which then stamps requests.
  if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TIMESTAMP) conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TIMESTAMP;
  // Frames longer than the mbuf data room arrive as mbuf chains where the
  // PMD can (net_pcap always does) and leave as chains: the stages read them
  // whole (stages.h, frame_bytes).
  if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER) conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
  if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
  if (int rc = rte_eth_dev_configure(p.id, p.nb_rxq, p.nb_txq, &conf); rc != 0)
    fail("port " + p.name + ": configure " + std::to_string(p.nb_rxq) + " RX / " + std::to_string(p.nb_txq) +
         " TX queues: " + errstr(rc));
  uint16_t rxd = opts.rx_desc, txd = opts.tx_desc;
  if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(p.id, &rxd, &txd); rc != 0)
    fail("port " + p.name + ": descriptors: " + errstr(rc));
  int socket = rte_eth_dev_socket_id(p.id);
  for (uint16_t q = 0; q < p.nb_rxq; ++q)
    if (int rc = rte_eth_rx_queue_setup(p.id, q, rxd, socket, nullptr, pool_); rc != 0)
      fail("port " + p.name + ": RX queue " + std::to_string(q) + ": " + errstr(rc));
  for (uint16_t q = 0; q < p.nb_txq; ++q)
    if (int rc = rte_eth_tx_queue_setup(p.id, q, txd, socket, nullptr); rc != 0)
      fail("port " + p.name + ": TX queue " + std::to_string(q) + ": " + errstr(rc));
  if (p.nb_txq < sh_.nb_workers) {
    std::string rname = "aiqos_tx_p" + std::to_string(p.id);
    p.tx_ring = rte_ring_create(rname.c_str(), opts.dispatch_ring, socket, RING_F_SC_DEQ);
    if (p.tx_ring == nullptr) fail("port " + p.name + ": TX ring: " + errstr(rte_errno));
    rings_.push_back(p.tx_ring);
  }
  if (int rc = rte_eth_dev_start(p.id); rc != 0) fail("port " + p.name + ": start: " + errstr(rc));

  if (opts.promiscuous) {
    if (int rc = rte_eth_promiscuous_enable(p.id); rc != 0 && rc != -ENOTSUP)
      spdlog::warn("port {}: promiscuous mode: {}", p.name, errstr(rc));
  }
  spdlog::info("port {} ({}): peer {}, {} RX / {} TX queues, {}", p.id, p.name,
               p.has_peer ? std::to_string(p.peer) : std::string("none"), p.nb_rxq, p.nb_txq,
               p.rss ? "RSS with a symmetric key" : (sh_.nb_workers > 1 ? "software dispatch" : "single worker"));
}

void Dataplane::init(const Options& opts, const std::vector<std::string>& extra_capture) {
  unsigned nw = rte_lcore_count() - 1;
  if (nw == 0) fail("no worker lcore: give EAL at least two lcores (e.g. -l 0,1); the main lcore runs control only");
  if (nw > kMaxWorkers) fail("too many worker lcores");
  sh_.nb_workers = static_cast<uint16_t>(nw);
  sh_.burst = opts.burst;
  sh_.rx_rate_pps = opts.rx_rate_pps;
  sh_.rx_rate_bank = std::max(opts.rx_desc, opts.burst);
  sh_.shape_ports = opts.egress_rate_bps != 0;
  sh_.bypass.store(opts.bypass, std::memory_order_relaxed);

  pool_ = rte_pktmbuf_pool_create("aiqos_mbufs", opts.mbufs, 256, kMbufPrivSize,
                                  static_cast<uint16_t>(opts.mbuf_size + RTE_PKTMBUF_HEADROOM),
                                  static_cast<int>(rte_socket_id()));
  if (pool_ == nullptr) fail("mbuf pool of " + std::to_string(opts.mbufs) + ": " + errstr(rte_errno) +
                             " (fewer --mbufs, or more memory: -m / hugepages)");
  pools_.push_back(pool_);

  plan_ports(opts);

  // Workers: contexts on their own socket, cache aligned, never shared for writing.
  uint16_t wi = 0;
  unsigned lc;
  RTE_LCORE_FOREACH_WORKER(lc) {
    void* mem = rte_zmalloc_socket("aiqos_worker", sizeof(WorkerCtx), RTE_CACHE_LINE_SIZE,
                                   static_cast<int>(rte_lcore_to_socket_id(lc)));
    if (mem == nullptr) fail("worker context: out of memory");
    auto* w = new (mem) WorkerCtx();
    w->id = wi;
    w->lcore = lc;
    w->sh = &sh_;
    if (sh_.nb_workers > 1) {
      std::string rname = "aiqos_inbox_w" + std::to_string(wi);
      w->inbox = rte_ring_create(rname.c_str(), opts.dispatch_ring, static_cast<int>(rte_lcore_to_socket_id(lc)),
                                 RING_F_SC_DEQ);
      if (w->inbox == nullptr) fail("dispatch ring: " + errstr(rte_errno));
      rings_.push_back(w->inbox);
    }
    sh_.workers[wi++] = w;
  }

  // Classification: a classifier per worker and a ring of finished requests.
  ClassifierConfig ccfg = classifier_config(opts, extra_capture, capture_);
  req_pool_ = rte_mempool_create("aiqos_requests", 16383u * sh_.nb_workers, sizeof(RequestRecord), 64, 0, nullptr,
                                 nullptr, nullptr, nullptr, static_cast<int>(rte_socket_id()), 0);
  if (req_pool_ == nullptr) fail("request record pool: " + errstr(rte_errno));
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  const uint64_t wall0 = uint64_t(ts.tv_sec) * 1000000000ULL + uint64_t(ts.tv_nsec);
  const uint64_t tsc0 = rte_rdtsc();
  for (uint16_t w = 0; w < sh_.nb_workers; ++w) {
    WorkerCtx& wc = *sh_.workers[w];
    std::string rname = "aiqos_req_w" + std::to_string(w);
    rte_ring* r = rte_ring_create(rname.c_str(), 16384, static_cast<int>(rte_lcore_to_socket_id(wc.lcore)),
                                  RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (r == nullptr) fail("request ring: " + errstr(rte_errno));
    rings_req_.push_back(r);
    // Offline nothing is real time: a worker waits for room rather than lose a record.
    wc.req_sink = new RingRequestSink(req_pool_, r, !opts.pcap_in.empty());
    wc.cls = new Classifier(ccfg, *wc.req_sink);
    wc.cls->set_fleet(&fleet_view_, &fleet_usage_[w]);
    wc.dump_buf = new FlowInfo[kMaxFlowDump];
    wc.wall0_ns = wall0;
    wc.tsc0 = tsc0;
    wc.ns_per_tsc = 1e9 / static_cast<double>(rte_get_tsc_hz());
    wc.tsc_hz = rte_get_tsc_hz();
  }
  // RCU for policy snapshots: one reader thread id per worker.
  size_t qsz = rte_rcu_qsbr_get_memsize(sh_.nb_workers);
  sh_.qsv = static_cast<rte_rcu_qsbr*>(rte_zmalloc("aiqos_rcu", qsz, RTE_CACHE_LINE_SIZE));
  if (sh_.qsv == nullptr || rte_rcu_qsbr_init(sh_.qsv, sh_.nb_workers) != 0) fail("RCU state: out of memory");
  for (uint16_t w = 0; w < sh_.nb_workers; ++w) rte_rcu_qsbr_thread_register(sh_.qsv, w);

  // Shapers: every worker shapes its share of each egress port, to
  // --egress-rate, else the link speed (10 Gbit/s when the PMD does not say).
  // Each class with a drop-on-exceed rate is shaped in its own traffic class.
  for (uint16_t p = 0; p < sh_.nb_ports; ++p) {
    uint64_t rate = opts.egress_rate_bps;
    if (rate == 0) {
      rte_eth_link link{};
      rate = (rte_eth_link_get_nowait(p, &link) == 0 && link.link_speed != RTE_ETH_SPEED_NUM_NONE &&
              link.link_speed != RTE_ETH_SPEED_NUM_UNKNOWN)
                 ? uint64_t{link.link_speed} * 1000000ULL
                 : 10000000000ULL;
    }
    uint64_t share = std::max<uint64_t>(rate / sh_.nb_workers, 8);
    for (uint16_t w = 0; w < sh_.nb_workers; ++w) {
      auto shp = std::make_unique<Shaper>();
      std::string err;
      std::string name = "aiqos_shaper_w" + std::to_string(w) + "_p" + std::to_string(p);
      int socket = rte_eth_dev_socket_id(p);  // vdevs say SOCKET_ID_ANY
      if (socket < 0) socket = static_cast<int>(rte_lcore_to_socket_id(sh_.workers[w]->lcore));
      if (!shp->init(name, share, opts.queue_frames, socket, err)) fail(err);
      sh_.workers[w]->shaper[p] = shp.get();
      shapers_.push_back(std::move(shp));
    }
    spdlog::info("port {}: egress shaped to {} bit/s{} ({} bit/s per worker), {} frames per class queue", p, rate,
                 opts.egress_rate_bps ? "" : " (link speed)", share, opts.queue_frames);
  }
  spdlog::info("classifier: {} flows, {} L7 connections, {} requests in flight, {} MiB per worker", opts.flows,
               opts.l7_conns, opts.requests, sh_.workers[0]->cls->memory_bytes() >> 20);
  spdlog::info("classifier bounds: {} HTTP/2 streams a connection, {} B header blocks, {} B HPACK tables, "
               "{} B of request body scanned; idle timeouts tcp {} s, closing {} s, other {} s",
               opts.h2_streams, opts.header_block_bytes, opts.hpack_table_bytes, opts.body_scan_bytes,
               opts.idle_tcp_ns / 1e9, opts.idle_tcp_closing_ns / 1e9, opts.idle_other_ns / 1e9);

  // RX timestamps: net_pcap stamps frames with their capture time once the
  // field is registered (whatever its offload flags say); NICs that support
  // the offload do when it is enabled. Frames without it use the wall clock.
  if (rte_mbuf_dyn_rx_timestamp_register(&sh_.ts_offset, &sh_.ts_flag) != 0) sh_.ts_offset = -1;
  for (uint16_t p = 0; p < sh_.nb_ports; ++p) setup_port(sh_.ports[p], opts);

  // Queue assignment: with RSS worker i polls queue i of every port; without,
  // the port's owner polls queue 0 and dispatches by the symmetric hash.
  for (uint16_t p = 0; p < sh_.nb_ports; ++p) {
    const PortPlan& pp = sh_.ports[p];
    if (pp.rss) {
      for (uint16_t w = 0; w < sh_.nb_workers; ++w) {
        WorkerCtx& wc = *sh_.workers[w];
        wc.rxq[wc.nb_rxq++] = {p, w, false};
      }
    } else {
      WorkerCtx& wc = *sh_.workers[pp.rx_owner];
      wc.rxq[wc.nb_rxq++] = {p, 0, sh_.nb_workers > 1};
    }
  }

  uint64_t need = 0;
  for (uint16_t p = 0; p < sh_.nb_ports; ++p)
    need += uint64_t{sh_.ports[p].nb_rxq} * opts.rx_desc + uint64_t{sh_.ports[p].nb_txq} * opts.tx_desc;
  need += uint64_t{sh_.nb_workers} * (kMaxPorts * opts.burst + 256);
  if (need > opts.mbufs)
    spdlog::warn("{} mbufs may be too few for {} descriptors and per-worker buffers; raise --mbufs", opts.mbufs,
                 need);
}

void Dataplane::publish(std::unique_ptr<PolicySnapshot> snap) {
  sh_.policy.store(snap.get(), std::memory_order_release);
  // Every online worker passes a quiescent point once per poll loop, so this
  // returns within a loop of each; workers not started yet hold nothing.
  if (started_) rte_rcu_qsbr_synchronize(sh_.qsv, RTE_QSBR_THRID_INVALID);
  current_ = std::move(snap);  // frees the previous snapshot
}

std::vector<FlowInfo> Dataplane::top_flows(size_t top, const FlowFilter& filter) {
  top = std::min(top, kMaxFlowDump);
  std::vector<FlowInfo> all;
  if (!started_) return all;
  std::vector<uint32_t> want(sh_.nb_workers);
  for (uint16_t w = 0; w < sh_.nb_workers; ++w) {
    WorkerCtx& wc = *sh_.workers[w];
    wc.dump_filter = filter;
    wc.dump_max = static_cast<uint32_t>(top);
    want[w] = wc.dump_req.load(std::memory_order_relaxed) + 1;
    wc.dump_req.store(want[w], std::memory_order_release);
  }
  for (uint16_t w = 0; w < sh_.nb_workers; ++w) {
    WorkerCtx& wc = *sh_.workers[w];
    for (int i = 0; i < 1000 && wc.dump_done.load(std::memory_order_acquire) != want[w]; ++i) rte_delay_us_sleep(1000);
    if (wc.dump_done.load(std::memory_order_acquire) != want[w]) continue;  // busy worker: skipped
    all.insert(all.end(), wc.dump_buf, wc.dump_buf + wc.dump_n);
  }
  std::sort(all.begin(), all.end(), [](const FlowInfo& a, const FlowInfo& b) {
    return a.bytes[0] + a.bytes[1] > b.bytes[0] + b.bytes[1];
  });
  if (all.size() > top) all.resize(top);
  return all;
}

void Dataplane::start() {
  for (uint16_t w = 0; w < sh_.nb_workers; ++w) {
    if (int rc = rte_eal_remote_launch(worker_main, sh_.workers[w], sh_.workers[w]->lcore); rc != 0)
      fail("launching worker on lcore " + std::to_string(sh_.workers[w]->lcore) + ": " + errstr(rc));
  }
  started_ = true;
  spdlog::info("{} worker(s) forwarding between {} port(s)", sh_.nb_workers, sh_.nb_ports);
}

size_t Dataplane::drain_requests() {
  size_t n = 0;
  void* objs[64];
  for (rte_ring* r : rings_req_) {
    // At most what the ring held when we came: a worker that finishes
    // requests faster than they are logged must not keep the control loop
    // here (signals, stats, the watchdog); the ring then fills and the
    // worker counts what it drops (request_records_dropped).
    unsigned left = rte_ring_count(r);
    unsigned k;
    while (left > 0 && (k = rte_ring_sc_dequeue_burst(r, objs, std::min(left, 64u), nullptr)) > 0) {
      for (unsigned i = 0; i < k; ++i)
        if (consumer_) consumer_(*static_cast<const RequestRecord*>(objs[i]));
      rte_mempool_put_bulk(req_pool_, objs, k);
      n += k;
      left -= k;
    }
  }
  return n;
}

void Dataplane::stop() {
  if (!started_) return;
  sh_.stop.store(true, std::memory_order_relaxed);
  // Workers flush their flows on the way out; keep draining so they never
  // find the request ring full. Bounded: a worker finishes within a burst
  // plus its flush.
  for (int spins = 0; spins < 100000; ++spins) {
    drain_requests();
    bool all = true;
    for (uint16_t w = 0; w < sh_.nb_workers; ++w) all = all && sh_.workers[w]->done.load(std::memory_order_acquire);
    if (all) break;
    rte_delay_us_sleep(100);
  }
  rte_eal_mp_wait_lcore();
  drain_requests();
  started_ = false;
  // Frames still queued between workers when they stopped are freed and counted.
  rte_mbuf* pkts[kMaxBurst];
  for (rte_ring* r : rings_) {
    unsigned n;
    while ((n = rte_ring_dequeue_burst(r, reinterpret_cast<void**>(pkts), kMaxBurst, nullptr)) > 0) {
      for (unsigned i = 0; i < n; ++i) {
        uint16_t port = meta(pkts[i])->in_port;
        const PortPlan& pp = sh_.ports[port];
        sh_.workers[0]->ctr.port[pp.has_peer ? pp.peer : port].drops[static_cast<size_t>(DropReason::tx_ring_full)].add();
      }
      rte_pktmbuf_free_bulk(pkts, n);
    }
  }
}

void Dataplane::close() {
  if (closed_) return;
  if (started_) stop();
  for (uint16_t p = 0; p < sh_.nb_ports; ++p) {
    if (rte_eth_stats_get(p, &hw_final_[p]) != 0) hw_final_[p] = rte_eth_stats{};
    rte_eth_dev_stop(p);
    rte_eth_dev_close(p);
  }
  // Frames still queued in shapers go back to the pool with them.
  for (uint16_t w = 0; w < sh_.nb_workers; ++w)
    for (auto& sp : sh_.workers[w]->shaper) sp = nullptr;
  shapers_.clear();
  closed_ = true;
}

DataplaneStats Dataplane::stats() const {
  std::vector<PortStats> ports(sh_.nb_ports);
  for (uint16_t p = 0; p < sh_.nb_ports; ++p) {
    PortStats& t = ports[p];
    t.port = p;
    t.name = sh_.ports[p].name;
    if (sh_.ports[p].has_peer) t.peer = sh_.ports[p].peer;
    rte_eth_stats s{};
    if (closed_) {
      s = hw_final_[p];
    } else if (rte_eth_stats_get(p, &s) != 0) {
      s = rte_eth_stats{};
    }
    t.no_mbuf = s.rx_nombuf;
    t.imissed = s.imissed;
    t.ierrors = s.ierrors;
    t.oerrors = s.oerrors;
  }
  std::vector<ClassStats> classes;
  if (current_) {
    const auto& cfg = current_->engine->policy().classes;
    for (size_t i = 0; i < cfg.size() && i < kMaxQosClasses; ++i)
      classes.push_back({.id = static_cast<uint16_t>(i), .name = cfg[i].name});
  }
  std::vector<WorkerSnapshot> snaps;
  snaps.reserve(sh_.nb_workers);
  for (uint16_t w = 0; w < sh_.nb_workers; ++w)
    snaps.push_back(take_snapshot(*sh_.workers[w], sh_.nb_ports, static_cast<uint16_t>(classes.size())));
  DataplaneStats d = aggregate(snaps, std::move(ports), std::move(classes), rte_get_tsc_hz());
  d.mbufs_in_use = mbufs_in_use();
  d.bypass_on = bypass() ? 1 : 0;
  return d;
}

PortStats Dataplane::port_totals(uint16_t p) const { return stats().ports.at(p); }

uint64_t Dataplane::total_rx_tx() const {
  uint64_t s = 0;
  for (uint16_t w = 0; w < sh_.nb_workers; ++w)
    for (uint16_t p = 0; p < sh_.nb_ports; ++p)
      s += sh_.workers[w]->ctr.port[p].rx_packets.get() + sh_.workers[w]->ctr.port[p].tx_packets.get();
  return s;
}

uint64_t Dataplane::total_bypassed() const {
  uint64_t s = 0;
  for (uint16_t w = 0; w < sh_.nb_workers; ++w) s += sh_.workers[w]->ctr.bypassed.get();
  return s;
}

uint64_t Dataplane::mbufs_in_use() const {
  return pool_ ? rte_mempool_in_use_count(pool_) : 0;
}

}  // namespace aiqos
