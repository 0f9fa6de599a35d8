// The shaper's short path (Shaper::pass): an idle shaper lets frames through
// while its buckets hold their bytes, charged exactly as queue + dequeue
// would charge them; anything queued, or a bucket short of tokens, sends the
// frame (and every later one of the burst) through the queues. Uses the EAL
// and pool that stage_test.cpp's main() sets up.
#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>

#include <array>
#include <string>
#include <vector>

#include "../classify/packet_builder.h"
#include "dataplane/shaper.h"

namespace aiqos {

extern rte_mempool* g_pool;
rte_mbuf* make_mbuf(const std::vector<uint8_t>& bytes);

namespace {

std::vector<rte_mbuf*> frames(size_t n, size_t payload) {
  std::vector<rte_mbuf*> v;
  for (size_t i = 0; i < n; ++i)
    v.push_back(make_mbuf(test::tcp4(0xc6120001, 0xc6120002, static_cast<uint16_t>(40000 + i), 8080, 0x18, payload)));
  return v;
}

std::vector<uint64_t> flows(size_t n) {
  std::vector<uint64_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 7000 + i;
  return v;
}

TEST(ShaperPass, AnIdleShaperWithTokensPassesTheWholeBurst) {
  Shaper s;
  std::string err;
  ASSERT_TRUE(s.init("p-idle", 10'000'000'000ULL, 64, SOCKET_ID_ANY, err)) << err;
  auto f = frames(8, 100);
  std::vector<uint8_t> tc = {5, 0, 12, 0, 5, 12, 0, 5};
  EXPECT_EQ(s.pass(f.data(), 8, tc.data(), rte_rdtsc()), 8u);
  EXPECT_EQ(s.queued(), 0u);
  rte_pktmbuf_free_bulk(f.data(), 8);
}

TEST(ShaperPass, NothingPassesWhileFramesAreQueued) {
  Shaper s;
  std::string err;
  ASSERT_TRUE(s.init("p-queued", 10'000'000'000ULL, 64, SOCKET_ID_ANY, err)) << err;
  auto f = frames(3, 100);
  std::vector<uint8_t> tc = {4, 0, 0};
  ASSERT_EQ(s.enqueue(f.data(), 1, tc.data(), flows(1).data()), 1u);
  // A more urgent frame, and one of another flow: both would overtake the queued one.
  EXPECT_EQ(s.pass(f.data() + 1, 2, tc.data() + 1, rte_rdtsc()), 0u);
  rte_mbuf* out[4];
  ASSERT_EQ(s.dequeue(out, 4), 1u);
  EXPECT_EQ(out[0], f[0]);
  // Empty again: the short path is open.
  EXPECT_EQ(s.pass(f.data() + 1, 2, tc.data() + 1, rte_rdtsc()), 2u);
  rte_pktmbuf_free_bulk(f.data(), 3);
}

TEST(ShaperPass, ItChargesThePortBucketAsTheQueueWould) {
  Shaper s;
  std::string err;
  ASSERT_TRUE(s.init("p-port", 8000, 64, SOCKET_ID_ANY, err)) << err;  // 1000 bytes/s
  auto f = frames(6, 946);  // 1000-byte frames
  ASSERT_EQ(rte_pktmbuf_pkt_len(f[0]), 1000u);
  std::vector<uint8_t> tc(6, 2);
  // The port's burst is two full-size frames (2 x 1522 bytes): three 1000-byte
  // frames pass, as ThePortRateStopsEveryClass dequeues three.
  const uint32_t k = s.pass(f.data(), 6, tc.data(), rte_rdtsc());
  ASSERT_EQ(k, 3u);
  // The rest is queued and finds the bucket spent.
  ASSERT_EQ(s.enqueue(f.data() + k, 6 - k, tc.data() + k, flows(6 - k).data()), 3u);
  rte_mbuf* out[8];
  EXPECT_EQ(s.dequeue(out, 8), 0u);
  EXPECT_EQ(s.queued(), 3u);
  rte_pktmbuf_free_bulk(f.data(), k);
}

TEST(ShaperPass, AClassOverItsRateStopsThePassAtItsFrame) {
  Shaper s;
  std::string err;
  ASSERT_TRUE(s.init("p-class", 10'000'000'000ULL, 64, SOCKET_ID_ANY, err)) << err;
  std::array<uint64_t, Shaper::kTcs> rates{};
  rates[1] = 1000;  // bytes/s: a new bucket starts empty
  ASSERT_TRUE(s.set_tc_rates(rates));
  auto f = frames(4, 100);
  std::vector<uint8_t> tc = {4, 1, 4, 4};
  // Frame 1 cannot go now; frames 2 and 3 must not overtake it either: the
  // caller queues from the first frame that did not pass.
  EXPECT_EQ(s.pass(f.data(), 4, tc.data(), rte_rdtsc()), 1u);
  ASSERT_EQ(s.enqueue(f.data() + 1, 3, tc.data() + 1, flows(3).data()), 3u);
  rte_mbuf* out[4];
  ASSERT_EQ(s.dequeue(out, 4), 2u);  // the lower class goes, the rate-limited one waits
  EXPECT_EQ(out[0], f[2]);
  EXPECT_EQ(out[1], f[3]);
  EXPECT_EQ(s.queued(), 1u);
  rte_pktmbuf_free_bulk(out, 2);
  rte_pktmbuf_free(f[0]);
  rates[1] = 0;
  ASSERT_TRUE(s.set_tc_rates(rates));
  ASSERT_EQ(s.dequeue(out, 4), 1u);
  EXPECT_EQ(out[0], f[1]);
  rte_pktmbuf_free(out[0]);
}

}  // namespace
}  // namespace aiqos
