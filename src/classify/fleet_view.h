// Fleet-wide budgets (docs/qos.md, "Fleet budgets"): what the workers and the
// fleet sync thread (control/fleet_sync.h) share, and the arithmetic both
// sides agree on. No locks: every field has one writer.
//
// Workers charge their own FleetUsage (plain stores to atomics they alone
// write); the sync thread sums them, pushes the deltas to Redis, reads the
// fleet totals back and writes each worker's allowance until its next sync
// into the FleetView, then bumps `epoch`. A worker that sees a new epoch
// starts counting what it takes against the new allowance.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>

namespace aiqos {

inline constexpr size_t kFleetMaxClasses = 256;  // = kMaxClasses (control/policy.h)

// The two budgets a class can share with the fleet.
enum class FleetKind : uint8_t { requests = 0, tokens = 1 };
inline constexpr size_t kFleetKinds = 2;

// Written by the fleet sync thread, read by every worker.
struct FleetView {
  // Bumped (release) after a successful sync has written every allowance.
  std::atomic<uint64_t> epoch{0};  // control: wo, workers: ro
  // Wall clock (CLOCK_REALTIME ns) until which the allowances hold; past it
  // (Redis down, slow, or the sync thread stuck) workers enforce their local
  // share instead. 0: local mode.
  std::atomic<uint64_t> valid_until_ns{0};  // control: wo, workers: ro
  // Per class and kind: what one worker may take until the next epoch.
  std::array<std::array<std::atomic<double>, kFleetKinds>, kFleetMaxClasses> allow{};  // control: wo, workers: ro
};

// One worker's consumption of fleet budgets since it started, in requests or
// tokens: grows with each admitted request, and moves by the token correction
// when a response ends (which may be negative).
struct alignas(64) FleetUsage {
  std::array<std::array<std::atomic<int64_t>, kFleetKinds>, kFleetMaxClasses> used{};  // worker: wo, control: ro
  void add(uint16_t class_id, FleetKind k, int64_t n) noexcept {
    auto& a = used[class_id][static_cast<size_t>(k)];
    a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

// A worker's side of the view: what it took under the view's current epoch.
// take() is the whole admission decision of a fleet budget.
struct FleetTaker {
  enum class Result : uint8_t { stale, ok, over };
  uint64_t epoch = 0;  // the view's epoch `taken` counts against
  std::array<std::array<double, kFleetKinds>, kFleetMaxClasses> taken{};

  void reset() noexcept {
    for (auto& t : taken) t = {};
  }
  // stale: the view is not fresh at `now_ns` (the caller enforces its local
  // share); ok: `n` taken from this worker's allowance and added to `u`;
  // over: the allowance would be exceeded (nothing taken).
  Result take(const FleetView& v, FleetUsage& u, uint16_t class_id, FleetKind k, double n, uint64_t now_ns) noexcept {
    if (class_id >= kFleetMaxClasses || now_ns >= v.valid_until_ns.load(std::memory_order_acquire)) return Result::stale;
    uint64_t e = v.epoch.load(std::memory_order_acquire);
    if (e != epoch) {
      epoch = e;
      reset();
    }
    const size_t ki = static_cast<size_t>(k);
    if (taken[class_id][ki] + n > v.allow[class_id][ki].load(std::memory_order_relaxed)) return Result::over;
    taken[class_id][ki] += n;
    u.add(class_id, k, static_cast<int64_t>(n + 0.5));
    return Result::ok;
  }
};

namespace fleet {

// Fixed windows, aligned on the Unix epoch so every box names the same one:
// a second for requests per second, a minute for tokens per minute.
constexpr uint64_t window_ms(FleetKind k) noexcept { return k == FleetKind::requests ? 1000 : 60000; }
constexpr uint64_t window_index(uint64_t unix_ms, FleetKind k) noexcept { return unix_ms / window_ms(k); }
// The budget of one window is the rate itself: requests_per_second x 1 s, or
// tokens_per_minute x 1 min.

// What one worker of this box may take until the next sync: the box's share
// (1 / members) of what the fleet has left in the window, split over its
// workers. Each box taking at most its share of the remainder per interval,
// the fleet overshoots only by what the others took since they last pushed
// (docs/qos.md, the bound).
constexpr double allowance(double limit, double fleet_total, uint32_t members, uint32_t workers) noexcept {
  double left = std::max(0.0, limit - fleet_total);
  return left / static_cast<double>(std::max<uint32_t>(members, 1)) / static_cast<double>(std::max<uint32_t>(workers, 1));
}

// The share of a fleet budget one box enforces alone (Redis unreachable):
// `local_share` when given (> 0), else 1 / expected members.
constexpr double local_share(double configured, uint32_t members) noexcept {
  return configured > 0 ? configured : 1.0 / static_cast<double>(std::max<uint32_t>(members, 1));
}

}  // namespace fleet
}  // namespace aiqos
