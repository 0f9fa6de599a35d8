// The egress shaper (dataplane/shaper.h, Shaper): strict priority between
// traffic classes, FIFO within one, class and port token buckets, and order
// within a flow whose class changes while its frames are queued. Uses the EAL
// and pool that stage_test.cpp's main() sets up.
#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>

#include <array>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../classify/packet_builder.h"
#include "dataplane/shaper.h"

namespace aiqos {

// From stage_test.cpp (the binary's main() creates the pool).
extern rte_mempool* g_pool;
rte_mbuf* make_mbuf(const std::vector<uint8_t>& bytes);

namespace {

std::vector<rte_mbuf*> frames_of(size_t n, size_t payload) {
  std::vector<rte_mbuf*> v;
  for (size_t i = 0; i < n; ++i) v.push_back(make_mbuf(test::tcp4(0xc6120001, 0xc6120002, 40000, 8080, 0x18, payload)));
  return v;
}

// A shaper of `bps` (10 Gbit/s: never the limit) with `queue` frames a traffic class.
testing::AssertionResult start(Shaper& s, const char* name, uint64_t bps = 10'000'000'000ULL, uint16_t queue = 64) {
  std::string err;
  if (s.init(name, bps, queue, SOCKET_ID_ANY, err)) return testing::AssertionSuccess();
  return testing::AssertionFailure() << err;
}

// Limits traffic class `tc` alone to `bytes_per_s` (0: every class unlimited again).
testing::AssertionResult limit(Shaper& s, size_t tc, uint64_t bytes_per_s) {
  std::array<uint64_t, Shaper::kTcs> rates{};
  rates[tc] = bytes_per_s;
  if (s.set_tc_rates(rates)) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "set_tc_rates refused " << bytes_per_s << " bytes/s for TC " << tc;
}

// Asks for more than is queued: exactly `want` must leave, in that order. Frees them.
void expect_dequeued(Shaper& s, const std::vector<rte_mbuf*>& want) {
  std::vector<rte_mbuf*> out(want.size() + 8);
  ASSERT_EQ(s.dequeue(out.data(), static_cast<uint32_t>(out.size())), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(out[i], want[i]) << "position " << i;
  rte_pktmbuf_free_bulk(out.data(), static_cast<unsigned>(want.size()));
}

// Each frame its own flow: what the tests of priority alone need.
std::vector<uint64_t> distinct_flows(size_t n) {
  std::vector<uint64_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 1000 + i;
  return v;
}

// ---------------------------------------------------------------- priority and rates

TEST(Shaper, StrictPriorityAcrossClassesFifoWithin) {
  Shaper s;
  ASSERT_TRUE(start(s, "t-prio"));
  auto f = frames_of(8, 100);
  // Interleaved arrivals: classes 5, 0, 12 (best effort), 0, 5, 12, 0, 5.
  std::vector<uint8_t> tc = {5, 0, 12, 0, 5, 12, 0, 5};
  ASSERT_EQ(s.enqueue(f.data(), 8, tc.data(), distinct_flows(8).data()), 8u);
  expect_dequeued(s, {f[1], f[3], f[6], f[0], f[4], f[7], f[2], f[5]});
  EXPECT_EQ(s.queued(), 0u);
  EXPECT_EQ(s.flows_queued(), 0u);
}

TEST(Shaper, DequeueStopsAtTheAskedCountAndResumesInOrder) {
  Shaper s;
  ASSERT_TRUE(start(s, "t-count"));
  auto f = frames_of(6, 100);
  std::vector<uint8_t> tc = {3, 3, 1, 1, 3, 1};
  ASSERT_EQ(s.enqueue(f.data(), 6, tc.data(), distinct_flows(6).data()), 6u);
  rte_mbuf* out[8];
  ASSERT_EQ(s.dequeue(out, 2), 2u);
  EXPECT_EQ(out[0], f[2]);
  EXPECT_EQ(out[1], f[3]);
  ASSERT_EQ(s.dequeue(out + 2, 8), 4u);
  EXPECT_EQ(out[2], f[5]);
  EXPECT_EQ(out[3], f[0]);
  EXPECT_EQ(out[4], f[1]);
  EXPECT_EQ(out[5], f[4]);
  rte_pktmbuf_free_bulk(out, 6);
}

TEST(Shaper, AClassOverItsRateWaitsWhileALowerOneGoes) {
  Shaper s;
  ASSERT_TRUE(start(s, "t-rate"));
  ASSERT_TRUE(limit(s, 0, 1000));  // bytes/s: a new bucket starts empty, so class 0 cannot send now
  auto f = frames_of(4, 100);
  std::vector<uint8_t> tc = {0, 4, 0, 4};
  ASSERT_EQ(s.enqueue(f.data(), 4, tc.data(), distinct_flows(4).data()), 4u);
  rte_mbuf* out[8];
  ASSERT_EQ(s.dequeue(out, 8), 2u);
  EXPECT_EQ(out[0], f[1]);
  EXPECT_EQ(out[1], f[3]);
  EXPECT_EQ(s.queued(), 2u);
  rte_pktmbuf_free_bulk(out, 2);
  ASSERT_TRUE(limit(s, 0, 0));  // unlimited again: what waited goes, in order
  ASSERT_EQ(s.dequeue(out, 8), 2u);
  EXPECT_EQ(out[0], f[0]);
  EXPECT_EQ(out[1], f[2]);
  rte_pktmbuf_free_bulk(out, 2);
}

TEST(Shaper, ThePortRateStopsEveryClass) {
  Shaper s;
  std::string err;
  ASSERT_TRUE(s.init("t-port", 8000, 64, SOCKET_ID_ANY, err)) << err;  // 1000 bytes/s
  auto f = frames_of(10, 946);  // 1000-byte frames
  ASSERT_EQ(rte_pktmbuf_pkt_len(f[0]), 1000u);
  std::vector<uint8_t> tc(10, 2);
  tc[9] = 0;  // the most urgent class is held back by the port too, once the burst is spent
  ASSERT_EQ(s.enqueue(f.data(), 10, tc.data(), distinct_flows(10).data()), 10u);
  rte_mbuf* out[16];
  uint32_t k = s.dequeue(out, 16);
  // The port's burst: two full-size frames (2 x 1522 bytes) -> three 1000-byte frames.
  ASSERT_EQ(k, 3u);
  EXPECT_EQ(out[0], f[9]);
  EXPECT_EQ(out[1], f[0]);
  EXPECT_EQ(out[2], f[1]);
  EXPECT_EQ(s.queued(), 7u);
  EXPECT_EQ(s.dequeue(out + k, 16), 0u);
  rte_pktmbuf_free_bulk(out, k);
}

TEST(Shaper, QueueLengthMustBeAPowerOfTwo) {
  Shaper s;
  std::string err;
  EXPECT_FALSE(s.init("t-q", 1'000'000, 48, SOCKET_ID_ANY, err));
  EXPECT_NE(err.find("power of two"), std::string::npos);
}

TEST(Shaper, AFullClassQueueRefusesAndFrees) {
  Shaper s;
  ASSERT_TRUE(start(s, "t-full", 10'000'000'000ULL, 4));
  const unsigned before = rte_mempool_avail_count(g_pool);
  auto f = frames_of(6, 100);
  std::vector<uint8_t> tc(6, 7);
  EXPECT_EQ(s.enqueue(f.data(), 6, tc.data(), distinct_flows(6).data()), 4u);
  EXPECT_EQ(s.queued(), 4u);
  rte_mbuf* out[8];
  ASSERT_EQ(s.dequeue(out, 8), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], f[static_cast<size_t>(i)]);
  rte_pktmbuf_free_bulk(out, 4);
  EXPECT_EQ(rte_mempool_avail_count(g_pool), before);
  EXPECT_EQ(s.flows_queued(), 0u);
}

// ---------------------------------------------------------------- order within a flow

// The connection of the issue: handshake and preface queued in the default
// class (TC 5), then the request in a more urgent class (TC 0). Its later
// frames must not overtake the earlier ones; another flow in TC 0 still goes first.
TEST(Shaper, AFlowWhoseClassChangesKeepsItsOrder) {
  Shaper s;
  ASSERT_TRUE(start(s, "t-order"));
  auto f = frames_of(8, 100);
  // f0..f2: flow A in TC 5; f3: flow B in TC 0; f4..f6: flow A now in TC 0; f7: flow B.
  std::vector<uint8_t> tc = {5, 5, 5, 0, 0, 0, 0, 0};
  std::vector<uint64_t> flow = {0xa, 0xa, 0xa, 0xb, 0xa, 0xa, 0xa, 0xb};
  uint32_t held = 0;
  ASSERT_EQ(s.enqueue(f.data(), 3, tc.data(), flow.data(), &held), 3u);
  EXPECT_EQ(held, 0u);
  ASSERT_EQ(s.enqueue(f.data() + 3, 5, tc.data() + 3, flow.data() + 3, &held), 5u);
  EXPECT_EQ(held, 3u);  // A's three TC 0 frames wait in TC 5 behind its first three
  EXPECT_EQ(s.flows_queued(), 2u);
  expect_dequeued(s, {f[3], f[7], f[0], f[1], f[2], f[4], f[5], f[6]});
  EXPECT_EQ(s.flows_queued(), 0u);
}

// Once its old queue holds none of its frames, the flow is in its new class.
TEST(Shaper, AFlowMovesToItsNewClassOnceItsOldQueueIsEmpty) {
  Shaper s;
  ASSERT_TRUE(start(s, "t-move"));
  auto f = frames_of(4, 100);
  std::vector<uint8_t> tc = {5, 5};
  std::vector<uint64_t> flow = {0xa, 0xa};
  ASSERT_EQ(s.enqueue(f.data(), 2, tc.data(), flow.data()), 2u);
  rte_mbuf* out[8];
  ASSERT_EQ(s.dequeue(out, 8), 2u);
  // Now flow B waits in TC 5 and A's next frame is TC 0: it goes first.
  std::vector<uint8_t> tc2 = {5, 0};
  std::vector<uint64_t> flow2 = {0xb, 0xa};
  uint32_t held = 7;
  ASSERT_EQ(s.enqueue(f.data() + 2, 2, tc2.data(), flow2.data(), &held), 2u);
  EXPECT_EQ(held, 0u);
  ASSERT_EQ(s.dequeue(out + 2, 8), 2u);
  EXPECT_EQ(out[2], f[3]);
  EXPECT_EQ(out[3], f[2]);
  rte_pktmbuf_free_bulk(out, 4);
}

// The old class over its rate holds the flow's new frames too (they would
// otherwise overtake); other flows of the new class are not held.
TEST(Shaper, AHeldFlowWaitsForItsOldClassRate) {
  Shaper s;
  ASSERT_TRUE(start(s, "t-held-rate"));
  ASSERT_TRUE(limit(s, 5, 1000));  // bytes/s, starts empty: TC 5 sends nothing now
  auto f = frames_of(4, 100);
  std::vector<uint8_t> tc = {5, 0, 0, 0};
  std::vector<uint64_t> flow = {0xa, 0xa, 0xb, 0xa};
  ASSERT_EQ(s.enqueue(f.data(), 4, tc.data(), flow.data()), 4u);
  rte_mbuf* out[8];
  ASSERT_EQ(s.dequeue(out, 8), 1u);
  EXPECT_EQ(out[0], f[2]);
  ASSERT_TRUE(limit(s, 5, 0));
  ASSERT_EQ(s.dequeue(out + 1, 8), 3u);
  EXPECT_EQ(out[1], f[0]);
  EXPECT_EQ(out[2], f[1]);
  EXPECT_EQ(out[3], f[3]);
  rte_pktmbuf_free_bulk(out, 4);
}

// A flow held in a full queue is tail-dropped there, not sent ahead.
TEST(Shaper, AHeldFlowIsDroppedWhenItsOldQueueIsFull) {
  Shaper s;
  ASSERT_TRUE(start(s, "t-held-full", 10'000'000'000ULL, 2));
  const unsigned before = rte_mempool_avail_count(g_pool);
  auto f = frames_of(3, 100);
  std::vector<uint8_t> tc = {5, 5, 0};
  std::vector<uint64_t> flow = {0xa, 0xa, 0xa};
  uint32_t held = 9;
  EXPECT_EQ(s.enqueue(f.data(), 3, tc.data(), flow.data(), &held), 2u);
  EXPECT_EQ(held, 0u);  // refused, not held
  rte_mbuf* out[4];
  ASSERT_EQ(s.dequeue(out, 4), 2u);
  EXPECT_EQ(out[0], f[0]);
  EXPECT_EQ(out[1], f[1]);
  rte_pktmbuf_free_bulk(out, 2);
  EXPECT_EQ(rte_mempool_avail_count(g_pool), before);
  EXPECT_EQ(s.flows_queued(), 0u);
}

// Random traffic: many flows (more than the pin table's home slots can keep
// apart), classes changing at random, class rates switched on and off, queues
// small enough to overflow. Whatever leaves, leaves in each flow's order; the
// per-flow state empties with the queues; every mbuf comes back.
TEST(Shaper, RandomClassChangesNeverReorderAFlow) {
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  Shaper s;
  ASSERT_TRUE(start(s, "t-random", 10'000'000'000ULL, 16));
  const unsigned before = rte_mempool_avail_count(g_pool);
  struct Tag {
    uint64_t flow;
    uint32_t seq;
  };
  std::map<rte_mbuf*, Tag> tags;
  std::map<uint64_t, uint32_t> next_seq, last_out;
  uint64_t held_total = 0, sent = 0;
  std::array<uint64_t, Shaper::kTcs> rates{};
  for (int round = 0; round < 3000; ++round) {
    if (rng() % 50 == 0) {
      for (auto& r : rates) r = rng() % 3 == 0 ? 1 + rng() % 100000 : 0;
      ASSERT_TRUE(s.set_tc_rates(rates));
    }
    const uint32_t n = rng() % 12;
    auto f = frames_of(n, 60);
    std::vector<uint8_t> tc(n);
    std::vector<uint64_t> flow(n);
    for (uint32_t i = 0; i < n; ++i) {
      flow[i] = rng() % 40;  // flow 0 too (non-IP frames hash to 0)
      tc[i] = static_cast<uint8_t>(rng() % Shaper::kTcs);
      tags[f[i]] = {flow[i], next_seq[flow[i]]++};
    }
    uint32_t held = 0;
    s.enqueue(f.data(), n, tc.data(), flow.data(), &held);
    held_total += held;
    rte_mbuf* out[32];
    const uint32_t k = s.dequeue(out, rng() % 32);
    for (uint32_t i = 0; i < k; ++i) {
      auto it = tags.find(out[i]);
      ASSERT_NE(it, tags.end());
      const Tag t = it->second;
      auto lo = last_out.find(t.flow);
      if (lo != last_out.end()) {
        ASSERT_GT(t.seq, lo->second) << "flow " << t.flow << " reordered";
      }
      last_out[t.flow] = t.seq;
      tags.erase(it);
      ++sent;
    }
    // Frames refused at enqueue went back to the pool; when the pool hands
    // one out again, its tag is overwritten above.
    rte_pktmbuf_free_bulk(out, k);
  }
  EXPECT_GT(held_total, 0u);
  EXPECT_GT(sent, 0u);
  rates.fill(0);
  ASSERT_TRUE(s.set_tc_rates(rates));
  rte_mbuf* out[64];
  for (uint32_t k; (k = s.dequeue(out, 64)) != 0;) rte_pktmbuf_free_bulk(out, k);
  EXPECT_EQ(s.queued(), 0u);
  EXPECT_EQ(s.flows_queued(), 0u);
  EXPECT_EQ(rte_mempool_avail_count(g_pool), before);
}

// ---------------------------------------------------------------- the short path
// Shaper::pass: an idle shaper lets frames through while its buckets hold their
// bytes, charged exactly as queue + dequeue would charge them; anything queued,
// or a bucket short of tokens, sends the frame (and every later one of the
// burst) through the queues.

TEST(ShaperPass, AnIdleShaperWithTokensPassesTheWholeBurst) {
  Shaper s;
  ASSERT_TRUE(start(s, "p-idle"));
  auto f = frames_of(8, 100);
  std::vector<uint8_t> tc = {5, 0, 12, 0, 5, 12, 0, 5};
  EXPECT_EQ(s.pass(f.data(), 8, tc.data(), rte_rdtsc()), 8u);
  EXPECT_EQ(s.queued(), 0u);
  rte_pktmbuf_free_bulk(f.data(), 8);
}

TEST(ShaperPass, NothingPassesWhileFramesAreQueued) {
  Shaper s;
  ASSERT_TRUE(start(s, "p-queued"));
  auto f = frames_of(3, 100);
  std::vector<uint8_t> tc = {4, 0, 0};
  ASSERT_EQ(s.enqueue(f.data(), 1, tc.data(), distinct_flows(1).data()), 1u);
  // A more urgent frame, and one of another flow: both would overtake the queued one.
  EXPECT_EQ(s.pass(f.data() + 1, 2, tc.data() + 1, rte_rdtsc()), 0u);
  expect_dequeued(s, {f[0]});
  // Empty again: the short path is open.
  EXPECT_EQ(s.pass(f.data() + 1, 2, tc.data() + 1, rte_rdtsc()), 2u);
  rte_pktmbuf_free_bulk(f.data() + 1, 2);
}

TEST(ShaperPass, ItChargesThePortBucketAsTheQueueWould) {
  Shaper s;
  ASSERT_TRUE(start(s, "p-port", 8000));  // 1000 bytes/s
  auto f = frames_of(6, 946);  // 1000-byte frames
  ASSERT_EQ(rte_pktmbuf_pkt_len(f[0]), 1000u);
  std::vector<uint8_t> tc(6, 2);
  // The port's burst is two full-size frames (2 x 1522 bytes): three 1000-byte
  // frames pass, as ThePortRateStopsEveryClass dequeues three.
  const uint32_t k = s.pass(f.data(), 6, tc.data(), rte_rdtsc());
  ASSERT_EQ(k, 3u);
  // The rest is queued and finds the bucket spent.
  ASSERT_EQ(s.enqueue(f.data() + k, 6 - k, tc.data() + k, distinct_flows(6 - k).data()), 3u);
  rte_mbuf* out[8];
  EXPECT_EQ(s.dequeue(out, 8), 0u);
  EXPECT_EQ(s.queued(), 3u);
  rte_pktmbuf_free_bulk(f.data(), k);
}

TEST(ShaperPass, AClassOverItsRateStopsThePassAtItsFrame) {
  Shaper s;
  ASSERT_TRUE(start(s, "p-class"));
  ASSERT_TRUE(limit(s, 1, 1000));  // bytes/s: a new bucket starts empty
  auto f = frames_of(4, 100);
  std::vector<uint8_t> tc = {4, 1, 4, 4};
  // Frame 1 cannot go now; frames 2 and 3 must not overtake it either: the
  // caller queues from the first frame that did not pass.
  EXPECT_EQ(s.pass(f.data(), 4, tc.data(), rte_rdtsc()), 1u);
  ASSERT_EQ(s.enqueue(f.data() + 1, 3, tc.data() + 1, distinct_flows(3).data()), 3u);
  expect_dequeued(s, {f[2], f[3]});  // the lower class goes, the rate-limited one waits
  EXPECT_EQ(s.queued(), 1u);
  rte_pktmbuf_free(f[0]);
  ASSERT_TRUE(limit(s, 1, 0));
  expect_dequeued(s, {f[1]});
}

}  // namespace
}  // namespace aiqos
