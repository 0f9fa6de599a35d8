// Time inside the appliance, RX to TX, as a log-linear histogram of TSC
// cycles: 8 sub-buckets per power of two (<= 12.5% relative error), plain
// per-worker counters (worker: wo, ctlplane: ro), percentiles computed on
// the control path.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

#include "dataplane/stats.h"

namespace aiqos {

class LatencyHistogram {
 public:
  static constexpr unsigned kSub = 8;  // sub-buckets per power of two
  static constexpr unsigned kBuckets = 64 * kSub;

  static constexpr unsigned index_of(uint64_t cycles) noexcept {
    if (cycles < kSub) return static_cast<unsigned>(cycles);
    unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(cycles));
    unsigned sub = static_cast<unsigned>((cycles >> (msb - 3)) & (kSub - 1));
    return (msb - 2) * kSub + sub;
  }
  // Lower bound of a bucket, in cycles.
  static constexpr uint64_t lower_of(unsigned idx) noexcept {
    if (idx < kSub) return idx;
    unsigned msb = idx / kSub + 2;
    return (uint64_t{1} << msb) | (uint64_t{idx % kSub} << (msb - 3));
  }

  // `n` frames that spent `cycles` each (frames of one RX burst leave together).
  void add(uint64_t cycles, uint64_t n = 1) noexcept {
    b_[index_of(cycles)].add(n);
    if (cycles > max_.get()) max_.add(cycles - max_.get());
  }
  uint64_t count(unsigned idx) const noexcept { return b_[idx].get(); }
  uint64_t max() const noexcept { return max_.get(); }

 private:
  std::array<Counter, kBuckets> b_{};
  Counter max_;
};

// Percentile (0..1) over the sum of several histograms, in cycles (the
// bucket's upper bound, so never an underestimate).
template <class It>
uint64_t latency_percentile(It first, It last, double q) noexcept {
  std::array<uint64_t, LatencyHistogram::kBuckets> sum{};
  uint64_t total = 0;
  for (It h = first; h != last; ++h)
    for (unsigned i = 0; i < LatencyHistogram::kBuckets; ++i) {
      sum[i] += (*h)->count(i);
      total += (*h)->count(i);
    }
  if (total == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total));
  if (rank >= total) rank = total - 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < LatencyHistogram::kBuckets; ++i) {
    seen += sum[i];
    if (seen > rank) return i + 1 < LatencyHistogram::kBuckets ? LatencyHistogram::lower_of(i + 1) : ~uint64_t{0};
  }
  return 0;
}

}  // namespace aiqos
