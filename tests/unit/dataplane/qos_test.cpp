// The police-and-mark stage's engine (dataplane/qos.h): WorkerQos over real
// mbufs (VLAN push, outer tag rewrite, exceed remark, shaped classes) and the
// policy snapshot's traffic classes. Uses the EAL and pool that
// stage_test.cpp's main() sets up.
#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/policy_engine.h"
#include "dataplane/mbuf_meta.h"
#include "dataplane/qos.h"
#include "dataplane/rewrite.h"
#include "dataplane/stats.h"
#include "rewrite_harness.h"

namespace aiqos {

extern rte_mempool* g_pool;
rte_mbuf* make_mbuf(const std::vector<uint8_t>& bytes);

namespace {

// ------------------------------------------ marking through WorkerQos::apply

// A snapshot of `classes` (no rules) for one worker.
std::unique_ptr<PolicySnapshot> snapshot(std::vector<ClassCfg> classes) {
  Policy pol;
  pol.classes = std::move(classes);
  pol.default_class = 0;
  std::vector<PolicyError> errs;
  auto eng = PolicyEngine::compile(std::move(pol), {}, 1, "test", errs);
  if (!eng) return nullptr;
  std::string err;
  return PolicySnapshot::build(std::move(eng), 1, 1, err);
}

struct QosFixture : testing::Test {
  std::unique_ptr<WorkerQos> qos = std::make_unique<WorkerQos>();
  std::unique_ptr<WorkerCounters> ctr = std::make_unique<WorkerCounters>();
  std::vector<ClassCounters> cc = std::vector<ClassCounters>(kMaxQosClasses);
  std::unique_ptr<PolicySnapshot> snap;

