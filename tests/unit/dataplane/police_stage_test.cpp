// The police stage (stage_police.cpp): WorkerQos over a burst, with each
// frame's drops counted against the port it would have left on (its ingress
// port's peer, or its own port when it has none), and no policy = no change.
#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>

#include <memory>
#include <string>
#include <vector>

#include "../classify/packet_builder.h"
#include "control/policy_engine.h"
#include "dataplane/stages.h"
#include "worker_fixture.h"

namespace aiqos {

extern rte_mempool* g_pool;

namespace {

using test::WorkerFixture;

// One class, "only", tagged VLAN 300: what the stage does is visible on the frames.
std::unique_ptr<PolicySnapshot> one_tagged_class() {
  ClassCfg only;
  only.name = "only";
  only.vlan = 300;
  Policy pol;
  pol.classes.push_back(only);
  pol.default_class = 0;
  std::vector<PolicyError> errors;
  std::unique_ptr<PolicyEngine> engine = PolicyEngine::compile(pol, {}, 2, "police-stage", errors);
  if (engine == nullptr) return nullptr;
  std::string why;
  return PolicySnapshot::build(std::move(engine), 2, 1, why);
}

std::vector<rte_mbuf*> frames_on(uint16_t port, size_t n) {
  std::vector<rte_mbuf*> v;
  for (size_t i = 0; i < n; ++i)
    v.push_back(WorkerFixture::frame(test::tcp4(0xc6120009, 0xc6130009, static_cast<uint16_t>(5000 + i), 80), port));
  return v;
}

TEST(PoliceStage, WithoutAPolicyFramesPassUntouched) {
  WorkerFixture fx("po-none");
  auto a = frames_on(0, 3);
  const uint16_t len = rte_pktmbuf_data_len(a[0]);
  EXPECT_EQ(police_burst(*fx.w, a.data(), 3, rte_rdtsc()), 3u);
  for (rte_mbuf* m : a) EXPECT_EQ(rte_pktmbuf_data_len(m), len);
  rte_pktmbuf_free_bulk(a.data(), 3);
}

TEST(PoliceStage, MarksTheClassAndDropsFramesOverBudgetOnTheEgressPort) {
  WorkerFixture fx("po-drop");
  std::unique_ptr<PolicySnapshot> snap = one_tagged_class();
  ASSERT_NE(snap, nullptr);
  fx.w->snap = snap.get();
  fx.w->qos.reconfigure(snap.get());
  auto a = frames_on(0, 4);
  const uint16_t len = rte_pktmbuf_data_len(a[0]);
  meta(a[1])->over_budget = true;
  meta(a[3])->over_budget = true;
  const unsigned before = rte_mempool_in_use_count(g_pool);
  ASSERT_EQ(police_burst(*fx.w, a.data(), 4, rte_rdtsc()), 2u);
  EXPECT_EQ(rte_mempool_in_use_count(g_pool), before - 2);
  // Compacted: the kept frames first, each with the class's tag pushed.
  for (int i = 0; i < 2; ++i) EXPECT_EQ(rte_pktmbuf_data_len(a[i]), len + 4);
  // Counted where they would have left: port 1, the peer of their port 0.
  EXPECT_EQ(fx.w->ctr.port[1].drops[static_cast<size_t>(DropReason::over_budget)].get(), 2u);
  EXPECT_EQ(fx.w->ctr.port[0].drops[static_cast<size_t>(DropReason::over_budget)].get(), 0u);
  EXPECT_EQ(fx.w->cls_ctr[0].frames.get(), 2u);
  rte_pktmbuf_free_bulk(a.data(), 2);
}

TEST(PoliceStage, APortWithoutPeerCountsItsOwnDrops) {
  WorkerFixture fx("po-nopeer", false);
  std::unique_ptr<PolicySnapshot> snap = one_tagged_class();
  ASSERT_NE(snap, nullptr);
  fx.w->snap = snap.get();
  fx.w->qos.reconfigure(snap.get());
  auto a = frames_on(1, 1);
  meta(a[0])->over_budget = true;
  EXPECT_EQ(police_burst(*fx.w, a.data(), 1, rte_rdtsc()), 0u);
  EXPECT_EQ(fx.w->ctr.port[1].drops[static_cast<size_t>(DropReason::over_budget)].get(), 1u);
}

}  // namespace
}  // namespace aiqos
