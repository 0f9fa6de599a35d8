#include "control/options.h"

#include <gtest/gtest.h>

#include "control/policy.h"

#include <sstream>
#include <string>
#include <vector>

namespace aiqos {
namespace {

ParseOutcome parse(std::vector<std::string> args, Options& o, std::string* err = nullptr,
                   std::string* out = nullptr) {
  args.insert(args.begin(), "aiqosd");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  std::ostringstream os, es;
  auto r = parse_options(static_cast<int>(argv.size()), argv.data(), o, os, es);
  if (err) *err = es.str();
  if (out) *out = os.str();
  return r;
}

TEST(Options, Defaults) {
  Options o;
  ASSERT_EQ(parse({}, o), ParseOutcome::run);
  EXPECT_EQ(o.burst, 32);
  EXPECT_EQ(o.dispatch, DispatchMode::auto_);
  EXPECT_TRUE(o.promiscuous);
  EXPECT_EQ(o.rx_rate_pps, 0u);
  EXPECT_EQ(o.hpack_pool_bytes, 0u) << "derived from --l7-conns";
  ASSERT_EQ(parse({"--hpack-pool-bytes", "33554432"}, o), ParseOutcome::run);
  EXPECT_EQ(o.hpack_pool_bytes, 32u << 20);
}

// A policy's limits replace the sizing options; the others (l7-conns...) stay. An option given a
// value the policy replaces is reported for a warning; one left at its default is not.
TEST(Options, PolicyLimitsReplaceTheCommandLine) {
  Options o;
  ASSERT_EQ(parse({"--flows", "1000", "--l7-conns", "77"}, o), ParseOutcome::run);
  Limits l;
  l.flows = 2048;
  l.reassembly_bytes_total = 8 << 20;
  l.reassembly_bytes_per_flow = 32 << 10;
  l.streams_per_connection = 16;
  l.header_block_bytes = 8 << 10;
  l.hpack_table_bytes = 0;
  l.request_body_scan_bytes = 0;
  l.idle_timeout = {30'000'000'000ULL, 5'000'000'000ULL, 10'000'000'000ULL};
  std::vector<std::string> w = apply_policy_limits(l, o);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0], "--flows 1000 is replaced by the policy's limits.flows 2048");
  EXPECT_EQ(o.flows, 2048u);
  EXPECT_EQ(o.l7_conns, 77u);
  EXPECT_EQ(o.reassembly_bytes, 8u << 20);
  EXPECT_EQ(o.reassembly_flow_bytes, 32u << 10);
  EXPECT_EQ(o.h2_streams, 16u);
  EXPECT_EQ(o.header_block_bytes, 8u << 10);
  EXPECT_EQ(o.hpack_table_bytes, 0u);
  EXPECT_EQ(o.body_scan_bytes, 0u);
  EXPECT_EQ(o.idle_tcp_ns, 30'000'000'000ULL);
  EXPECT_EQ(o.idle_tcp_closing_ns, 5'000'000'000ULL);
  EXPECT_EQ(o.idle_other_ns, 10'000'000'000ULL);
  // limits_of gives back what was applied (what a reload is compared with).
  EXPECT_TRUE(limits_changed(limits_of(o), l).empty());
  EXPECT_TRUE(apply_policy_limits(l, o).empty()) << "the same values again: nothing replaced";
  // Without a policy the limits in force are the options' (the classifier's defaults for the
  // keys without an option): a policy with default limits differs only in the sized ones.
  EXPECT_EQ(limits_changed(limits_of(Options{}), Limits{}),
            (std::vector<std::string>{"limits.flows", "limits.reassembly_bytes_per_flow",
                                      "limits.reassembly_bytes_total"}));
}

TEST(Options, Values) {
  Options o;
  ASSERT_EQ(parse({"--stats-interval", "0.5", "--stats-json", "/tmp/x.json", "--burst", "64", "--dispatch",
                   "software", "--no-promisc", "--idle-exit", "2", "--rx-rate", "500000"},
                  o),
            ParseOutcome::run);
  EXPECT_DOUBLE_EQ(o.stats_interval_s, 0.5);
  EXPECT_EQ(o.stats_json, "/tmp/x.json");
  EXPECT_EQ(o.burst, 64);
  EXPECT_EQ(o.dispatch, DispatchMode::software);
  EXPECT_FALSE(o.promiscuous);
  EXPECT_DOUBLE_EQ(o.idle_exit_s, 2);
  EXPECT_EQ(o.rx_rate_pps, 500000u);
}

TEST(Options, ErrorsSayWhatIsWrong) {
  Options o;
  std::string err;
  EXPECT_EQ(parse({"--burst", "0"}, o, &err), ParseOutcome::error);
  EXPECT_NE(err.find("--burst"), std::string::npos);
  EXPECT_EQ(parse({"--dispatch", "magic"}, o, &err), ParseOutcome::error);
  EXPECT_NE(err.find("magic"), std::string::npos);
  EXPECT_EQ(parse({"--dispatch-ring", "1000"}, o, &err), ParseOutcome::error);
  EXPECT_EQ(parse({"--frobnicate"}, o, &err), ParseOutcome::error);
  EXPECT_NE(err.find("frobnicate"), std::string::npos);
  EXPECT_EQ(parse({"--pcap-out", "x.pcap"}, o, &err), ParseOutcome::error);
  Options fresh;  // o keeps the bad values above as its defaults
  EXPECT_EQ(parse({"--rx-rate", "-1"}, fresh, &err), ParseOutcome::error);
  EXPECT_NE(err.find("--rx-rate"), std::string::npos);
  Options m1, m2, m3;
  EXPECT_EQ(parse({"--mbuf-size", "512"}, m1, &err), ParseOutcome::error);
  EXPECT_NE(err.find("--mbuf-size"), std::string::npos);
  EXPECT_EQ(parse({"--mbuf-size", "70000"}, m2, &err), ParseOutcome::error);
  ASSERT_EQ(parse({"--mbuf-size", "16384"}, m3), ParseOutcome::run);
  EXPECT_EQ(m3.mbuf_size, 16384u);
}

TEST(Options, CredentialTenantHeaderNeedsASalt) {
  Options o;
  std::string err;
  EXPECT_EQ(parse({"--tenant-header", "authorization"}, o, &err), ParseOutcome::error);
  EXPECT_NE(err.find("--tenant-salt-file"), std::string::npos) << err;
  Options o2;
  ASSERT_EQ(parse({"--tenant-header", "x-api-key", "--tenant-salt-file", "/etc/aiqos/salt"}, o2, &err),
            ParseOutcome::run)
      << err;
  EXPECT_EQ(o2.tenant_header, "x-api-key");
  EXPECT_EQ(o2.tenant_salt_file, "/etc/aiqos/salt");
  EXPECT_EQ(o2.tenant_salt.len, 0);  // read by the daemon at start, not by the parser
  // Credentials are still never captured as such.
  Options o3;
  EXPECT_EQ(parse({"--capture-header", "cookie", "--tenant-salt-file", "/x"}, o3, &err), ParseOutcome::error);
  EXPECT_NE(err.find("credential"), std::string::npos);
}

TEST(Options, HelpListsOptions) {
  Options o;
  std::string out;
  EXPECT_EQ(parse({"--help"}, o, nullptr, &out), ParseOutcome::help);
  EXPECT_NE(out.find("--stats-interval"), std::string::npos);
  EXPECT_NE(out.find("[EAL options] -- [aiqos options]"), std::string::npos);
}

TEST(Options, OfflineEalArgsPairPcapPorts) {
  Options o;
  o.pcap_in = "in.pcap";
  o.pcap_out = "out.pcap";
  auto a = offline_eal_args(o, "aiqosd", "/tmp/empty.pcap");
  std::string all;
  for (auto& s : a) all += s + " ";
  EXPECT_NE(all.find("--no-huge"), std::string::npos);
  EXPECT_NE(all.find("net_pcap0,rx_pcap=in.pcap"), std::string::npos);
  EXPECT_NE(all.find("net_pcap1,rx_pcap=/tmp/empty.pcap,tx_pcap=out.pcap"), std::string::npos);
}

}  // namespace
}  // namespace aiqos
