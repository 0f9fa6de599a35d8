#include "classify/budget.h"

#include <algorithm>
#include <cmath>

namespace aiqos {

void RequestBudgets::arm(const ClassResolver* r, uint16_t workers) {
  resolver_ = r;
  workers_ = workers ? workers : 1;
  // This worker's share of each class's budgets; a new policy starts them full.
  uint16_t n = r ? r->class_count() : 0;
  rps_.assign(n, CountBucket{});
  tokens_.assign(n, CountBucket{});
  for (uint16_t i = 0; i < n; ++i) {
    ClassBudget b = r->budget(i);
    // A fleet budget's local bucket holds this box's share: it is what the
    // worker enforces while the fleet's figures are stale.
    double rps = b.requests_per_second * (b.requests_fleet ? b.local_share : 1.0) / workers_;
    if (rps > 0) rps_[i] = CountBucket::make(rps, std::max(1.0, rps));
    double tpm = b.tokens_per_minute * (b.tokens_fleet ? b.local_share : 1.0);
    double tps = tpm / 60.0 / workers_;
    if (tps > 0) tokens_[i] = CountBucket::make(tps, tpm / workers_);
  }
  fleet_taken_.reset();
  if (!tenant_buckets_) tenant_buckets_ = std::make_unique<TenantBucket[]>(kTenantBuckets);
  for (size_t i = 0; i < kTenantBuckets; ++i) tenant_buckets_[i] = TenantBucket{};
}

// Fleet budgets: while the view is fresh, this worker may take up to its
// allowance for the current epoch (what the last sync left it); a new epoch
// starts a new count. Admitted amounts go to the worker's usage counters,
// which the sync thread pushes to Redis.
std::optional<bool> RequestBudgets::fleet_take(uint16_t class_id, FleetKind k, double n, uint64_t now_ns) noexcept {
  if (fleet_ == nullptr || fleet_usage_ == nullptr) return std::nullopt;
  switch (fleet_taken_.take(*fleet_, *fleet_usage_, class_id, k, n, now_ns)) {
    case FleetTaker::Result::stale: ++ctr_.fleet_local; return std::nullopt;
    case FleetTaker::Result::ok: ++ctr_.fleet_checked; return true;
    case FleetTaker::Result::over: ++ctr_.fleet_checked; return false;
  }
  return std::nullopt;
}

// Per-tenant token budgets live in a fixed direct-mapped table: a tenant
// colliding with another takes its slot (and starts with a full budget).
CountBucket* RequestBudgets::tenant_bucket(uint16_t class_id, std::string_view tenant) noexcept {
  uint64_t h = 0xcbf29ce484222325ULL ^ class_id;
  for (char ch : tenant) h = (h ^ static_cast<uint8_t>(ch)) * 0x100000001b3ULL;
  h |= 1;
  TenantBucket& t = tenant_buckets_[h % kTenantBuckets];
  if (t.key != h) {
    t.key = h;
    ClassBudget b = resolver_->budget(class_id);
    double tps = b.tokens_per_minute / 60.0 / workers_;
    t.b = CountBucket::make(tps, b.tokens_per_minute / workers_);
  }
  return &t.b;
}

BudgetState RequestBudgets::charge(BudgetCharge& ch, RequestRecord& r, const JsonFields* body, bool tokens_due,
                                   uint64_t now_ns) noexcept {
  if (r.class_id >= rps_.size() || r.budget != BudgetState::within) return BudgetState::within;
  ClassBudget b = resolver_->budget(r.class_id);
  bool over = false;
  if (!ch.rps_charged && b.requests_per_second > 0) {
    ch.rps_charged = true;
    std::optional<bool> fleet_ok =
        b.requests_fleet ? fleet_take(r.class_id, FleetKind::requests, 1, now_ns) : std::nullopt;
    if (fleet_ok ? !*fleet_ok : !rps_[r.class_id].take(1, now_ns)) {
      over = true;
      ++ctr_.over_rps;
    }
  }
  if (!over && tokens_due && !ch.tokens_charged && b.tokens_per_minute > 0) {
    ch.tokens_charged = true;
    double est = (body != nullptr ? estimated_output_tokens(*body) : 0) + static_cast<double>(r.req_bytes) / 4.0;
    r.est_tokens = static_cast<uint32_t>(std::min(est, 4e9));
    CountBucket* bucket = b.tokens_per_tenant ? tenant_bucket(r.class_id, r.tenant.view()) : &tokens_[r.class_id];
    std::optional<bool> fleet_ok = b.tokens_fleet ? fleet_take(r.class_id, FleetKind::tokens, est, now_ns) : std::nullopt;
    if (fleet_ok ? !*fleet_ok : !bucket->take(est, now_ns)) {
      over = true;
      ++ctr_.over_tokens;
    } else {
      ch.tokens_taken = est;
      ch.tokens_class = r.class_id;
      ch.tokens_fleet = fleet_ok.has_value();
    }
  }
  if (!over) return BudgetState::within;
  if (b.demote) {
    r.class_id = b.demote_to;
    r.budget = BudgetState::demoted;
    ++ctr_.budget_demoted;
  } else {
    r.budget = BudgetState::dropped;
    ++ctr_.budget_dropped;
  }
  return r.budget;
}

void RequestBudgets::reconcile(BudgetCharge& ch, std::string_view tenant, double used, uint64_t now_ns) noexcept {
  if (ch.tokens_taken <= 0 || resolver_ == nullptr || ch.tokens_class >= tokens_.size()) return;
  const double delta = used - ch.tokens_taken;
  ClassBudget b = resolver_->budget(ch.tokens_class);
  if (b.tokens_per_minute <= 0) return;
  CountBucket* bucket = b.tokens_per_tenant ? tenant_bucket(ch.tokens_class, tenant) : &tokens_[ch.tokens_class];
  bucket->adjust(delta, now_ns);
  // A request charged to the fleet's allowance is corrected in the fleet's
  // count too (pushed at the next sync: Redis sums what the fleet really used).
  if (ch.tokens_fleet && fleet_usage_ != nullptr && ch.tokens_class < kFleetMaxClasses)
    fleet_usage_->add(ch.tokens_class, FleetKind::tokens, std::llround(delta));
  if (delta > 0) {
    ctr_.tokens_extra += static_cast<uint64_t>(delta);
  } else {
    ctr_.tokens_refunded += static_cast<uint64_t>(-delta);
  }
  ch.tokens_taken = 0;
}

}  // namespace aiqos
