#include "control/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace aiqos {
namespace {

TEST(Histogram, EmptyIsZero) {
  Histogram h(kTtftBounds);
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.quantile(0.5), 0);
  auto c = h.cumulative();
  ASSERT_EQ(c.size(), std::size(kTtftBounds));
  for (auto v : c) EXPECT_EQ(v, 0u);
}

TEST(Histogram, BucketsCoverTheRangeWithoutGaps) {
  EXPECT_EQ(Histogram::bucket_of(0), 0);
  EXPECT_EQ(Histogram::bucket_of(99e-6), 0);
  EXPECT_EQ(Histogram::bucket_of(100e-6), 1);
  EXPECT_EQ(Histogram::bucket_of(300.0), Histogram::kLogBuckets + 1);
  EXPECT_EQ(Histogram::bucket_of(1e9), Histogram::kLogBuckets + 1);
  EXPECT_EQ(Histogram::bucket_of(NAN), 0);
  for (int b = 1; b <= Histogram::kLogBuckets; ++b) {
    double lo = Histogram::bucket_lower(b), hi = Histogram::bucket_upper(b);
    ASSERT_LT(lo, hi);
    EXPECT_EQ(Histogram::bucket_of(lo), b) << b;
    EXPECT_EQ(Histogram::bucket_of(std::nextafter(hi, 0.0)), b) << b;
    EXPECT_LE(hi / lo, Histogram::kGrowth * (1 + 1e-12)) << b;
    if (b > 1) {
      EXPECT_DOUBLE_EQ(Histogram::bucket_upper(b - 1), lo);
    }
  }
}

// Every quantile of a log-uniform sample from 100 us to 300 s is within 5%
// of the exact nearest-rank value.
TEST(Histogram, QuantilesWithinFivePercent) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(std::log(100e-6), std::log(299.0));
  Histogram h(kDurationBounds);
  std::vector<double> v;
  for (int i = 0; i < 100000; ++i) {
    double x = std::exp(u(rng));
    v.push_back(x);
    h.record(x);
  }
  std::sort(v.begin(), v.end());
  for (double q : {0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0}) {
    size_t rank = static_cast<size_t>(std::ceil(q * v.size()));
    double exact = v[std::max<size_t>(rank, 1) - 1];
    EXPECT_NEAR(h.quantile(q), exact, exact * 0.05) << "q=" << q;
  }
  EXPECT_EQ(h.quantile(1.0), v.back());  // clamped to the max
  EXPECT_EQ(h.quantile(0.0), v.front());
}

TEST(Histogram, OutOfRangeValuesReportMinAndMax) {
  Histogram h;
  h.record(10e-6);
  h.record(20e-6);
  h.record(30e-6);
  EXPECT_DOUBLE_EQ(h.quantile(0.5), 10e-6);  // underflow bucket: the min
  EXPECT_DOUBLE_EQ(h.quantile(1), 30e-6);    // the max is exact
  Histogram g;
  g.record(400);
  g.record(500);
  g.record(600);
  EXPECT_DOUBLE_EQ(g.quantile(0.5), 600);  // overflow bucket: the max
  EXPECT_DOUBLE_EQ(g.mean(), 500);
}

TEST(Histogram, SingleValueIsExact) {
  Histogram h;
  h.record(0.25);
  for (double q : {0.0, 0.5, 0.999}) EXPECT_DOUBLE_EQ(h.quantile(q), 0.25);
}

TEST(Histogram, ExportBucketsAreExactAndCumulative) {
  Histogram h(kTtftBounds);
  h.record(0.001);   // le=0.001 (inclusive upper bound)
  h.record(0.0011);  // le=0.005
  h.record(0.1);     // le=0.1
  h.record(11.0);    // +Inf only
  h.record(-1);      // clamped to 0: le=0.001
  auto c = h.cumulative();
  EXPECT_EQ(c[0], 2u);   // 0.001
  EXPECT_EQ(c[1], 3u);   // 0.005
  EXPECT_EQ(c[6], 3u);   // 0.08
  EXPECT_EQ(c[7], 4u);   // 0.1
  EXPECT_EQ(c.back(), 4u);  // 10
  EXPECT_EQ(h.count(), 5u);
  EXPECT_NEAR(h.sum(), 0.001 + 0.0011 + 0.1 + 11.0, 1e-12);
  h.reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.cumulative()[0], 0u);
}

}  // namespace
}  // namespace aiqos
