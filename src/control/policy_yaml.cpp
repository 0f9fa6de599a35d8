// YAML -> Policy. The loader walks the document with yaml-cpp nodes and never
// stops at the first problem: each check records a PolicyError at the
// offending node's mark and the walk goes on with the next key. Cross
// references (classes named by rules, demote_to, default_class) are resolved
// after all classes are read, so their order in the file does not matter.
#include "control/policy_yaml.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <map>
#include <span>
#include <sstream>
#include <tuple>

namespace aiqos {

std::string PolicyError::format() const {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
  s += ": ";
  if (!field_path.empty()) s += field_path + ": ";
  s += message;
  return s;
}

std::string LoadResult::format_errors() const {
  std::string s;
  for (const auto& e : errors) s += e.format() + "\n";
  return s;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

namespace {

constexpr std::array<std::string_view, static_cast<size_t>(Endpoint::count_)> kEndpointNames = {
#define X(name) #name,
    AIQOS_ENDPOINTS(X)
#undef X
};

// The closest candidate, if it is close enough to be a typo.
std::string suggest(std::string_view word, std::span<const std::string_view> candidates) {
  size_t best = SIZE_MAX;
  std::string_view pick;
  for (auto c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best) {
      best = d;
      pick = c;
    }
  }
  size_t limit = std::max<size_t>(2, word.size() / 3);
  if (best == 0 || best > limit) return {};
  return std::string(pick);
}

std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates) {
  auto s = suggest(word, candidates);
  return s.empty() ? std::string{} : "; did you mean '" + s + "'?";
}

std::string one_of(std::span<const std::string_view> names) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) s += i + 1 == names.size() ? " or " : ", ";
    s += names[i];
  }
  return s;
}

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

bool is_tchar(char c) {  // RFC 9110 token character
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool is_name(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  return true;
}

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

// Hyperscan accepts PCRE syntax minus a few constructs; this catches the
// common mistakes early (unbalanced groups, unsupported constructs). The
// Hyperscan compiler remains the final judge when the policy is compiled.
std::string check_regex(std::string_view re) {
  if (re.empty()) return "an empty regex matches everything; leave model_regex out instead";
  int depth = 0;
  bool in_class = false;
  bool can_repeat = false;
  for (size_t i = 0; i < re.size(); ++i) {
    char c = re[i];
    if (c == '\\') {
      if (i + 1 == re.size()) return "regex ends with a lone '\\'";
      char n = re[i + 1];
      if (!in_class && n >= '1' && n <= '9') return "backreferences (\\1..\\9) are not supported by Hyperscan";
      if (!in_class && (n == 'K' || n == 'G' || n == 'C' || n == 'R'))
        return std::string("\\") + n + " is not supported by Hyperscan";
      ++i;
      can_repeat = true;
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      continue;
    }
    switch (c) {
      case '[':
        in_class = true;
        if (i + 1 < re.size() && re[i + 1] == '^') ++i;
        if (i + 1 < re.size() && re[i + 1] == ']') ++i;  // "[]...]" and "[^]...]"
        can_repeat = true;
        break;
      case '(':
        if (re.substr(i, 3) == "(?=" || re.substr(i, 3) == "(?!" || re.substr(i, 4) == "(?<=" ||
            re.substr(i, 4) == "(?<!")
          return "lookaround assertions are not supported by Hyperscan";
        if (re.substr(i, 3) == "(?>") return "atomic groups are not supported by Hyperscan";
        if (re.substr(i, 3) == "(?(") return "conditional patterns are not supported by Hyperscan";
        ++depth;
        can_repeat = false;
        break;
      case ')':
        if (--depth < 0) return "unbalanced ')' at offset " + std::to_string(i);
        can_repeat = true;
        break;
      case '|':
        can_repeat = false;
        break;
      case '*':
      case '+':
      case '?':
        if (!can_repeat) return "nothing to repeat before '" + std::string(1, c) + "' at offset " + std::to_string(i);
        if (i + 1 < re.size() && re[i + 1] == '+') return "possessive quantifiers are not supported by Hyperscan";
        if (i + 1 < re.size() && re[i + 1] == '?') ++i;  // lazy
        can_repeat = false;
        break;
      case '^':
        can_repeat = false;
        break;
      default:
        can_repeat = true;
    }
  }
  if (in_class) return "unterminated character class '['";
  if (depth > 0) return "unbalanced '(': " + std::to_string(depth) + " group(s) not closed";
  return {};
}

struct Pos {
  int line = 1, col = 1;
};

Pos pos_of(const YAML::Node& n, Pos fallback = {}) {
  if (!n.IsDefined()) return fallback;
  const YAML::Mark m = n.Mark();
  if (m.is_null()) return fallback;
  return {m.line + 1, m.column + 1};
}

// A node with where it is and how to name it in errors.
struct Field {
  YAML::Node node;
  Pos pos;
  std::string path;
};

struct Entry {
  std::string key;
  Pos key_pos;
  Field value;
};

struct MapView {
  std::vector<Entry> entries;
  Field self;

  const Entry* find(std::string_view key) const {
    for (const auto& e : entries)
      if (e.key == key) return &e;
    return nullptr;
  }
  std::optional<Field> get(std::string_view key) const {
    const Entry* e = find(key);
    return e ? std::optional<Field>(e->value) : std::nullopt;
  }
};

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Scalar: {
      std::string s = n.Scalar();
      if (s.size() > 48) s = s.substr(0, 45) + "...";
      return "'" + s + "'";
    }
    default: return "nothing";
  }
}

