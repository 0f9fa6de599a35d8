#include "control/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include "socket_io.h"

namespace aiqos {
namespace {

using nlohmann::json;

RequestRecord rec(std::string_view model, Endpoint e, uint16_t status, double ttfb_s, double dur_s) {
  constexpr uint64_t t0 = 1'700'000'000'000'000'000ULL;
  RequestRecord r;
  r.ts_ns = t0;
  r.req_end_ns = t0;
  r.resp_first_ns = t0 + static_cast<uint64_t>(ttfb_s * 1e9);
  r.first_token_ns = r.resp_first_ns;  // not streamed: the first body byte
  r.resp_end_ns = t0 + static_cast<uint64_t>(dur_s * 1e9);
  r.endpoint = e;
  r.provider = provider_of(e);
  r.model.append(model);
  r.status = status;
  r.req_bytes = 10;
  r.resp_bytes = 100;
  return r;
}

// Sets the element named `name` of a stats array.
void set(const StatArray& d, std::span<uint64_t> a, std::string_view name, uint64_t v) {
  for (size_t i = 0; i < a.size(); ++i)
    if (name == d.element(i)) {
      a[i] = v;
      return;
    }
  ADD_FAILURE() << d.name << " has no " << name;
}

ApplianceMetrics appliance() {
  ApplianceMetrics m;
  DataplaneStats& s = m.dp;
  PortStats& p0 = s.ports.emplace_back();
  p0.port = 0;
  p0.name = "net_pcap0";
  p0.rx_packets = 10, p0.tx_packets = 9, p0.rx_bytes = 1000, p0.tx_bytes = 900, p0.no_mbuf = 1, p0.imissed = 2;
  p0.drops[static_cast<size_t>(DropReason::tx_full)] = 3;
  PortStats& p1 = s.ports.emplace_back();
  p1.port = 1;
  p1.rx_packets = 5, p1.tx_packets = 5;
  ClassifierStats& c0 = s.workers.emplace_back().classifier;
  c0.flows_active = 4, c0.reassembly_bytes_in_use = 100, c0.request_records_dropped = 1;
  set(kUnclassifiedArray, c0.unclassified, "reassembly", 2);
  set(kParserErrors, c0.parser_errors, "hpack_error", 1);
  set(kSegmentOutcomes, c0.reassembly_segments, "delivered", 30);
  set(kSegmentOutcomes, c0.reassembly_segments, "buffered_ooo", 4);
  set(kStreamFailures, c0.reassembly_failures, "ooo_bound", 1);
  WorkerStats& w1 = s.workers.emplace_back();
  w1.worker = 1;
  ClassifierStats& c1 = w1.classifier;
  c1.flows_active = 6, c1.reassembly_bytes_in_use = 50;
  set(kUnclassifiedArray, c1.unclassified, "reassembly", 1);
  set(kUnclassifiedArray, c1.unclassified, "l7_error", 3);
  set(kParserErrors, c1.parser_errors, "h1_bad_start_line", 2);
  set(kSegmentOutcomes, c1.reassembly_segments, "delivered", 12);
  set(kSegmentOutcomes, c1.reassembly_segments, "dropped_bound", 5);
  set(kStreamFailures, c1.reassembly_failures, "acked_hole", 2);
  return m;
}

std::string sample_output(StatsAgg& a) {
  a.add(rec("llama-3", Endpoint::chat_completions, 200, 0.05, 1.5), "interactive");
  a.add(rec("llama-3", Endpoint::chat_completions, 503, 0.2, 0.3), "interactive");
  a.add(rec("text-embed", Endpoint::embeddings, 200, 0.003, 0.004), "batch");
  a.add(rec("we\"ird\\mo\ndel", Endpoint::completions, 200, 0.01, 0.02), "batch");
  const ApplianceMetrics m = appliance();
  return render_metrics(a, &m);
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(Metrics, Escape) {
  EXPECT_EQ(prom_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(prom_escape("plain"), "plain");
}

TEST(Metrics, OperationNames) {
  EXPECT_STREQ(otel_operation_name("chat_completions"), "chat");
  EXPECT_STREQ(otel_operation_name("anthropic_messages"), "chat");
  EXPECT_STREQ(otel_operation_name("completions"), "text_completion");
  EXPECT_STREQ(otel_operation_name("embeddings"), "embeddings");
  EXPECT_STREQ(otel_operation_name("kserve_infer"), "infer");
  EXPECT_STREQ(otel_operation_name("other"), "other");
}

TEST(Metrics, TextFormat) {
  StatsAgg a;
  std::string t = sample_output(a);
  // Every line is a comment or `name{labels} value`.
  std::regex sample(R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? [-+0-9.eE]+|\+Inf|NaN$)");
  std::istringstream in(t);
  std::string line;
  int samples = 0;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) continue;
    EXPECT_TRUE(std::regex_match(line, sample)) << line;
    ++samples;
  }
  EXPECT_GT(samples, 50);
  EXPECT_EQ(t.back(), '\n');

  EXPECT_TRUE(has_line(t, "# TYPE gen_ai_server_time_to_first_token_seconds histogram"));
  EXPECT_TRUE(has_line(t, "# TYPE aiqos_requests_total counter"));
  const std::string gl = R"(gen_ai_request_model="llama-3",gen_ai_operation_name="chat",endpoint="chat_completions",class="interactive",gen_ai_provider_name="openai")";
  // Time to first token counts successful responses only (the 503 is not in it).
  EXPECT_TRUE(has_line(t, "gen_ai_server_time_to_first_token_seconds_bucket{" + gl + ",le=\"0.01\"} 0")) << t;
  EXPECT_TRUE(has_line(t, "gen_ai_server_time_to_first_token_seconds_bucket{" + gl + ",le=\"0.06\"} 1"));
  EXPECT_TRUE(has_line(t, "gen_ai_server_time_to_first_token_seconds_bucket{" + gl + ",le=\"0.25\"} 1"));
  EXPECT_TRUE(has_line(t, "gen_ai_server_time_to_first_token_seconds_bucket{" + gl + ",le=\"+Inf\"} 1"));
  EXPECT_TRUE(has_line(t, "gen_ai_server_time_to_first_token_seconds_count{" + gl + "} 1"));
  EXPECT_TRUE(has_line(t, "gen_ai_server_request_duration_seconds_bucket{" + gl + ",le=\"0.32\"} 1"));
  EXPECT_TRUE(has_line(t, "gen_ai_server_request_duration_seconds_count{" + gl + "} 2"));
  const std::string base = R"(class="interactive",model="llama-3",endpoint="chat_completions")";
  EXPECT_TRUE(has_line(t, "aiqos_requests_total{" + base + ",status_class=\"2xx\"} 1"));
  EXPECT_TRUE(has_line(t, "aiqos_requests_total{" + base + ",status_class=\"5xx\"} 1"));
  EXPECT_TRUE(has_line(t, "aiqos_request_bytes_total{" + base + "} 20"));
  EXPECT_TRUE(has_line(t, "aiqos_response_bytes_total{" + base + "} 200"));
  EXPECT_TRUE(has_line(t, R"(aiqos_requests_total{class="batch",model="we\"ird\\mo\ndel",endpoint="completions",status_class="2xx"} 1)"));
  EXPECT_TRUE(has_line(t, R"(gen_ai_server_time_to_first_token_seconds_count{gen_ai_request_model="text-embed",gen_ai_operation_name="embeddings",endpoint="embeddings",class="batch",gen_ai_provider_name="openai"} 1)"));
  EXPECT_TRUE(has_line(t, R"(aiqos_stats_overflow_total{table="model"} 0)"));
  // Appliance.
  EXPECT_TRUE(has_line(t, R"(aiqos_port_rx_packets_total{port="0"} 10)"));
  EXPECT_TRUE(has_line(t, R"(aiqos_port_tx_packets_total{port="1"} 5)"));
  EXPECT_TRUE(has_line(t, R"(aiqos_port_rx_bytes_total{port="0"} 1000)"));
  EXPECT_TRUE(has_line(t, R"(aiqos_port_drops_total{port="0",reason="tx_full"} 3)"));
  EXPECT_TRUE(has_line(t, R"(aiqos_port_drops_total{port="0",reason="rx_nombuf"} 1)"));
  EXPECT_TRUE(has_line(t, R"(aiqos_port_drops_total{port="0",reason="imissed"} 2)"));
  EXPECT_TRUE(has_line(t, "aiqos_flows_active 10"));
  EXPECT_TRUE(has_line(t, "aiqos_reassembly_bytes_in_use 150"));
  EXPECT_TRUE(has_line(t, "aiqos_request_records_dropped_total 1"));
  // Why flows went unclassified: summed over workers, one series per name.
  EXPECT_TRUE(has_line(t, R"(aiqos_flows_unclassified_total{reason="reassembly"} 3)"));
  EXPECT_TRUE(has_line(t, R"(aiqos_flows_unclassified_total{reason="l7_error"} 3)"));
  EXPECT_TRUE(has_line(t, R"(aiqos_parser_errors_total{reason="hpack_error"} 1)"));
  EXPECT_TRUE(has_line(t, R"(aiqos_parser_errors_total{reason="h1_bad_start_line"} 2)"));
  EXPECT_TRUE(has_line(t, R"(aiqos_reassembly_segments_total{outcome="delivered"} 42)"));
  EXPECT_TRUE(has_line(t, R"(aiqos_reassembly_segments_total{outcome="buffered_ooo"} 4)"));
  EXPECT_TRUE(has_line(t, R"(aiqos_reassembly_segments_total{outcome="dropped_bound"} 5)"));
  EXPECT_TRUE(has_line(t, R"(aiqos_reassembly_failures_total{reason="ooo_bound"} 1)"));
  EXPECT_TRUE(has_line(t, R"(aiqos_reassembly_failures_total{reason="acked_hole"} 2)"));
  EXPECT_EQ(t.find("# TYPE aiqos_reassembly_failures_total", t.find("# TYPE aiqos_reassembly_failures_total") + 1),
            std::string::npos);
  // Each family appears once (HELP/TYPE not repeated).
  size_t first = t.find("# TYPE aiqos_requests_total");
  EXPECT_EQ(t.find("# TYPE aiqos_requests_total", first + 1), std::string::npos);
}

// The acceptance's streaming response: 300 ms to the first token, 20 tokens
// 50 ms apart, usage reported: its TTFT lands in le=0.5 (not 0.25), TPOT in
// le=0.05, and the token usage histogram counts 17 input and 20 output tokens.
TEST(Metrics, StreamedResponseTtftTpotAndTokenUsage) {
  constexpr uint64_t t0 = 1'700'000'000'000'000'000ULL, ms = 1'000'000;
  RequestRecord r;
  r.ts_ns = r.req_end_ns = t0;
  r.resp_first_ns = t0 + 1 * ms;
  r.first_token_ns = t0 + 300 * ms;
  r.last_token_ns = r.first_token_ns + 19 * 50 * ms;
  r.resp_end_ns = r.last_token_ns + 1 * ms;
  r.endpoint = Endpoint::chat_completions;
  r.provider = GenAiProvider::openai;
  r.model.append("m");
  r.resp_model.append("m-2024");
  r.status = 200;
  r.streamed = true;
  r.input_tokens = 17;
  r.output_tokens = 20;
  r.token_source = TokenSource::usage;
  StatsAgg a;
  a.add(r, "interactive");
  RequestRecord e = r;  // a 5xx: tokens with error_type, no TTFT/TPOT
  e.status = 503;
  a.add(e, "interactive");
  std::string t = render_metrics(a, nullptr);
  const std::string gl = R"(gen_ai_request_model="m",gen_ai_operation_name="chat",endpoint="chat_completions",class="interactive",gen_ai_provider_name="openai",gen_ai_response_model="m-2024")";
  EXPECT_TRUE(has_line(t, "gen_ai_server_time_to_first_token_seconds_bucket{" + gl + ",le=\"0.25\"} 0")) << t;
  EXPECT_TRUE(has_line(t, "gen_ai_server_time_to_first_token_seconds_bucket{" + gl + ",le=\"0.5\"} 1"));
  EXPECT_TRUE(has_line(t, "gen_ai_server_time_to_first_token_seconds_count{" + gl + "} 1"));
  EXPECT_TRUE(has_line(t, "gen_ai_server_time_per_output_token_seconds_bucket{" + gl + ",le=\"0.025\"} 0"));
  EXPECT_TRUE(has_line(t, "gen_ai_server_time_per_output_token_seconds_bucket{" + gl + ",le=\"0.05\"} 1"));
  EXPECT_TRUE(has_line(t, "gen_ai_client_token_usage_bucket{" + gl + ",gen_ai_token_type=\"input\",le=\"16\"} 0"));
  EXPECT_TRUE(has_line(t, "gen_ai_client_token_usage_bucket{" + gl + ",gen_ai_token_type=\"input\",le=\"64\"} 1"));
  EXPECT_TRUE(has_line(t, "gen_ai_client_token_usage_sum{" + gl + ",gen_ai_token_type=\"output\"} 20"));
  EXPECT_TRUE(has_line(t, "gen_ai_client_token_usage_sum{" + gl + ",error_type=\"http_5xx\",gen_ai_token_type=\"output\"} 20"));
  auto snap = a.snapshot(StatsDim::model);
  const auto& k = snap["keys"][0];
  EXPECT_NEAR(k["ttft_ms"]["p50"].get<double>(), 300, 15);
  EXPECT_NEAR(k["tpot_ms"]["p99"].get<double>(), 50, 2.5);
  EXPECT_EQ(k["tokens"]["input"], 34);
  EXPECT_EQ(k["tokens"]["output"], 40);
  EXPECT_EQ(k["tokens"]["source"]["usage"], 2);
  EXPECT_NEAR(k["tokens"]["output_per_s"].get<double>(), 20 / 0.951, 0.1);
}

TEST(Metrics, NoApplianceNoRequests) {
  StatsAgg a;
  std::string t = render_metrics(a, nullptr);
  EXPECT_EQ(t.find("aiqos_port_"), std::string::npos);
  EXPECT_EQ(t.find("gen_ai_"), std::string::npos);
  EXPECT_NE(t.find("aiqos_stats_overflow_total"), std::string::npos);
}

// promtool's linter, when Debian's `prometheus` package is installed.
TEST(Metrics, PromtoolAcceptsTheOutput) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) GTEST_SKIP() << "promtool not installed";
  StatsAgg a;
  std::string t = sample_output(a);
  char path[] = "/tmp/aiqos-metrics-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, t.data(), t.size()), static_cast<ssize_t>(t.size()));
  close(fd);
  std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_TRUE(p);
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int rc = pclose(p);
  unlink(path);
  EXPECT_EQ(rc, 0) << out << "\n---\n" << t;
  EXPECT_EQ(out, "") << "lint findings";
}

