// dataplane/classifier_config.h: every key of a policy's `limits` reaches the classifier config
// each worker is built from (the policy file, then apply_policy_limits as aiqosd does at start,
// then classifier_config as Dataplane::init does), and a classifier built from it honours them:
// a stream over streams_per_connection is not tracked, request_body_scan_bytes: 0 never finds a
// model in the body, a header section over header_block_bytes stops the parser, a flow idle
// longer than idle_timeout.tcp expires.
#include "dataplane/classifier_config.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../classify/classifier_fixture.h"
#include "control/options.h"
#include "control/policy_yaml.h"

namespace aiqos {
namespace {

using test::chat_body;
using test::http1_ok;
using test::http1_post;
using test::kMs;
using test::RecordSink;
using test::TcpConn;

constexpr uint64_t kSec = 1'000'000'000ULL;

// The classifier config of a worker of aiqosd started with a policy whose `limits` is `limits`
// (a YAML flow mapping). Small pools besides, unless the limits say otherwise.
ClassifierConfig config_for(const std::string& limits) {
  LoadResult r = load_policy_string("version: 1\nlimits: " + limits + "\nclasses: [{name: default}]\n");
  EXPECT_TRUE(r.ok()) << r.format_errors();
  Options o;
  o.l7_conns = 16;
  o.requests = 8;
  if (r.ok()) apply_policy_limits(r.policy->limits, o);
  std::vector<std::string> capture;
  ClassifierConfig c = classifier_config(o, {}, capture);
  c.max_tls_handshakes = 2;
  c.midstream_bytes = 1 << 20;
  return c;
}
// Pools for a few connections (the policy's defaults size a real worker).
const std::string kSmall = "flows: 256, reassembly_bytes_total: 1MiB";

TEST(ClassifierConfig, CarriesEveryLimit) {
  ClassifierConfig c = config_for(
      "{flows: 1000, reassembly_bytes_per_flow: 32KiB, reassembly_bytes_total: 4MiB, streams_per_connection: 16, "
      "header_block_bytes: 8KiB, hpack_table_bytes: 1MiB, request_body_scan_bytes: 100KiB, "
      "idle_timeout: {tcp: 30s, tcp_closing: 2s, other: 10s}}");
  EXPECT_EQ(c.flows.max_flows, 1000u);
  EXPECT_EQ(c.reassembly.max_ooo_bytes_per_flow, 32u << 10);
  EXPECT_EQ(c.reassembly.pool_bytes, 4u << 20);
  EXPECT_EQ(c.l7.http2.max_streams, 16u);
  EXPECT_EQ(c.l7.http2.max_header_block, 8u << 10);
  EXPECT_EQ(c.l7.http2.max_header_list, 8u << 10) << "a header block decoded, too";
  EXPECT_EQ(c.l7.http1.max_header_section, 8u << 10) << "and an HTTP/1 header section";
  EXPECT_EQ(c.l7.http2.max_hpack_table, 1u << 20);
  EXPECT_EQ(c.l7.http2.max_hpack_mem, 3u << 20) << "the inflaters have room for the table allowed";
  EXPECT_EQ(c.body_scan_bytes, 100u << 10);
  EXPECT_EQ(c.flows.tcp_established_timeout_ns, 30 * kSec);
  EXPECT_EQ(c.flows.tcp_closing_timeout_ns, 2 * kSec);
  EXPECT_EQ(c.flows.other_timeout_ns, 10 * kSec);
}

// A policy's default limits, and no policy at all, leave the classifier its own defaults for
// the keys without a command-line option; the HTTP/1 header section follows header_block_bytes.
TEST(ClassifierConfig, DefaultLimitsAreTheClassifiers) {
  const ClassifierConfig def;
  std::vector<std::string> capture;
  for (const ClassifierConfig& c : {config_for("{}"), classifier_config(Options{}, {}, capture)}) {
    EXPECT_EQ(c.l7.http2.max_streams, def.l7.http2.max_streams);
    EXPECT_EQ(c.l7.http2.max_header_block, def.l7.http2.max_header_block);
    EXPECT_EQ(c.l7.http2.max_header_list, def.l7.http2.max_header_list);
    EXPECT_EQ(c.l7.http2.max_hpack_table, def.l7.http2.max_hpack_table);
    EXPECT_EQ(c.l7.http2.max_hpack_mem, def.l7.http2.max_hpack_mem);
    EXPECT_EQ(c.l7.http1.max_header_section, 64u << 10);
    EXPECT_EQ(c.body_scan_bytes, def.body_scan_bytes);
    EXPECT_EQ(c.flows.tcp_established_timeout_ns, def.flows.tcp_established_timeout_ns);
    EXPECT_EQ(c.flows.tcp_closing_timeout_ns, def.flows.tcp_closing_timeout_ns);
    EXPECT_EQ(c.flows.other_timeout_ns, def.flows.other_timeout_ns);
  }
  EXPECT_EQ(config_for("{hpack_table_bytes: 0}").l7.http2.max_hpack_mem, def.l7.http2.max_hpack_mem)
      << "never below the default: literals need room whatever the table";
}

// --hpack-pool-bytes sizes each worker's HPACK pool; 0 (the default) derives it from --l7-conns.
TEST(ClassifierConfig, HpackPoolBytesFromTheOption) {
  Options o;
  o.flows = 256;
  o.reassembly_bytes = 1 << 20;
  o.l7_conns = 16;
  o.requests = 8;
  std::vector<std::string> capture;
  RecordSink sink;
  {
    const ClassifierConfig c = classifier_config(o, {}, capture);
    EXPECT_EQ(c.hpack_pool_bytes, 0u);
    Classifier cls(c, sink);
    EXPECT_EQ(cls.hpack_pool().capacity(), hpack_pool_default_bytes(16, c.l7.http2.max_hpack_mem));
  }
  o.hpack_pool_bytes = 3 << 20;
  const ClassifierConfig c = classifier_config(o, {}, capture);
  Classifier cls(c, sink);
  EXPECT_EQ(cls.hpack_pool().capacity(), 3u << 20);
}

class LimitsTest : public ::testing::Test {
 protected:
  RecordSink sink;
  const uint64_t t0 = 1000 * kMs;

