// YAML -> Policy: classes, rules and their matches, and the cross references
// between them (control/policy_loader.h).
#include <hs.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "control/policy_loader.h"

namespace aiqos::policy_yaml {

namespace {

constexpr std::array<std::string_view, static_cast<size_t>(Endpoint::count_)> kEndpointNames = {
#define X(name) #name,
    AIQOS_ENDPOINTS(X)
#undef X
};

// The flags the policy engine compiles model regexes with (HsDatabase::compile
// adds HS_FLAG_SINGLEMATCH to the engine's none), so that what loads compiles.
constexpr unsigned kRegexFlags = HS_FLAG_SINGLEMATCH;

bool is_name(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  return true;
}

bool tenant_exists(const TenantCfg& t, const std::string& name) {
  switch (t.by) {
    case TenantBy::src_subnet:
      return std::any_of(t.subnets.begin(), t.subnets.end(), [&](const auto& s) { return s.name == name; });
    case TenantBy::vlan: {
      if (name.empty() || name.size() > 4 || !std::all_of(name.begin(), name.end(), ::isdigit)) return false;
      int id = std::stoi(name);
      return id >= 1 && id <= 4094 && std::to_string(id) == name;
    }
    default: return true;  // header values are open-ended
  }
}

}  // namespace

// A class or rule name: 1..max characters a-z, 0-9, '_' or '-'. A name seen
// before (`seen`: name -> line) is reported and still given.
std::optional<std::string> PolicyLoader::unique_name(const Field& f, std::string_view kind, size_t max,
                                                     std::map<std::string, int>& seen) {
  std::string what = "a " + std::string(kind) + " name";
  auto n = str(f, what);
  if (n && !is_name(*n, max)) {
    expected(f, what + " of 1.." + std::to_string(max) + " characters a-z, 0-9, '_' or '-'");
    return std::nullopt;
  }
  if (!n) return n;
  auto [it, fresh] = seen.emplace(*n, f.pos.line);
  if (!fresh)
    error(f, "duplicate " + std::string(kind) + " name '" + *n + "' (first defined at line " +
                 std::to_string(it->second) + ")");
  return n;
}

// ---- classes

void PolicyLoader::classes(const Field& f, Policy& p) {
  if (!list(f, "classes", true)) return;
  std::map<std::string, int> seen;  // name -> line
  for (size_t i = 0; i < f.node.size(); ++i) {
    Field e = element(f, i);
    ClassCfg c;
    if (i == kMaxClasses) error(e, "at most " + std::to_string(kMaxClasses) + " classes");
    one_class(e, p, c, seen);
    // Keep the slot even when the class is broken, so that indices in
    // demote references and in error paths stay those of the file.
    p.classes.push_back(std::move(c));
  }
}

void PolicyLoader::one_class(const Field& e, const Policy& p, ClassCfg& c, std::map<std::string, int>& seen) {
  auto m = map(e, {"name", "priority", "rate", "burst", "exceed", "exceed_dscp", "exceed_pcp", "demote_to", "vlan",
                   "pcp", "dscp", "requests_per_second", "token_budget"});
  if (!m) return;
  const size_t index = p.classes.size();  // classes() adds this one after, broken or not
  if (auto f = m->get("name"))
    set(c.name, unique_name(*f, "class", 32, seen));
  else
    missing(*m, "name");
  if (auto f = m->get("priority")) {
    auto v = integer(*f, 0, 7, "a priority");
    set(c.priority, v);
    if (!v) bad_priority_.push_back(index);
  }
  class_rate(*m, c);

  static constexpr std::string_view kExceed[] = {"drop", "remark", "demote"};
  std::optional<Field> exceed_f = m->get("exceed");
  if (exceed_f)
    if (auto x = word(*exceed_f, kExceed)) c.exceed = static_cast<ExceedAction>(*x);
  auto xd = m->get("exceed_dscp");
  auto xp = m->get("exceed_pcp");
  for (auto& [f, name] : {std::pair{xd, "exceed_dscp"}, std::pair{xp, "exceed_pcp"}})
    if (f && c.exceed != ExceedAction::remark) error(*f, std::string(name) + " only applies with 'exceed: remark'");
  if (c.exceed == ExceedAction::remark) {
    if (xd) set(c.exceed_dscp, small<uint8_t>(*xd, 0, 63, "a DSCP value"));
    if (xp) set(c.exceed_pcp, small<uint8_t>(*xp, 0, 7, "a PCP value"));
    if (!xd && !xp) error(*exceed_f, "'exceed: remark' needs exceed_dscp or exceed_pcp");
  }

  if (auto f = m->get("vlan")) set(c.vlan, small<uint16_t>(*f, 1, 4094, "a VLAN ID"));
  if (auto f = m->get("pcp")) {
    if (!m->get("vlan"))
      error(*f, "pcp needs vlan: the PCP is written in the VLAN tag this class sets");
    else
      set(c.pcp, small<uint8_t>(*f, 0, 7, "a PCP value"));
  }
  if (auto f = m->get("dscp")) set(c.dscp, small<uint8_t>(*f, 0, 63, "a DSCP value"));
  if (auto f = m->get("requests_per_second")) class_requests(*f, p, c);
  bool budget_demotes = false;
  if (auto f = m->get("token_budget")) budget_demotes = token_budget(*f, p, c);
  bool demotes = c.exceed == ExceedAction::demote || budget_demotes;
  if (auto f = m->get("demote_to")) {
    if (!demotes) {
      error(*f, "demote_to only applies with 'exceed: demote' or 'token_budget.action: demote'");
    } else if (auto n = str(*f, "a class name")) {
      demote_refs_.push_back({index, ClassRef{*n, f->pos, f->path}});
    }
  } else if (demotes) {
    error(c.exceed == ExceedAction::demote && exceed_f ? *exceed_f : m->self, "demoting needs 'demote_to: <class>'");
  }
}

// rate, and burst (which needs it).
void PolicyLoader::class_rate(const MapView& m, ClassCfg& c) {
  bool rate_bad = false;  // already reported; do not pile on
  if (auto f = m.get("rate")) {
    auto r = parsed(*f, parse_rate, "a rate like 20Mbit or 'unlimited'");
    rate_bad = !r;
    if (r && *r == 0 && lower(f->node.Scalar()) != "unlimited") {
      error(*f, "a rate of 0 would drop everything; write 'unlimited' for no limit");
      rate_bad = true;
    } else if (r) {
      c.rate_bps = *r;
    }
  }
  if (auto f = m.get("burst")) {
    auto b = size(*f, 1514);
    if (b && c.rate_bps == 0 && !rate_bad)
      error(*f, "burst needs a rate; this class is unlimited");
    else if (c.rate_bps != 0)
      set(c.burst_bytes, b);
  }
  if (c.rate_bps != 0 && c.burst_bytes == 0)
    c.burst_bytes = std::max<uint64_t>(c.rate_bps / 800, kMinBurstBytes);  // 10 ms at rate
}

// requests_per_second: N, or {rate: N, scope: local | fleet}.
void PolicyLoader::class_requests(const Field& f, const Policy& p, ClassCfg& c) {
  static constexpr std::string_view kWhat = "a number of requests per second above 0";
  if (!f.node.IsMap()) {
    set(c.requests_per_second, number(f, 0, 1e9, kWhat));
    return;
  }
  auto rm = map(f, {"rate", "scope"});
  if (!rm) return;
  if (auto r = rm->get("rate"))
    set(c.requests_per_second, number(*r, 0, 1e9, kWhat));
  else
    missing(*rm, "rate");
  if (auto s = rm->get("scope")) {
    c.requests_fleet = fleet_scope(*s, p);
    if (c.requests_fleet && c.requests_per_second && *c.requests_per_second < 1)
      error(*rm->get("rate"), "a fleet request budget counts whole requests per 1 s window: expected at least 1");
  }
}

bool PolicyLoader::token_budget(const Field& f, const Policy& p, ClassCfg& c) {
  auto tb = map(f, {"tokens_per_minute", "per", "action", "scope"});
  if (!tb) return false;
  TokenBudget b;
  bool ok = true;
  if (auto t = tb->get("tokens_per_minute")) {
    auto v = integer(*t, 1, UINT64_MAX / 2, "a token count per minute");
    ok = ok && v;
    set(b.tokens_per_minute, v);
  } else {
    missing(*tb, "tokens_per_minute");
    ok = false;
  }
  static constexpr std::string_view kPer[] = {"class", "tenant"};
  if (auto t = tb->get("per")) {
    auto v = word(*t, kPer);
    ok = ok && v;
    if (v) b.per = static_cast<BudgetScope>(*v);
    if (v && b.per == BudgetScope::tenant && p.tenants.by == TenantBy::none) {
      error(*t, "'per: tenant' needs a 'tenants' section saying how tenants are found");
      ok = false;
    }
  }
  static constexpr std::string_view kAct[] = {"drop", "demote"};
  if (auto t = tb->get("action")) {
    auto v = word(*t, kAct);
    ok = ok && v;
    if (v) b.action = static_cast<BudgetAction>(*v);
  }
  if (auto t = tb->get("scope")) {
    b.fleet = fleet_scope(*t, p);
    if (b.fleet && b.per == BudgetScope::tenant) {
      error(*t, "'scope: fleet' with 'per: tenant' is not supported: a fleet token budget is one per class "
                "(match the tenant in a rule to give it its own class)");
      ok = false;
    }
  }
  if (ok) c.token_budget = b;
  return b.action == BudgetAction::demote;
}

// ---- rules

void PolicyLoader::rules(const Field& f, Policy& p) {
  if (f.node.IsNull() || !list(f, "rules")) return;
  std::map<std::string, int> seen;
  for (size_t i = 0; i < f.node.size(); ++i) {
    Field e = element(f, i);
    auto m = map(e, {"name", "match", "class"});
    if (!m) continue;
    RuleCfg r;
    r.line = e.pos.line;
    if (auto n = m->get("name")) set(r.name, unique_name(*n, "rule", 64, seen));
    if (auto mf = m->get("match")) match(*mf, p, r.match);
    if (auto c = m->get("class")) {
      if (auto s = str(*c, "a class name")) rule_refs_.push_back({p.rules.size(), ClassRef{*s, c->pos, c->path}});
    } else {
      missing(*m, "class");
    }
    p.rules.push_back(std::move(r));
  }
}

void PolicyLoader::match(const Field& f, const Policy& p, Match& mt) {
  auto m = map(f, {"endpoint", "model", "model_regex", "authority", "path", "method", "headers", "vlan", "src", "dst",
                   "sni", "proto", "tenant"});
  if (!m) return;
  if (auto v = m->get("endpoint"))
    list_or_one(*v, "an endpoint name", [&](const Field& e) {
      if (auto i = word(e, kEndpointNames)) mt.endpoints.push_back(static_cast<Endpoint>(*i));
    });
  if (auto v = m->get("model"))
    list_or_one(*v, "a model name or glob", [&](const Field& e) {
      if (auto g = glob(e, false)) mt.models.push_back(*g);
    });
  if (auto v = m->get("model_regex")) set(mt.model_regex, model_regex(*v));
  if (auto v = m->get("authority"))
    list_or_one(*v, "a host name or glob", [&](const Field& e) {
      if (auto g = glob(e, true)) mt.authorities.push_back(*g);
    });
  if (auto v = m->get("path"))
    list_or_one(*v, "a path or glob", [&](const Field& e) {
      auto g = glob(e, false);
      if (g && (*g)[0] != '/' && (*g)[0] != '*')
        error(e, "a path starts with '/', got " + yaml::describe(e.node));
      else if (g)
        mt.paths.push_back(*g);
    });
  if (auto v = m->get("method"))
    list_or_one(*v, "an HTTP method", [&](const Field& e) {
      auto s = str(e, "an HTTP method like POST");
      if (!s) return;
      if (!std::all_of(s->begin(), s->end(), is_tchar)) {
        expected(e, "an HTTP method like POST");
        return;
      }
      std::string up = *s;
      for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (up != *s) {
        error(e, "methods are case-sensitive; did you mean '" + up + "'?");
        return;
      }
      mt.methods.push_back(*s);
    });
  if (auto v = m->get("headers")) match_headers(*v, p, mt);
  if (auto v = m->get("vlan"))
    list_or_one(*v, "a VLAN ID", [&](const Field& e) {
      if (auto id = small<uint16_t>(e, 0, 4094, "a VLAN ID, 0 for untagged")) mt.vlans.push_back(*id);
    });
  // (no structured binding here: clang 14 cannot capture one in the lambda)
  for (const auto& kv : {std::pair{"src", &mt.src}, std::pair{"dst", &mt.dst}}) {
    auto* out = kv.second;
    if (auto v = m->get(kv.first))
      list_or_one(*v, "an IP prefix", [&](const Field& e) {
        if (auto pr = prefix(e)) out->push_back(*pr);
      });
  }
  if (auto v = m->get("sni"))
    list_or_one(*v, "a server name or glob", [&](const Field& e) {
      if (auto g = glob(e, true)) mt.sni.push_back(*g);
    });
  if (auto v = m->get("proto")) {
    static constexpr std::string_view kProto[] = {"h1", "h2", "grpc", "tls"};
    list_or_one(*v, "a protocol", [&](const Field& e) {
      if (auto i = word(e, kProto)) mt.proto_mask |= static_cast<uint8_t>(1u << *i);
    });
  }
  if (auto v = m->get("tenant")) match_tenants(*v, p, mt);
}

// Hyperscan decides: hs_expression_info() parses the expression with the
// flags the engine compiles it with and refuses what hs_compile() would
// (unsupported constructs, syntax errors, patterns that can never match).
// What it accepts but hs_compile() still refuses without
// HS_FLAG_ALLOWEMPTY, a pattern that matches the empty string, is refused
// here too.
std::optional<std::string> PolicyLoader::model_regex(const Field& f) {
  auto s = str(f, "a regex");
  if (!s) return s;
  if (s->find('\0') != std::string::npos) {
    error(f, "a regex cannot hold a NUL byte; write \\x00 to match one");
    return std::nullopt;
  }
  hs_expr_info_t* info = nullptr;
  hs_compile_error_t* ce = nullptr;
  if (hs_expression_info(s->c_str(), kRegexFlags, &info, &ce) != HS_SUCCESS) {
    error(f, "Hyperscan rejects it: " + std::string(ce && ce->message ? ce->message : "hs_expression_info failed"));
    if (ce) hs_free_compile_error(ce);
    return std::nullopt;
  }
  bool matches_empty = info->min_width == 0;
  std::free(info);  // allocated by Hyperscan's misc allocator, malloc by default
  if (matches_empty) {
    error(f, "Hyperscan rejects it: it matches the empty string (and so every model); "
             "make it match at least one character, or leave model_regex out");
    return std::nullopt;
  }
  return s;
}

void PolicyLoader::match_headers(const Field& f, const Policy& p, Match& mt) {
  for (const Entry& h : free_map(f, "header names to value globs")) {
    auto name = header_name(Field{YAML::Node(h.key), h.key_pos, h.value.path});
    if (!name) continue;
    auto& cap = p.capture.headers;
    if (std::find(cap.begin(), cap.end(), *name) == cap.end()) {
      error(h.key_pos, h.value.path, "header '" + *name + "' is not captured; add it to capture.headers");
      continue;
    }
    HeaderMatch hm{*name, {}};
    list_or_one(h.value, "a value glob", [&](const Field& e) {
      if (auto g = glob(e, false)) hm.values.push_back(*g);
    });
    if (!hm.values.empty()) mt.headers.push_back(std::move(hm));
  }
}

void PolicyLoader::match_tenants(const Field& f, const Policy& p, Match& mt) {
  if (p.tenants.by == TenantBy::none) {
    error(f, "matching on tenant needs a 'tenants' section saying how tenants are found");
    return;
  }
  list_or_one(f, "a tenant name or glob", [&](const Field& e) {
    auto g = glob(e, false);
    if (!g) return;
    if (!glob_has_wildcard(*g) && !tenant_exists(p.tenants, *g)) {
      std::string known;
      if (p.tenants.by == TenantBy::src_subnet) {
        for (const auto& s : p.tenants.subnets) known += (known.empty() ? "" : ", ") + s.name;
        error(e, "unknown tenant '" + *g + "'; tenants.subnets names: " + known);
      } else {
        error(e, "with 'by: vlan' a tenant is a VLAN ID 1..4094, got " + yaml::describe(e.node));
      }
      return;
    }
    mt.tenants.push_back(*g);
  });
}

// ---- cross references, once all classes are known

std::optional<uint16_t> PolicyLoader::resolve(const Policy& p, const ClassRef& r) {
  if (auto i = p.class_index(r.name)) return i;
  std::vector<std::string_view> names;
  for (const auto& c : p.classes)
    if (!c.name.empty()) names.push_back(c.name);
  error(r.pos, r.path, "unknown class '" + r.name + "'" + yaml::did_you_mean(r.name, names));
  return std::nullopt;
}

bool PolicyLoader::is_bad_priority(size_t ci) const {
  return std::find(bad_priority_.begin(), bad_priority_.end(), ci) != bad_priority_.end();
}

void PolicyLoader::link(const MapView& top, Policy& p) {
  for (auto& [ri, ref] : rule_refs_)
    if (auto i = resolve(p, ref)) p.rules[ri].class_index = *i;
  link_demotions(p);
  if (auto f = top.get("default_class")) {
    if (auto s = str(*f, "a class name"))
      if (auto i = resolve(p, ClassRef{*s, f->pos, f->path})) p.default_class = *i;
  } else if (auto i = p.class_index("default")) {
    p.default_class = *i;
  } else if (!p.classes.empty()) {
    error(top.self.pos, "", "no 'default_class' and no class named 'default': unmatched traffic needs a class");
  }
}

void PolicyLoader::link_demotions(Policy& p) {
  std::vector<std::optional<uint16_t>> target(p.classes.size());
  std::vector<const ClassRef*> ref_of(p.classes.size(), nullptr);
  for (auto& [ci, ref] : demote_refs_) {
    auto i = resolve(p, ref);
    if (!i) continue;
    if (*i == ci) {
      error(ref.pos, ref.path, "a class cannot demote to itself");
      continue;
    }
    target[ci] = i;
    ref_of[ci] = &ref;
  }
  // Cycles first: each class has at most one demote target, so walking
  // from each class finds any cycle; report it once, at the demote_to of
  // its first class in file order.
  std::vector<uint8_t> state(p.classes.size(), 0);  // 0 new, 1 on path, 2 done
  std::vector<bool> in_cycle(p.classes.size(), false);
  for (size_t s = 0; s < p.classes.size(); ++s) {
    std::vector<size_t> path;
    size_t c = s;
    while (state[c] == 0) {
      state[c] = 1;
      path.push_back(c);
      if (!target[c]) break;
      c = *target[c];
    }
    if (state[c] == 1 && target[c]) {
      auto start = std::find(path.begin(), path.end(), c);
      size_t first = *std::min_element(start, path.end());
      std::string chain = p.classes[first].name;
      for (size_t k = *target[first];; k = *target[k]) {
        chain += " -> " + p.classes[k].name;
        in_cycle[k] = true;
        if (k == first) break;
      }
      error(ref_of[first]->pos, ref_of[first]->path, "demote cycle: " + chain);
    }
    for (size_t k : path) state[k] = 2;
  }
  for (size_t ci = 0; ci < p.classes.size(); ++ci) {
    if (!target[ci] || in_cycle[ci]) continue;
    if (is_bad_priority(ci) || is_bad_priority(*target[ci])) continue;  // reported already
    const ClassCfg& from = p.classes[ci];
    const ClassCfg& to = p.classes[*target[ci]];
    if (to.priority <= from.priority) {
      error(ref_of[ci]->pos, ref_of[ci]->path,
            "demote_to must name a class of lower priority (higher number) than " + std::to_string(from.priority) +
                "; '" + to.name + "' has priority " + std::to_string(to.priority));
      continue;
    }
    p.classes[ci].demote_to = *target[ci];
  }
}

}  // namespace aiqos::policy_yaml
