// The classification and shaping policy as plain data: what the control plane
// loads from YAML (policy_yaml.h), validates in full, and later compiles into
// Hyperscan databases and meter profiles. No YAML types here; every unit
// is already converted (rates in bit/s, sizes in bytes, durations in ns).
//
// Ownership: built and owned by the control plane; workers never see this
// struct, only what is compiled from it. The reference for every key, its
// default and its units is docs/policy.md.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "classify/endpoint.h"

namespace aiqos {

// ---------------------------------------------------------------- helpers

// An IPv4 or IPv6 prefix. Addresses use the dataplane's layout
// (classify/packet_parse.h): 16 bytes, network order, IPv4 in the first 4.
// Host bits are always zero (the parser rejects prefixes with host bits set).
struct Prefix {
  uint8_t family = 4;  // 4 or 6
  std::array<uint8_t, 16> addr{};
  uint8_t len = 0;  // 0..32 for IPv4, 0..128 for IPv6

  // True when `a` (same layout) of the given family lies inside the prefix.
  // An IPv4 address never matches an IPv6 prefix and vice versa (no
  // v4-mapped magic: ::ffff:0:0/96 only matches IPv6 packets).
  bool contains(const std::array<uint8_t, 16>& a, uint8_t a_family) const noexcept;
  bool contains(const uint8_t* a16, uint8_t a_family) const noexcept;
  std::string to_string() const;  // "198.18.0.0/24", "2001:db8::/32"
  bool operator==(const Prefix&) const noexcept = default;
};

enum class PrefixError : uint8_t { ok, syntax, length, host_bits };
// Parses "a.b.c.d/len", "a.b.c.d" (/32), "v6/len" or "v6" (/128).
// On host_bits, `out` holds the masked prefix (for a "did you mean").
PrefixError parse_prefix(std::string_view text, Prefix& out);

// Shell-style glob over bytes: '*' any run (including empty and '/' or '.'),
// '?' exactly one byte, '\' makes the next byte literal. No character classes.
// Linear-time backtracking (one saved '*' position), no recursion.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;
// Same with ASCII case folded on both sides (authorities, SNI).
bool glob_match_icase(std::string_view pattern, std::string_view text) noexcept;
// True when the pattern contains an unescaped '*' or '?'.
bool glob_has_wildcard(std::string_view pattern) noexcept;

// Unit parsers (table-tested; docs/policy.md lists the accepted spellings).
// All return nullopt on syntax errors and on uint64 overflow. A number may
// have a decimal fraction ("1.5MiB"); the result is rounded to the nearest
// unit. Whitespace between number and unit is allowed.
//   size:     plain bytes or B, KB/MB/GB/TB (10^3n), KiB/MiB/GiB/TiB (2^10n);
//             the letter case is free ("64kib", "1mb").
//   rate:     plain bit/s or bit, k/kbit/kbps, M/Mbit/Mbps, G/Gbit/Gbps,
//             T/Tbit/Tbps (SI, case-insensitive). "bps" means BITS per second
//             (unlike tc, where it means bytes). "unlimited" gives 0.
//   duration: a number with a unit ms, s, m or h (no bare numbers), in ns.
std::optional<uint64_t> parse_size(std::string_view text);
std::optional<uint64_t> parse_rate(std::string_view text);
std::optional<uint64_t> parse_duration(std::string_view text);

// ---------------------------------------------------------------- the model

struct CaptureCfg {
  // Extra request headers recorded per request, lowercase, no duplicates.
  // Credential headers are rejected by the loader (see kCredentialHeaders).
  std::vector<std::string> headers;
};

// Headers whose values are credentials; the loader refuses to capture or
// match on them, whatever their case. The one exception is the tenant header
// (tenants.header, --tenant-header): its value is then replaced by a salted
// hash when it is captured (classify/credential_hash.h) and never stored.
inline constexpr std::array<std::string_view, 8> kCredentialHeaders = {
    "authorization", "proxy-authorization", "cookie",         "set-cookie",
    "x-api-key",     "api-key",             "x-goog-api-key", "x-auth-token",
};
inline bool is_credential_header(std::string_view lower_name) noexcept {
  for (auto c : kCredentialHeaders)
    if (c == lower_name) return true;
  return false;
}

struct IdleTimeouts {
  uint64_t tcp_ns = 300'000'000'000ULL;         // established TCP
  uint64_t tcp_closing_ns = 15'000'000'000ULL;  // after FIN or RST
  uint64_t other_ns = 60'000'000'000ULL;        // UDP and other IP
};

// Per worker (each worker has its own tables of these sizes). They size tables
// allocated at start: a reload cannot change them (limits_changed()).
struct Limits {
  uint64_t flows = 262144;
  uint64_t reassembly_bytes_per_flow = 64 * 1024;
  uint64_t reassembly_bytes_total = 64 * 1024 * 1024;
  uint64_t streams_per_connection = 128;
  uint64_t header_block_bytes = 64 * 1024;
  uint64_t hpack_table_bytes = 64 * 1024;
  uint64_t request_body_scan_bytes = 1024 * 1024;
  IdleTimeouts idle_timeout;
};

// Upper bounds the loader enforces: the classifier holds these in 32 bits.
inline constexpr uint64_t kMaxReassemblyFlowBytes = uint64_t{1} << 30;  // reassembly_bytes_per_flow
inline constexpr uint64_t kMaxHeaderBytes = uint64_t{16} << 20;  // header_block_bytes, hpack_table_bytes

// The keys of `limits` whose values differ between `a` and `b`, as a policy file
// names them ("limits.flows", "limits.idle_timeout.tcp"), in the order of
// docs/policy.md. Empty when they are all equal.
std::vector<std::string> limits_changed(const Limits& a, const Limits& b);

enum class TenantBy : uint8_t { none, vlan, src_subnet, header };
const char* tenant_by_name(TenantBy b) noexcept;

struct TenantSubnet {
  Prefix prefix;
  std::string name;
};

struct TenantCfg {
  TenantBy by = TenantBy::none;
  std::string header;                // by == header: lowercase name, also in capture.headers
  std::vector<TenantSubnet> subnets;  // by == src_subnet: longest prefix wins
};

enum class ExceedAction : uint8_t { drop, remark, demote };
const char* exceed_action_name(ExceedAction a) noexcept;

enum class BudgetScope : uint8_t { class_, tenant };
enum class BudgetAction : uint8_t { drop, demote };

struct TokenBudget {
  uint64_t tokens_per_minute = 0;  // > 0
  BudgetScope per = BudgetScope::class_;
  BudgetAction action = BudgetAction::drop;
  bool fleet = false;  // scope: fleet (shared through the fleet's Redis)
};

// The fleet section: where the budgets marked `scope: fleet` are shared
// (docs/policy.md, docs/qos.md "Fleet budgets").
struct FleetCfg {
  bool enabled = false;            // the section is present
  std::string host = "127.0.0.1";  // redis.host / redis.port, or redis.unix
  uint16_t port = 6379;
  std::string unix_socket;
  std::string username;            // AUTH username password (Redis 6 ACL); empty: AUTH password
  std::string password_file;       // the password, read at each (re)connect; empty: no AUTH
  std::string prefix = "aiqos";    // key prefix, one per fleet
  uint64_t sync_interval_ns = 100'000'000ULL;
  uint64_t timeout_ns = 50'000'000ULL;  // connect and command timeout
  uint32_t expected_members = 2;
  double local_share = 0;          // 0: 1 / expected_members
};

inline constexpr uint8_t kLowestPriority = 7;
inline constexpr uint64_t kMinBurstBytes = 2 * 1514;  // two full-size Ethernet frames

struct ClassCfg {
  std::string name;        // [a-z0-9_-]{1,32}, unique
  uint8_t priority = kLowestPriority;  // 0 highest .. 7 lowest
  uint64_t rate_bps = 0;   // 0 = unlimited
  uint64_t burst_bytes = 0;  // 0 when unlimited; else given or max(rate*10ms/8, kMinBurstBytes)
  ExceedAction exceed = ExceedAction::drop;
  std::optional<uint8_t> exceed_dscp;  // remark only
  std::optional<uint8_t> exceed_pcp;   // remark only
  std::optional<uint16_t> demote_to;   // class index; set iff exceed or token budget demotes
  std::optional<uint16_t> vlan;        // egress VLAN ID; absent = keep tags as they are
  std::optional<uint8_t> pcp;          // only with vlan
  std::optional<uint8_t> dscp;
  std::optional<double> requests_per_second;  // > 0
  bool requests_fleet = false;                // requests_per_second: {rate: N, scope: fleet}
  std::optional<TokenBudget> token_budget;
};

// The request's L7 protocol as the classifier labels it. h2 excludes gRPC;
// tls is traffic seen only as a TLS handshake (SNI known, nothing else).
enum class MatchProto : uint8_t { h1, h2, grpc, tls };
const char* match_proto_name(MatchProto p) noexcept;

struct HeaderMatch {
  std::string name;                 // lowercase, always in capture.headers
  std::vector<std::string> values;  // globs, any of
};

// All non-empty conditions must hold (AND); within one, any value (OR).
// An empty Match matches every request.
struct Match {
  std::vector<Endpoint> endpoints;
  std::vector<std::string> models;   // globs, case-sensitive
  std::optional<std::string> model_regex;  // Hyperscan syntax, checked by hs_expression_info()
  std::vector<std::string> authorities;    // globs, lowercase, against the host without :port
  std::vector<std::string> paths;          // globs, case-sensitive, query string included
  std::vector<std::string> methods;        // exact, case-sensitive ("POST")
  std::vector<HeaderMatch> headers;
  std::vector<uint16_t> vlans;  // ingress VLAN IDs; 0 = untagged
  std::vector<Prefix> src;
  std::vector<Prefix> dst;
  std::vector<std::string> sni;  // globs, lowercase
  uint8_t proto_mask = 0;        // bit (1 << MatchProto); 0 = any
  std::vector<std::string> tenants;  // globs

  bool empty() const noexcept;
};

struct RuleCfg {
  std::string name;  // optional; unique when given
  Match match;
  uint16_t class_index = 0;
  int line = 0;  // 1-based line of the rule in its file, for "which rule matched"
};

struct Policy {
  int version = 1;
  CaptureCfg capture;
  Limits limits;
  TenantCfg tenants;
  FleetCfg fleet;
  std::vector<ClassCfg> classes;
  std::vector<RuleCfg> rules;  // first match wins
  uint16_t default_class = 0;  // index into classes

  std::optional<uint16_t> class_index(std::string_view name) const noexcept;
  const ClassCfg* find_class(std::string_view name) const noexcept;
};

inline constexpr size_t kMaxClasses = 256;
inline constexpr size_t kMaxCaptureHeaders = 16;

}  // namespace aiqos
