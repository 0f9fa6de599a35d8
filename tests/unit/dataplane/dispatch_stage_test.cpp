// The dispatch stage (stage_dispatch.cpp): the polling worker keeps its own
// flows' frames, in order, and hands each other frame to the inbox of the
// worker of its flow, both directions of a connection to the same one.
#include <gtest/gtest.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../classify/packet_builder.h"
#include "dataplane/stages.h"
#include "worker_fixture.h"

namespace aiqos {

extern rte_mempool* g_pool;

namespace {

using test::WorkerFixture;

TEST(DispatchStage, EachFrameGoesToItsFlowsWorkerInOrder) {
  WorkerFixture fx("ds-order");
  constexpr uint16_t kWorkers = 3;
  fx.sh->nb_workers = kWorkers;
  std::vector<std::unique_ptr<WorkerCtx>> others;
  for (uint16_t t = 0; t < kWorkers; ++t) {
    if (t == fx.w->id) {
      fx.sh->workers[t] = fx.w.get();
      continue;
    }
    others.push_back(std::make_unique<WorkerCtx>());
    others.back()->id = t;
    others.back()->inbox = rte_ring_create(("ds-in" + std::to_string(t)).c_str(), 256, SOCKET_ID_ANY, RING_F_SC_DEQ);
    fx.sh->workers[t] = others.back().get();
  }
  // 24 connections, a frame each way: 48 frames in one burst.
  std::vector<rte_mbuf*> in;
  for (uint32_t c = 0; c < 24; ++c) {
    in.push_back(WorkerFixture::frame(test::tcp4(0xc6120000 + c, 0xc6130001, 2000 + c, 443, 0x18, 20), 0));
    in.push_back(WorkerFixture::frame(test::tcp4(0xc6130001, 0xc6120000 + c, 443, 2000 + c, 0x18, 30), 1));
  }
  rte_mbuf* mine[kMaxBurst];
  const uint16_t nmine = dispatch_burst(*fx.w, in.data(), static_cast<uint16_t>(in.size()), mine);

  std::map<rte_mbuf*, uint16_t> got;  // frame -> worker that got it
  for (uint16_t i = 0; i < nmine; ++i) got[mine[i]] = fx.w->id;
  uint64_t handed = 0;
  for (auto& o : others) {
    void* objs[256];
    unsigned n = rte_ring_dequeue_burst(o->inbox, objs, 256, nullptr);
    handed += n;
    for (unsigned i = 0; i < n; ++i) got[static_cast<rte_mbuf*>(objs[i])] = o->id;
  }
  ASSERT_EQ(got.size(), in.size());
  EXPECT_EQ(fx.w->ctr.dispatched_out.get(), handed);
  size_t per_worker[kWorkers] = {};
  for (size_t i = 0; i < in.size(); i += 2) {
    const uint16_t t = got[in[i]];
    EXPECT_EQ(t, worker_for_hash(meta(in[i])->flow.hash, kWorkers));
    EXPECT_EQ(got[in[i + 1]], t) << "the two directions of connection " << i / 2 << " split";
    ++per_worker[t];
  }
  for (uint16_t t = 0; t < kWorkers; ++t) EXPECT_GT(per_worker[t], 0u) << "worker " << t << " got nothing";
  // What stays keeps its arrival order.
  std::vector<rte_mbuf*> expect_mine;
  for (rte_mbuf* m : in)
    if (got[m] == fx.w->id) expect_mine.push_back(m);
  EXPECT_EQ(std::vector<rte_mbuf*>(mine, mine + nmine), expect_mine);
  rte_pktmbuf_free_bulk(in.data(), static_cast<unsigned>(in.size()));
  for (auto& o : others) rte_ring_free(o->inbox);
}

TEST(DispatchStage, AFullInboxDropsAndCountsOnTheIngressPort) {
  WorkerFixture fx("ds-full");
  fx.sh->nb_workers = 2;
  auto other = std::make_unique<WorkerCtx>();
  other->id = 0;
  other->inbox = rte_ring_create("ds-full-in", 4, SOCKET_ID_ANY, RING_F_SC_DEQ);  // holds 3
  fx.sh->workers[0] = other.get();
  fx.sh->workers[1] = fx.w.get();
  // Frames of worker 0's flows only.
  std::vector<rte_mbuf*> in;
  for (uint32_t c = 0; in.size() < 6 && c < 1000; ++c) {
    rte_mbuf* m = WorkerFixture::frame(test::tcp4(0xc6120000 + c, 0xc6130001, 3000, 443, 0x18, 10), 1);
    if (worker_for_hash(meta(m)->flow.hash, 2) == 0) {
      in.push_back(m);
    } else {
      rte_pktmbuf_free(m);
    }
  }
  ASSERT_EQ(in.size(), 6u);
  const unsigned before = rte_mempool_in_use_count(g_pool);
  rte_mbuf* mine[kMaxBurst];
  EXPECT_EQ(dispatch_burst(*fx.w, in.data(), 6, mine), 0u);
  EXPECT_EQ(fx.w->ctr.dispatched_out.get(), 3u);
  EXPECT_EQ(fx.w->ctr.port[1].drops[static_cast<size_t>(DropReason::dispatch_full)].get(), 3u);
  EXPECT_EQ(rte_mempool_in_use_count(g_pool), before - 3);
  void* objs[4];
  unsigned n = rte_ring_dequeue_burst(other->inbox, objs, 4, nullptr);
  ASSERT_EQ(n, 3u);
  EXPECT_EQ(objs[0], in[0]);
  rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(objs), n);
  rte_ring_free(other->inbox);
}

}  // namespace
}  // namespace aiqos
