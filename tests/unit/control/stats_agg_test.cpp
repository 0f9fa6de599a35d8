#include "control/stats_agg.h"

#include <gtest/gtest.h>

#include <thread>

namespace aiqos {
namespace {

constexpr uint64_t kT0 = 1'700'000'000'000'000'000ULL;

RequestRecord rec(std::string_view model, uint16_t status, uint64_t ttfb_ms = 100,
                  uint64_t dur_ms = 1000) {
  RequestRecord r;
  r.ts_ns = kT0;
  r.req_end_ns = kT0 + 1'000'000;
  r.resp_first_ns = r.req_end_ns + ttfb_ms * 1'000'000;
  r.resp_end_ns = kT0 + dur_ms * 1'000'000;
  r.endpoint = Endpoint::chat_completions;
  r.model.append(model);
  r.status = status;
  r.req_bytes = 100;
  r.resp_bytes = 1000;
  return r;
}

const nlohmann::json* find_key(const nlohmann::json& snap, std::string_view key) {
  for (auto& k : snap["keys"])
    if (k["key"] == key) return &k;
  return nullptr;
}

TEST(StatsAgg, Timings) {
  RequestRecord r = rec("m", 200, 250, 2000);
  EXPECT_NEAR(*record_ttfb_s(r), 0.25, 1e-9);
  EXPECT_NEAR(*record_duration_s(r), 2.0, 1e-9);
  r.req_end_ns = 0;  // no request end: from the headers
  EXPECT_NEAR(*record_ttfb_s(r), 0.251, 1e-9);
  r.resp_first_ns = 0;
  EXPECT_FALSE(record_ttfb_s(r));
  r.resp_end_ns = 0;
  EXPECT_FALSE(record_duration_s(r));
}

TEST(StatsAgg, CountsPerDimension) {
  StatsAgg a;
  a.add(rec("llama", 200), "interactive");
  a.add(rec("llama", 429), "interactive");
  auto r = rec("gpt", 200);
  r.endpoint = Endpoint::embeddings;
  r.tenant.append("acme");
  a.add(r, "batch");
  auto g = rec("", 0);
  g.endpoint = Endpoint::grpc_model_infer;
  g.grpc_status = 14;
  g.incomplete = true;
  g.reset = true;
  g.resp_first_ns = g.resp_end_ns = 0;
  a.add(g, "batch");

  auto c = a.snapshot(StatsDim::klass);
  EXPECT_EQ(c["by"], "class");
  EXPECT_EQ(c["requests"], 4);
  EXPECT_EQ(c["distinct"], 2);
  const auto* inter = find_key(c, "interactive");
  ASSERT_TRUE(inter);
  EXPECT_EQ((*inter)["requests"], 2);
  EXPECT_EQ((*inter)["req_bytes"], 200);
  EXPECT_EQ((*inter)["resp_bytes"], 2000);
  EXPECT_EQ((*inter)["status"]["2xx"], 1);
  EXPECT_EQ((*inter)["status"]["4xx"], 1);
  EXPECT_EQ((*inter)["codes"]["429"], 1);
  EXPECT_EQ((*inter)["ttfb_ms"]["count"], 2);
  EXPECT_NEAR((*inter)["ttfb_ms"]["p50"].get<double>(), 100.0, 5.0);
  EXPECT_NEAR((*inter)["duration_ms"]["p99"].get<double>(), 1000.0, 50.0);
  EXPECT_TRUE((*inter)["tokens"]["input"].is_null());
  const auto* batch = find_key(c, "batch");
  ASSERT_TRUE(batch);
  EXPECT_EQ((*batch)["grpc"]["14"], 1);
  EXPECT_EQ((*batch)["incomplete"], 1);
  EXPECT_EQ((*batch)["reset"], 1);
  EXPECT_EQ((*batch)["status"]["none"], 1);
  EXPECT_EQ((*batch)["ttfb_ms"]["count"], 1);  // the gRPC one had no response

  auto m = a.snapshot(StatsDim::model);
  EXPECT_EQ((*find_key(m, "llama"))["requests"], 2);
  EXPECT_EQ((*find_key(m, kNoneKey))["requests"], 1);
  EXPECT_EQ(m["keys"][0]["key"], "llama");  // sorted by requests

  auto e = a.snapshot("endpoint");
  ASSERT_TRUE(e);
  EXPECT_EQ((*find_key(*e, "chat_completions"))["requests"], 2);
  EXPECT_EQ((*find_key(*e, "embeddings"))["requests"], 1);
  EXPECT_EQ((*find_key(*e, "grpc_model_infer"))["requests"], 1);
  EXPECT_EQ(find_key(*e, "other"), nullptr);  // endpoints without requests are not listed

  auto t = a.snapshot(StatsDim::tenant);
  EXPECT_EQ((*find_key(t, "acme"))["requests"], 1);
  EXPECT_EQ((*find_key(t, kNoneKey))["requests"], 3);

  EXPECT_FALSE(a.snapshot("port"));  // the daemon's own counters, not ours
  EXPECT_FALSE(a.snapshot("bogus"));
}

TEST(StatsAgg, OverflowGoesToOtherAndIsCounted) {
  StatsAgg a(StatsLimits{.models = 3, .series = 2, .status_codes = 2});
  for (int i = 0; i < 10; ++i) a.add(rec("model-" + std::to_string(i), 200 + i), "c");
  auto m = a.snapshot(StatsDim::model);
  EXPECT_EQ(m["distinct"], 4);  // 3 + (other)
  EXPECT_EQ(m["overflow"], 7);
  EXPECT_EQ((*find_key(m, kOtherKey))["requests"], 7);
  auto c = a.snapshot(StatsDim::klass);
  EXPECT_EQ(c["keys"][0]["codes"].size(), 3u);  // 2 codes + other
  EXPECT_EQ(c["keys"][0]["codes"]["other"], 8);
  auto ov = a.overflow();
  EXPECT_EQ(ov.models, 7u);
  size_t series = 0;
  uint64_t in_series = 0;
  a.for_each_series([&](const SeriesKey&, const SeriesStats& s) {
    ++series;
    for (auto n : s.requests) in_series += n;
  });
  EXPECT_EQ(series, 3u);  // 2 + (other)
  EXPECT_EQ(in_series, 10u);
  EXPECT_GT(ov.series, 0u);
}

TEST(StatsAgg, InvalidUtf8IsReplaced) {
  EXPECT_EQ(sanitize_utf8("ok"), "ok");
  EXPECT_EQ(sanitize_utf8("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(sanitize_utf8("a\xff" "b"), "a\xef\xbf\xbd" "b");
  EXPECT_EQ(sanitize_utf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");  // overlong
  EXPECT_EQ(sanitize_utf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
  StatsAgg a;
  a.add(rec("bad\xfe", 200), "c");
  auto m = a.snapshot(StatsDim::model);
  EXPECT_EQ(m["keys"][0]["key"], "bad\xef\xbf\xbd");
  EXPECT_NO_THROW((void)m.dump());
}

TEST(StatsAgg, Reset) {
  StatsAgg a;
  a.add(rec("m", 200), "c");
  a.reset();
  EXPECT_EQ(a.total_requests(), 0u);
  EXPECT_EQ(a.snapshot(StatsDim::klass)["keys"].size(), 0u);
  size_t n = 0;
  a.for_each_series([&](auto&, auto&) { ++n; });
  EXPECT_EQ(n, 0u);
}

TEST(StatsAgg, ConcurrentReadersAndOneWriter) {
  StatsAgg a;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      (void)a.snapshot(StatsDim::model).dump();
      a.for_each_series([](auto&, auto&) {});
    }
  });
  for (int i = 0; i < 20000; ++i) a.add(rec("m" + std::to_string(i % 50), 200), "c");
  done = true;
  reader.join();
  EXPECT_EQ(a.total_requests(), 20000u);
}

}  // namespace
}  // namespace aiqos
