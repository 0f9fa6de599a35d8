// Dataplane stages and the worker loop on ports made of rte_rings: no NIC,
// no hugepages. EAL is initialised once for the whole binary with four
// lcores (three workers) mapped onto whatever CPUs the machine has.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <random>
#include <thread>
#include <vector>

#include "../classify/packet_builder.h"
#include "dataplane/dataplane.h"
#include "dataplane/stages.h"

namespace aiqos {

rte_mempool* g_pool = nullptr;
rte_ring* g_rx[2];  // test injects frames here (ring port RX)
rte_ring* g_tx[2];  // and collects what the dataplane sent

rte_mbuf* make_mbuf(const std::vector<uint8_t>& bytes) {
  rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
  if (m == nullptr) return nullptr;
  char* d = rte_pktmbuf_append(m, static_cast<uint16_t>(bytes.size()));
  std::memcpy(d, bytes.data(), bytes.size());
  return m;
}

namespace {

TEST(Stages, ParseBurstFillsMetadataAndCounts) {
  std::vector<rte_mbuf*> pkts = {make_mbuf(test::tcp4(1, 2, 1000, 80)), make_mbuf(test::udp6(1, 2, 53, 5353)),
                                 make_mbuf(std::vector<uint8_t>(10, 0))};
  WorkerCounters* ctr = new WorkerCounters();
  static uint8_t scratch[kLinearFrameBytes];
  parse_burst(pkts, 3, 12345, *ctr, scratch);
  EXPECT_EQ(meta(pkts[0])->pkt.dport, 80);
  EXPECT_EQ(meta(pkts[0])->in_port, 3);
  EXPECT_EQ(meta(pkts[0])->rx_tsc, 12345u);
  EXPECT_EQ(meta(pkts[1])->pkt.l3, L3Kind::ipv6);
  EXPECT_EQ(ctr->parse[static_cast<size_t>(ParseStatus::ok)].get(), 2u);
  EXPECT_EQ(ctr->parse[static_cast<size_t>(ParseStatus::short_l2)].get(), 1u);
  rte_pktmbuf_free_bulk(pkts.data(), static_cast<unsigned>(pkts.size()));
  delete ctr;
}

// A frame as a chain of mbufs of at most `seg` bytes each, as net_pcap
// receives a jumbo frame into a pool with a 2 KB data room.
rte_mbuf* make_chain(const std::vector<uint8_t>& bytes, size_t seg) {
  rte_mbuf* head = nullptr;
  for (size_t off = 0; off < bytes.size(); off += seg) {
    size_t n = std::min(seg, bytes.size() - off);
    rte_mbuf* m = make_mbuf({bytes.begin() + static_cast<long>(off), bytes.begin() + static_cast<long>(off + n)});
    if (m == nullptr) return nullptr;
    if (head == nullptr) {
      head = m;
    } else if (rte_pktmbuf_chain(head, m) != 0) {
      return nullptr;
    }
  }
  return head;
}

// A 9000-byte frame in five segments decodes like the same frame in one:
// the payload length is the whole frame's, and the bytes handed on are all of it.
TEST(Stages, ParseBurstDecodesAMultiSegmentFrameWhole) {
  static uint8_t scratch[kLinearFrameBytes];
  auto bytes = test::tcp4(1, 2, 1000, 80, 0x18, 9000 - 54);
  for (size_t i = 54; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7);
  rte_mbuf* m = make_chain(bytes, 2000);
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(m->nb_segs, 5);
  ASSERT_EQ(rte_pktmbuf_pkt_len(m), 9000u);
  auto ctr = std::make_unique<WorkerCounters>();
  rte_mbuf* one[1] = {m};
  parse_burst(one, 0, 0, *ctr, scratch);
  EXPECT_EQ(meta(m)->pkt.status, ParseStatus::ok);
  EXPECT_EQ(meta(m)->pkt.payload_len, 9000 - 54);
  EXPECT_EQ(ctr->multi_seg.get(), 1u);
  EXPECT_EQ(ctr->multi_seg_too_long.get(), 0u);
  auto f = frame_bytes(m, scratch, nullptr);
  ASSERT_EQ(f.size(), bytes.size());
  EXPECT_TRUE(std::equal(f.begin(), f.end(), bytes.begin()));
  // One segment: the mbuf's own bytes, no copy, nothing counted.
  rte_mbuf* s1 = make_mbuf(test::tcp4(1, 2, 1000, 80, 0x18, 100));
  auto g = frame_bytes(s1, scratch, ctr.get());
  EXPECT_EQ(g.data(), rte_pktmbuf_mtod(s1, const uint8_t*));
  EXPECT_EQ(ctr->multi_seg.get(), 1u);
  rte_pktmbuf_free(m);
  rte_pktmbuf_free(s1);
}

// Longer than the linear buffer: decoded over the first segment (the IP
// length runs past it, so its payload is not parsed: fail open), counted.
TEST(Stages, AMultiSegmentFrameOverTheBoundIsCountedNotCopied) {
  static uint8_t scratch[kLinearFrameBytes];
  auto bytes = test::tcp4(1, 2, 1000, 80, 0x18, kLinearFrameBytes);
  rte_mbuf* m = make_chain(bytes, 2000);
  ASSERT_NE(m, nullptr);
  auto ctr = std::make_unique<WorkerCounters>();
  rte_mbuf* one[1] = {m};
  parse_burst(one, 0, 0, *ctr, scratch);
  EXPECT_NE(meta(m)->pkt.status, ParseStatus::ok);
  EXPECT_EQ(ctr->multi_seg.get(), 0u);
  EXPECT_EQ(ctr->multi_seg_too_long.get(), 1u);
  EXPECT_EQ(frame_bytes(m, scratch, nullptr).size(), 2000u);
  rte_pktmbuf_free(m);
}

TEST(Stages, BothDirectionsOfEveryConnectionGetOneWorker) {
  static uint8_t scratch[kLinearFrameBytes];
  std::mt19937 rng(1);
  WorkerCounters* ctr = new WorkerCounters();
  for (uint16_t nw : {2, 3, 4, 7, 16}) {
    std::vector<uint16_t> used(nw, 0);
    for (int c = 0; c < 2000; ++c) {
      uint32_t a = rng(), b = rng();
      uint16_t pa = static_cast<uint16_t>(rng()), pb = static_cast<uint16_t>(rng());
      rte_mbuf* pk[2] = {make_mbuf(test::tcp4(a, b, pa, pb)), make_mbuf(test::tcp4(b, a, pb, pa))};
      parse_burst({pk, 1}, 0, 0, *ctr, scratch);
      parse_burst({pk + 1, 1}, 1, 0, *ctr, scratch);
      uint16_t t[2];
      dispatch_targets({pk, 2}, nw, {t, 2});
      ASSERT_EQ(t[0], t[1]);
      ASSERT_LT(t[0], nw);
      ++used[t[0]];
      rte_pktmbuf_free_bulk(pk, 2);
    }
    for (uint16_t w = 0; w < nw; ++w) EXPECT_GT(used[w], 2000 / nw / 2) << "worker " << w << " of " << nw;
  }
  delete ctr;
}

// The real worker loop with software dispatch: 3 workers, one port pair of
// ring ports. Every frame leaves on the peer port, unchanged, and both
// directions of each connection were processed by the same worker.
TEST(Dataplane, RingPortsForwardAndDirectionsMeet) {
  ASSERT_EQ(rte_eth_dev_count_avail(), 2);
  Options opts;
  opts.mbufs = 8191;
  opts.rx_desc = 512;
  opts.tx_desc = 512;
  Dataplane dp;
  dp.init(opts);
  ASSERT_EQ(dp.nb_workers(), 3);
  EXPECT_FALSE(dp.port(0).rss);
  dp.start();

  std::mt19937 rng(3);
  constexpr int kConns = 300;
  // Frame bytes -> count. Keyed by std::string, not std::vector<uint8_t>: GCC 12 at -O3 (release
  // builds) reports a false -Wstringop-overread in the inlined vector <=> of the map's lookups.
  std::map<std::string, int> sent;
  auto key = [](const uint8_t* p, size_t n) { return std::string(reinterpret_cast<const char*>(p), n); };
  int total = 0;
  for (int c = 0; c < kConns; ++c) {
    uint32_t cli = 0xc6120000 | (rng() & 0xffff), srv = 0xc6130000 | (rng() & 0xff);
    uint16_t sp = static_cast<uint16_t>(1024 + c), dp_ = 8080;
    for (int k = 0; k < 3; ++k) {
      auto req = test::tcp4(cli, srv, sp, dp_, 0x18, 20 + k);
      auto rsp = test::tcp4(srv, cli, dp_, sp, 0x18, 40 + k);
      rte_mbuf* a = make_mbuf(req);
      rte_mbuf* b = make_mbuf(rsp);
      ASSERT_NE(a, nullptr);
      ASSERT_NE(b, nullptr);
      while (rte_ring_enqueue(g_rx[0], a) != 0) std::this_thread::yield();
      while (rte_ring_enqueue(g_rx[1], b) != 0) std::this_thread::yield();
      ++sent[key(req.data(), req.size())];
      ++sent[key(rsp.data(), rsp.size())];
      total += 2;
    }
  }
  // Collect what leaves: frames from port 0 come out of port 1's TX ring.
  std::map<std::pair<uint64_t, int>, uint16_t> worker_of;  // (flow hash) -> worker
  int got = 0, mismatched_worker = 0, wrong_port = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (got < total && std::chrono::steady_clock::now() < deadline) {
    for (int p = 0; p < 2; ++p) {
      void* objs[64];
      unsigned n = rte_ring_dequeue_burst(g_tx[p], objs, 64, nullptr);
      for (unsigned i = 0; i < n; ++i) {
        auto* m = static_cast<rte_mbuf*>(objs[i]);
        const MbufMeta* md = meta(m);
        if (md->in_port != (p ^ 1)) ++wrong_port;
        EXPECT_EQ(--sent[key(rte_pktmbuf_mtod(m, const uint8_t*), m->data_len)], 0) << "unexpected or duplicated frame";
        auto [it, fresh] = worker_of.try_emplace({md->flow.hash, 0}, md->worker);
        if (!fresh && it->second != md->worker) ++mismatched_worker;
        rte_pktmbuf_free(m);
        ++got;
      }
    }
  }
  dp.stop();
  EXPECT_EQ(got, total);
  EXPECT_EQ(wrong_port, 0);
  EXPECT_EQ(mismatched_worker, 0);
  EXPECT_EQ(worker_of.size(), static_cast<size_t>(kConns));
  // Software dispatch really spread the flows over the three workers.
  uint64_t dispatched = 0;
  for (uint16_t w = 0; w < 3; ++w) dispatched += dp.worker(w).ctr.dispatched_in.get();
  EXPECT_GT(dispatched, 0u);
  PortTotals t0 = dp.port_totals(0), t1 = dp.port_totals(1);
  EXPECT_EQ(t0.rx_packets, static_cast<uint64_t>(total / 2));
  EXPECT_EQ(t1.tx_packets, t0.rx_packets);
  EXPECT_EQ(t0.tx_packets, t1.rx_packets);
  dp.close();
  EXPECT_EQ(dp.mbufs_in_use(), 0u);
}

}  // namespace
}  // namespace aiqos

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  unsigned ncpu = std::max(1u, std::thread::hardware_concurrency());
  std::string lcores = "--lcores=0@0,1@" + std::to_string(1 % ncpu) + ",2@0,3@" + std::to_string(1 % ncpu);
  std::vector<std::string> a = {"unit_dataplane", lcores, "--no-huge", "-m", "256", "--no-pci",
                                "--no-shconf", "--log-level=*:warning", "--file-prefix=aiqos_unit"};
  std::vector<char*> av;
  for (auto& s : a) av.push_back(s.data());
  if (rte_eal_init(static_cast<int>(av.size()), av.data()) < 0) {
    std::fprintf(stderr, "EAL init failed\n");
    return 1;
  }
  aiqos::g_pool = rte_pktmbuf_pool_create("test_pool", 8191, 0, aiqos::kMbufPrivSize, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  for (int p = 0; p < 2; ++p) {
    std::string rn = "trx" + std::to_string(p), tn = "ttx" + std::to_string(p);
    aiqos::g_rx[p] = rte_ring_create(rn.c_str(), 4096, 0, 0);
    aiqos::g_tx[p] = rte_ring_create(tn.c_str(), 4096, 0, 0);
    std::string name = "ring_port" + std::to_string(p);
    if (rte_eth_from_rings(name.c_str(), &aiqos::g_rx[p], 1, &aiqos::g_tx[p], 1, 0) < 0) {
      std::fprintf(stderr, "ring port failed\n");
      return 1;
    }
  }
  int rc = RUN_ALL_TESTS();
  rte_eal_cleanup();
  return rc;
}
