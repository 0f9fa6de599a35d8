#include "control/policy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "control/policy_yaml.h"

#ifndef AIQOS_SOURCE_ROOT
#error "AIQOS_SOURCE_ROOT must point at the source tree (tests/unit/meson.build sets it)"
#endif

namespace aiqos {
namespace {

const std::string kRoot = AIQOS_SOURCE_ROOT;
const std::string kData = kRoot + "/tests/unit/control/data/";

constexpr uint64_t K = 1000, Ki = 1024;
constexpr uint64_t kSec = 1'000'000'000ULL;

// ------------------------------------------------------------ the loader

LoadResult load(const std::string& yaml) { return load_policy_string(yaml, "t.yaml"); }

// Only the one error expected, with its position and field.
void expect_one_error(const std::string& yaml, int line, int col, const std::string& field,
                      const std::string& message_part) {
  auto r = load(yaml);
  ASSERT_EQ(r.errors.size(), 1u) << yaml << "\n" << r.format_errors();
  const auto& e = r.errors[0];
  EXPECT_EQ(e.line, line) << e.format();
  EXPECT_EQ(e.column, col) << e.format();
  EXPECT_EQ(e.field_path, field) << e.format();
  EXPECT_NE(e.message.find(message_part), std::string::npos) << e.format();
  EXPECT_FALSE(r.ok());
}

const char* kMinimal = "version: 1\nclasses:\n  - name: default\n";

TEST(PolicyLoad, ExampleConfigLoads) {
  auto r = load_policy_file(kRoot + "/config/aiqos.yaml");
  ASSERT_TRUE(r.ok()) << r.format_errors();
  const Policy& p = *r.policy;
  ASSERT_EQ(p.classes.size(), 4u);
  EXPECT_EQ(p.classes[p.default_class].name, "default");
  auto inter = p.class_index("interactive");
  auto batch = p.class_index("batch");
  ASSERT_TRUE(inter && batch);
  const ClassCfg& ic = p.classes[*inter];
  EXPECT_EQ(ic.priority, 0);
  EXPECT_EQ(ic.rate_bps, 500'000'000u);
  EXPECT_EQ(ic.burst_bytes, 1'000'000u);
  EXPECT_EQ(ic.exceed, ExceedAction::demote);
  EXPECT_EQ(ic.demote_to, batch);
  EXPECT_EQ(ic.dscp, 46);
  EXPECT_EQ(p.classes[*batch].burst_bytes, 62'500u) << "10 ms at 50 Mbit/s";
  const ClassCfg* std_c = p.find_class("standard");
  ASSERT_NE(std_c, nullptr);
  ASSERT_TRUE(std_c->token_budget);
  EXPECT_EQ(std_c->token_budget->per, BudgetScope::tenant);
  EXPECT_EQ(std_c->exceed_dscp, 8);
  EXPECT_EQ(p.tenants.by, TenantBy::src_subnet);
  ASSERT_EQ(p.tenants.subnets.size(), 2u);
  EXPECT_EQ(p.tenants.subnets[1].name, "team-b");
  ASSERT_FALSE(p.rules.empty());
  const RuleCfg& r0 = p.rules[0];
  EXPECT_EQ(r0.name, "chat-premium");
  EXPECT_EQ(r0.class_index, *inter);
  EXPECT_EQ(r0.match.endpoints.size(), 3u);
  EXPECT_EQ(r0.match.endpoints[0], Endpoint::chat_completions);
  EXPECT_EQ(r0.match.models, (std::vector<std::string>{"gpt-4o*", "claude-*"}));
  EXPECT_GT(r0.line, 0);
  EXPECT_EQ(p.rules[2].match.model_regex, "^llama-3\\.[0-9]");
}

TEST(PolicyLoad, ExamplesLoad) {
  for (const char* f : {"/config/examples/vlan_tenants.yaml", "/tests/unit/control/data/minimal.yaml"}) {
    auto r = load_policy_file(kRoot + f);
    EXPECT_TRUE(r.ok()) << f << "\n" << r.format_errors();
  }
}

TEST(PolicyLoad, DefaultsFilled) {
  auto r = load(kMinimal);
  ASSERT_TRUE(r.ok()) << r.format_errors();
  const Policy& p = *r.policy;
  EXPECT_EQ(p.version, 1);
  EXPECT_TRUE(p.capture.headers.empty());
  EXPECT_EQ(p.limits.flows, 262144u);
  EXPECT_EQ(p.limits.reassembly_bytes_per_flow, 64 * Ki);
  EXPECT_EQ(p.limits.reassembly_bytes_total, 64 * Ki * Ki);
  EXPECT_EQ(p.limits.streams_per_connection, 128u);
  EXPECT_EQ(p.limits.header_block_bytes, 64 * Ki);
  EXPECT_EQ(p.limits.hpack_table_bytes, 64 * Ki);
  EXPECT_EQ(p.limits.request_body_scan_bytes, Ki * Ki);
  EXPECT_EQ(p.limits.idle_timeout.tcp_ns, 300 * kSec);
  EXPECT_EQ(p.limits.idle_timeout.tcp_closing_ns, 15 * kSec);
  EXPECT_EQ(p.limits.idle_timeout.other_ns, 60 * kSec);
  EXPECT_EQ(p.tenants.by, TenantBy::none);
  ASSERT_EQ(p.classes.size(), 1u);
  const ClassCfg& c = p.classes[0];
  EXPECT_EQ(c.priority, 7);
  EXPECT_EQ(c.rate_bps, 0u);
  EXPECT_EQ(c.burst_bytes, 0u);
  EXPECT_EQ(c.exceed, ExceedAction::drop);
  EXPECT_FALSE(c.vlan || c.pcp || c.dscp || c.demote_to || c.requests_per_second || c.token_budget);
  EXPECT_TRUE(p.rules.empty());
  EXPECT_EQ(p.default_class, 0);
}

TEST(PolicyLoad, BurstDefaultsToTenMillisecondsWithAFloor) {
  auto r = load("version: 1\nclasses:\n  - {name: default, rate: 1Gbit}\n  - {name: slow, rate: 1Mbit}\n"
                "  - {name: given, rate: 1Mbit, burst: 4KiB}\n");
  ASSERT_TRUE(r.ok()) << r.format_errors();
  EXPECT_EQ(r.policy->classes[0].burst_bytes, 1'250'000u);
  EXPECT_EQ(r.policy->classes[1].burst_bytes, kMinBurstBytes) << "1250 bytes is below two frames";
  EXPECT_EQ(r.policy->classes[2].burst_bytes, 4096u);
}

TEST(PolicyLoad, TenErrorsInOnePass) {
  auto r = load_policy_file(kData + "ten_errors.yaml");
  struct Want {
    int line, col;
    const char* field;
    const char* message_part;
  } want[] = {
      {5, 25, "capture.headers[1]", "'authorization' carries credentials"},
      {8, 30, "limits.reassembly_bytes_per_flow", "expected a size like 64KiB or 1MB"},
      {9, 23, "limits.idle_timeout.tcp", "expected a duration like 300s"},
      {12, 15, "classes[0].priority", "expected a priority 0..7, got 9"},
      {13, 11, "classes[0].rate", "expected a rate like 20Mbit or 'unlimited', got '20 parsecs'"},
      {18, 5, "classes[1].rat", "unknown key 'rat'; did you mean 'rate'?"},
      {19, 11, "classes[2].name", "duplicate class name 'interactive' (first defined at line 11)"},
      {24, 36, "rules[0].match.endpoint[1]", "did you mean 'chat_completions'?"},
      {25, 17, "rules[0].match.headers.x-tenant", "'x-tenant' is not captured"},
      {28, 12, "rules[1].class", "unknown class 'premium'"},
  };
  ASSERT_EQ(r.errors.size(), std::size(want)) << r.format_errors();
  for (size_t i = 0; i < std::size(want); ++i) {
    const auto& e = r.errors[i];
    EXPECT_EQ(e.line, want[i].line) << e.format();
    EXPECT_EQ(e.column, want[i].col) << e.format();
    EXPECT_EQ(e.field_path, want[i].field) << e.format();
    EXPECT_NE(e.message.find(want[i].message_part), std::string::npos) << e.format();
    EXPECT_EQ(e.file, kData + "ten_errors.yaml");
  }
}

TEST(PolicyLoad, ErrorFormat) {
  PolicyError e{"aiqos.yaml", 12, 11, "classes[1].rate", "expected a rate like 20Mbit or 'unlimited', got '20 parsecs'"};
  EXPECT_EQ(e.format(),
            "aiqos.yaml:12:11: classes[1].rate: expected a rate like 20Mbit or 'unlimited', got '20 parsecs'");
  PolicyError nopos{"missing.yaml", 0, 0, "", "cannot open: No such file or directory"};
  EXPECT_EQ(nopos.format(), "missing.yaml: cannot open: No such file or directory");
  auto r = load_policy_file(kData + "does-not-exist.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 0);
  EXPECT_NE(r.errors[0].message.find("cannot open"), std::string::npos);
}

TEST(PolicyLoad, YamlSyntaxErrorPosition) {
  // Indentation that makes a key a map value: yaml-cpp stops at the ':'.
  expect_one_error("version: 1\nclasses:\n  - name: a\n     rate: 1Mbit\n", 4, 10, "", "YAML syntax error");
  auto r = load_policy_file(kData + "syntax_error.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << r.format_errors();
  EXPECT_EQ(r.errors[0].line, 5);  // the unclosed '[' of line 4 is noticed on line 5
  EXPECT_EQ(r.errors[0].column, 9);
  expect_one_error("version: 1\nclasses: [{name: default}\n", 3, 1, "", "YAML syntax error");
}

TEST(PolicyLoad, UnknownKeySuggestion) {
  expect_one_error(std::string(kMinimal) + "    prority: 3\n", 4, 5, "classes[0].prority",
                   "unknown key 'prority'; did you mean 'priority'?");
  expect_one_error(std::string(kMinimal) + "limit: {}\n", 4, 1, "limit", "did you mean 'limits'?");
  // Far from everything: no suggestion.
  auto r = load(std::string(kMinimal) + "    zzzzzz: 1\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].message, "unknown key 'zzzzzz'");
  expect_one_error(std::string(kMinimal) + "    exceed: drpo\n", 4, 13, "classes[0].exceed",
                   "got 'drpo'; did you mean 'drop'?");
}

TEST(PolicyLoad, DuplicateKey) {
  expect_one_error("version: 1\nclasses:\n  - name: default\n    priority: 1\n    priority: 2\n", 5, 5,
                   "classes[0].priority", "duplicate key 'priority' (first at line 4)");
}

TEST(PolicyLoad, DemoteCycle) {
  auto r = load_policy_file(kData + "cycle.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << r.format_errors();
  EXPECT_EQ(r.errors[0].line, 6);
  EXPECT_EQ(r.errors[0].column, 16);
  EXPECT_EQ(r.errors[0].field_path, "classes[0].demote_to");
  EXPECT_EQ(r.errors[0].message, "demote cycle: a -> b -> c -> a");
}

TEST(PolicyLoad, DemoteRules) {
  const std::string head = "version: 1\nclasses:\n  - name: default\n    priority: 7\n";
  // Demoting to a class of equal or higher priority is refused.
  expect_one_error(head + "  - {name: a, priority: 7, exceed: demote, demote_to: default}\n", 5, 55,
                   "classes[1].demote_to", "lower priority");
  expect_one_error(head + "  - {name: a, priority: 3, exceed: demote, demote_to: a}\n", 5, 55,
                   "classes[1].demote_to", "cannot demote to itself");
  expect_one_error(head + "  - {name: a, priority: 3, exceed: demote}\n", 5, 36, "classes[1].exceed",
                   "needs 'demote_to");
  expect_one_error(head + "  - {name: a, priority: 3, demote_to: default}\n", 5, 39, "classes[1].demote_to",
                   "only applies with");
  // A token budget that demotes needs demote_to too, and then it is accepted.
  auto r = load(head + "  - {name: a, priority: 3, token_budget: {tokens_per_minute: 1000, action: demote},"
                       " demote_to: default}\n");
  ASSERT_TRUE(r.ok()) << r.format_errors();
  EXPECT_EQ(r.policy->classes[1].demote_to, 0);
  EXPECT_EQ(r.policy->classes[1].token_budget->action, BudgetAction::demote);
  EXPECT_EQ(r.policy->classes[1].token_budget->tokens_per_minute, 1000u);
}

// A class that is not a mapping keeps its slot, and the demotions of the
// classes after it stay theirs: b (priority 1) may demote to a (priority 2).
TEST(PolicyLoad, BrokenClassKeepsTheIndicesOfTheNext) {
  auto r = load("version: 1\nclasses:\n  - 5\n  - {name: a, priority: 2}\n"
                "  - {name: b, priority: 1, exceed: demote, demote_to: a}\n  - {name: default}\n");
  ASSERT_EQ(r.errors.size(), 1u) << r.format_errors();
  EXPECT_EQ(r.errors[0].format(), "t.yaml:3:5: classes[0]: expected a mapping of name, priority, rate, burst, exceed, "
                                  "exceed_dscp, exceed_pcp, demote_to, vlan, pcp, dscp, requests_per_second or "
                                  "token_budget, got '5'");
}

TEST(PolicyLoad, CredentialHeadersRejected) {
  for (const char* h : {"authorization", "Cookie", "x-api-key", "PROXY-AUTHORIZATION", "api-key"}) {
    auto r = load(std::string("version: 1\ncapture:\n  headers: [x-tenant, ") + h + "]\n" +
                  "classes:\n  - name: default\n");
    ASSERT_EQ(r.errors.size(), 1u) << h << "\n" << r.format_errors();
    EXPECT_EQ(r.errors[0].line, 3);
    EXPECT_EQ(r.errors[0].column, 23);
    EXPECT_EQ(r.errors[0].field_path, "capture.headers[1]");
    EXPECT_NE(r.errors[0].message.find("credentials"), std::string::npos);
  }
  // Nor in a rule.
  expect_one_error("version: 1\nclasses: [{name: default}]\nrules:\n  - match: {headers: {cookie: x}}\n"
                   "    class: default\n",
                   4, 23, "rules[0].match.headers.cookie", "credentials");
}

// The tenant header may be a credential: it is then captured, and hashed at capture
// (classify/credential_hash.h), never stored.
TEST(PolicyLoad, CredentialTenantHeaderAccepted) {
  auto r = load("version: 1\ntenants: {by: header, header: Authorization}\nclasses: [{name: default}]\n");
  ASSERT_TRUE(r.ok()) << r.format_errors();
  EXPECT_EQ(r.policy->tenants.by, TenantBy::header);
  EXPECT_EQ(r.policy->tenants.header, "authorization");
  EXPECT_EQ(r.policy->capture.headers, std::vector<std::string>{"authorization"});
}

TEST(PolicyLoad, CaptureHeadersNormalised) {
  auto r = load("version: 1\ncapture: {headers: [X-Priority]}\nclasses: [{name: default}]\n"
                "rules:\n  - match: {headers: {x-PRIORITY: [high, 'urg*']}}\n    class: default\n");
  ASSERT_TRUE(r.ok()) << r.format_errors();
  EXPECT_EQ(r.policy->capture.headers, std::vector<std::string>{"x-priority"});
  ASSERT_EQ(r.policy->rules[0].match.headers.size(), 1u);
  EXPECT_EQ(r.policy->rules[0].match.headers[0].name, "x-priority");
  EXPECT_EQ(r.policy->rules[0].match.headers[0].values, (std::vector<std::string>{"high", "urg*"}));
  expect_one_error("version: 1\ncapture: {headers: [':authority']}\nclasses: [{name: default}]\n", 2, 21,
                   "capture.headers[0]", "pseudo-header");
  expect_one_error("version: 1\ncapture: {headers: [a, A]}\nclasses: [{name: default}]\n", 2, 24,
                   "capture.headers[1]", "listed twice");
}

TEST(PolicyLoad, TenantHeaderIsCapturedAutomatically) {
  auto r = load("version: 1\ntenants: {by: header}\nclasses: [{name: default}]\n"
                "rules:\n  - match: {headers: {x-tenant: acme}, tenant: acme}\n    class: default\n");
  ASSERT_TRUE(r.ok()) << r.format_errors();
  EXPECT_EQ(r.policy->tenants.header, "x-tenant");
  EXPECT_EQ(r.policy->capture.headers, std::vector<std::string>{"x-tenant"});
}

TEST(PolicyLoad, TenantReferences) {
  const std::string subnets =
      "version: 1\ntenants:\n  by: src_subnet\n  subnets:\n    - {prefix: 10.0.0.0/8, name: a}\n"
      "classes: [{name: default}]\nrules:\n";
  ASSERT_TRUE(load(subnets + "  - {match: {tenant: a}, class: default}\n").ok());
  ASSERT_TRUE(load(subnets + "  - {match: {tenant: 'a*'}, class: default}\n").ok());
  expect_one_error(subnets + "  - {match: {tenant: b}, class: default}\n", 8, 22, "rules[0].match.tenant",
                   "unknown tenant 'b'");
  expect_one_error("version: 1\nclasses: [{name: default}]\nrules:\n  - {match: {tenant: a}, class: default}\n", 4,
                   22, "rules[0].match.tenant", "needs a 'tenants' section");
  expect_one_error("version: 1\ntenants: {by: vlan}\nclasses: [{name: default}]\nrules:\n"
                   "  - {match: {tenant: '4095'}, class: default}\n",
                   5, 22, "rules[0].match.tenant", "VLAN ID");
  expect_one_error("version: 1\ntenants: {by: src_subnet}\nclasses: [{name: default}]\n", 2, 15, "tenants.by",
                   "needs a 'subnets' list");
  expect_one_error("version: 1\ntenants: {by: vlan, header: x}\nclasses: [{name: default}]\n", 2, 29,
                   "tenants.header", "only used with 'by: header'");
}

TEST(PolicyLoad, Prefixes) {
  const std::string head = "version: 1\nclasses: [{name: default}]\nrules:\n";
  auto r = load(head + "  - {match: {src: [198.18.0.0/24, '2001:db8::/32'], dst: 10.0.0.1}, class: default}\n");
  ASSERT_TRUE(r.ok()) << r.format_errors();
  const Match& m = r.policy->rules[0].match;
  ASSERT_EQ(m.src.size(), 2u);
  EXPECT_EQ(m.src[1].family, 6);
  EXPECT_EQ(m.dst[0].len, 32);
  expect_one_error(head + "  - {match: {src: 198.18.0.5/24}, class: default}\n", 4, 19, "rules[0].match.src",
                   "did you mean '198.18.0.0/24'?");
  expect_one_error(head + "  - {match: {dst: [10.0.0.0/8, 10.0.0.0/40]}, class: default}\n", 4, 32,
                   "rules[0].match.dst[1]", "prefix length out of range for IPv4");
}

TEST(PolicyLoad, MatchConditions) {
  const std::string head = "version: 1\ncapture: {headers: [x-priority]}\nclasses: [{name: default}]\nrules:\n";
  auto r = load(head +
                "  - name: all\n"
                "    match:\n"
                "      endpoint: embeddings\n"
                "      model: [text-embedding-*, 'bge-?']\n"
                "      authority: API.Example.com\n"
                "      path: /v1/*\n"
                "      method: [POST, PUT]\n"
                "      vlan: [0, 100]\n"
                "      sni: '*.Example.com'\n"
                "      proto: [h2, grpc]\n"
                "    class: default\n"
                "  - class: default\n");
  ASSERT_TRUE(r.ok()) << r.format_errors();
  const Match& m = r.policy->rules[0].match;
  EXPECT_EQ(m.endpoints, std::vector<Endpoint>{Endpoint::embeddings});
  EXPECT_EQ(m.models.size(), 2u);
  EXPECT_EQ(m.authorities, std::vector<std::string>{"api.example.com"});
  EXPECT_EQ(m.paths, std::vector<std::string>{"/v1/*"});
  EXPECT_EQ(m.methods, (std::vector<std::string>{"POST", "PUT"}));
  EXPECT_EQ(m.vlans, (std::vector<uint16_t>{0, 100}));
  EXPECT_EQ(m.sni, std::vector<std::string>{"*.example.com"});
  EXPECT_EQ(m.proto_mask, (1u << static_cast<int>(MatchProto::h2)) | (1u << static_cast<int>(MatchProto::grpc)));
  EXPECT_FALSE(m.empty());
  EXPECT_TRUE(r.policy->rules[1].match.empty()) << "a rule without match is a catch-all";

  expect_one_error(head + "  - {match: {method: post}, class: default}\n", 5, 22, "rules[0].match.method",
                   "did you mean 'POST'?");
  expect_one_error(head + "  - {match: {endpoint: []}, class: default}\n", 5, 24, "rules[0].match.endpoint",
                   "empty list");
  expect_one_error(head + "  - {match: {path: v1/chat}, class: default}\n", 5, 20, "rules[0].match.path",
                   "starts with '/'");
  expect_one_error(head + "  - {match: {vlan: 4095}, class: default}\n", 5, 20, "rules[0].match.vlan",
                   "expected a VLAN ID, 0 for untagged 0..4094, got 4095");
  expect_one_error(head + "  - {match: {proto: [h3]}, class: default}\n", 5, 22, "rules[0].match.proto[0]",
                   "expected h1, h2, grpc or tls");
  expect_one_error(head + "  - {name: a, class: default}\n  - {name: a, class: default}\n", 6, 12,
                   "rules[1].name", "duplicate rule name 'a'");
  expect_one_error(head + "  - {match: {}}\n", 5, 5, "rules[0]", "missing required key 'class'");
  expect_one_error(head + "  - {class: defualt}\n", 5, 13, "rules[0].class", "did you mean 'default'?");
}

// Hyperscan's hs_expression_info() judges model_regex with the flags the
// engine compiles it with; its message is shown at the regex.
TEST(PolicyLoad, ModelRegexIsJudgedByHyperscan) {
  const std::string head = "version: 1\nclasses: [{name: default}]\nrules:\n";
  struct Case {
    const char* regex;
    const char* message;
  };
  const Case rejected[] = {
      {"(a)\\1", "Hyperscan rejects it: Back-references are unsupported."},
      {"(llama", "Hyperscan rejects it: Missing close parenthesis for group started at index 0."},
      {"(?=x)y", "Hyperscan rejects it: Zero-width assertions are not supported."},
      {"*x", "Hyperscan rejects it: Invalid repeat at index 0."},
      {"[z-a]x", "Hyperscan rejects it: Range out of order in character class at index 3."},
      {"a++", "Hyperscan rejects it: Possessive quantifiers are not supported."},
      {"a\\bc", "Hyperscan rejects it: Pattern can never match."},
      // Accepted by hs_expression_info, refused by hs_compile without HS_FLAG_ALLOWEMPTY.
      {"x*", "Hyperscan rejects it: it matches the empty string"},
      {"llama|", "Hyperscan rejects it: it matches the empty string"},
  };
  for (const Case& c : rejected) {
    SCOPED_TRACE(c.regex);
    auto r = load(head + "  - {match: {model_regex: '" + c.regex + "'}, class: default}\n");
    ASSERT_EQ(r.errors.size(), 1u) << r.format_errors();
    EXPECT_EQ(r.errors[0].line, 4);
    EXPECT_EQ(r.errors[0].column, 27);
    EXPECT_EQ(r.errors[0].field_path, "rules[0].match.model_regex");
    EXPECT_EQ(r.errors[0].message.rfind(c.message, 0), 0u) << r.errors[0].message;
  }
  // Block style: the position is the value's, the whole message Hyperscan's.
  auto r = load(head + "  - name: r\n    match:\n      model: x\n      model_regex: \"(a)\\\\1\"\n    class: default\n");
  ASSERT_EQ(r.errors.size(), 1u) << r.format_errors();
  EXPECT_EQ(r.errors[0].format(),
            "t.yaml:7:20: rules[0].match.model_regex: Hyperscan rejects it: Back-references are unsupported.");
  // A NUL would cut the C string Hyperscan reads.
  expect_one_error(head + "  - {match: {model_regex: \"a\\0b\"}, class: default}\n", 4, 27,
                   "rules[0].match.model_regex", "NUL byte");

  // Accepted as written; \C (one byte) was refused by the hand-made check
  // this replaces, and Hyperscan takes it.
  for (const char* ok : {"^llama-3\\.[0-9]", "^(meta-llama|Qwen)/.*-instruct$", "a\\Cb", "(?i)mistral", "x{2,5}"}) {
    SCOPED_TRACE(ok);
    auto good = load(head + "  - {match: {model_regex: '" + ok + "'}, class: default}\n");
    ASSERT_TRUE(good.ok()) << good.format_errors();
    EXPECT_EQ(good.policy->rules[0].match.model_regex, ok);
  }
}

TEST(PolicyLoad, ClassFields) {
  auto r = load("version: 1\nclasses:\n  - name: default\n  - name: voice\n    priority: 1\n    vlan: 100\n"
                "    pcp: 5\n    dscp: 46\n    requests_per_second: 2.5\n    rate: 20Mbps\n    exceed: remark\n"
                "    exceed_pcp: 1\n");
  ASSERT_TRUE(r.ok()) << r.format_errors();
  const ClassCfg& c = r.policy->classes[1];
  EXPECT_EQ(c.vlan, 100);
  EXPECT_EQ(c.pcp, 5);
  EXPECT_EQ(c.dscp, 46);
  EXPECT_EQ(c.requests_per_second, 2.5);
  EXPECT_EQ(c.rate_bps, 20'000'000u);
  EXPECT_EQ(c.exceed, ExceedAction::remark);
  EXPECT_EQ(c.exceed_pcp, 1);
  EXPECT_FALSE(c.exceed_dscp);

  const std::string head = "version: 1\nclasses:\n  - name: default\n";
  expect_one_error(head + "    pcp: 3\n", 4, 10, "classes[0].pcp", "pcp needs vlan");
  expect_one_error(head + "    vlan: 4095\n", 4, 11, "classes[0].vlan", "expected a VLAN ID 1..4094, got 4095");
  expect_one_error(head + "    dscp: 64\n", 4, 11, "classes[0].dscp", "0..63");
  expect_one_error(head + "    rate: 0\n", 4, 11, "classes[0].rate", "write 'unlimited'");
  expect_one_error(head + "    burst: 1MB\n", 4, 12, "classes[0].burst", "burst needs a rate");
  expect_one_error(head + "    rate: 1Mbit\n    burst: 1000\n", 5, 12, "classes[0].burst", "at least 1514");
  expect_one_error(head + "    exceed: remark\n", 4, 13, "classes[0].exceed", "needs exceed_dscp or exceed_pcp");
  expect_one_error(head + "    exceed_dscp: 8\n", 4, 18, "classes[0].exceed_dscp", "only applies with 'exceed: remark'");
  expect_one_error(head + "    requests_per_second: 0\n", 4, 26, "classes[0].requests_per_second", "above 0");
  expect_one_error(head + "    token_budget: {per: tenant, tokens_per_minute: 10}\n", 4, 25,
                   "classes[0].token_budget.per", "needs a 'tenants' section");
  expect_one_error(head + "    token_budget: {per: class}\n", 4, 19, "classes[0].token_budget",
                   "missing required key 'tokens_per_minute'");
  expect_one_error(head + "  - name: Voice\n", 4, 11, "classes[1].name", "a-z, 0-9");
  expect_one_error(head + "  - priority: 1\n", 4, 5, "classes[1]", "missing required key 'name'");
}

TEST(PolicyLoad, TopLevel) {
  expect_one_error("classes: [{name: default}]\n", 1, 1, "", "missing required key 'version'");
  expect_one_error("version: 2\nclasses: [{name: default}]\n", 1, 10, "version", "the only version");
  expect_one_error("version: 1\n", 1, 1, "", "missing required key 'classes'");
  expect_one_error("version: 1\nclasses: []\n", 2, 10, "classes", "non-empty list");
  expect_one_error("version: 1\nclasses: [{name: a}]\n", 1, 1, "", "no class named 'default'");
  expect_one_error("version: 1\nclasses: [{name: a}]\ndefault_class: b\n", 3, 16, "default_class",
                   "unknown class 'b'");
  expect_one_error("", 1, 1, "", "the policy is empty");
  expect_one_error("- 1\n", 1, 1, "", "expected a mapping");
  expect_one_error("version: 1\nclasses: [{name: default}]\n---\nversion: 1\n", 4, 1, "", "one YAML document");
  // yaml-cpp 0.7's LoadAll loops for ever on a stray ',' (policy_yaml_fuzz).
  expect_one_error(",", 1, 1, "", "YAML syntax error: unexpected ','");
  expect_one_error("version: 1\nclasses: [{name: default}]\n,\n", 3, 1, "", "YAML syntax error");
  auto r = load("version: 1\nclasses: [{name: a}, {name: b}]\ndefault_class: b\n");
  ASSERT_TRUE(r.ok()) << r.format_errors();
  EXPECT_EQ(r.policy->default_class, 1);
}

TEST(PolicyLoad, Limits) {
  auto r = load("version: 1\nlimits:\n  flows: 1024\n  reassembly_bytes_per_flow: 16KiB\n"
                "  reassembly_bytes_total: 1MiB\n  idle_timeout: {tcp: 2m}\nclasses: [{name: default}]\n");
  ASSERT_TRUE(r.ok()) << r.format_errors();
  EXPECT_EQ(r.policy->limits.flows, 1024u);
  EXPECT_EQ(r.policy->limits.reassembly_bytes_per_flow, 16 * Ki);
  EXPECT_EQ(r.policy->limits.idle_timeout.tcp_ns, 120 * kSec);
  EXPECT_EQ(r.policy->limits.idle_timeout.other_ns, 60 * kSec) << "unset keys keep their default";
  expect_one_error("version: 1\nlimits:\n  reassembly_bytes_per_flow: 2MiB\n  reassembly_bytes_total: 1MiB\n"
                   "classes: [{name: default}]\n",
                   3, 30, "limits.reassembly_bytes_per_flow", "exceeds reassembly_bytes_total");
  expect_one_error("version: 1\nlimits: {flows: 0}\nclasses: [{name: default}]\n", 2, 17, "limits.flows",
                   "expected a flow count 1..67108864, got 0");
  expect_one_error("version: 1\nlimits: {idle_timeout: {tcp: 0s}}\nclasses: [{name: default}]\n", 2, 30,
                   "limits.idle_timeout.tcp", "above zero");
  expect_one_error("version: 1\nlimits: [1]\nclasses: [{name: default}]\n", 2, 9, "limits", "expected a mapping");
}

// The ranges fit what the classifier holds: 32-bit header, HPACK and per-flow bounds; an HPACK
// table of 0 and a body scan of 0 (never) are allowed.
TEST(PolicyLoad, LimitsRangesFitTheClassifier) {
  auto r = load("version: 1\nlimits: {hpack_table_bytes: 0, request_body_scan_bytes: 0, header_block_bytes: 16MiB}\n"
                "classes: [{name: default}]\n");
  ASSERT_TRUE(r.ok()) << r.format_errors();
  EXPECT_EQ(r.policy->limits.hpack_table_bytes, 0u);
  EXPECT_EQ(r.policy->limits.request_body_scan_bytes, 0u);
  EXPECT_EQ(r.policy->limits.header_block_bytes, 16 * Ki * Ki);
  expect_one_error("version: 1\nlimits: {header_block_bytes: 5GiB}\nclasses: [{name: default}]\n", 2, 30,
                   "limits.header_block_bytes", "at most 16777216 bytes");
  expect_one_error("version: 1\nlimits: {hpack_table_bytes: 17MiB}\nclasses: [{name: default}]\n", 2, 29,
                   "limits.hpack_table_bytes", "at most 16777216 bytes");
  expect_one_error("version: 1\nlimits: {reassembly_bytes_per_flow: 4GiB, reassembly_bytes_total: 8GiB}\n"
                   "classes: [{name: default}]\n",
                   2, 37, "limits.reassembly_bytes_per_flow", "at most 1073741824 bytes");
  expect_one_error("version: 1\nlimits: {streams_per_connection: 65536}\nclasses: [{name: default}]\n", 2, 34,
                   "limits.streams_per_connection", "1..65535");
}

// A reload names the limits it cannot apply: each key, as a policy file writes it.
TEST(PolicyLimits, ChangedNamesEachKey) {
  const Limits d;
  EXPECT_TRUE(limits_changed(d, d).empty());
  struct Case {
    void (*set)(Limits&);
    const char* key;
  };
  const Case cases[] = {
      {[](Limits& l) { l.flows = 1; }, "limits.flows"},
      {[](Limits& l) { l.reassembly_bytes_per_flow = 1; }, "limits.reassembly_bytes_per_flow"},
      {[](Limits& l) { l.reassembly_bytes_total = 1; }, "limits.reassembly_bytes_total"},
      {[](Limits& l) { l.streams_per_connection = 1; }, "limits.streams_per_connection"},
      {[](Limits& l) { l.header_block_bytes = 1; }, "limits.header_block_bytes"},
      {[](Limits& l) { l.hpack_table_bytes = 1; }, "limits.hpack_table_bytes"},
      {[](Limits& l) { l.request_body_scan_bytes = 1; }, "limits.request_body_scan_bytes"},
      {[](Limits& l) { l.idle_timeout.tcp_ns = 1; }, "limits.idle_timeout.tcp"},
      {[](Limits& l) { l.idle_timeout.tcp_closing_ns = 1; }, "limits.idle_timeout.tcp_closing"},
      {[](Limits& l) { l.idle_timeout.other_ns = 1; }, "limits.idle_timeout.other"},
  };
  Limits all;
  std::vector<std::string> want;
  for (const Case& c : cases) {
    Limits one;
    c.set(one);
    EXPECT_EQ(limits_changed(d, one), std::vector<std::string>{c.key});
    EXPECT_EQ(limits_changed(one, d), std::vector<std::string>{c.key}) << "either way";
    c.set(all);
    want.push_back(c.key);
  }
  EXPECT_EQ(limits_changed(d, all), want) << "every key, in the order of docs/policy.md";
  // From files: a reload of the same limits written otherwise changes nothing.
  auto a = load("version: 1\nlimits: {flows: 1024, idle_timeout: {tcp: 2m}}\nclasses: [{name: default}]\n");
  auto b = load("version: 1\nlimits: {idle_timeout: {tcp: 120s}, flows: 1024}\nclasses: [{name: default}]\n");
  auto c = load("version: 1\nlimits: {flows: 1024, streams_per_connection: 16, idle_timeout: {tcp: 30s}}\n"
                "classes: [{name: default}]\n");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_TRUE(limits_changed(a.policy->limits, b.policy->limits).empty());
  EXPECT_EQ(limits_changed(a.policy->limits, c.policy->limits),
            (std::vector<std::string>{"limits.streams_per_connection", "limits.idle_timeout.tcp"}));
}

TEST(PolicyLoad, ManyErrorsAreSortedByPosition) {
  auto r = load("version: 1\nclasses:\n  - {name: default, rate: x}\n  - {name: b, rate: y}\nrules:\n"
                "  - {class: nope}\n");
  ASSERT_EQ(r.errors.size(), 3u) << r.format_errors();
  EXPECT_EQ(r.errors[0].line, 3);
  EXPECT_EQ(r.errors[1].line, 4);
  EXPECT_EQ(r.errors[2].line, 6);
}

}  // namespace
}  // namespace aiqos
