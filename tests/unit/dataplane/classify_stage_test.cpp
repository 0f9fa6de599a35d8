// The classify stage (stage_classify.cpp): every frame of a burst through the
// worker's Classifier, with the frame's time taken from its RX stamp (the
// worker's clock) or from the capture's timestamp when the port gives one.
#include <gtest/gtest.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include <memory>
#include <vector>

#include "../classify/classifier_fixture.h"
#include "classify/classifier.h"
#include "dataplane/stages.h"
#include "worker_fixture.h"

namespace aiqos {
namespace {

using test::WorkerFixture;

struct ClassifyStage : testing::Test {
  WorkerFixture fx{"cl-stage"};
  test::RecordSink sink;
  std::unique_ptr<Classifier> cls = std::make_unique<Classifier>(test::small_config(), sink);
  std::vector<rte_mbuf*> pkts;

  void SetUp() override {
    fx.w->cls = cls.get();
    // Wall clock: 5 s at TSC 1000, two TSC cycles a nanosecond.
    fx.w->wall0_ns = 5'000'000'000;
    fx.w->tsc0 = 1000;
    fx.w->ns_per_tsc = 0.5;
  }
  void TearDown() override { rte_pktmbuf_free_bulk(pkts.data(), static_cast<unsigned>(pkts.size())); }

  // The three frames of a handshake, received together on ports 0 (client) and 1.
  void handshake(uint64_t rx_tsc) {
    const uint32_t cli = 0xc6120001, srv = 0xc6130001;
    pkts = {WorkerFixture::frame(test::tcp4(cli, srv, 41000, 8080, 0x02, 0), 0),
            WorkerFixture::frame(test::tcp4(srv, cli, 8080, 41000, 0x12, 0), 1),
            WorkerFixture::frame(test::tcp4(cli, srv, 41000, 8080, 0x10, 0), 0)};
    for (rte_mbuf* m : pkts) meta(m)->rx_tsc = rx_tsc;
  }
  FlowInfo only_flow() {
    FlowInfo fi[2];
    EXPECT_EQ(cls->top_flows(fi, 2, FlowFilter{}), 1u);
    return fi[0];
  }
};

TEST_F(ClassifyStage, DirectionWorkerAndClassOfEveryFrame) {
  handshake(3000);
  classify_burst(*fx.w, pkts.data(), 3);
  const bool want_client[3] = {true, false, true};
  for (size_t i = 0; i < 3; ++i) {
    const MbufMeta* md = meta(pkts[i]);
    EXPECT_EQ(md->worker, 1u);
    EXPECT_EQ(md->from_client, want_client[i]) << "frame " << i;
    EXPECT_EQ(md->class_id, 0u);  // no policy: class 0
    EXPECT_FALSE(md->over_budget);
  }
  FlowInfo f = only_flow();
  EXPECT_EQ(f.pkts[0] + f.pkts[1], 3u);
}

TEST_F(ClassifyStage, TheFramesTimeIsTheirRxStampOnTheWorkersClock) {
  handshake(3000);  // 2000 cycles after the anchor: 1000 ns
  classify_burst(*fx.w, pkts.data(), 3);
  FlowInfo f = only_flow();
  EXPECT_EQ(f.created_ns, 5'000'001'000u);
  EXPECT_EQ(f.last_seen_ns, 5'000'001'000u);
  EXPECT_FALSE(fx.w->offline_clock);
}

TEST_F(ClassifyStage, ACaptureTimestampWinsAndIsReadAsMicroseconds) {
  int off = -1;
  uint64_t flag = 0;
  ASSERT_EQ(rte_mbuf_dyn_rx_timestamp_register(&off, &flag), 0);
  fx.sh->ts_offset = off;
  fx.sh->ts_flag = flag;
  handshake(3000);
  for (size_t i = 0; i < 3; ++i) {
    pkts[i]->ol_flags |= flag;
    *RTE_MBUF_DYNFIELD(pkts[i], off, rte_mbuf_timestamp_t*) = 1'700'000'000'000'000ULL + i;  // us (net_pcap)
  }
  classify_burst(*fx.w, pkts.data(), 3);
  FlowInfo f = only_flow();
  EXPECT_EQ(f.created_ns, 1'700'000'000'000'000'000ULL);
  EXPECT_EQ(f.last_seen_ns, 1'700'000'000'000'002'000ULL);
  EXPECT_TRUE(fx.w->offline_clock);
}

}  // namespace
}  // namespace aiqos
