// The forward stage (stage_forward.cpp): the peer port, TX buffering by
// burst, drops without a peer, and the shaper's short path and queue.
#include <gtest/gtest.h>
#include <rte_mbuf.h>

#include <string>
#include <vector>

#include "../classify/packet_builder.h"
#include "dataplane/stages.h"
#include "worker_fixture.h"

namespace aiqos {

extern rte_mempool* g_pool;

namespace {

using test::WorkerFixture;

std::vector<rte_mbuf*> burst_from(uint16_t in_port, size_t n, size_t payload = 100) {
  std::vector<rte_mbuf*> v;
  for (size_t i = 0; i < n; ++i)
    v.push_back(WorkerFixture::frame(
        test::tcp4(0xc6120001, 0xc6120002, static_cast<uint16_t>(30000 + i), 8080, 0x18, payload), in_port));
  return v;
}

TEST(ForwardStage, FramesLeaveOnTheirIngressPortsPeerInOrder) {
  WorkerFixture fx("fw-peer");
  auto a = burst_from(0, 3), b = burst_from(1, 2);
  std::vector<rte_mbuf*> mixed = {a[0], b[0], a[1], b[1], a[2]};
  forward_burst(*fx.w, mixed.data(), static_cast<uint16_t>(mixed.size()));
  flush_port(*fx.w, 0);
  flush_port(*fx.w, 1);
  EXPECT_EQ(fx.sent(1), a);
  EXPECT_EQ(fx.sent(0), b);
}

TEST(ForwardStage, ABufferGoesOutWhenItHoldsABurst) {
  WorkerFixture fx("fw-burst", true, 4);
  auto a = burst_from(0, 10);
  forward_burst(*fx.w, a.data(), 10);
  // Two full bursts went; two frames wait for the loop's flush.
  EXPECT_EQ(fx.sent(1).size(), 8u);
  EXPECT_EQ(fx.w->tx[1].n, 2u);
  flush_port(*fx.w, 1);
  auto rest = fx.sent(1);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0], a[8]);
}

TEST(ForwardStage, APortWithoutPeerDropsAndCounts) {
  WorkerFixture fx("fw-nopeer", false);
  const unsigned before = rte_mempool_in_use_count(g_pool);
  auto a = burst_from(0, 4);
  forward_burst(*fx.w, a.data(), 4);
  flush_port(*fx.w, 1);
  EXPECT_TRUE(fx.sent(1).empty());
  EXPECT_EQ(fx.w->ctr.port[0].drops[static_cast<size_t>(DropReason::no_peer)].get(), 4u);
  EXPECT_EQ(rte_mempool_in_use_count(g_pool), before);
}

TEST(ForwardStage, AnIdleShaperLetsFramesStraightThrough) {
  WorkerFixture fx("fw-pass");
  Shaper s;
  std::string err;
  ASSERT_TRUE(s.init("fw-pass", 10'000'000'000ULL, 64, SOCKET_ID_ANY, err)) << err;
  fx.w->shaper[1] = &s;
  fx.sh->shape_ports = true;
  auto a = burst_from(0, 5);
  forward_burst(*fx.w, a.data(), 5);
  EXPECT_EQ(s.queued(), 0u);
  EXPECT_EQ(fx.w->tx[1].n, 5u);
  flush_port(*fx.w, 1);
  EXPECT_EQ(fx.sent(1), a);
}

TEST(ForwardStage, AShaperOutOfTokensQueuesTheRestInOrder) {
  WorkerFixture fx("fw-queue");
  Shaper s;
  std::string err;
  ASSERT_TRUE(s.init("fw-queue", 8000, 64, SOCKET_ID_ANY, err)) << err;  // 1000 bytes/s
  fx.w->shaper[1] = &s;
  fx.sh->shape_ports = true;
  auto a = burst_from(0, 5, 946);  // 1000-byte frames: the port's burst (2 x 1522 B) lets 3 go
  ASSERT_EQ(rte_pktmbuf_pkt_len(a[0]), 1000u);
  forward_burst(*fx.w, a.data(), 5);
  EXPECT_EQ(fx.w->tx[1].n, 3u);
  EXPECT_EQ(s.queued(), 2u);
  // A later frame of the burst never overtakes: with frames queued nothing passes.
  auto b = burst_from(0, 1, 10);
  forward_burst(*fx.w, b.data(), 1);
  EXPECT_EQ(s.queued(), 3u);
  EXPECT_FALSE(drain_shapers(*fx.w));  // no tokens yet: nothing released
  auto out = fx.sent(1);
  ASSERT_EQ(out.size(), 3u);  // drain_shapers flushed the buffer first
  EXPECT_EQ(out[0], a[0]);
  EXPECT_EQ(out[2], a[2]);
  fx.w->shaper[1] = nullptr;  // ~Shaper frees what it still holds
}

}  // namespace
}  // namespace aiqos
