// YAML -> Policy: the document and the sections before the classes. The
// loader never stops at the first problem: each check records an error at
// the offending node's mark and the walk goes on with the next key
// (control/yaml_reader.h). Classes, rules and cross references are in
// policy_yaml_classes.cpp.
#include "control/policy_yaml.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "control/policy_loader.h"

namespace aiqos {

std::string LoadResult::format_errors() const {
  std::string s;
  for (const auto& e : errors) s += e.format() + "\n";
  return s;
}

namespace policy_yaml {

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

bool is_tchar(char c) {  // RFC 9110 token character
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

namespace {

bool is_tenant_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') return false;
  return true;
}

bool is_credential(std::string_view lowered) {
  return std::find(kCredentialHeaders.begin(), kCredentialHeaders.end(), lowered) !=
         kCredentialHeaders.end();
}

}  // namespace

// ---- the document

LoadResult PolicyLoader::run(const YAML::Node& root) {
  Policy p;
  Field rootf{root, yaml::pos_of(root), ""};
  if (root.IsNull()) {
    error(rootf, "the policy is empty; expected a mapping with version, classes, ...");
    return finish(p);
  }
  auto top = map(rootf, {"version", "capture", "limits", "tenants", "fleet", "classes", "rules", "default_class"});
  if (!top) return finish(p);
  version(*top, p);
  // Sections are read in dependency order, not file order.
  if (auto f = top->get("capture")) capture(*f, p);
  if (auto f = top->get("limits")) limits(*f, p);
  if (auto f = top->get("tenants")) tenants(*f, p);
  if (auto f = top->get("fleet")) fleet(*f, p);
  if (auto f = top->get("classes"))
    classes(*f, p);
  else
    missing(*top, "classes");
  if (auto f = top->get("rules")) rules(*f, p);
  link(*top, p);
  return finish(p);
}

LoadResult PolicyLoader::finish(Policy& p) {
  LoadResult r;
  r.errors = take_errors();
  if (r.errors.empty()) r.policy = std::move(p);
  return r;
}

// ---- value kinds

std::optional<uint64_t> PolicyLoader::size(const Field& f, uint64_t min, uint64_t max) {
  auto v = parsed(f, parse_size, "a size like 64KiB or 1MB (B, KB, MB, GB, KiB, MiB, GiB)");
  if (v && *v < min) {
    expected(f, "at least " + std::to_string(min) + " bytes");
    return std::nullopt;
  }
  if (v && *v > max) {
    expected(f, "at most " + std::to_string(max) + " bytes");
    return std::nullopt;
  }
  return v;
}

std::optional<uint64_t> PolicyLoader::duration(const Field& f) {
  auto v = parsed(f, parse_duration, "a duration like 300s (ms, s, m, h)");
  if (v && *v == 0) {
    expected(f, "a duration above zero");
    return std::nullopt;
  }
  return v;
}

std::optional<Prefix> PolicyLoader::prefix(const Field& f) {
  static constexpr std::string_view kWhat = "an IPv4 or IPv6 prefix like 198.18.0.0/24";
  if (!f.node.IsScalar()) {
    expected(f, kWhat);
    return std::nullopt;
  }
  Prefix p;
  switch (parse_prefix(f.node.Scalar(), p)) {
    case PrefixError::ok: return p;
    case PrefixError::syntax: expected(f, kWhat); break;
    case PrefixError::length:
      error(f, std::string("prefix length out of range for IPv") + (p.family == 4 ? "4 (0..32)" : "6 (0..128)") +
                   ", got " + yaml::describe(f.node));
      break;
    case PrefixError::host_bits:
      error(f, "host bits set in " + yaml::describe(f.node) + "; did you mean '" + p.to_string() + "'?");
      break;
  }
  return std::nullopt;
}

std::optional<std::string> PolicyLoader::glob(const Field& f, bool fold) {
  auto s = str(f, "a name or glob pattern (* and ?)");
  if (!s) return s;
  return fold ? lower(*s) : *s;
}

std::optional<std::string> PolicyLoader::header_name(const Field& f, bool credential_ok) {
  auto s = str(f, "a header name like x-tenant");
  if (!s) return s;
  std::string h = lower(*s);
  if (h[0] == ':') {
    error(f, "'" + h + "' is a pseudo-header; match it with authority, path or method");
    return std::nullopt;
  }
  if (!std::all_of(h.begin(), h.end(), is_tchar)) {
    expected(f, "a header name (letters, digits, '-')");
    return std::nullopt;
  }
  if (is_credential(h) && !credential_ok) {
    error(f, "'" + h + "' carries credentials; credentials are never captured or matched "
             "(as tenants.header it names tenants by a salted hash)");
    return std::nullopt;
  }
  return h;
}

// ---- sections

void PolicyLoader::version(const MapView& top, Policy& p) {
  auto f = top.get("version");
  if (!f) {
    missing(top, "version");
    return;
  }
  if (f->node.IsScalar() && f->node.Scalar() == "1")
    p.version = 1;
  else
    expected(*f, "1, the only version this aiqos reads");
}

void PolicyLoader::capture(const Field& f, Policy& p) {
  auto m = map(f, {"headers"});
  if (!m) return;
  auto h = m->get("headers");
  if (!h || !list(*h, "header names")) return;
  auto& headers = p.capture.headers;
  for (size_t i = 0; i < h->node.size(); ++i) {
    Field e = element(*h, i);
    auto name = header_name(e);
    if (!name) continue;
    if (std::find(headers.begin(), headers.end(), *name) != headers.end()) {
      error(e, "header '" + *name + "' is listed twice");
      continue;
    }
    if (headers.size() == kMaxCaptureHeaders) {
      error(e, "at most " + std::to_string(kMaxCaptureHeaders) + " headers can be captured");
      continue;
    }
    headers.push_back(*name);
  }
}

void PolicyLoader::limits(const Field& f, Policy& p) {
  auto m = map(f, {"flows", "reassembly_bytes_per_flow", "reassembly_bytes_total", "streams_per_connection",
                   "header_block_bytes", "hpack_table_bytes", "request_body_scan_bytes", "idle_timeout"});
  if (!m) return;
  Limits& l = p.limits;
  if (auto v = m->get("flows")) set(l.flows, integer(*v, 1, 1u << 26, "a flow count"));
  if (auto v = m->get("streams_per_connection"))
    set(l.streams_per_connection, integer(*v, 1, 65535, "a stream count"));
  std::optional<Field> per_flow_f;
  // The classifier holds the per-flow, header and HPACK bounds in 32 bits (policy.h).
  if (auto v = m->get("reassembly_bytes_per_flow")) {
    per_flow_f = v;
    set(l.reassembly_bytes_per_flow, size(*v, 1024, kMaxReassemblyFlowBytes));
  }
  if (auto v = m->get("reassembly_bytes_total")) set(l.reassembly_bytes_total, size(*v, 1024));
  if (auto v = m->get("header_block_bytes")) set(l.header_block_bytes, size(*v, 1024, kMaxHeaderBytes));
  if (auto v = m->get("hpack_table_bytes")) set(l.hpack_table_bytes, size(*v, 0, kMaxHeaderBytes));
  if (auto v = m->get("request_body_scan_bytes")) set(l.request_body_scan_bytes, size(*v, 0));
  if (l.reassembly_bytes_per_flow > l.reassembly_bytes_total) {
    Field at = per_flow_f ? *per_flow_f : m->self;
    error(at, "reassembly_bytes_per_flow (" + std::to_string(l.reassembly_bytes_per_flow) +
                  ") exceeds reassembly_bytes_total (" + std::to_string(l.reassembly_bytes_total) + ")");
  }
  if (auto v = m->get("idle_timeout")) {
    auto t = map(*v, {"tcp", "tcp_closing", "other"});
    if (!t) return;
    if (auto d = t->get("tcp")) set(l.idle_timeout.tcp_ns, duration(*d));
    if (auto d = t->get("tcp_closing")) set(l.idle_timeout.tcp_closing_ns, duration(*d));
    if (auto d = t->get("other")) set(l.idle_timeout.other_ns, duration(*d));
  }
}

void PolicyLoader::tenants(const Field& f, Policy& p) {
  auto m = map(f, {"by", "header", "subnets"});
  if (!m) return;
  static constexpr std::string_view kBy[] = {"vlan", "src_subnet", "header"};
  auto by = m->get("by");
  if (!by) {
    missing(*m, "by");
    return;
  }
  auto b = word(*by, kBy);
  if (!b) return;
  TenantCfg& t = p.tenants;
  t.by = static_cast<TenantBy>(*b + 1);
  auto header = m->get("header");
  auto subnets = m->get("subnets");
  if (header && t.by != TenantBy::header) error(*header, "only used with 'by: header'");
  if (subnets && t.by != TenantBy::src_subnet) error(*subnets, "only used with 'by: src_subnet'");
  if (t.by == TenantBy::header) {
    t.header = "x-tenant";
    if (header) {
      // A credential names the tenant by its salted hash, never by its value.
      auto h = header_name(*header, true);
      if (!h) return;
      t.header = *h;
    }
    // The tenant header is captured whether or not capture.headers lists it.
    auto& hs = p.capture.headers;
    if (std::find(hs.begin(), hs.end(), t.header) == hs.end()) {
      if (hs.size() == kMaxCaptureHeaders)
        error(header ? *header : *by, "no room to capture the tenant header (at most " +
                                          std::to_string(kMaxCaptureHeaders) + " headers)");
      else
        hs.push_back(t.header);
    }
  }
  if (t.by == TenantBy::src_subnet) tenant_subnets(*by, subnets, t);
}

void PolicyLoader::tenant_subnets(const Field& by, const std::optional<Field>& subnets, TenantCfg& t) {
  if (!subnets) {
    error(by, "'by: src_subnet' needs a 'subnets' list");
    return;
  }
  if (!list(*subnets, "{prefix, name}", true)) return;
  for (size_t i = 0; i < subnets->node.size(); ++i) {
    auto sm = map(element(*subnets, i), {"prefix", "name"});
    if (!sm) continue;
    TenantSubnet s;
    bool ok = true;
    if (auto pf = sm->get("prefix")) {
      auto pr = prefix(*pf);
      ok = ok && pr;
      if (pr) {
        for (const auto& other : t.subnets)
          if (other.prefix == *pr) {
            error(*pf, "prefix " + pr->to_string() + " is already assigned to tenant '" + other.name + "'");
            ok = false;
          }
        s.prefix = *pr;
      }
    } else {
      missing(*sm, "prefix");
      ok = false;
    }
    if (auto nf = sm->get("name")) {
      auto n = str(*nf, "a tenant name");
      if (n && !is_tenant_name(*n)) {
        expected(*nf, "a tenant name of 1..64 letters, digits, '_', '-' or '.'");
        n.reset();
      }
      ok = ok && n;
      if (n) s.name = *n;
    } else {
      missing(*sm, "name");
      ok = false;
    }
    if (ok) t.subnets.push_back(std::move(s));
  }
}

bool PolicyLoader::fleet_scope(const Field& f, const Policy& p) {
  static constexpr std::string_view kScope[] = {"local", "fleet"};
  auto v = word(f, kScope);
  if (!v || *v == 0) return false;
  if (!p.fleet.enabled) {
    error(f, "'scope: fleet' needs a 'fleet' section naming the Redis the fleet shares");
    return false;
  }
  return true;
}

void PolicyLoader::fleet(const Field& f, Policy& p) {
  auto m = map(f, {"redis", "prefix", "sync_interval", "timeout", "expected_members", "local_share"});
  if (!m) return;
  FleetCfg& c = p.fleet;
  c.enabled = true;
  if (auto r = m->get("redis"))
    fleet_redis(*r, c);
  else
    missing(*m, "redis");
  if (auto v = m->get("prefix")) {
    auto s = str(*v, "a key prefix");
    bool ok = s && s->size() <= 64 && std::all_of(s->begin(), s->end(), [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.' || ch == ':';
    });
    if (s && !ok)
      expected(*v, "a key prefix of up to 64 letters, digits, '_', '-', '.', ':'");
    else
      set(c.prefix, s);
  }
  if (auto v = m->get("sync_interval")) {
    auto d = duration(*v);
    if (d && (*d < 10'000'000ULL || *d > 10'000'000'000ULL))
      expected(*v, "a sync interval of 10ms..10s");
    else
      set(c.sync_interval_ns, d);
  }
  if (auto v = m->get("timeout")) {
    auto d = duration(*v);
    if (d && *d > c.sync_interval_ns)
      error(*v, "the Redis timeout must not exceed sync_interval (" + std::to_string(c.sync_interval_ns / 1'000'000) +
                    "ms), got " + yaml::describe(v->node));
    else
      set(c.timeout_ns, d);
  } else {
    c.timeout_ns = std::min(c.timeout_ns, c.sync_interval_ns / 2);
  }
  if (auto v = m->get("expected_members")) set(c.expected_members, integer(*v, 1, 64, "a member count"));
  if (auto v = m->get("local_share")) set(c.local_share, number(*v, 0, 1, "a share above 0 and at most 1"));
}

void PolicyLoader::fleet_redis(const Field& f, FleetCfg& c) {
  auto rm = map(f, {"host", "port", "unix", "username", "password_file", "tls"});
  if (!rm) return;
  if (auto h = rm->get("host")) set(c.host, str(*h, "a host name or address"));
  if (auto h = rm->get("port")) set(c.port, small<uint16_t>(*h, 1, 65535, "a TCP port"));
  if (auto h = rm->get("unix")) {
    set(c.unix_socket, absolute_path(*h, "the absolute path of Redis' unix socket"));
    if (rm->get("host") || rm->get("port")) error(*h, "give either unix or host/port, not both");
  }
  if (auto h = rm->get("username")) set(c.username, str(*h, "a Redis ACL user name"));
  if (auto h = rm->get("password_file"))
    set(c.password_file, absolute_path(*h, "the absolute path of a file holding the Redis password"));
  if (rm->get("username") && !rm->get("password_file"))
    error(*rm->get("username"), "username needs password_file (AUTH username password)");
  if (auto h = rm->get("tls"))
    error(*h, "TLS to Redis needs hiredis_ssl (hiredis >= 1.0) and Debian 12 ships hiredis 0.14: "
              "reach a TLS Redis through a local TLS tunnel (docs/deployment.md)");
}

}  // namespace policy_yaml

LoadResult load_policy_string(std::string_view text, std::string_view name) {
  policy_yaml::PolicyLoader l(std::string(name.empty() ? "<string>" : name));
  auto root = l.parse(text);
  if (!root) {
    Policy none;
    return l.finish(none);
  }
  return l.run(*root);
}

LoadResult load_policy_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult r;
    r.errors.push_back({path, 0, 0, "", std::string("cannot open: ") + std::strerror(errno)});
    return r;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return load_policy_string(ss.str(), path);
}

}  // namespace aiqos
