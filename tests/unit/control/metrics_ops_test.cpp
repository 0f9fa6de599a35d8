// The operations metrics of the exporter (build, policy reloads, worker heartbeats, classes,
// unclassified flows): what the Grafana dashboard and the alerting rules of deploy/ query.
#include <gtest/gtest.h>

#include "control/metrics.h"

namespace aiqos {
namespace {

using nlohmann::json;

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

json appliance() {
  return json::parse(R"({
    "version": {"version": "0.1.0", "git": "2ae34dc+"},
    "policy": {"generation": 3, "reloads_ok": 2, "reloads_failed": 1},
    "workers": [
      {"worker": 0, "loops": 1000, "classifier": {"flows_created": 10, "over_rps": 1, "over_tokens": 0,
       "unclassified": {"reassembly": 1, "unknown_protocol": 2}}},
      {"worker": 1, "loops": 2000, "classifier": {"flows_created": 5, "over_rps": 2, "over_tokens": 3,
       "unclassified": {"reassembly": 0, "unknown_protocol": 4}}}
    ],
    "classes": [
      {"name": "interactive", "frames": 100, "bytes": 150000, "policed": 0, "demoted": 0},
      {"name": "batch", "frames": 50, "bytes": 70000, "policed": 7, "demoted": 2}
    ]})");
}

TEST(MetricsOps, BuildPolicyWorkersClasses) {
  StatsAgg a;
  std::string t = render_metrics(a, appliance());
  for (const char* line : {
           R"(aiqos_build_info{version="0.1.0",git="2ae34dc+"} 1)",
           "aiqos_policy_generation 3",
           R"(aiqos_policy_reloads_total{result="ok"} 2)",
           R"(aiqos_policy_reloads_total{result="failed"} 1)",
           R"(aiqos_worker_loops_total{worker="0"} 1000)",
           R"(aiqos_worker_loops_total{worker="1"} 2000)",
           "aiqos_flows_created_total 15",
           R"(aiqos_flows_unclassified_total{reason="reassembly"} 1)",
           R"(aiqos_flows_unclassified_total{reason="unknown_protocol"} 6)",
           R"(aiqos_over_budget_total{budget="rps"} 3)",
           R"(aiqos_over_budget_total{budget="tokens"} 3)",
           R"(aiqos_class_frames_total{class="interactive"} 100)",
           R"(aiqos_class_bytes_total{class="batch"} 70000)",
           R"(aiqos_class_policed_total{class="batch"} 7)",
           R"(aiqos_class_demoted_total{class="batch"} 2)",
       })
    EXPECT_TRUE(has_line(t, line)) << line << "\n---\n" << t;
  EXPECT_NE(t.find("# TYPE aiqos_worker_loops_total counter\n"), std::string::npos);
  EXPECT_NE(t.find("# TYPE aiqos_build_info gauge\n"), std::string::npos);
}

TEST(MetricsOps, MissingOrMalformedFieldsAreSkipped) {
  StatsAgg a;
  std::string t = render_metrics(a, json::parse(R"({"classes": [3, {"frames": 1}, {"name": 4}], "workers": [{"worker": 0}],
                                                    "version": 1, "policy": []})"));
  for (const char* name : {"aiqos_build_info", "aiqos_policy_generation", "aiqos_class_frames_total",
                           "aiqos_worker_loops_total", "aiqos_flows_created_total"})
    EXPECT_EQ(t.find(std::string("\n") + name), std::string::npos) << name << "\n" << t;
}

}  // namespace
}  // namespace aiqos
