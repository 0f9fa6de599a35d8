// The policy schema over the YAML reader (private to policy_yaml*.cpp).
// PolicyLoader reads each section of docs/policy.md into a Policy and checks
// what the values mean; the reader checks their types, keys and positions.
// Cross references (classes named by rules, demote_to, default_class) are
// resolved by link() after all classes are read, so their order in the
// file does not matter.
//
// policy_yaml.cpp: the document, version, capture, limits, tenants, fleet and
//   the value kinds they share (sizes, durations, prefixes, header names);
// policy_yaml_classes.cpp: classes, rules and their matches, and link().
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "control/policy.h"
#include "control/policy_yaml.h"
#include "control/yaml_reader.h"

namespace aiqos::policy_yaml {

using yaml::Entry;
using yaml::Field;
using yaml::MapView;
using yaml::Pos;
using yaml::set;

std::string lower(std::string_view s);
bool is_tchar(char c);  // RFC 9110 token character

// Where a class name is used before all classes are known.
struct ClassRef {
  std::string name;
  Pos pos;
  std::string path;
};

class PolicyLoader : public yaml::Reader {
 public:
  using yaml::Reader::Reader;

  // The policy of one parsed document, or its errors.
  LoadResult run(const YAML::Node& root);
  // The errors so far, with the policy if there are none.
  LoadResult finish(Policy& p);

 private:
  // ---- sections (policy_yaml.cpp)
  void version(const MapView& top, Policy& p);
  void capture(const Field& f, Policy& p);
  void limits(const Field& f, Policy& p);
  void tenants(const Field& f, Policy& p);
  void tenant_subnets(const Field& by, const std::optional<Field>& subnets, TenantCfg& t);
  void fleet(const Field& f, Policy& p);
  void fleet_redis(const Field& f, FleetCfg& c);
  // `scope: local | fleet` of a budget; fleet needs the fleet section.
  bool fleet_scope(const Field& f, const Policy& p);

  // ---- value kinds (policy_yaml.cpp)
  std::optional<uint64_t> size(const Field& f, uint64_t min, uint64_t max = UINT64_MAX);
  std::optional<uint64_t> duration(const Field& f);
  std::optional<Prefix> prefix(const Field& f);
  std::optional<std::string> glob(const Field& f, bool fold);
  // A header name for capture or match: lowercased, token characters only,
  // never a credential (unless credential_ok), never a pseudo-header.
  std::optional<std::string> header_name(const Field& f, bool credential_ok = false);

  // ---- classes, rules (policy_yaml_classes.cpp)
  std::optional<std::string> unique_name(const Field& f, std::string_view kind, size_t max,
                                         std::map<std::string, int>& seen);
  void classes(const Field& f, Policy& p);
  void one_class(const Field& e, const Policy& p, ClassCfg& c, std::map<std::string, int>& seen);
  void class_rate(const MapView& m, ClassCfg& c);
  void class_requests(const Field& f, const Policy& p, ClassCfg& c);
  // True when the budget demotes.
  bool token_budget(const Field& f, const Policy& p, ClassCfg& c);
  void rules(const Field& f, Policy& p);
  void match(const Field& f, const Policy& p, Match& mt);
  void match_headers(const Field& f, const Policy& p, Match& mt);
  void match_tenants(const Field& f, const Policy& p, Match& mt);
  std::optional<std::string> model_regex(const Field& f);

  // ---- cross references, once all classes are known (policy_yaml_classes.cpp)
  std::optional<uint16_t> resolve(const Policy& p, const ClassRef& r);
  void link(const MapView& top, Policy& p);
  void link_demotions(Policy& p);

  std::vector<std::pair<size_t, ClassRef>> demote_refs_;  // class index -> target
  std::vector<std::pair<size_t, ClassRef>> rule_refs_;    // rule index -> class
  std::vector<size_t> bad_priority_;                      // classes whose priority was invalid

  bool is_bad_priority(size_t ci) const;
};

}  // namespace aiqos::policy_yaml