std::string http_get(uint16_t port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return "connect failed";
  }
  (void)!send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  return test::read_to_eof(fd);
}

TEST(MetricsServer, ServesMetricsOverHttp) {
  StatsAgg a;
  a.add(rec("m", Endpoint::chat_completions, 200, 0.1, 1), "c");
  int calls = 0;
  MetricsServer s(a, [&] { ++calls; return appliance(); }, MetricsConfig{.listen = "127.0.0.1:0"});
  std::string err;
  ASSERT_TRUE(s.start(err)) << err;
  ASSERT_NE(s.port(), 0);
  std::string r = http_get(s.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos);
  EXPECT_NE(r.find("aiqos_requests_total{"), std::string::npos);
  EXPECT_NE(r.find("aiqos_flows_active 10"), std::string::npos);
  EXPECT_EQ(calls, 1);
  size_t body = r.find("\r\n\r\n") + 4;
  size_t cl = r.find("Content-Length: ");
  EXPECT_EQ(std::stoul(r.substr(cl + 16)), r.size() - body);
  EXPECT_EQ(http_get(s.port(), "GET /metrics?x=1 HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(http_get(s.port(), "GET / HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(http_get(s.port(), "GET /metricsx HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(http_get(s.port(), "POST /metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405", 0), 0u);
  EXPECT_EQ(http_get(s.port(), "garbage\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  std::string head = http_get(s.port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(head.find("aiqos_"), std::string::npos);
  std::string huge = "GET /metrics HTTP/1.1\r\nX: " + std::string(10000, 'a') + "\r\n\r\n";
  EXPECT_EQ(http_get(s.port(), huge).rfind("HTTP/1.1 431", 0), 0u);
  s.stop();
  EXPECT_EQ(http_get(s.port(), "GET /metrics HTTP/1.1\r\n\r\n"), "connect failed");
}

TEST(MetricsServer, LoopbackOnlyUnlessAllowed) {
  StatsAgg a;
  std::string err;
  MetricsServer any(a, nullptr, MetricsConfig{.listen = "0.0.0.0:0"});
  EXPECT_FALSE(any.start(err));
  EXPECT_NE(err.find("not a loopback address"), std::string::npos) << err;
  MetricsServer bad(a, nullptr, MetricsConfig{.listen = "localhost:9470"});
  EXPECT_FALSE(bad.start(err));
  EXPECT_NE(err.find("not an IP address"), std::string::npos) << err;
  MetricsServer allowed(a, nullptr, MetricsConfig{.listen = "0.0.0.0:0", .allow_remote = true});
  EXPECT_TRUE(allowed.start(err)) << err;
  MetricsServer v6(a, nullptr, MetricsConfig{.listen = "[::1]:0"});
  if (!v6.start(err)) {
    EXPECT_NE(err.find("cannot listen"), std::string::npos) << err;  // no IPv6 here
  }
}

TEST(MetricsServer, ListenAddressSyntax) {
  std::string h;
  uint16_t p;
  EXPECT_TRUE(parse_listen_address("127.0.0.1:9470", h, p));
  EXPECT_EQ(h, "127.0.0.1");
  EXPECT_EQ(p, 9470);
  EXPECT_TRUE(parse_listen_address("[::1]:80", h, p));
  EXPECT_EQ(h, "::1");
  EXPECT_FALSE(parse_listen_address("::1:80", h, p));
  EXPECT_FALSE(parse_listen_address("127.0.0.1", h, p));
  EXPECT_FALSE(parse_listen_address("127.0.0.1:70000", h, p));
  EXPECT_FALSE(parse_listen_address("127.0.0.1:", h, p));
  EXPECT_FALSE(parse_listen_address(":80", h, p));
}

}  // namespace
}  // namespace aiqos
