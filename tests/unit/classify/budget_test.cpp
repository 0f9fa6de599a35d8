// The request and token budgets alone (classify/budget.h): a request's state
// moves once from within to demoted or dropped, this worker's share of each
// rate, the token estimate, its reconciliation (refund, debt, fleet count),
// per-tenant buckets, fleet allowances and a re-arm at each policy.
#include "classify/budget.h"

#include <gtest/gtest.h>

#include "classifier_fixture.h"

namespace aiqos {
namespace {

using test::BudgetPolicy;
using test::kMs;

constexpr uint64_t kSec = 1000 * kMs;

ClassBudget rps_budget(double rps, bool demote) {
  ClassBudget b;
  b.requests_per_second = rps;
  b.demote = demote;
  b.demote_to = 1;
  return b;
}

ClassBudget tpm_budget(double tpm, bool per_tenant = false) {
  ClassBudget b;
  b.tokens_per_minute = tpm;
  b.tokens_per_tenant = per_tenant;
  b.demote = true;
  b.demote_to = 1;
  return b;
}

RequestRecord request(uint16_t class_id = 0, uint64_t req_bytes = 0, std::string_view tenant = "") {
  RequestRecord r;
  r.class_id = class_id;
  r.req_bytes = req_bytes;
  r.tenant.append(tenant);
  return r;
}

JsonFields max_tokens(int64_t v, int64_t n = 0) {
  JsonFields j;
  j.max_tokens = v;
  j.present |= JsonFields::bit(JsonField::max_tokens);
  if (n != 0) {
    j.n = n;
    j.present |= JsonFields::bit(JsonField::n);
  }
  return j;
}

TEST(EstimatedOutputTokens, FirstNamedLimitTimesN) {
  JsonFields j;
  EXPECT_EQ(estimated_output_tokens(j), 0);
  j = max_tokens(100);
  EXPECT_EQ(estimated_output_tokens(j), 100);
  j = max_tokens(100, 3);
  EXPECT_EQ(estimated_output_tokens(j), 300);
  j.max_output_tokens = 40;
  j.present |= JsonFields::bit(JsonField::max_output_tokens);
  EXPECT_EQ(estimated_output_tokens(j), 120) << "max_output_tokens before max_tokens";
  j.max_completion_tokens = 7;
  j.present |= JsonFields::bit(JsonField::max_completion_tokens);
  EXPECT_EQ(estimated_output_tokens(j), 21) << "max_completion_tokens first";
  j = max_tokens(-5);
  EXPECT_EQ(estimated_output_tokens(j), 0) << "a negative limit counts nothing";
  j = max_tokens(10, -2);
  EXPECT_EQ(estimated_output_tokens(j), 10) << "n below 1 counts once";
}

TEST(RequestBudgets, NoPolicyChargesNothing) {
  BudgetCounters ctr;
  RequestBudgets b(ctr);
  b.arm(nullptr, 1);
  EXPECT_EQ(b.classes(), 0u);
  BudgetCharge ch;
  RequestRecord r = request();
  EXPECT_EQ(b.charge(ch, r, nullptr, true, 0), BudgetState::within);
  EXPECT_EQ(r.budget, BudgetState::within);
  EXPECT_FALSE(ch.rps_charged);
}

// Within -> demoted: the request takes the class's demote_to; once over, a
// request is not judged again.
TEST(RequestBudgets, RequestsPerSecondOverThenDemotedOnce) {
  BudgetPolicy pol(rps_budget(2, true));
  BudgetCounters ctr;
  RequestBudgets b(ctr);
  b.arm(&pol, 1);
  ASSERT_EQ(b.classes(), 2u);
  const uint64_t t = 5 * kSec;
  for (int i = 0; i < 2; ++i) {
    BudgetCharge ch;
    RequestRecord r = request();
    EXPECT_EQ(b.charge(ch, r, nullptr, false, t), BudgetState::within) << i;
    EXPECT_TRUE(ch.rps_charged);
    EXPECT_EQ(r.class_id, 0);
  }
  BudgetCharge ch;
  RequestRecord r = request();
  EXPECT_EQ(b.charge(ch, r, nullptr, false, t), BudgetState::demoted);
  EXPECT_EQ(r.budget, BudgetState::demoted);
  EXPECT_EQ(r.class_id, 1);
  EXPECT_EQ(ctr.over_rps, 1u);
  EXPECT_EQ(ctr.budget_demoted, 1u);
  // Charged again (the body came in): no second transition, no second count.
  EXPECT_EQ(b.charge(ch, r, nullptr, true, t), BudgetState::within);
  EXPECT_EQ(r.budget, BudgetState::demoted);
  EXPECT_EQ(ctr.over_rps, 1u);
  EXPECT_EQ(ctr.budget_demoted, 1u);
  // A request is charged its request once: a second charge of the same one takes nothing.
  BudgetCharge ch2;
  RequestRecord r2 = request();
  b.charge(ch2, r2, nullptr, false, t + kSec);  // one refilled
  EXPECT_EQ(b.charge(ch2, r2, nullptr, false, t + kSec), BudgetState::within);
  BudgetCharge ch3;
  RequestRecord r3 = request();
  EXPECT_EQ(b.charge(ch3, r3, nullptr, false, t + kSec), BudgetState::within) << "2/s: two refilled in a second";
}

TEST(RequestBudgets, DropActionAndWorkerShare) {
  BudgetPolicy pol(rps_budget(4, false));
  BudgetCounters ctr;
  RequestBudgets b(ctr);
  b.arm(&pol, 2);  // this worker's share: 2/s, burst 2
  int within = 0;
  RequestRecord last;
  for (int i = 0; i < 3; ++i) {
    BudgetCharge ch;
    last = request();
    if (b.charge(ch, last, nullptr, false, kSec) == BudgetState::within) ++within;
  }
  EXPECT_EQ(within, 2);
  EXPECT_EQ(last.budget, BudgetState::dropped);
  EXPECT_EQ(last.class_id, 0) << "a dropped request keeps its class";
  EXPECT_EQ(ctr.budget_dropped, 1u);
  EXPECT_EQ(ctr.budget_demoted, 0u);
}

// Tokens are charged once the body is in: max_tokens x n + body bytes / 4.
TEST(RequestBudgets, TokensChargedWhenDueWithTheEstimate) {
  BudgetPolicy pol(tpm_budget(600));  // 10 tokens/s, burst 600
  BudgetCounters ctr;
  RequestBudgets b(ctr);
  b.arm(&pol, 1);
  const JsonFields j = max_tokens(100, 2);
  BudgetCharge ch;
  RequestRecord r = request(0, 400);
  EXPECT_EQ(b.charge(ch, r, &j, false, kSec), BudgetState::within);
  EXPECT_FALSE(ch.tokens_charged) << "not due before the body has been read";
  EXPECT_EQ(r.est_tokens, 0u);
  EXPECT_EQ(b.charge(ch, r, &j, true, kSec), BudgetState::within);
  EXPECT_TRUE(ch.tokens_charged);
  EXPECT_EQ(r.est_tokens, 300u);  // 100 x 2 + 400 / 4
  EXPECT_EQ(ch.tokens_taken, 300);
  EXPECT_EQ(ch.tokens_class, 0);
  EXPECT_FALSE(ch.tokens_fleet);
  // 300 left: a second request of 300 fits, a third does not.
  BudgetCharge ch2;
  RequestRecord r2 = request(0, 400);
  EXPECT_EQ(b.charge(ch2, r2, &j, true, kSec), BudgetState::within);
  BudgetCharge ch3;
  RequestRecord r3 = request(0, 400);
  EXPECT_EQ(b.charge(ch3, r3, &j, true, kSec), BudgetState::demoted);
  EXPECT_EQ(ch3.tokens_taken, 0) << "nothing taken from a budget it is over";
  EXPECT_EQ(ctr.over_tokens, 1u);
  // Without a JSON body only the bytes count.
  BudgetCharge ch4;
  RequestRecord r4 = request(0, 40);
  EXPECT_EQ(b.charge(ch4, r4, nullptr, true, 2 * kSec), BudgetState::within);  // 10 refilled
  EXPECT_EQ(r4.est_tokens, 10u);
}

// The estimate above what the server reported is refunded; below, the
// difference is charged on top, into debt; each charge is corrected once.
TEST(RequestBudgets, ReconcileRefundsAndChargesDebt) {
  BudgetPolicy pol(tpm_budget(600));
  BudgetCounters ctr;
  RequestBudgets b(ctr);
  b.arm(&pol, 1);
  const JsonFields j = max_tokens(500);
  const uint64_t t = kSec;  // no refill between the charges below
  BudgetCharge ch;
  RequestRecord r = request(0, 400);  // 600: the whole budget
  ASSERT_EQ(b.charge(ch, r, &j, true, t), BudgetState::within);
  BudgetCharge ch2;
  RequestRecord r2 = request(0, 4);  // 501: over
  EXPECT_EQ(b.charge(ch2, r2, &j, true, t), BudgetState::demoted);
  b.reconcile(ch, r.tenant.view(), 50, t);  // used 50 of 600: 550 back
  EXPECT_EQ(ctr.tokens_refunded, 550u);
  EXPECT_EQ(ch.tokens_taken, 0);
  b.reconcile(ch, r.tenant.view(), 50, t);
  EXPECT_EQ(ctr.tokens_refunded, 550u) << "corrected once";
  BudgetCharge ch3;
  RequestRecord r3 = request(0, 4);  // 501 of the 550 refunded
  EXPECT_EQ(b.charge(ch3, r3, &j, true, t), BudgetState::within);
  b.reconcile(ch3, "", 1501, t);  // 1000 more than estimated: 49 - 1000 in the bucket
  EXPECT_EQ(ctr.tokens_extra, 1000u);
  BudgetCharge ch4;
  RequestRecord r4 = request(0, 0);
  const JsonFields one = max_tokens(1);
  EXPECT_EQ(b.charge(ch4, r4, &one, true, t + 90 * kSec), BudgetState::demoted)
      << "in debt: 90 s refill 900 < 951 owed + 1";
  BudgetCharge ch5;
  RequestRecord r5 = request(0, 0);
  EXPECT_EQ(b.charge(ch5, r5, &one, true, t + 100 * kSec), BudgetState::within) << "debt repaid after 95.2 s";
}

TEST(RequestBudgets, TenantsHaveTheirOwnBuckets) {
  BudgetPolicy pol(tpm_budget(600, true));
  BudgetCounters ctr;
  RequestBudgets b(ctr);
  b.arm(&pol, 1);
  const JsonFields j = max_tokens(600);
  BudgetCharge a1, a2, b1;
  RequestRecord ra1 = request(0, 0, "alice"), ra2 = request(0, 0, "alice"), rb1 = request(0, 0, "bob");
  EXPECT_EQ(b.charge(a1, ra1, &j, true, kSec), BudgetState::within);
  EXPECT_EQ(b.charge(a2, ra2, &j, true, kSec), BudgetState::demoted);
  EXPECT_EQ(b.charge(b1, rb1, &j, true, kSec), BudgetState::within) << "bob's bucket is full";
  // A refund goes back to alice's bucket, not bob's.
  b.reconcile(a1, "alice", 0, kSec);
  BudgetCharge a3, b2;
  RequestRecord ra3 = request(0, 0, "alice"), rb2 = request(0, 0, "bob");
  EXPECT_EQ(b.charge(a3, ra3, &j, true, kSec), BudgetState::within);
  EXPECT_EQ(b.charge(b2, rb2, &j, true, kSec), BudgetState::demoted);
}

TEST(RequestBudgets, ArmStartsEveryBudgetFull) {
  BudgetPolicy pol(rps_budget(1, true));
  BudgetCounters ctr;
  RequestBudgets b(ctr);
  b.arm(&pol, 1);
  BudgetCharge c1, c2, c3;
  RequestRecord r1 = request(), r2 = request(), r3 = request();
  EXPECT_EQ(b.charge(c1, r1, nullptr, false, kSec), BudgetState::within);
  EXPECT_EQ(b.charge(c2, r2, nullptr, false, kSec), BudgetState::demoted);
  b.arm(&pol, 1);  // a new policy
  EXPECT_EQ(b.charge(c3, r3, nullptr, false, kSec), BudgetState::within);
}

// Fresh fleet figures decide (and count what was taken, and the token
// correction); stale ones leave the local bucket to decide.
TEST(RequestBudgets, FleetAllowanceThenLocalShare) {
  ClassBudget cb = tpm_budget(60000);
  cb.tokens_fleet = true;
  cb.local_share = 0.01;  // local bucket: 600 tokens
  BudgetPolicy pol(cb);
  BudgetCounters ctr;
  RequestBudgets b(ctr);
  FleetView view;
  FleetUsage usage;
  b.set_fleet(&view, &usage);
  b.arm(&pol, 1);
  const size_t tok = static_cast<size_t>(FleetKind::tokens);
  view.allow[0][tok].store(1000);
  view.valid_until_ns.store(10 * kSec);
  view.epoch.store(1);
  const JsonFields j = max_tokens(700);
  BudgetCharge ch;
  RequestRecord r = request();
  EXPECT_EQ(b.charge(ch, r, &j, true, kSec), BudgetState::within) << "700 of the fleet's 1000 (local bucket: 600)";
  EXPECT_TRUE(ch.tokens_fleet);
  EXPECT_EQ(ctr.fleet_checked, 1u);
  EXPECT_EQ(usage.used[0][tok].load(), 700);
  BudgetCharge ch2;
  RequestRecord r2 = request();
  EXPECT_EQ(b.charge(ch2, r2, &j, true, kSec), BudgetState::demoted) << "1400 > 1000";
  b.reconcile(ch, "", 100, kSec);
  EXPECT_EQ(usage.used[0][tok].load(), 100) << "the fleet's count corrected by -600";
  EXPECT_EQ(ctr.tokens_refunded, 600u);
  // Stale view: the local bucket (600) decides, and nothing goes to the fleet's count.
  BudgetCharge ch3;
  RequestRecord r3 = request();
  EXPECT_EQ(b.charge(ch3, r3, &j, true, 20 * kSec), BudgetState::demoted) << "700 > local 600";
  EXPECT_EQ(ctr.fleet_local, 1u);
  const JsonFields small = max_tokens(500);
  BudgetCharge ch4;
  RequestRecord r4 = request();
  EXPECT_EQ(b.charge(ch4, r4, &small, true, 20 * kSec), BudgetState::within);
  EXPECT_FALSE(ch4.tokens_fleet);
  EXPECT_EQ(usage.used[0][tok].load(), 100);
}

}  // namespace
}  // namespace aiqos
