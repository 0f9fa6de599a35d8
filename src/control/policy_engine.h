// A policy compiled for the fast path: rules with their globs, prefixes and
// Hyperscan model regexes ready, header names resolved to capture slots, and
// per-worker Hyperscan scratch. Immutable once built; published to workers
// with RCU and freed only after every worker has moved past it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "classify/class_resolver.h"
#include "classify/hs_db.h"
#include "classify/model_name.h"
#include "control/policy.h"
#include "control/policy_yaml.h"

namespace aiqos {

class PolicyEngine final : public ClassResolver {
 public:
  // `capture` is the classifier's capture header list (its order gives the
  // slot of each value in RequestFacts::extra). A rule or tenant setting that
  // needs a header outside it is an error: capture headers are fixed at start.
  static std::unique_ptr<PolicyEngine> compile(Policy policy, const std::vector<std::string>& capture,
                                               uint16_t workers, std::string file, std::vector<PolicyError>& errors);

  uint16_t classify(const RequestFacts& f, uint16_t worker, bool* model_pending) const noexcept override;
  uint16_t classify_flow(uint16_t vlan, uint8_t family, const uint8_t* src, const uint8_t* dst) const noexcept override;
  void tenant(const RequestFacts& f, BoundedString<64>& out) const noexcept override;
  uint8_t priority(uint16_t class_id) const noexcept override;
  uint16_t default_class() const noexcept override { return policy_.default_class; }
  std::string_view class_name_of(uint16_t id) const noexcept override { return class_name(id); }
  ClassBudget budget(uint16_t id) const noexcept override;
  uint16_t class_count() const noexcept override { return static_cast<uint16_t>(policy_.classes.size()); }

  const Policy& policy() const noexcept { return policy_; }
  const std::string& file() const noexcept { return file_; }
  const std::string& class_name(uint16_t id) const noexcept;
  // The built-in policy used without --policy: one class, "default", unlimited.
  static Policy builtin_default();

 private:
  enum class Tri : uint8_t { no, yes, unknown };
  struct RegexRef {
    int db = -1;  // index into regex_dbs_, -1: rule has no model_regex
    uint8_t bit = 0;
  };
  struct HeaderRef {
    int slot;
    const std::vector<std::string>* globs;
  };
  struct RuleRt {
    const RuleCfg* cfg;
    bool l3_only;  // only vlan/src/dst conditions (or none)
    RegexRef regex;
    std::vector<HeaderRef> headers;
  };

  PolicyEngine() = default;
  Tri eval(const RuleRt& r, const RequestFacts& f, const uint64_t* regex_masks) const noexcept;

  Policy policy_;
  std::string file_;
  std::vector<RuleRt> rules_;
  std::vector<std::unique_ptr<HsDatabase>> regex_dbs_;
  mutable std::vector<std::vector<HsScratch>> scratch_;  // [worker][db]: each worker touches only its own
  // [worker]: the regex masks of the last model scanned. A gateway sees the same few model
  // names again and again: a compare of the name instead of a Hyperscan scan per request.
  struct alignas(64) RegexMemo {
    ModelName model;
    uint64_t masks[8] = {};
    bool valid = false;
  };
  mutable std::vector<RegexMemo> memo_;
  int tenant_slot_ = -1;
};

}  // namespace aiqos
