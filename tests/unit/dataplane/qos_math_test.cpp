// The arithmetic of policing and shaping (dataplane/qos_math.h): how a class
// rate is split across workers, the traffic classes and the request/token
// bucket. Pure functions, no EAL.
#include <gtest/gtest.h>

#include <cstdint>

#include "dataplane/qos_math.h"

namespace aiqos {
namespace {

// --- meter_share: rate / W in bytes, burst / W, floor of one full frame ---

struct MeterCase {
  uint64_t rate_bps, burst;
  uint16_t workers;
  uint64_t cir, cbs;
};

TEST(MeterShare, SplitsRateAndBurstAcrossWorkers) {
  const MeterCase cases[] = {
      // 20 Mbit/s = 2 500 000 bytes/s; burst 25 000 bytes (10 ms at the rate).
      {20'000'000, 25'000, 1, 2'500'000, 25'000},
      {20'000'000, 25'000, 2, 1'250'000, 12'500},
      {20'000'000, 25'000, 3, 833'333, 8'333},
      // 25 000 / 16 = 1 562 is just above one frame; kept.
      {20'000'000, 25'000, 16, 156'250, 1'562},
      // 1 Gbit/s, 1 MB burst.
      {1'000'000'000, 1'000'000, 1, 125'000'000, 1'000'000},
      {1'000'000'000, 1'000'000, 3, 41'666'666, 333'333},
      {1'000'000'000, 1'000'000, 16, 7'812'500, 62'500},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << c.rate_bps << " bit/s burst " << c.burst << " over " << c.workers);
    MeterShare s = meter_share(c.rate_bps, c.burst, c.workers);
    EXPECT_EQ(s.cir_bytes_per_s, c.cir);
    EXPECT_EQ(s.cbs_bytes, c.cbs);
  }
}

TEST(MeterShare, SharesAddUpToTheRateWithinRounding) {
  for (uint64_t rate : {1'000'000ull, 20'000'000ull, 333'333'333ull, 10'000'000'000ull}) {
    for (uint16_t w : {1, 2, 3, 7, 16}) {
      MeterShare s = meter_share(rate, 1'000'000, w);
      uint64_t total = s.cir_bytes_per_s * w;
      EXPECT_LE(total, rate / 8) << rate << " over " << w;
      // Integer division loses less than one byte/s per worker.
      EXPECT_GT(total + w, rate / 8) << rate << " over " << w;
    }
  }
}

TEST(MeterShare, BurstNeverBelowOneFullFrame) {
  // The policy's minimum burst (2 x 1514) split 2, 3, 16 ways: each share is
  // still one maximum-size frame, or such a frame could never conform.
  for (uint16_t w : {2, 3, 16}) {
    MeterShare s = meter_share(1'000'000, 3028, w);
    EXPECT_EQ(s.cbs_bytes, kMaxFrameBytes) << w;
  }
  EXPECT_EQ(meter_share(1'000'000, 3028, 1).cbs_bytes, 3028u);
  EXPECT_EQ(meter_share(1'000'000, 0, 1).cbs_bytes, kMaxFrameBytes);
  EXPECT_EQ(meter_share(1'000'000, 1522 * 16, 16).cbs_bytes, 1522u);
  EXPECT_EQ(meter_share(1'000'000, 1522 * 16 + 16, 16).cbs_bytes, 1523u);
}

TEST(MeterShare, UnlimitedAndDegenerate) {
  MeterShare u = meter_share(0, 25'000, 2);  // rate 0: unlimited, no meter
  EXPECT_EQ(u.cir_bytes_per_s, 0u);
  EXPECT_EQ(u.cbs_bytes, 0u);
  MeterShare z = meter_share(20'000'000, 25'000, 0);  // no workers: nothing to meter
  EXPECT_EQ(z.cir_bytes_per_s, 0u);
  // A rate below 8 bit/s per worker still gets a meter (1 byte/s), never 0
  // (which would read as unlimited).
  EXPECT_EQ(meter_share(8, 3028, 16).cir_bytes_per_s, 1u);
  EXPECT_EQ(meter_share(1, 3028, 1).cir_bytes_per_s, 1u);
  static_assert(meter_share(8'000, 3028, 1).cir_bytes_per_s == 1000);
}

TEST(TrafficClasses, TwelveStrictAndOneBestEffort) {
  static_assert(kStrictTcs == 12);
  static_assert(kBestEffortTc == 12);
  static_assert(kTrafficClasses == 13);
  static_assert(kMaxFrameBytes == 1514 + 4 + 4);  // frame with one tag, FCS counted
}

// --- CountBucket: requests per second / tokens per minute ---

TEST(CountBucket, StartsFullAndRefusesBeyondBurst) {
  CountBucket b = CountBucket::make(10, 5);  // 10/s, burst 5
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(b.take(1, 0)) << i;
  EXPECT_FALSE(b.take(1, 0));
  EXPECT_DOUBLE_EQ(b.tokens, 0);
}

TEST(CountBucket, RefillsByElapsedTimeUpToCapacity) {
  CountBucket b = CountBucket::make(10, 5);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(b.take(1, 1'000'000'000));
  EXPECT_FALSE(b.take(1, 1'050'000'000));  // 50 ms: half a token
  EXPECT_TRUE(b.take(1, 1'100'001'000));   // 100 ms (and a hair, for rounding): one token
  EXPECT_FALSE(b.take(1, 1'100'001'000));
  // A long idle time refills to the burst, not beyond.
  EXPECT_TRUE(b.take(5, 100'000'000'000));
  EXPECT_FALSE(b.take(0.5, 100'000'000'000));
  EXPECT_DOUBLE_EQ(b.tokens, 0);
}

TEST(CountBucket, FractionalRatesAndAmounts) {
  CountBucket b = CountBucket::make(0.5, 1);  // one request every 2 s
  EXPECT_TRUE(b.take(1, 10));
  EXPECT_FALSE(b.take(1, 1'000'000'010));
  EXPECT_TRUE(b.take(1, 2'000'001'000));
  // Token budgets take many at once: 100 000 tokens/min, a 1 500-token request.
  CountBucket t = CountBucket::make(100'000.0 / 60, 100'000);
  for (int i = 0; i < 66; ++i) ASSERT_TRUE(t.take(1500, 0)) << i;
  EXPECT_FALSE(t.take(1500, 0));  // 1 000 left
  EXPECT_TRUE(t.take(1000, 0));
  EXPECT_TRUE(t.take(1500, 900'001'000));  // 0.9 s: 1 500 tokens
}

TEST(CountBucket, ClockGoingBackwardsAddsNothing) {
  CountBucket b = CountBucket::make(10, 1);
  ASSERT_TRUE(b.take(1, 5'000'000'000));
  EXPECT_FALSE(b.take(1, 4'000'000'000));
  EXPECT_EQ(b.last_ns, 5'000'000'000u);
  EXPECT_FALSE(b.take(1, 5'050'000'000));
  EXPECT_TRUE(b.take(1, 5'100'001'000));
}

TEST(CountBucket, FailedTakeKeepsTheTokens) {
  CountBucket b = CountBucket::make(1, 3);
  EXPECT_FALSE(b.take(4, 0));
  EXPECT_TRUE(b.take(3, 0));
}

}  // namespace
}  // namespace aiqos