  void use(std::vector<ClassCfg> classes) {
    snap = snapshot(std::move(classes));
    ASSERT_NE(snap, nullptr);
    qos->reconfigure(snap.get());
  }
  rte_mbuf* mbuf(const std::vector<uint8_t>& bytes, uint16_t cls) {
    rte_mbuf* m = make_mbuf(bytes);
    EXPECT_NE(m, nullptr);
    MbufMeta* md = meta(m);
    *md = MbufMeta{};
    parse_packet({rte_pktmbuf_mtod(m, const uint8_t*), bytes.size()}, md->pkt);
    md->class_id = cls;
    md->in_port = 0;
    return m;
  }
  static std::vector<uint8_t> bytes(rte_mbuf* m) {
    const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
    return {d, d + rte_pktmbuf_data_len(m)};
  }
};

ClassCfg cls(const char* name, std::optional<uint16_t> vlan, std::optional<uint8_t> pcp, std::optional<uint8_t> dscp) {
  ClassCfg c;
  c.name = name;
  c.vlan = vlan;
  c.pcp = pcp;
  c.dscp = dscp;
  return c;
}

TEST_F(QosFixture, PushesATagOnUntaggedFramesAndMarksDscp) {
  use({cls("default", {}, {}, {}), cls("interactive", 100, 5, 46), cls("batch", 200, {}, {})});
  auto in = tcp4_frame(1);  // ECN 01
  rte_mbuf* pkts[3] = {mbuf(in, 0), mbuf(in, 1), mbuf(in, 2)};
  const uint16_t egress[3] = {1, 1, 1};
  ASSERT_EQ(qos->apply(pkts, 3, rte_rdtsc(), cc.data(), *ctr, egress), 3);

  EXPECT_EQ(bytes(pkts[0]), in);  // default: untouched

  auto t = bytes(pkts[1]);
  ASSERT_EQ(t.size(), in.size() + 4);
  EXPECT_TRUE(std::equal(in.begin(), in.begin() + 12, t.begin()));  // MACs
  EXPECT_EQ(tci_at(t, 12), 0x8100);
  EXPECT_EQ(tci_at(t, 14), make_tci(100, 5));
  EXPECT_EQ(tci_at(t, 16), 0x0800);
  EXPECT_EQ(t[18 + 1], 46 << 2 | 1);
  EXPECT_TRUE(ipv4_csum_ok(t.data() + 18));
  EXPECT_TRUE(std::equal(in.begin() + 34, in.end(), t.begin() + 38));  // TCP untouched

  auto b = bytes(pkts[2]);
  ASSERT_EQ(b.size(), in.size() + 4);
  EXPECT_EQ(tci_at(b, 14), make_tci(200, 0));  // no pcp: 0
  EXPECT_EQ(b[18 + 1], 1);                      // no dscp: TOS kept
  EXPECT_TRUE(std::equal(in.begin() + 14, in.end(), b.begin() + 18));

  EXPECT_EQ(cc[1].frames.get(), 1u);
  EXPECT_EQ(cc[1].bytes.get(), in.size());  // charged before the push
  rte_pktmbuf_free_bulk(pkts, 3);
}

TEST_F(QosFixture, ASharedMbufLeavesUntaggedAsWithRteVlanInsert) {
  // The tag is pushed in place: a frame another reference still holds must not change.
  use({cls("default", {}, {}, {}), cls("interactive", 100, 5, {})});
  auto in = tcp4_frame(0);
  rte_mbuf* m = mbuf(in, 1);
  rte_mbuf_refcnt_update(m, 1);
  const uint16_t egress[1] = {1};
  ASSERT_EQ(qos->apply(&m, 1, rte_rdtsc(), cc.data(), *ctr, egress), 1);
  EXPECT_EQ(bytes(m), in);
  rte_pktmbuf_free(m);
  rte_pktmbuf_free(m);
}

TEST_F(QosFixture, RewritesTheOuterTagOfTaggedAndQinqFrames) {
  use({cls("default", {}, {}, {}), cls("interactive", 100, 5, 46), cls("vidonly", 300, {}, {})});
  auto one = tcp4_frame(0, {static_cast<uint16_t>(2 << 13 | 7)});
  auto two = tcp4_frame(0, {static_cast<uint16_t>(2 << 13 | 7), static_cast<uint16_t>(6 << 13 | 9)});
  rte_mbuf* pkts[5] = {mbuf(one, 1), mbuf(two, 1), mbuf(one, 0), mbuf(two, 0), mbuf(one, 2)};
  const uint16_t egress[5] = {1, 1, 1, 1, 1};
  ASSERT_EQ(qos->apply(pkts, 5, rte_rdtsc(), cc.data(), *ctr, egress), 5);
  auto a = bytes(pkts[0]);
  ASSERT_EQ(a.size(), one.size());  // rewritten, not pushed
  EXPECT_EQ(tci_at(a, 14), make_tci(100, 5));
  EXPECT_EQ(a[18 + 1], 46 << 2);
  EXPECT_TRUE(ipv4_csum_ok(a.data() + 18));
  auto q = bytes(pkts[1]);
  ASSERT_EQ(q.size(), two.size());
  EXPECT_EQ(tci_at(q, 12), 0x88a8);
  EXPECT_EQ(tci_at(q, 14), make_tci(100, 5));
  EXPECT_EQ(tci_at(q, 18), 6 << 13 | 9);  // inner kept
  EXPECT_EQ(q[22 + 1], 46 << 2);
  EXPECT_TRUE(ipv4_csum_ok(q.data() + 22));
  EXPECT_EQ(bytes(pkts[2]), one);  // default class keeps tags as they are
  EXPECT_EQ(bytes(pkts[3]), two);
  auto v = bytes(pkts[4]);
  EXPECT_EQ(tci_at(v, 14), 2 << 13 | 300);  // a class vlan without pcp keeps the PCP
  rte_pktmbuf_free_bulk(pkts, 5);
}

TEST_F(QosFixture, RemarkAboveTheRate) {
  ClassCfg m = cls("metered", {}, {}, 26);
  m.rate_bps = 1'000'000;
  m.burst_bytes = 3028;  // two full frames
  m.exceed = ExceedAction::remark;
  m.exceed_dscp = 8;
  use({cls("default", {}, {}, {}), m});
  auto in = tcp4_frame(0, {}, 1460);  // 1514-byte frames
  constexpr uint16_t n = 8;
  rte_mbuf* pkts[n];
  uint16_t egress[n];
  for (uint16_t i = 0; i < n; ++i) {
    pkts[i] = mbuf(in, 1);
    egress[i] = 1;
  }
  // All at one instant: the burst lets two frames conform, the rest exceed.
  ASSERT_EQ(qos->apply(pkts, n, rte_rdtsc(), cc.data(), *ctr, egress), n);
  for (uint16_t i = 0; i < n; ++i) {
    auto b = bytes(pkts[i]);
    EXPECT_EQ(b[14 + 1] >> 2, i < 2 ? 26 : 8) << i;
    EXPECT_TRUE(ipv4_csum_ok(b.data() + 14)) << i;
  }
  EXPECT_EQ(cc[1].remarked.get(), n - 2u);
  EXPECT_EQ(cc[1].policed.get(), 0u);
  EXPECT_EQ(cc[1].frames.get(), n);
  rte_pktmbuf_free_bulk(pkts, n);
}

TEST_F(QosFixture, DropRateIsShapedNotPoliced) {
  // exceed: drop with a rate is left to the shaper (its own traffic class):
  // apply() forwards every frame and counts nothing as policed.
  ClassCfg l = cls("limited", {}, {}, {});
  l.rate_bps = 1'000'000;
  l.burst_bytes = 3028;
  l.priority = 3;
  ClassCfg d = cls("default", {}, {}, {});
  use({d, l});
  ASSERT_TRUE(snap->classes[1].shaped);
  ASSERT_FALSE(snap->classes[1].metered);
  EXPECT_EQ(snap->classes[1].tc, 0);  // priority 3 before default's 7
  EXPECT_EQ(snap->classes[0].tc, 1);
  EXPECT_EQ(snap->tc_rate[0], 125'000u);
  EXPECT_EQ(snap->tc_rate[1], 0u);
  auto in = tcp4_frame(0, {}, 1460);
  rte_mbuf* pkts[8];
  uint16_t egress[8];
  for (auto& p : pkts) p = mbuf(in, 1);
  std::fill(std::begin(egress), std::end(egress), 1);
  EXPECT_EQ(qos->apply(pkts, 8, rte_rdtsc(), cc.data(), *ctr, egress), 8);
  EXPECT_EQ(cc[1].policed.get(), 0u);
  rte_pktmbuf_free_bulk(pkts, 8);
}

TEST(PolicySnapshotTcs, PriorityOrderThenAppearance) {
  std::vector<ClassCfg> cs;
  for (auto [name, prio] : std::initializer_list<std::pair<const char*, uint8_t>>{
           {"default", 7}, {"a", 0}, {"b", 5}, {"c", 0}, {"d", 2}}) {
    ClassCfg c;
    c.name = name;
    c.priority = prio;
    cs.push_back(c);
  }
  auto s = snapshot(cs);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->classes[1].tc, 0);  // a
  EXPECT_EQ(s->classes[3].tc, 1);  // c: same priority, later
  EXPECT_EQ(s->classes[4].tc, 2);  // d
  EXPECT_EQ(s->classes[2].tc, 3);  // b
  EXPECT_EQ(s->classes[0].tc, 4);  // default
}

TEST(PolicySnapshotTcs, BeyondTwelveClassesShareBestEffortAndArePoliced) {
  std::vector<ClassCfg> cs;
  for (int i = 0; i < 14; ++i) {
    ClassCfg c;
    c.name = "c" + std::to_string(i);
    c.priority = 0;
    if (i == 13) {
      c.rate_bps = 1'000'000;
      c.burst_bytes = 3028;
    }
    cs.push_back(c);
  }
  auto s = snapshot(cs);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->classes[11].tc, 11);
  EXPECT_EQ(s->classes[12].tc, kBestEffortTc);
  EXPECT_EQ(s->classes[13].tc, kBestEffortTc);
  // A drop rate on a class without its own traffic class cannot be shaped:
  // it is policed instead.
  EXPECT_FALSE(s->classes[13].shaped);
  EXPECT_TRUE(s->classes[13].metered);
}

}  // namespace
}  // namespace aiqos
