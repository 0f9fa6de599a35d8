#include "control/policy.h"

#include <arpa/inet.h>

#include <cctype>
#include <cstring>
#include <span>

namespace aiqos {

// ---------------------------------------------------------------- prefixes

bool Prefix::contains(const uint8_t* a, uint8_t a_family) const noexcept {
  if (a_family != family) return false;
  unsigned full = len / 8, rest = len % 8;
  if (std::memcmp(a, addr.data(), full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff00u >> rest);
  return (a[full] & mask) == addr[full];
}

bool Prefix::contains(const std::array<uint8_t, 16>& a, uint8_t a_family) const noexcept {
  return contains(a.data(), a_family);
}

std::string Prefix::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == 4 ? AF_INET : AF_INET6, addr.data(), buf, sizeof(buf));
  return std::string(buf) + "/" + std::to_string(len);
}

PrefixError parse_prefix(std::string_view text, Prefix& out) {
  out = Prefix{};
  auto slash = text.find('/');
  std::string host(text.substr(0, slash));
  if (host.empty() || host.size() >= INET6_ADDRSTRLEN) return PrefixError::syntax;
  if (inet_pton(AF_INET, host.c_str(), out.addr.data()) == 1) {
    out.family = 4;
  } else if (inet_pton(AF_INET6, host.c_str(), out.addr.data()) == 1) {
    out.family = 6;
  } else {
    return PrefixError::syntax;
  }
  unsigned max = out.family == 4 ? 32 : 128;
  unsigned len = max;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return PrefixError::syntax;
    len = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return PrefixError::syntax;
      len = len * 10 + static_cast<unsigned>(c - '0');
    }
    if (len > max) return PrefixError::length;
  }
  out.len = static_cast<uint8_t>(len);
  bool host_bits = false;
  for (unsigned i = 0; i < 16; ++i) {
    unsigned lo = i * 8;
    uint8_t mask = lo >= len ? 0 : lo + 8 <= len ? 0xff : static_cast<uint8_t>(0xff00u >> (len - lo));
    if (out.addr[i] & ~mask) host_bits = true;
    out.addr[i] &= mask;
  }
  return host_bits ? PrefixError::host_bits : PrefixError::ok;
}

// ---------------------------------------------------------------- globs

namespace {

char fold(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Classic greedy matcher: on mismatch, go back to the last '*' and let it
// swallow one more byte. Each '*' restarts at most |text| times, and a later
// '*' supersedes an earlier one, so the work is O(|pattern| * |text|) worst
// case with no recursion.
template <bool Icase>
bool glob_impl(std::string_view p, std::string_view t) noexcept {
  size_t pi = 0, ti = 0;
  size_t star_p = std::string_view::npos, star_t = 0;
  auto eq = [](char a, char b) { return Icase ? fold(a) == fold(b) : a == b; };
  while (ti < t.size()) {
    if (pi < p.size()) {
      char c = p[pi];
      if (c == '*') {
        star_p = ++pi;
        star_t = ti;
        continue;
      }
      if (c == '?') {
        ++pi;
        ++ti;
        continue;
      }
      if (c == '\\' && pi + 1 < p.size()) c = p[++pi];
      if (eq(c, t[ti])) {
        ++pi;
        ++ti;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    pi = star_p;
    ti = ++star_t;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text) noexcept {
  return glob_impl<false>(pattern, text);
}

bool glob_match_icase(std::string_view pattern, std::string_view text) noexcept {
  return glob_impl<true>(pattern, text);
}

bool glob_has_wildcard(std::string_view p) noexcept {
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\') {
      ++i;
      continue;
    }
    if (p[i] == '*' || p[i] == '?') return true;
  }
  return false;
}

// ---------------------------------------------------------------- units

namespace {

struct Unit {
  std::string_view name;  // lowercase
  uint64_t mult;
};

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = fold(c);
  return r;
}

// "<digits>[.<digits>] [unit]" -> value * mult(unit), rounded to nearest.
// `units` are matched case-insensitively; an empty unit name accepts a bare
// number.
std::optional<uint64_t> parse_with_units(std::string_view text, std::span<const Unit> units) {
  size_t i = 0;
  while (i < text.size() && text[i] == ' ') ++i;
  size_t start = i;
  unsigned __int128 whole = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    whole = whole * 10 + static_cast<unsigned>(text[i] - '0');
    if (whole > UINT64_MAX) return std::nullopt;
    ++i;
  }
  if (i == start) return std::nullopt;
  unsigned __int128 frac = 0, frac_div = 1;
  if (i < text.size() && text[i] == '.') {
    ++i;
    size_t fs = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (i - fs >= 18) return std::nullopt;  // absurd precision
      frac = frac * 10 + static_cast<unsigned>(text[i] - '0');
      frac_div *= 10;
      ++i;
    }
    if (i == fs) return std::nullopt;
  }
  while (i < text.size() && text[i] == ' ') ++i;
  size_t end = text.size();
  while (end > i && text[end - 1] == ' ') --end;
  std::string unit = lower(text.substr(i, end - i));
  for (const Unit& u : units) {
    if (u.name != unit) continue;
    unsigned __int128 v = whole * u.mult + (frac * u.mult + frac_div / 2) / frac_div;
    if (v > UINT64_MAX) return std::nullopt;
    return static_cast<uint64_t>(v);
  }
  return std::nullopt;
}

constexpr uint64_t kKi = 1024, kK = 1000;

constexpr Unit kSizeUnits[] = {
    {"", 1},
    {"b", 1},
    {"kb", kK},
    {"mb", kK * kK},
    {"gb", kK * kK * kK},
    {"tb", kK * kK * kK * kK},
    {"kib", kKi},
    {"mib", kKi * kKi},
    {"gib", kKi * kKi * kKi},
    {"tib", kKi * kKi * kKi * kKi},
};

constexpr Unit kRateUnits[] = {
    {"", 1},
    {"bit", 1},
    {"bps", 1},
    {"k", kK},
    {"kbit", kK},
    {"kbps", kK},
    {"m", kK * kK},
    {"mbit", kK * kK},
    {"mbps", kK * kK},
    {"g", kK * kK * kK},
    {"gbit", kK * kK * kK},
    {"gbps", kK * kK * kK},
    {"t", kK * kK * kK * kK},
    {"tbit", kK * kK * kK * kK},
    {"tbps", kK * kK * kK * kK},
};

constexpr uint64_t kMs = 1'000'000;
constexpr Unit kDurationUnits[] = {
    {"ms", kMs},
    {"s", 1000 * kMs},
    {"m", 60 * 1000 * kMs},
    {"h", 3600 * 1000 * kMs},
};

}  // namespace

