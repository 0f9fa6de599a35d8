// Fleet budgets on Redis (docs/qos.md, "Fleet budgets"). A thread of the
// control plane, never a worker: every sync_interval it sums what this box's
// workers took from each budget marked `scope: fleet` (classify/fleet_view.h),
// pushes the delta to the window's Redis key (INCRBY + PEXPIRE, pipelined),
// reads back the fleet's total and publishes each worker's allowance until
// the next sync. On an error or a timeout it publishes "local mode" at once
// (workers enforce their local share), logs once per outage, and tries again
// at the next interval. Nothing on the data path waits for it.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "classify/fleet_view.h"
#include "control/policy.h"

struct redisContext;

namespace aiqos {

// One budget shared with the fleet.
struct FleetBudgetKey {
  uint16_t class_id = 0;
  FleetKind kind = FleetKind::requests;
  std::string class_name;  // names the Redis key: the same on every box
  double limit = 0;        // per window: requests_per_second, or tokens_per_minute
};

// The budgets of `p` marked `scope: fleet`.
std::vector<FleetBudgetKey> fleet_keys(const Policy& p);
// prefix:class:rps:window or prefix:class:tpm:window.
std::string fleet_redis_key(std::string_view prefix, const FleetBudgetKey& k, uint64_t window);

class FleetSync {
 public:
  // `usage`: every worker's counters; `view`: what the workers read.
  FleetSync(FleetView& view, std::vector<const FleetUsage*> usage);
  ~FleetSync();
  FleetSync(const FleetSync&) = delete;
  FleetSync& operator=(const FleetSync&) = delete;

  // Control path, at each policy publish: the fleet section and the budgets
  // it shares. Workers are in local mode until the next successful sync.
  void configure(const FleetCfg& cfg, std::vector<FleetBudgetKey> keys);
  void start();  // the sync thread (no-op if running)
  void stop();

  // One round at wall-clock time `now_unix_ns`; false on a Redis error (the
  // view is then in local mode). The thread calls it; tests call it directly.
  bool sync_once(uint64_t now_unix_ns);

  // For aiqosctl and Prometheus: mode, counters, and per budget the window,
  // this box's part of it, the fleet's total and the allowance.
  nlohmann::json status() const;
  bool enabled() const;

  struct Counters {
    std::atomic<uint64_t> syncs{0};         // successful rounds
    std::atomic<uint64_t> errors{0};        // failed rounds (connect, AUTH, command, timeout)
    std::atomic<uint64_t> outages{0};       // switches from fleet to local mode
    std::atomic<uint64_t> last_lag_ns{0};   // duration of the last successful round
    std::atomic<uint64_t> last_ok_unix_ns{0};
    std::atomic<bool> fleet_mode{false};
  };
  const Counters& counters() const noexcept { return ctr_; }

 private:
  struct KeyState {
    FleetBudgetKey key;
    int64_t last_used = 0;     // sum of the workers' usage at the last round
    uint64_t window = 0;       // the window the figures below are of
    int64_t local_window = 0;  // pushed by this box in that window
    int64_t fleet_total = 0;   // the fleet's total read back
    double allow = 0;          // per worker, published
  };
  bool connect_locked(std::string& err);
  void disconnect_locked();
  void fail_locked(const std::string& why, uint64_t now_unix_ns);
  void go_local_locked();
  int64_t used_sum(const FleetBudgetKey& k) const noexcept;
  void run();

  FleetView& view_;
  std::vector<const FleetUsage*> usage_;
  mutable std::mutex mu_;  // cfg_, keys_, ctx_: the thread's round and the control path
  FleetCfg cfg_;
  std::vector<KeyState> keys_;
  redisContext* ctx_ = nullptr;
  bool in_outage_ = false;
  uint64_t outage_since_ns_ = 0;
  uint64_t outage_errors_ = 0;
  Counters ctr_;
  std::thread thread_;
  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // under wake_mu_
};

}  // namespace aiqos
