// A latency histogram for the control plane: log buckets for quantiles, plus
// exact counts against a fixed list of Prometheus `le` bounds.
//
// Quantile buckets are geometric: bucket i holds [100 us * 1.1^i,
// 100 us * 1.1^(i+1)), up to 300 s (157 buckets), with one underflow bucket
// below 100 us and one overflow bucket above 300 s. A quantile is the
// geometric midpoint of the bucket that holds its rank, clamped to the
// observed min and max, so its relative error is at most sqrt(1.1) - 1
// (4.9%) inside the range and zero when all samples share a bucket with the
// min or max.
//
// Export buckets are counted exactly at record time (no interpolation), so
// the cumulative counts Prometheus sees are true counts for every `le`.
//
// Not thread-safe: the owner (StatsAgg) holds a lock around it. Memory:
// about 1.4 KB once the first value is recorded (nothing before).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace aiqos {

class Histogram {
 public:
  static constexpr double kMinSeconds = 100e-6;
  static constexpr double kMaxSeconds = 300.0;
  static constexpr double kGrowth = 1.1;
  // Buckets between kMinSeconds and kMaxSeconds: ceil(log(3e6) / log(1.1)).
  static constexpr int kLogBuckets = 157;

  // `export_bounds`: ascending upper bounds in seconds, referenced (not
  // copied): pass a static array such as kTtftBounds.
  explicit Histogram(std::span<const double> export_bounds = {}) : bounds_(export_bounds) {}

  void record(double seconds);
  void reset();

  uint64_t count() const noexcept { return count_; }
  double sum() const noexcept { return sum_; }
  double min() const noexcept { return count_ ? min_ : 0; }
  double max() const noexcept { return count_ ? max_ : 0; }
  double mean() const noexcept { return count_ ? sum_ / static_cast<double>(count_) : 0; }
  // q in [0, 1]; 0 when empty.
  double quantile(double q) const;

  std::span<const double> export_bounds() const noexcept { return bounds_; }
  // Cumulative count of samples <= export_bounds()[i] (size = bounds).
  std::vector<uint64_t> cumulative() const;

  // Bucket index of a value (0 = underflow, kLogBuckets + 1 = overflow) and
  // the bucket's [lower, upper) in seconds; exposed for tests.
  static int bucket_of(double seconds) noexcept;
  static double bucket_lower(int b) noexcept;
  static double bucket_upper(int b) noexcept;

 private:
  std::span<const double> bounds_;
  std::vector<uint64_t> log_;     // kLogBuckets + 2, allocated on first record
  std::vector<uint64_t> export_;  // per export bound, non-cumulative (+Inf is count_)
  uint64_t count_ = 0;
  double sum_ = 0;
  double min_ = 0;
  double max_ = 0;
};

// OpenTelemetry GenAI semantic conventions' recommended bucket boundaries.
// gen_ai.server.time_to_first_token
inline constexpr double kTtftBounds[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                                         0.25,  0.5,   0.75, 1.0,  2.5,  5.0,  7.5,  10.0};
// gen_ai.server.time_per_output_token
inline constexpr double kTpotBounds[] = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5};
// gen_ai.client.token.usage (a count, not seconds: only the export buckets are meaningful)
inline constexpr double kTokenBounds[] = {1,      4,       16,      64,       256,      1024,    4096,
                                          16384,  65536,   262144,  1048576,  4194304,  16777216, 67108864};
// gen_ai.server.request.duration
inline constexpr double kDurationBounds[] = {0.01, 0.02, 0.04, 0.08, 0.16,  0.32,  0.64,
                                             1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};

}  // namespace aiqos
