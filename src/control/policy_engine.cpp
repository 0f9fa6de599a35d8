#include "control/policy_engine.h"

#include "classify/fleet_view.h"

#include <algorithm>
#include <cstdio>

namespace aiqos {
namespace {

constexpr size_t kMaxHost = 256;

// Host part of an authority, lowercase, without ":port" (IPv6 literals keep
// their brackets). Writes into `buf`; returns the view.
std::string_view host_of(std::string_view a, char (&buf)[kMaxHost]) noexcept {
  size_t end = a.size();
  if (!a.empty() && a[0] == '[') {
    size_t rb = a.find(']');
    end = rb == std::string_view::npos ? a.size() : rb + 1;
  } else if (size_t colon = a.rfind(':'); colon != std::string_view::npos) {
    end = colon;
  }
  end = std::min(end, kMaxHost);
  for (size_t i = 0; i < end; ++i) {
    char c = a[i];
    buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return {buf, end};
}

bool any_glob(const std::vector<std::string>& globs, std::string_view s) noexcept {
  for (const auto& g : globs)
    if (glob_match(g, s)) return true;
  return false;
}

bool any_prefix(const std::vector<Prefix>& ps, uint8_t family, const uint8_t* a) noexcept {
  if (a == nullptr) return false;
  for (const auto& p : ps)
    if (p.contains(a, family)) return true;
  return false;
}

MatchProto match_proto(ReqProto p, bool& ok) noexcept {
  ok = true;
  switch (p) {
    case ReqProto::h1: return MatchProto::h1;
    case ReqProto::h2: return MatchProto::h2;
    case ReqProto::grpc: return MatchProto::grpc;
    case ReqProto::tls: return MatchProto::tls;
    default: ok = false; return MatchProto::h1;
  }
}

bool l3_only(const Match& m) noexcept {
  return m.endpoints.empty() && m.models.empty() && !m.model_regex && m.authorities.empty() && m.paths.empty() &&
         m.methods.empty() && m.headers.empty() && m.sni.empty() && m.proto_mask == 0 && m.tenants.empty();
}

}  // namespace

Policy PolicyEngine::builtin_default() {
  Policy p;
  ClassCfg c;
  c.name = "default";
  p.classes.push_back(c);
  p.default_class = 0;
  return p;
}

std::unique_ptr<PolicyEngine> PolicyEngine::compile(Policy policy, const std::vector<std::string>& capture,
                                                    uint16_t workers, std::string file,
                                                    std::vector<PolicyError>& errors) {
  std::unique_ptr<PolicyEngine> e(new PolicyEngine());
  e->policy_ = std::move(policy);
  e->file_ = std::move(file);
  auto slot_of = [&](const std::string& name) -> int {
    auto it = std::find(capture.begin(), capture.end(), name);
    return it == capture.end() ? -1 : static_cast<int>(it - capture.begin());
  };
  auto err = [&](int line, std::string field, std::string msg) {
    errors.push_back(PolicyError{e->file_, line, 1, std::move(field), std::move(msg)});
  };

  if (e->policy_.tenants.by == TenantBy::header) {
    e->tenant_slot_ = slot_of(e->policy_.tenants.header);
    if (e->tenant_slot_ < 0)
      err(0, "tenants.header",
          "header '" + e->policy_.tenants.header + "' is not captured by the running daemon; restart to capture it");
  }

  // Model regexes: up to 64 per Hyperscan database (a bit per rule in a mask).
  std::vector<std::vector<HsPattern>> regex_sets;
  std::vector<std::vector<size_t>> regex_rules;
  for (size_t i = 0; i < e->policy_.rules.size(); ++i) {
    const RuleCfg& rc = e->policy_.rules[i];
    RuleRt rt{&rc, l3_only(rc.match), {}, {}};
    for (const HeaderMatch& h : rc.match.headers) {
      int s = slot_of(h.name);
      if (s < 0) {
        err(rc.line, "rules[" + std::to_string(i) + "].match.headers." + h.name,
            "header '" + h.name + "' is not captured by the running daemon; restart to capture it");
        continue;
      }
      rt.headers.push_back({s, &h.values});
    }
    if (rc.match.model_regex) {
      if (regex_sets.empty() || regex_sets.back().size() == 64) {
        regex_sets.emplace_back();
        regex_rules.emplace_back();
      }
      rt.regex.db = static_cast<int>(regex_sets.size() - 1);
      rt.regex.bit = static_cast<uint8_t>(regex_sets.back().size());
      regex_sets.back().push_back({rt.regex.bit, *rc.match.model_regex, 0});
      regex_rules.back().push_back(i);
    }
    e->rules_.push_back(std::move(rt));
  }
  for (size_t d = 0; d < regex_sets.size(); ++d) {
    HsCompileError ce;
    auto db = HsDatabase::compile(regex_sets[d], HsDatabase::Mode::block, ce);
    if (!db) {
      size_t rule = ce.expression >= 0 ? regex_rules[d][static_cast<size_t>(ce.expression)] : regex_rules[d][0];
      err(e->policy_.rules[rule].line, "rules[" + std::to_string(rule) + "].match.model_regex",
          "Hyperscan cannot compile it: " + ce.message);
      continue;
    }
    e->regex_dbs_.push_back(std::move(db));
  }
  if (!errors.empty()) return nullptr;

  // One scratch per worker per database, made here on the control path.
  e->scratch_.resize(workers);
  e->memo_.resize(workers);
  for (uint16_t w = 0; w < workers; ++w) {
    for (const auto& db : e->regex_dbs_) {
      HsScratch s;
      if (!s.reserve(db->get())) {
        err(0, "", "out of memory for Hyperscan scratch");
        return nullptr;
      }
      e->scratch_[w].push_back(std::move(s));
    }
  }
  return e;
}

const std::string& PolicyEngine::class_name(uint16_t id) const noexcept {
  static const std::string unknown = "?";
  return id < policy_.classes.size() ? policy_.classes[id].name : unknown;
}

ClassBudget PolicyEngine::budget(uint16_t id) const noexcept {
  ClassBudget b;
  if (id >= policy_.classes.size()) return b;
  const ClassCfg& c = policy_.classes[id];
  if (c.requests_per_second) b.requests_per_second = *c.requests_per_second;
  if (c.token_budget) {
    b.tokens_per_minute = static_cast<double>(c.token_budget->tokens_per_minute);
    b.tokens_per_tenant = c.token_budget->per == BudgetScope::tenant;
    b.tokens_fleet = c.token_budget->fleet && policy_.fleet.enabled;
  }
  b.requests_fleet = c.requests_fleet && c.requests_per_second && policy_.fleet.enabled;
  if (b.requests_fleet || b.tokens_fleet)
    b.local_share = fleet::local_share(policy_.fleet.local_share, policy_.fleet.expected_members);
  // Over budget: demote where the class demotes (its token budget's action,
  // or its exceed action when it has only a request rate), else drop.
  bool demote = c.token_budget ? c.token_budget->action == BudgetAction::demote : c.exceed == ExceedAction::demote;
  b.demote = demote && c.demote_to.has_value();
  b.demote_to = c.demote_to.value_or(id);
  return b;
}

uint8_t PolicyEngine::priority(uint16_t id) const noexcept {
  return id < policy_.classes.size() ? policy_.classes[id].priority : kLowestPriority;
}

PolicyEngine::Tri PolicyEngine::eval(const RuleRt& r, const RequestFacts& f, const uint64_t* masks) const noexcept {
  const Match& m = r.cfg->match;
  if (!m.vlans.empty() && std::find(m.vlans.begin(), m.vlans.end(), f.vlan) == m.vlans.end()) return Tri::no;
  if (!m.src.empty() && !any_prefix(m.src, f.family, f.src)) return Tri::no;
  if (!m.dst.empty() && !any_prefix(m.dst, f.family, f.dst)) return Tri::no;
  if (m.proto_mask != 0) {
    bool ok;
    MatchProto p = match_proto(f.proto, ok);
    if (!ok || !(m.proto_mask & (1u << static_cast<unsigned>(p)))) return Tri::no;
  }
  // Header fields lost at a mid-stream pickup are unknown, not empty: a
  // condition on one is skipped, and the rule then needs its model to match.
  bool skipped = false;
  auto lost = [&](std::string_view v) {
    if (!f.headers_partial || !v.empty()) return false;
    skipped = true;
    return true;
  };
  if (!m.endpoints.empty()) {
    if (f.headers_partial && f.endpoint == Endpoint::unknown) {
      skipped = true;
    } else if (std::find(m.endpoints.begin(), m.endpoints.end(), f.endpoint) == m.endpoints.end()) {
      return Tri::no;
    }
  }
  if (!m.methods.empty() && !lost(f.method) && std::find(m.methods.begin(), m.methods.end(), f.method) == m.methods.end())
    return Tri::no;
  if (!m.paths.empty() && !lost(f.path) && !any_glob(m.paths, f.path)) return Tri::no;
  if (!m.authorities.empty() && !lost(f.authority)) {
    char buf[kMaxHost];
    if (!any_glob(m.authorities, host_of(f.authority, buf))) return Tri::no;
  }
  if (!m.sni.empty()) {
    char buf[kMaxHost];
    if (!any_glob(m.sni, host_of(f.sni, buf))) return Tri::no;
  }
  for (const HeaderRef& h : r.headers) {
    std::string_view v = static_cast<size_t>(h.slot) < f.extra.size() ? f.extra[static_cast<size_t>(h.slot)] : "";
    if (!lost(v) && !any_glob(*h.globs, v)) return Tri::no;
  }
  if (!m.tenants.empty() && !lost(f.tenant) && !any_glob(m.tenants, f.tenant)) return Tri::no;
  // The model last: it is the one condition that may not be known yet.
  if (!m.models.empty() || r.regex.db >= 0) {
    if (!f.model_known) return Tri::unknown;
    if (f.model.empty()) return Tri::no;
    if (!m.models.empty() && !any_glob(m.models, f.model)) return Tri::no;
    if (r.regex.db >= 0 && !(masks[r.regex.db] & (uint64_t{1} << r.regex.bit))) return Tri::no;
  } else if (skipped) {
    return Tri::no;  // only unknown fields and L3 facts: not evidence enough
  }
  return Tri::yes;
}

uint16_t PolicyEngine::classify(const RequestFacts& f, uint16_t worker, bool* pending) const noexcept {
  // Regex masks, once per request (at most a few databases).
  uint64_t masks[8] = {};
  if (f.model_known && !f.model.empty() && worker < scratch_.size() && !regex_dbs_.empty()) {
    RegexMemo* m = worker < memo_.size() && f.model.size() <= kMaxModelName ? &memo_[worker] : nullptr;
    if (m != nullptr && m->valid && m->model.view() == f.model) {
      std::copy(std::begin(m->masks), std::end(m->masks), masks);
    } else {
      for (size_t d = 0; d < regex_dbs_.size() && d < 8; ++d)
        masks[d] = regex_dbs_[d]->match(f.model, scratch_[worker][d]);
      if (m != nullptr) {
        m->model.clear();
        m->model.append(f.model);
        std::copy(std::begin(masks), std::end(masks), m->masks);
        m->valid = true;
      }
    }
  }
  bool unknown = false;
  for (const RuleRt& r : rules_) {
    Tri t = eval(r, f, masks);
    if (t == Tri::yes) {
      if (pending) *pending = unknown;
      return r.cfg->class_index;
    }
    if (t == Tri::unknown) unknown = true;
  }
  if (pending) *pending = unknown;
  return policy_.default_class;
}

uint16_t PolicyEngine::classify_flow(uint16_t vlan, uint8_t family, const uint8_t* src,
                                     const uint8_t* dst) const noexcept {
  RequestFacts f;
  f.vlan = vlan;
  f.family = family;
  f.src = src;
  f.dst = dst;
  for (const RuleRt& r : rules_) {
    if (!r.l3_only) continue;
    if (eval(r, f, nullptr) == Tri::yes) return r.cfg->class_index;
  }
  return policy_.default_class;
}

void PolicyEngine::tenant(const RequestFacts& f, BoundedString<64>& out) const noexcept {
  out.clear();
  switch (policy_.tenants.by) {
    case TenantBy::vlan: {
      // The VLAN id in decimal (no snprintf on the worker, once per request).
      char buf[8];
      char* e = buf + sizeof buf;
      char* b = e;
      unsigned v = f.vlan;
      do {
        *--b = static_cast<char>('0' + v % 10);
        v /= 10;
      } while (v != 0);
      out.append({b, static_cast<size_t>(e - b)});
      break;
    }
    case TenantBy::src_subnet: {
      const TenantSubnet* best = nullptr;
      for (const auto& s : policy_.tenants.subnets)
        if (f.src && s.prefix.contains(f.src, f.family) && (!best || s.prefix.len > best->prefix.len)) best = &s;
      if (best) out.append(best->name);
      break;
    }
    case TenantBy::header:
      if (tenant_slot_ >= 0 && static_cast<size_t>(tenant_slot_) < f.extra.size())
        out.append(f.extra[static_cast<size_t>(tenant_slot_)]);
      break;
    default: break;
  }
}

}  // namespace aiqos
