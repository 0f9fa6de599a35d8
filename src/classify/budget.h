// Request and token budgets of one worker (docs/qos.md): this worker's share
// of each class's requests per second and LLM tokens per minute, per class or
// per tenant, local or shared with the fleet (fleet_view.h).
//
// A request goes through these budgets at most once each:
//   requests per second: charged when its class is first known;
//   tokens per minute:   charged with an estimate when its body has been read
//                        (the output limit it names, times n, plus body bytes / 4),
//                        corrected by what the server reported or the stream
//                        showed when its response ends (reconcile()).
// Its BudgetState (request_record.h) moves once, from within to demoted (its
// class's action demotes: the request gets another class) or to dropped (the
// worker drops its client's frames); it never moves back.
//
// Pure C++: no clock (the caller passes the time), no allocation but at
// arm() (once per policy change). Threading: one per worker (worker: rw).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "classify/class_resolver.h"
#include "classify/count_bucket.h"
#include "classify/fleet_view.h"
#include "classify/json_model.h"
#include "classify/request_record.h"

namespace aiqos {

// What budgets did, by reason. The classifier's counters include these
// (ClassifierCounters derives from it): plain fields, control plane ro.
struct BudgetCounters {
  uint64_t over_rps = 0;         // requests over their class's requests-per-second
  uint64_t over_tokens = 0;      // requests over a token budget
  uint64_t budget_demoted = 0;   // ... demoted by the budget action
  uint64_t budget_dropped = 0;   // ... whose client frames were dropped
  uint64_t tokens_refunded = 0;  // estimate above usage: given back to budgets
  uint64_t tokens_extra = 0;     // usage above the estimate: charged on top
  // Fleet budgets: requests admitted against the fleet's figures, and those
  // that found them stale (Redis unreachable) and used the local share.
  uint64_t fleet_checked = 0;
  uint64_t fleet_local = 0;
};

// What one request was charged, kept with the request until its response ends.
struct BudgetCharge {
  bool rps_charged = false;     // requests per second: charged (over or not)
  bool tokens_charged = false;  // tokens: charged (over or not)
  bool tokens_fleet = false;    // ... taken from the fleet's allowance: the correction goes to the fleet's count too
  uint16_t tokens_class = 0;    // class whose token budget was charged
  double tokens_taken = 0;      // tokens taken from that budget (0: none, or already reconciled)
};

// The output limit a request names (max_completion_tokens / max_output_tokens
// / max_tokens) times n: the output part of a token estimate.
// (Inline: read for every request that ends.)
inline double estimated_output_tokens(const JsonFields& j) noexcept {
  int64_t out = j.has(JsonField::max_completion_tokens) ? j.max_completion_tokens
                : j.has(JsonField::max_output_tokens)   ? j.max_output_tokens
                : j.has(JsonField::max_tokens)          ? j.max_tokens
                                                        : 0;
  int64_t n = j.has(JsonField::n) && j.n > 0 ? j.n : 1;
  return static_cast<double>(std::max<int64_t>(out, 0)) * static_cast<double>(n);
}

class RequestBudgets {
 public:
  explicit RequestBudgets(BudgetCounters& ctr) noexcept : ctr_(ctr) {}

  // Re-arms every budget for the policy `r` (null: none), full, this
  // worker's share of `workers`. Allocates (once per policy change).
  void arm(const ClassResolver* r, uint16_t workers);
  // Fleet budgets: the view the fleet sync thread publishes and this worker's
  // consumption counters; null keeps every budget local.
  void set_fleet(const FleetView* view, FleetUsage* usage) noexcept {
    fleet_ = view;
    fleet_usage_ = usage;
  }

  // Charges request `r` (its class_id, tenant, req_bytes) with what is due:
  // its request unless charged already; its tokens when `tokens_due` (the body
  // has been read; `body`: its JSON fields, null when it had none), estimated
  // into r.est_tokens. Over a budget, r.budget and (demoted) r.class_id move.
  // Returns the state the request moved to, or within when it stays there
  // (nothing over, or already over: a request is judged once).
  BudgetState charge(BudgetCharge& ch, RequestRecord& r, const JsonFields* body, bool tokens_due,
                     uint64_t now_ns) noexcept;
  // The response is over and `used` tokens (input + output) are known better
  // than the estimate: the token budget charged is corrected by the
  // difference, in the same bucket (class or tenant), a refund or an extra
  // charge that may put the bucket in debt (a request in flight is never
  // stopped by it; the requests after it are). Once per charge.
  void reconcile(BudgetCharge& ch, std::string_view tenant, double used, uint64_t now_ns) noexcept;

  // Classes armed (the policy's class_count()).
  size_t classes() const noexcept { return rps_.size(); }

 private:
  CountBucket* tenant_bucket(uint16_t class_id, std::string_view tenant) noexcept;
  // Takes `n` from this worker's allowance of the fleet budget (false: over
  // it) when the fleet's figures are fresh; nullopt when they are not (the
  // caller uses the local bucket).
  std::optional<bool> fleet_take(uint16_t class_id, FleetKind k, double n, uint64_t now_ns) noexcept;

  static constexpr size_t kTenantBuckets = 1024;
  struct TenantBucket {
    uint64_t key = 0;  // hash of (class, tenant) | 1; 0: free
    CountBucket b;
  };
  BudgetCounters& ctr_;
  const ClassResolver* resolver_ = nullptr;
  uint16_t workers_ = 1;
  std::vector<CountBucket> rps_, tokens_;  // per class
  std::unique_ptr<TenantBucket[]> tenant_buckets_;
  const FleetView* fleet_ = nullptr;  // the sync thread's view (control: wo, this worker: ro)
  FleetUsage* fleet_usage_ = nullptr; // this worker's consumption (this worker: wo, control: ro)
  FleetTaker fleet_taken_;            // per class: taken under the view's epoch
};

}  // namespace aiqos
