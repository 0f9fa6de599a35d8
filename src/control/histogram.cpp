#include "control/histogram.h"

#include <algorithm>
#include <cmath>

namespace aiqos {

namespace {
const double kLogGrowth = std::log(Histogram::kGrowth);
}

int Histogram::bucket_of(double s) noexcept {
  if (!(s >= kMinSeconds)) return 0;  // also NaN
  if (s >= kMaxSeconds) return kLogBuckets + 1;
  int i = static_cast<int>(std::floor(std::log(s / kMinSeconds) / kLogGrowth));
  // Rounding in log() can put a value one bucket off at an exact boundary.
  if (i > 0 && s < bucket_lower(i + 1)) --i;
  if (i + 1 < kLogBuckets && s >= bucket_upper(i + 1)) ++i;
  return std::clamp(i, 0, kLogBuckets - 1) + 1;
}

double Histogram::bucket_lower(int b) noexcept {
  if (b <= 0) return 0;
  if (b > kLogBuckets) return kMaxSeconds;
  return kMinSeconds * std::pow(kGrowth, b - 1);
}

double Histogram::bucket_upper(int b) noexcept {
  if (b <= 0) return kMinSeconds;
  if (b >= kLogBuckets) return b == kLogBuckets ? kMaxSeconds : INFINITY;
  return kMinSeconds * std::pow(kGrowth, b);
}

void Histogram::record(double s) {
  if (std::isnan(s)) return;
  if (s < 0) s = 0;
  if (log_.empty()) {
    log_.assign(kLogBuckets + 2, 0);
    export_.assign(bounds_.size(), 0);
  }
  ++log_[bucket_of(s)];
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), s);  // first bound >= s
  if (it != bounds_.end()) ++export_[it - bounds_.begin()];
  if (count_ == 0) {
    min_ = max_ = s;
  } else {
    min_ = std::min(min_, s);
    max_ = std::max(max_, s);
  }
  ++count_;
  sum_ += s;
}

void Histogram::reset() {
  log_.clear();
  export_.clear();
  count_ = 0;
  sum_ = min_ = max_ = 0;
}

double Histogram::quantile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // Nearest rank: the smallest value with at least q * count samples <= it.
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  if (rank == 1) return min_;  // the extremes are known exactly
  if (rank == count_) return max_;
  uint64_t seen = 0;
  for (int b = 0; b < kLogBuckets + 2; ++b) {
    seen += log_[b];
    if (seen >= rank) {
      double v;
      if (b == 0)
        v = min_;  // below the range: the only exact value we know
      else if (b == kLogBuckets + 1)
        v = max_;
      else
        v = std::sqrt(bucket_lower(b) * bucket_upper(b));
      return std::clamp(v, min_, max_);
    }
  }
  return max_;
}

std::vector<uint64_t> Histogram::cumulative() const {
  std::vector<uint64_t> out(bounds_.size(), 0);
  uint64_t acc = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (!export_.empty()) acc += export_[i];
    out[i] = acc;
  }
  return out;
}

}  // namespace aiqos