std::optional<uint64_t> parse_size(std::string_view text) {
  return parse_with_units(text, kSizeUnits);
}

std::optional<uint64_t> parse_rate(std::string_view text) {
  if (lower(text) == "unlimited") return 0;
  return parse_with_units(text, kRateUnits);
}

std::optional<uint64_t> parse_duration(std::string_view text) {
  return parse_with_units(text, kDurationUnits);
}

// ---------------------------------------------------------------- names

const char* tenant_by_name(TenantBy b) noexcept {
  switch (b) {
    case TenantBy::none: return "none";
    case TenantBy::vlan: return "vlan";
    case TenantBy::src_subnet: return "src_subnet";
    case TenantBy::header: return "header";
  }
  return "?";
}

const char* exceed_action_name(ExceedAction a) noexcept {
  switch (a) {
    case ExceedAction::drop: return "drop";
    case ExceedAction::remark: return "remark";
    case ExceedAction::demote: return "demote";
  }
  return "?";
}

const char* match_proto_name(MatchProto p) noexcept {
  switch (p) {
    case MatchProto::h1: return "h1";
    case MatchProto::h2: return "h2";
    case MatchProto::grpc: return "grpc";
    case MatchProto::tls: return "tls";
  }
  return "?";
}

// ---------------------------------------------------------------- limits

// A field added to Limits must be compared here (and carried by apply_policy_limits, options.h).
static_assert(sizeof(Limits) == 10 * sizeof(uint64_t), "limits_changed() compares every field");

std::vector<std::string> limits_changed(const Limits& a, const Limits& b) {
  std::vector<std::string> out;
  auto cmp = [&](uint64_t x, uint64_t y, const char* key) {
    if (x != y) out.emplace_back(std::string("limits.") + key);
  };
  cmp(a.flows, b.flows, "flows");
  cmp(a.reassembly_bytes_per_flow, b.reassembly_bytes_per_flow, "reassembly_bytes_per_flow");
  cmp(a.reassembly_bytes_total, b.reassembly_bytes_total, "reassembly_bytes_total");
  cmp(a.streams_per_connection, b.streams_per_connection, "streams_per_connection");
  cmp(a.header_block_bytes, b.header_block_bytes, "header_block_bytes");
  cmp(a.hpack_table_bytes, b.hpack_table_bytes, "hpack_table_bytes");
  cmp(a.request_body_scan_bytes, b.request_body_scan_bytes, "request_body_scan_bytes");
  cmp(a.idle_timeout.tcp_ns, b.idle_timeout.tcp_ns, "idle_timeout.tcp");
  cmp(a.idle_timeout.tcp_closing_ns, b.idle_timeout.tcp_closing_ns, "idle_timeout.tcp_closing");
  cmp(a.idle_timeout.other_ns, b.idle_timeout.other_ns, "idle_timeout.other");
  return out;
}

// ---------------------------------------------------------------- model

bool Match::empty() const noexcept {
  return endpoints.empty() && models.empty() && !model_regex && authorities.empty() &&
         paths.empty() && methods.empty() && headers.empty() && vlans.empty() && src.empty() &&
         dst.empty() && sni.empty() && proto_mask == 0 && tenants.empty();
}

std::optional<uint16_t> Policy::class_index(std::string_view name) const noexcept {
  for (size_t i = 0; i < classes.size(); ++i)
    if (classes[i].name == name) return static_cast<uint16_t>(i);
  return std::nullopt;
}

const ClassCfg* Policy::find_class(std::string_view name) const noexcept {
  auto i = class_index(name);
  return i ? &classes[*i] : nullptr;
}

}  // namespace aiqos
