// The policy's value types on their own: sizes, rates and durations with
// their units, address prefixes, globs (control/policy.h).
#include "control/policy.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

namespace aiqos {
namespace {

constexpr uint64_t K = 1000, Ki = 1024;
constexpr uint64_t kSec = 1'000'000'000ULL;

// ------------------------------------------------------------ unit parsers

struct UnitCase {
  const char* text;
  std::optional<uint64_t> want;
};

TEST(PolicyUnits, Size) {
  const UnitCase cases[] = {
      {"0", 0},
      {"1514", 1514},
      {"64KiB", 64 * Ki},
      {"64kib", 64 * Ki},
      {"64 KiB", 64 * Ki},
      {"1MiB", Ki * Ki},
      {"1mib", Ki * Ki},
      {"2GiB", 2 * Ki * Ki * Ki},
      {"1TiB", Ki * Ki * Ki * Ki},
      {"10B", 10},
      {"10b", 10},
      {"1KB", K},
      {"1kb", K},
      {"1MB", K * K},
      {"3GB", 3 * K * K * K},
      {"1.5MiB", 1536 * Ki},
      {"0.5KB", 500},
      {"18446744073709551615", UINT64_MAX},
      {"18446744073709551616", std::nullopt},  // overflow
      {"16777216TiB", std::nullopt},           // overflow after the unit
      {"", std::nullopt},
      {"KiB", std::nullopt},
      {"64k", std::nullopt},  // ambiguous: 1000 or 1024?
      {"64 kbit", std::nullopt},
      {"-1", std::nullopt},
      {"1.", std::nullopt},
      {".5MB", std::nullopt},
      {"1e6", std::nullopt},
      {"0x100", std::nullopt},
  };
  for (const auto& c : cases) EXPECT_EQ(parse_size(c.text), c.want) << "'" << c.text << "'";
}

TEST(PolicyUnits, Rate) {
  const UnitCase cases[] = {
      {"unlimited", 0},
      {"Unlimited", 0},
      {"0", 0},
      {"1000", 1000},
      {"64bit", 64},
      {"64bps", 64},
      {"10k", 10 * K},
      {"10kbit", 10 * K},
      {"10Kbit", 10 * K},
      {"10kbps", 10 * K},
      {"500Mbit", 500 * K * K},
      {"500mbit", 500 * K * K},  // tc spelling; no such thing as millibits
      {"20Mbps", 20 * K * K},    // bits, not bytes (unlike tc)
      {"20M", 20 * K * K},
      {"1.5Gbit", 1500 * K * K},
      {"10G", 10 * K * K * K},
      {"10Gbps", 10 * K * K * K},
      {"1T", K * K * K * K},
      {"20 Mbit", 20 * K * K},
      {"20 parsecs", std::nullopt},
      {"20MB", std::nullopt},  // bytes are not a rate
      {"20Mibit", std::nullopt},
      {"fast", std::nullopt},
      {"", std::nullopt},
      {"-5Mbit", std::nullopt},
  };
  for (const auto& c : cases) EXPECT_EQ(parse_rate(c.text), c.want) << "'" << c.text << "'";
}

TEST(PolicyUnits, Duration) {
  const UnitCase cases[] = {
      {"300s", 300 * kSec},
      {"15s", 15 * kSec},
      {"250ms", 250'000'000},
      {"1.5s", 1'500'000'000},
      {"5m", 300 * kSec},
      {"2h", 7200 * kSec},
      {"2H", 7200 * kSec},
      {"0s", 0},
      {"300", std::nullopt},  // a bare number has no unit
      {"300sec", std::nullopt},
      {"1d", std::nullopt},
      {"10us", std::nullopt},
      {"s", std::nullopt},
  };
  for (const auto& c : cases) EXPECT_EQ(parse_duration(c.text), c.want) << "'" << c.text << "'";
}

// ------------------------------------------------------------ prefixes

std::array<uint8_t, 16> v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return {a, b, c, d};
}

std::array<uint8_t, 16> v6(const char* text) {
  Prefix p;
  EXPECT_EQ(parse_prefix(text, p), PrefixError::ok) << text;
  return p.addr;
}

TEST(PolicyPrefix, Parse) {
  struct Case {
    const char* text;
    PrefixError err;
    const char* canonical;  // to_string() when it parses (masked on host_bits)
  } cases[] = {
      {"198.18.0.0/24", PrefixError::ok, "198.18.0.0/24"},
      {"10.1.2.3", PrefixError::ok, "10.1.2.3/32"},
      {"0.0.0.0/0", PrefixError::ok, "0.0.0.0/0"},
      {"2001:db8::/32", PrefixError::ok, "2001:db8::/32"},
      {"::1", PrefixError::ok, "::1/128"},
      {"::/0", PrefixError::ok, "::/0"},
      {"198.18.0.5/24", PrefixError::host_bits, "198.18.0.0/24"},
      {"2001:db8::1/64", PrefixError::host_bits, "2001:db8::/64"},
      {"10.0.0.0/33", PrefixError::length, nullptr},
      {"2001:db8::/129", PrefixError::length, nullptr},
      {"10.0.0/8", PrefixError::syntax, nullptr},
      {"10.0.0.0/", PrefixError::syntax, nullptr},
      {"10.0.0.0/x", PrefixError::syntax, nullptr},
      {"10.0.0.0/-1", PrefixError::syntax, nullptr},
      {"example.com", PrefixError::syntax, nullptr},
      {"", PrefixError::syntax, nullptr},
  };
  for (const auto& c : cases) {
    Prefix p;
    EXPECT_EQ(parse_prefix(c.text, p), c.err) << c.text;
    if (c.canonical) {
      EXPECT_EQ(p.to_string(), c.canonical) << c.text;
    }
  }
}

TEST(PolicyPrefix, Contains) {
  Prefix p;
  ASSERT_EQ(parse_prefix("198.18.0.0/23", p), PrefixError::ok);
  EXPECT_TRUE(p.contains(v4(198, 18, 0, 0), 4));
  EXPECT_TRUE(p.contains(v4(198, 18, 1, 255), 4));
  EXPECT_FALSE(p.contains(v4(198, 18, 2, 0), 4));
  EXPECT_FALSE(p.contains(v4(198, 19, 0, 1), 4));
  EXPECT_FALSE(p.contains(v4(198, 18, 0, 1), 6)) << "families never mix";

  ASSERT_EQ(parse_prefix("198.18.0.128/25", p), PrefixError::ok);
  EXPECT_TRUE(p.contains(v4(198, 18, 0, 200), 4));
  EXPECT_FALSE(p.contains(v4(198, 18, 0, 127), 4));

  ASSERT_EQ(parse_prefix("10.0.0.1/32", p), PrefixError::ok);
  EXPECT_TRUE(p.contains(v4(10, 0, 0, 1), 4));
  EXPECT_FALSE(p.contains(v4(10, 0, 0, 2), 4));

  ASSERT_EQ(parse_prefix("0.0.0.0/0", p), PrefixError::ok);
  EXPECT_TRUE(p.contains(v4(1, 2, 3, 4), 4));
  EXPECT_FALSE(p.contains(v6("::1"), 6));

  ASSERT_EQ(parse_prefix("2001:db8:8000::/33", p), PrefixError::ok);
  EXPECT_TRUE(p.contains(v6("2001:db8:8000::1"), 6));
  EXPECT_TRUE(p.contains(v6("2001:db8:ffff:ffff::"), 6));
  EXPECT_FALSE(p.contains(v6("2001:db8:7fff::1"), 6));
  EXPECT_FALSE(p.contains(v6("2001:db8:8000::1").data(), 4));

  ASSERT_EQ(parse_prefix("::/0", p), PrefixError::ok);
  EXPECT_TRUE(p.contains(v6("fe80::1"), 6));
  EXPECT_FALSE(p.contains(v4(10, 0, 0, 1), 4));
}

// ------------------------------------------------------------ globs

TEST(PolicyGlob, Match) {
  struct Case {
    const char* pattern;
    const char* text;
    bool want;
  } cases[] = {
      {"gpt-4o", "gpt-4o", true},
      {"gpt-4o", "gpt-4o-mini", false},
      {"gpt-4o*", "gpt-4o", true},
      {"gpt-4o*", "gpt-4o-mini", true},
      {"gpt-4o*", "gpt-4", false},
      {"*", "", true},
      {"*", "anything/at.all", true},
      {"", "", true},
      {"", "x", false},
      {"?", "", false},
      {"?", "a", true},
      {"gpt-?o", "gpt-4o", true},
      {"gpt-?o", "gpt-40o", false},
      {"/v1/*", "/v1/chat/completions", true},
      {"/v1/*/completions", "/v1/chat/completions", true},
      {"/v1/*/completions", "/v1/completions", false},
      {"*.openai.com", "api.openai.com", true},
      {"*.openai.com", "openai.com", false},
      {"*a*b*c*", "xxaxxbxxcxx", true},
      {"*a*b*c*", "xxaxxcxxbxx", false},
      {"a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},  // no blow-up
      {"llama\\*", "llama*", true},
      {"llama\\*", "llama-3", false},
      {"what\\?", "what?", true},
      {"what\\?", "whatx", false},
      {"GPT-4o", "gpt-4o", false},  // case-sensitive
  };
  for (const auto& c : cases)
    EXPECT_EQ(glob_match(c.pattern, c.text), c.want) << c.pattern << " ~ " << c.text;
  EXPECT_TRUE(glob_match_icase("*.OpenAI.com", "API.openai.COM"));
  EXPECT_FALSE(glob_match_icase("*.openai.com", "api.openai.org"));
  EXPECT_TRUE(glob_has_wildcard("a*"));
  EXPECT_TRUE(glob_has_wildcard("a?"));
  EXPECT_FALSE(glob_has_wildcard("a\\*"));
  EXPECT_FALSE(glob_has_wildcard("plain"));
}


}  // namespace
}  // namespace aiqos
