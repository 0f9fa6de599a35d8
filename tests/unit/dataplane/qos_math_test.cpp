// The arithmetic of policing and shaping (dataplane/qos_math.h): how a class
// rate is split across workers, the shaper's parameters, the traffic-class
// credit period and the request/token bucket. Pure functions, no EAL.
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

// --- shaper_share: one worker's share of an egress port ---

TEST(ShaperShare, PortRateSplitAcrossWorkers) {
  struct C {
    uint64_t rate;
    uint16_t w;
    uint64_t bytes, tb;
  };
  const C cases[] = {
      // 10 Gbit/s link: 1.25 GB/s, 10 ms of credit = 12.5 MB.
      {10'000'000'000, 1, 1'250'000'000, 12'500'000},
      {10'000'000'000, 2, 625'000'000, 6'250'000},
      {10'000'000'000, 3, 416'666'666, 4'166'666},
      {10'000'000'000, 16, 78'125'000, 781'250},
      // 50 Mbit/s: 6.25 MB/s, 62 500 bytes of bucket.
      {50'000'000, 1, 6'250'000, 62'500},
      {50'000'000, 2, 3'125'000, 31'250},
      {50'000'000, 3, 2'083'333, 20'833},
      // 16 ways: 10 ms is 3 906 bytes, below the floor of four full frames.
      {50'000'000, 16, 390'625, 4 * kMaxFrameBytes},
      {1'000'000, 1, 125'000, 4 * kMaxFrameBytes},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << c.rate << " bit/s over " << c.w);
    ShaperShare s = shaper_share(c.rate, c.w);
    EXPECT_EQ(s.port_bytes_per_s, c.bytes);
    EXPECT_EQ(s.tb_size, c.tb);
    EXPECT_EQ(s.tc_period_ms, 10u);
    EXPECT_EQ(s.frame_overhead, 24u);  // the caller (Shaper::init) sets 0: frame bytes only
  }
}

TEST(ShaperShare, UnlimitedIsAllZero) {
  ShaperShare s = shaper_share(0, 2);
  EXPECT_EQ(s.port_bytes_per_s, 0u);
  EXPECT_EQ(s.tb_size, 0u);
  EXPECT_EQ(shaper_share(1'000'000, 0).port_bytes_per_s, 0u);
  EXPECT_EQ(shaper_share(7, 1).port_bytes_per_s, 1u);  // never 0 for a given rate
}

// --- tc_period_ms_for: credit refresh period of the traffic classes ---

TEST(TcPeriod, HoldsSixtyFourFullFramesAtTheLowestRate) {
  EXPECT_EQ(tc_period_ms_for(0), 10u);  // no class rate: rte_sched's usual 10 ms
  // 64 x 1522 = 97 408 bytes per period.
  EXPECT_EQ(tc_period_ms_for(2'500'000), 39u);   // 20 Mbit/s: 38.96 ms -> 39
  EXPECT_EQ(tc_period_ms_for(1'250'000), 78u);   // 20 Mbit/s over 2 workers: 77.9 -> 78
  EXPECT_EQ(tc_period_ms_for(833'333), 117u);    // over 3 workers: 116.9 -> 117
  EXPECT_EQ(tc_period_ms_for(156'250), 624u);    // over 16 workers: 623.4 -> 624
  EXPECT_EQ(tc_period_ms_for(125'000), 780u);    // 1 Mbit/s: 779.3 -> 780
  EXPECT_EQ(tc_period_ms_for(9'740'800), 10u);   // exactly 10 ms
  EXPECT_EQ(tc_period_ms_for(9'740'801), 10u);   // rounds up to 10, not below
  EXPECT_EQ(tc_period_ms_for(97'408), 1000u);    // exactly 1 s
  EXPECT_EQ(tc_period_ms_for(97'407), 1000u);    // would be 1001: clamped
  EXPECT_EQ(tc_period_ms_for(12'500), 1000u);    // 100 kbit/s: clamped to 1 s
  EXPECT_EQ(tc_period_ms_for(1), 1000u);
  EXPECT_EQ(tc_period_ms_for(1'250'000'000), 10u);  // 10 Gbit/s: floor of 10 ms
}

TEST(TcPeriod, CreditPerPeriodBoundsTheLoss) {
  // Unless clamped at 1 s, a period carries at least 64 full frames, so the
  // credit lost at the end of a period (under one frame) is <= 1/64 of the rate.
  for (uint64_t r = 10'000; r < 2'000'000'000; r = r * 3 / 2 + 7) {
    uint64_t p = tc_period_ms_for(r);
    ASSERT_GE(p, 10u);
    ASSERT_LE(p, 1000u);
    if (p < 1000) {
      EXPECT_GE(r * p / 1000, kFramesPerTcPeriod * kMaxFrameBytes) << r;
      if (p > 10) {
        EXPECT_LT(r * (p - 1) / 1000, kFramesPerTcPeriod * kMaxFrameBytes) << r << ": not the shortest";
      }
    }
  }
}

TEST(TrafficClasses, TwelveStrictAndOneBestEffort) {
  static_assert(kStrictTcs == 12);
  static_assert(kBestEffortTc == 12);
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