std::string join_path(const std::string& base, std::string_view key) {
  return base.empty() ? std::string(key) : base + "." + std::string(key);
}

// Where a class name is used before all classes are known.
struct ClassRef {
  std::string name;
  Pos pos;
  std::string path;
};

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}

  std::vector<PolicyError> errors;

  void error(Pos p, std::string path, std::string msg) {
    errors.push_back({file_, p.line, p.col, std::move(path), std::move(msg)});
  }
  void error(const Field& f, std::string msg) { error(f.pos, f.path, std::move(msg)); }

  // ---- structure

  // A mapping (null counts as an empty one: "limits:" with nothing under
  // it). Unknown keys and duplicate keys are reported here.
  std::optional<MapView> map(const Field& f, std::initializer_list<std::string_view> allowed) {
    MapView v{{}, f};
    if (f.node.IsNull()) return v;
    if (!f.node.IsMap()) {
      error(f, "expected a mapping of " + one_of({allowed.begin(), allowed.size()}) + ", got " +
                   describe(f.node));
      return std::nullopt;
    }
    for (auto it = f.node.begin(); it != f.node.end(); ++it) {
      Pos kp = pos_of(it->first, f.pos);
      std::string key = it->first.IsScalar() ? it->first.Scalar() : describe(it->first);
      std::string path = join_path(f.path, key);
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        error(kp, path,
              "unknown key '" + key + "'" + did_you_mean(key, {allowed.begin(), allowed.size()}));
        continue;
      }
      if (const Entry* first = v.find(key)) {
        error(kp, path, "duplicate key '" + key + "' (first at line " + std::to_string(first->key_pos.line) + ")");
        continue;
      }
      // A null value has no useful mark of its own (yaml-cpp puts it on the
      // next token); point at its key instead.
      Pos vp = it->second.IsNull() ? kp : pos_of(it->second, kp);
      v.entries.push_back({key, kp, Field{it->second, vp, path}});
    }
    return v;
  }

  // A mapping whose keys are free (match.headers).
  std::vector<Entry> free_map(const Field& f, std::string_view what) {
    std::vector<Entry> out;
    if (!f.node.IsMap()) {
      error(f, "expected a mapping of " + std::string(what) + ", got " + describe(f.node));
      return out;
    }
    for (auto it = f.node.begin(); it != f.node.end(); ++it) {
      Pos kp = pos_of(it->first, f.pos);
      std::string key = it->first.IsScalar() ? it->first.Scalar() : describe(it->first);
      Pos vp = it->second.IsNull() ? kp : pos_of(it->second, kp);
      out.push_back({key, kp, Field{it->second, vp, f.path + "." + key}});
    }
    return out;
  }

  void missing(const MapView& m, std::string_view key) {
    error(m.self.pos, m.self.path, "missing required key '" + std::string(key) + "'");
  }

  // Calls fn on each element of a list, or on the value itself when it is a
  // single scalar. Empty lists are an error: they would never match.
  template <typename Fn>
  void list_or_one(const Field& f, std::string_view what, Fn&& fn) {
    if (f.node.IsSequence()) {
      if (f.node.size() == 0) {
        error(f, "expected " + std::string(what) + " or a non-empty list of them, got an empty list");
        return;
      }
      for (size_t i = 0; i < f.node.size(); ++i) {
        YAML::Node e = f.node[i];
        fn(Field{e, pos_of(e, f.pos), f.path + "[" + std::to_string(i) + "]"});
      }
    } else if (f.node.IsScalar()) {
      fn(f);
    } else {
      error(f, "expected " + std::string(what) + " or a list of them, got " + describe(f.node));
    }
  }

  // ---- scalars

  std::optional<std::string> str(const Field& f, std::string_view what) {
    if (!f.node.IsScalar() || f.node.Scalar().empty()) {
      error(f, "expected " + std::string(what) + ", got " +
                   (f.node.IsScalar() ? std::string("an empty string") : describe(f.node)));
      return std::nullopt;
    }
    return f.node.Scalar();
  }

  std::optional<uint64_t> integer(const Field& f, uint64_t lo, uint64_t hi, std::string_view what) {
    std::string expected = "expected " + std::string(what) + " " + std::to_string(lo) + ".." +
                           std::to_string(hi) + ", got ";
    if (!f.node.IsScalar()) {
      error(f, expected + describe(f.node));
      return std::nullopt;
    }
    const std::string& s = f.node.Scalar();
    bool digits = !s.empty() && s.size() <= 19 &&
                  std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) {
      error(f, expected + describe(f.node));
      return std::nullopt;
    }
    uint64_t v = std::stoull(s);
    if (v < lo || v > hi) {
      error(f, expected + s);
      return std::nullopt;
    }
    return v;
  }

  template <typename T>
  std::optional<T> small(const Field& f, uint64_t lo, uint64_t hi, std::string_view what) {
    auto v = integer(f, lo, hi, what);
    return v ? std::optional<T>(static_cast<T>(*v)) : std::nullopt;
  }

  // One of a fixed set of words, with a typo suggestion.
  std::optional<size_t> word(const Field& f, std::span<const std::string_view> names) {
    if (!f.node.IsScalar()) {
      error(f, "expected " + one_of(names) + ", got " + describe(f.node));
      return std::nullopt;
    }
    const std::string& s = f.node.Scalar();
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == s) return i;
    // With a likely typo, the suggestion says more than a long list.
    std::string hint = did_you_mean(s, names);
    if (!hint.empty() && names.size() > 4)
      error(f, "unknown name " + describe(f.node) + hint);
    else
      error(f, "expected " + one_of(names) + ", got " + describe(f.node) + hint);
    return std::nullopt;
  }

  std::optional<uint64_t> size(const Field& f, uint64_t min) {
    std::optional<uint64_t> v;
    if (f.node.IsScalar()) v = parse_size(f.node.Scalar());
    if (!v) {
      error(f, "expected a size like 64KiB or 1MB (B, KB, MB, GB, KiB, MiB, GiB), got " + describe(f.node));
      return std::nullopt;
    }
    if (*v < min) {
      error(f, "expected at least " + std::to_string(min) + " bytes, got " + describe(f.node));
      return std::nullopt;
    }
    return v;
  }

  std::optional<uint64_t> duration(const Field& f) {
    std::optional<uint64_t> v;
    if (f.node.IsScalar()) v = parse_duration(f.node.Scalar());
    if (!v) {
      error(f, "expected a duration like 300s (ms, s, m, h), got " + describe(f.node));
      return std::nullopt;
    }
    if (*v == 0) {
      error(f, "expected a duration above zero, got " + describe(f.node));
      return std::nullopt;
    }
    return v;
  }

  std::optional<Prefix> prefix(const Field& f) {
    if (!f.node.IsScalar()) {
      error(f, "expected an IPv4 or IPv6 prefix like 198.18.0.0/24, got " + describe(f.node));
      return std::nullopt;
    }
    Prefix p;
    switch (parse_prefix(f.node.Scalar(), p)) {
      case PrefixError::ok: return p;
      case PrefixError::syntax:
        error(f, "expected an IPv4 or IPv6 prefix like 198.18.0.0/24, got " + describe(f.node));
        break;
      case PrefixError::length:
        error(f, std::string("prefix length out of range for IPv") + (p.family == 4 ? "4 (0..32)" : "6 (0..128)") +
                     ", got " + describe(f.node));
        break;
      case PrefixError::host_bits:
        error(f, "host bits set in " + describe(f.node) + "; did you mean '" + p.to_string() + "'?");
        break;
    }
    return std::nullopt;
  }

  std::optional<std::string> glob(const Field& f, bool fold) {
    auto s = str(f, "a name or glob pattern (* and ?)");
    if (!s) return s;
    return fold ? lower(*s) : *s;
  }

  // A header name for capture or match: lowercased, token characters only,
  // never a credential, never a pseudo-header.
  std::optional<std::string> header_name(const Field& f, Pos p, bool credential_ok = false) {
    Field at{f.node, p, f.path};
    auto s = str(at, "a header name like x-tenant");
    if (!s) return s;
    std::string h = lower(*s);
    if (h[0] == ':') {
      error(at, "'" + h + "' is a pseudo-header; match it with authority, path or method");
      return std::nullopt;
    }
    if (!std::all_of(h.begin(), h.end(), is_tchar)) {
      error(at, "expected a header name (letters, digits, '-'), got " + describe(f.node));
      return std::nullopt;
    }
    if (is_credential(h) && !credential_ok) {
      error(at, "'" + h + "' carries credentials; credentials are never captured or matched "
                "(as tenants.header it names tenants by a salted hash)");
      return std::nullopt;
    }
    return h;
  }

  // ---- sections

  void version(const MapView& top, Policy& p) {
    auto f = top.get("version");
    if (!f) {
      missing(top, "version");
      return;
    }
    if (f->node.IsScalar() && f->node.Scalar() == "1")
      p.version = 1;
    else
      error(*f, "expected 1, the only version this aiqos reads, got " + describe(f->node));
  }

  void capture(const Field& f, Policy& p) {
    auto m = map(f, {"headers"});
    if (!m) return;
    auto h = m->get("headers");
    if (!h) return;
    if (!h->node.IsSequence()) {
      error(*h, "expected a list of header names, got " + describe(h->node));
      return;
    }
    for (size_t i = 0; i < h->node.size(); ++i) {
      Field e{h->node[i], pos_of(h->node[i], h->pos), h->path + "[" + std::to_string(i) + "]"};
      auto name = header_name(e, e.pos);
      if (!name) continue;
      if (std::find(p.capture.headers.begin(), p.capture.headers.end(), *name) != p.capture.headers.end()) {
        error(e, "header '" + *name + "' is listed twice");
        continue;
      }
      if (p.capture.headers.size() == kMaxCaptureHeaders) {
        error(e, "at most " + std::to_string(kMaxCaptureHeaders) + " headers can be captured");
        continue;
      }
      p.capture.headers.push_back(*name);
    }
  }

  void limits(const Field& f, Policy& p) {
    auto m = map(f, {"flows", "reassembly_bytes_per_flow", "reassembly_bytes_total",
                     "streams_per_connection", "header_block_bytes", "hpack_table_bytes",
                     "request_body_scan_bytes", "idle_timeout"});
    if (!m) return;
    Limits& l = p.limits;
    if (auto v = m->get("flows")) set(l.flows, integer(*v, 1, 1u << 26, "a flow count"));
    if (auto v = m->get("streams_per_connection"))
      set(l.streams_per_connection, integer(*v, 1, 65535, "a stream count"));
    std::optional<Field> per_flow_f;
    if (auto v = m->get("reassembly_bytes_per_flow")) {
      per_flow_f = v;
      set(l.reassembly_bytes_per_flow, size(*v, 1024));
    }
    if (auto v = m->get("reassembly_bytes_total")) set(l.reassembly_bytes_total, size(*v, 1024));
    if (auto v = m->get("header_block_bytes")) set(l.header_block_bytes, size(*v, 1024));
    if (auto v = m->get("hpack_table_bytes")) set(l.hpack_table_bytes, size(*v, 0));
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

  template <typename T, typename U>
  static void set(T& dst, const std::optional<U>& v) {
    if (v) dst = static_cast<T>(*v);
  }

  // A plain decimal number (digits and one '.'), lo < v <= hi.
  std::optional<double> number(const Field& f, double lo, double hi, std::string_view what) {
    if (f.node.IsScalar()) {
      const std::string& s = f.node.Scalar();
      char* end = nullptr;
      double d = std::strtod(s.c_str(), &end);
      bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)) || ch == '.'; });
      if (plain && end && *end == '\0' && d > lo && d <= hi) return d;
    }
    error(f, "expected " + std::string(what) + ", got " + describe(f.node));
    return std::nullopt;
  }

  std::optional<std::string> absolute_path(const Field& f, std::string_view what) {
    auto s = str(f, what);
    if (s && (*s)[0] != '/') {
      error(f, "expected " + std::string(what) + ", got " + describe(f.node));
      return std::nullopt;
    }
    return s;
  }

  // `scope: local | fleet` of a budget; fleet needs the fleet section.
  bool fleet_scope(const Field& f, const Policy& p) {
    static constexpr std::string_view kScope[] = {"local", "fleet"};
    auto v = word(f, kScope);
    if (!v || *v == 0) return false;
    if (!p.fleet.enabled) {
      error(f, "'scope: fleet' needs a 'fleet' section naming the Redis the fleet shares");
      return false;
    }
    return true;
  }

  void fleet(const Field& f, Policy& p) {
    auto m = map(f, {"redis", "prefix", "sync_interval", "timeout", "expected_members", "local_share"});
    if (!m) return;
    FleetCfg& c = p.fleet;
    c.enabled = true;
    if (auto r = m->get("redis")) {
      if (auto rm = map(*r, {"host", "port", "unix", "username", "password_file", "tls"})) {
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
    } else {
      missing(*m, "redis");
    }
    if (auto v = m->get("prefix")) {
      auto s = str(*v, "a key prefix");
      bool ok = s && s->size() <= 64 && std::all_of(s->begin(), s->end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.' || ch == ':';
      });
      if (s && !ok)
        error(*v, "expected a key prefix of up to 64 letters, digits, '_', '-', '.', ':', got " + describe(v->node));
      else
        set(c.prefix, s);
    }
    if (auto v = m->get("sync_interval")) {
      auto d = duration(*v);
      if (d && (*d < 10'000'000ULL || *d > 10'000'000'000ULL))
        error(*v, "expected a sync interval of 10ms..10s, got " + describe(v->node));
      else
        set(c.sync_interval_ns, d);
    }
    if (auto v = m->get("timeout")) {
      auto d = duration(*v);
      if (d && *d > c.sync_interval_ns)
        error(*v, "the Redis timeout must not exceed sync_interval (" +
                      std::to_string(c.sync_interval_ns / 1'000'000) + "ms), got " + describe(v->node));
      else
        set(c.timeout_ns, d);
    } else {
      c.timeout_ns = std::min(c.timeout_ns, c.sync_interval_ns / 2);
    }
    if (auto v = m->get("expected_members")) set(c.expected_members, integer(*v, 1, 64, "a member count"));
    if (auto v = m->get("local_share")) set(c.local_share, number(*v, 0, 1, "a share above 0 and at most 1"));
  }

  void tenants(const Field& f, Policy& p) {
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
        auto h = header_name(*header, header->pos, true);
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
    if (t.by == TenantBy::src_subnet) {
      if (!subnets) {
        error(*by, "'by: src_subnet' needs a 'subnets' list");
        return;
      }
      if (!subnets->node.IsSequence() || subnets->node.size() == 0) {
        error(*subnets, "expected a non-empty list of {prefix, name}, got " + describe(subnets->node));
        return;
      }
      for (size_t i = 0; i < subnets->node.size(); ++i) {
        Field e{subnets->node[i], pos_of(subnets->node[i], subnets->pos),
                subnets->path + "[" + std::to_string(i) + "]"};
        auto sm = map(e, {"prefix", "name"});
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
            error(*nf, "expected a tenant name of 1..64 letters, digits, '_', '-' or '.', got " + describe(nf->node));
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
  }

  void classes(const Field& f, Policy& p) {
    if (!f.node.IsSequence() || f.node.size() == 0) {
      error(f, "expected a non-empty list of classes, got " + describe(f.node));
      return;
    }
    std::map<std::string, int> seen;  // name -> line
    for (size_t i = 0; i < f.node.size(); ++i) {
      Field e{f.node[i], pos_of(f.node[i], f.pos), f.path + "[" + std::to_string(i) + "]"};
      ClassCfg c;
      if (i == kMaxClasses) error(e, "at most " + std::to_string(kMaxClasses) + " classes");
      one_class(e, p, c, seen);
      // Keep the slot even when the class is broken, so that indices in
      // demote references and in error paths stay those of the file.
      p.classes.push_back(std::move(c));
    }
  }

  void one_class(const Field& e, const Policy& p, ClassCfg& c, std::map<std::string, int>& seen) {
    auto m = map(e, {"name", "priority", "rate", "burst", "exceed", "exceed_dscp", "exceed_pcp",
                     "demote_to", "vlan", "pcp", "dscp", "requests_per_second", "token_budget"});
    if (!m) return;
    if (auto f = m->get("name")) {
      auto n = str(*f, "a class name");
      if (n && !is_name(*n, 32)) {
        error(*f, "expected a class name of 1..32 characters a-z, 0-9, '_' or '-', got " + describe(f->node));
      } else if (n) {
        auto [it, fresh] = seen.emplace(*n, f->pos.line);
        if (!fresh)
          error(*f, "duplicate class name '" + *n + "' (first defined at line " + std::to_string(it->second) + ")");
        c.name = *n;
      }
    } else {
      missing(*m, "name");
    }
    if (auto f = m->get("priority")) {
      auto v = integer(*f, 0, 7, "a priority");
      set(c.priority, v);
      if (!v) bad_priority_.push_back(pending_index_);
    }

    bool rate_bad = false;  // already reported; do not pile on
    if (auto f = m->get("rate")) {
      std::optional<uint64_t> r;
      if (f->node.IsScalar()) r = parse_rate(f->node.Scalar());
      if (!r) {
        error(*f, "expected a rate like 20Mbit or 'unlimited', got " + describe(f->node));
        rate_bad = true;
      } else if (*r == 0 && lower(f->node.Scalar()) != "unlimited") {
        error(*f, "a rate of 0 would drop everything; write 'unlimited' for no limit");
        rate_bad = true;
      } else {
        c.rate_bps = *r;
      }
    }
    if (auto f = m->get("burst")) {
      auto b = size(*f, 1514);
      if (b && c.rate_bps == 0 && !rate_bad)
        error(*f, "burst needs a rate; this class is unlimited");
      else if (c.rate_bps != 0)
        set(c.burst_bytes, b);
    }
    if (c.rate_bps != 0 && c.burst_bytes == 0)
      c.burst_bytes = std::max<uint64_t>(c.rate_bps / 800, kMinBurstBytes);  // 10 ms at rate

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
    if (auto f = m->get("requests_per_second"); f && f->node.IsMap()) {
      // {rate: N, scope: local | fleet}
      if (auto rm = map(*f, {"rate", "scope"})) {
        if (auto r = rm->get("rate"))
          set(c.requests_per_second, number(*r, 0, 1e9, "a number of requests per second above 0"));
        else
          missing(*rm, "rate");
        if (auto s = rm->get("scope")) {
          c.requests_fleet = fleet_scope(*s, p);
          if (c.requests_fleet && c.requests_per_second && *c.requests_per_second < 1)
            error(*rm->get("rate"), "a fleet request budget counts whole requests per 1 s window: expected at least 1");
        }
      }
    } else if (f) {
      std::optional<double> v;
      if (f->node.IsScalar()) {
        const std::string& s = f->node.Scalar();
        char* end = nullptr;
        double d = std::strtod(s.c_str(), &end);
        bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)) || ch == '.'; });
        if (plain && end && *end == '\0' && d > 0 && d <= 1e9) v = d;
      }
      if (!v)
        error(*f, "expected a number of requests per second above 0, got " + describe(f->node));
      else
        c.requests_per_second = v;
    }
    bool budget_demotes = false;
    if (auto f = m->get("token_budget")) {
      if (auto tb = map(*f, {"tokens_per_minute", "per", "action", "scope"})) {
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
        budget_demotes = b.action == BudgetAction::demote;
        if (ok) c.token_budget = b;
      }
    }
    bool demotes = c.exceed == ExceedAction::demote || budget_demotes;
    if (auto f = m->get("demote_to")) {
      if (!demotes) {
        error(*f, "demote_to only applies with 'exceed: demote' or 'token_budget.action: demote'");
      } else if (auto n = str(*f, "a class name")) {
        demote_refs_.push_back({pending_index_, ClassRef{*n, f->pos, f->path}});
      }
    } else if (demotes) {
      error(c.exceed == ExceedAction::demote && exceed_f ? *exceed_f : m->self,
            "demoting needs 'demote_to: <class>'");
    }
    ++pending_index_;
  }

  void rules(const Field& f, Policy& p) {
    if (f.node.IsNull()) return;
    if (!f.node.IsSequence()) {
      error(f, "expected a list of rules, got " + describe(f.node));
      return;
    }
    std::map<std::string, int> seen;
    for (size_t i = 0; i < f.node.size(); ++i) {
      Field e{f.node[i], pos_of(f.node[i], f.pos), f.path + "[" + std::to_string(i) + "]"};
      auto m = map(e, {"name", "match", "class"});
      if (!m) continue;
      RuleCfg r;
      r.line = e.pos.line;
      if (auto n = m->get("name")) {
        auto s = str(*n, "a rule name");
        if (s && !is_name(*s, 64)) {
          error(*n, "expected a rule name of 1..64 characters a-z, 0-9, '_' or '-', got " + describe(n->node));
        } else if (s) {
          auto [it, fresh] = seen.emplace(*s, n->pos.line);
          if (!fresh)
            error(*n, "duplicate rule name '" + *s + "' (first defined at line " + std::to_string(it->second) + ")");
          r.name = *s;
        }
      }
      if (auto mf = m->get("match")) match(*mf, p, r.match);
      if (auto c = m->get("class")) {
        if (auto s = str(*c, "a class name")) rule_refs_.push_back({p.rules.size(), ClassRef{*s, c->pos, c->path}});
      } else {
        missing(*m, "class");
      }
      p.rules.push_back(std::move(r));
    }
  }

  void match(const Field& f, const Policy& p, Match& mt) {
    auto m = map(f, {"endpoint", "model", "model_regex", "authority", "path", "method", "headers",
                     "vlan", "src", "dst", "sni", "proto", "tenant"});
    if (!m) return;
    if (auto v = m->get("endpoint"))
      list_or_one(*v, "an endpoint name", [&](const Field& e) {
        if (auto i = word(e, kEndpointNames)) mt.endpoints.push_back(static_cast<Endpoint>(*i));
      });
    if (auto v = m->get("model"))
      list_or_one(*v, "a model name or glob", [&](const Field& e) {
        if (auto g = glob(e, false)) mt.models.push_back(*g);
      });
    if (auto v = m->get("model_regex")) {
      if (auto s = str(*v, "a regex")) {
        std::string why = check_regex(*s);
        if (why.empty())
          mt.model_regex = *s;
        else
          error(*v, why);
      }
    }
    if (auto v = m->get("authority"))
      list_or_one(*v, "a host name or glob", [&](const Field& e) {
        if (auto g = glob(e, true)) mt.authorities.push_back(*g);
      });
    if (auto v = m->get("path"))
      list_or_one(*v, "a path or glob", [&](const Field& e) {
        auto g = glob(e, false);
        if (g && (*g)[0] != '/' && (*g)[0] != '*')
          error(e, "a path starts with '/', got " + describe(e.node));
        else if (g)
          mt.paths.push_back(*g);
      });
    if (auto v = m->get("method"))
      list_or_one(*v, "an HTTP method", [&](const Field& e) {
        auto s = str(e, "an HTTP method like POST");
        if (!s) return;
        if (!std::all_of(s->begin(), s->end(), is_tchar)) {
          error(e, "expected an HTTP method like POST, got " + describe(e.node));
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
    if (auto v = m->get("headers")) {
      for (const Entry& h : free_map(*v, "header names to value globs")) {
        auto name = header_name(Field{YAML::Node(h.key), h.key_pos, h.value.path}, h.key_pos);
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
    if (auto v = m->get("tenant")) {
      if (p.tenants.by == TenantBy::none) {
        error(*v, "matching on tenant needs a 'tenants' section saying how tenants are found");
      } else {
        list_or_one(*v, "a tenant name or glob", [&](const Field& e) {
          auto g = glob(e, false);
          if (!g) return;
          if (!glob_has_wildcard(*g) && !tenant_exists(p.tenants, *g)) {
            std::string known;
            if (p.tenants.by == TenantBy::src_subnet) {
              for (const auto& s : p.tenants.subnets) known += (known.empty() ? "" : ", ") + s.name;
              error(e, "unknown tenant '" + *g + "'; tenants.subnets names: " + known);
            } else {
              error(e, "with 'by: vlan' a tenant is a VLAN ID 1..4094, got " + describe(e.node));
            }
            return;
          }
          mt.tenants.push_back(*g);
        });
      }
    }
  }

  static bool tenant_exists(const TenantCfg& t, const std::string& name) {
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

  // ---- cross references, once all classes are known

  std::optional<uint16_t> resolve(const Policy& p, const ClassRef& r) {
    if (auto i = p.class_index(r.name)) return i;
    std::vector<std::string_view> names;
    for (const auto& c : p.classes)
      if (!c.name.empty()) names.push_back(c.name);
    error(r.pos, r.path, "unknown class '" + r.name + "'" + did_you_mean(r.name, names));
    return std::nullopt;
  }

  void link(const MapView& top, Policy& p) {
    for (auto& [ri, ref] : rule_refs_)
      if (auto i = resolve(p, ref)) p.rules[ri].class_index = *i;

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
        for (size_t k = *target[first]; ; k = *target[k]) {
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
              "demote_to must name a class of lower priority (higher number) than " +
                  std::to_string(from.priority) + "; '" + to.name + "' has priority " +
                  std::to_string(to.priority));
        continue;
      }
      p.classes[ci].demote_to = *target[ci];
    }

    if (auto f = top.get("default_class")) {
      if (auto s = str(*f, "a class name"))
        if (auto i = resolve(p, ClassRef{*s, f->pos, f->path})) p.default_class = *i;
    } else if (auto i = p.class_index("default")) {
      p.default_class = *i;
    } else if (!p.classes.empty()) {
      error(top.self.pos, "", "no 'default_class' and no class named 'default': unmatched traffic needs a class");
    }
  }

  LoadResult run(const YAML::Node& root) {
    Policy p;
    Field rootf{root, pos_of(root), ""};
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

  LoadResult finish(Policy& p) {
    LoadResult r;
    std::stable_sort(errors.begin(), errors.end(), [](const PolicyError& a, const PolicyError& b) {
      return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    r.errors = std::move(errors);
    if (r.errors.empty()) r.policy = std::move(p);
    return r;
  }

 private:
  std::string file_;
  size_t pending_index_ = 0;  // index of the class being read
  std::vector<std::pair<size_t, ClassRef>> demote_refs_;  // class index -> target
  std::vector<std::pair<size_t, ClassRef>> rule_refs_;    // rule index -> class
  std::vector<size_t> bad_priority_;  // classes whose priority was invalid

  bool is_bad_priority(size_t ci) const {
    return std::find(bad_priority_.begin(), bad_priority_.end(), ci) != bad_priority_.end();
  }
};

// yaml-cpp 0.7 (Debian 12) loops for ever in LoadAll, allocating a null
// document a turn, on a token that no rule consumes, such as a ',' outside a
// flow collection (jbeder/yaml-cpp#1040, fixed upstream by #1319; found by
// policy_yaml_fuzz). A first pass with the parser alone and a handler that
// only notes where each document starts finds a document that starts where
// the one before it did: the parser made no progress there.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> marks;
  void OnDocumentStart(const YAML::Mark& m) override { marks.push_back(m); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Throws YAML::ParserException where the parser stops making progress.
void check_progress(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts h;
  while (parser.HandleNextDocument(h)) {
    size_t n = h.marks.size();
    if (n < 2 || h.marks[n - 1].pos != h.marks[n - 2].pos) continue;
    const YAML::Mark& m = h.marks[n - 1];
    unsigned char c = m.pos >= 0 && static_cast<size_t>(m.pos) < text.size() ? text[m.pos] : 0;
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", c);
    throw YAML::ParserException(m, std::string("unexpected ") +
                                       (c > 0x20 && c < 0x7f ? "'" + std::string(1, c) + "'" : hex));
  }
}

}  // namespace

LoadResult load_policy_string(std::string_view text, std::string_view name) {
  std::string file(name.empty() ? "<string>" : name);
  Loader l(file);
  std::vector<YAML::Node> docs;
  try {
    std::string s(text);
    check_progress(s);  // before LoadAll, which would not return
    docs = YAML::LoadAll(s);
  } catch (const YAML::Exception& e) {
    Pos p = e.mark.is_null() ? Pos{} : Pos{e.mark.line + 1, e.mark.column + 1};
    l.error(p, "", "YAML syntax error: " + e.msg);
    Policy none;
    return l.finish(none);
  }
  if (docs.size() > 1) {
    l.error(pos_of(docs[1]), "", "expected one YAML document, found " + std::to_string(docs.size()));
    Policy none;
    return l.finish(none);
  }
  return l.run(docs.empty() ? YAML::Node() : docs[0]);
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