  // An h2c connection (preface and SETTINGS both ways) that opens `n` request streams (1, 3,
  // ...), none ended. Returns the requests the classifier saw.
  static uint64_t open_h2_streams(Classifier& cls, uint32_t n, uint64_t t) {
    TcpConn c{cls, 40100};
    c.open(t);
    test::h2c_start(c, t);
    const std::string hb = test::h2_post_headers("/v1/chat/completions");
    for (uint32_t i = 0; i < n; ++i) c.send(true, test::h2frame(1, 0x4, 2 * i + 1, hb), t);
    return cls.counters().requests;
  }
};

TEST_F(LimitsTest, StreamsPerConnectionBoundsTheStreamsTracked) {
  Classifier two{config_for("{" + kSmall + ", streams_per_connection: 2}"), sink};
  EXPECT_EQ(open_h2_streams(two, 3, t0), 2u) << "stream 5, the third open at once, is not tracked";
  Classifier dflt{config_for("{" + kSmall + "}"), sink};
  EXPECT_EQ(open_h2_streams(dflt, 3, t0), 3u);
}

TEST_F(LimitsTest, BodyScanZeroNeverReadsTheModelFromTheBody) {
  for (const char* scan : {"0", "1MiB"}) {
    RecordSink s;
    Classifier cls{config_for("{" + kSmall + ", request_body_scan_bytes: " + scan + "}"), s};
    TcpConn c{cls, 40200};
    c.open(t0);
    c.send(true, http1_post("/v1/chat/completions", chat_body(64, "llama-3")), t0);
    c.send(false, http1_ok("application/json", "{}"), t0);
    const bool scanned = std::string(scan) != "0";
    EXPECT_EQ(cls.counters().models_found, scanned ? 1u : 0u) << scan;
    ASSERT_EQ(s.recs.size(), 1u) << scan;
    EXPECT_EQ(s.recs[0].model.view(), scanned ? "llama-3" : "") << scan;
    EXPECT_EQ(s.recs[0].model_source, scanned ? ModelSource::body : ModelSource::none) << scan;
  }
}

TEST_F(LimitsTest, HeaderBlockBytesBoundsAnHttp1HeaderSection) {
  const std::string big = "POST /v1/chat/completions HTTP/1.1\r\nHost: api\r\nx-pad: " + std::string(2000, 'a') +
                          "\r\nContent-Length: 2\r\n\r\n{}";
  const auto too_large = static_cast<size_t>(L7Error::h1_header_too_large);
  Classifier small{config_for("{" + kSmall + ", header_block_bytes: 1KiB}"), sink};
  TcpConn a{small, 40300};
  a.open(t0);
  a.send(true, big, t0);
  EXPECT_EQ(small.counters().l7_errors[too_large], 1u);
  Classifier dflt{config_for("{" + kSmall + "}"), sink};
  TcpConn b{dflt, 40300};
  b.open(t0);
  b.send(true, big, t0);
  EXPECT_EQ(dflt.counters().l7_errors[too_large], 0u);
  EXPECT_EQ(dflt.counters().requests, 1u);
}

TEST_F(LimitsTest, IdleTimeoutTcpExpiresEstablishedFlows) {
  for (const char* tcp : {"30s", "300s"}) {
    Classifier cls{config_for("{" + kSmall + ", idle_timeout: {tcp: " + std::string(tcp) + "}}"), sink};
    TcpConn c{cls, 40400};
    c.open(t0);
    cls.expire(t0 + 31 * kSec, 1000);
    FlowInfo fi[4];
    EXPECT_EQ(cls.top_flows(fi, 4, FlowFilter{}), std::string(tcp) == "30s" ? 0u : 1u) << tcp;
  }
}

}  // namespace
}  // namespace aiqos
