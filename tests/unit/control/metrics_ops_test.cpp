// The operations metrics of the exporter (build, policy reloads, worker heartbeats, classes,
// unclassified flows): what the Grafana dashboard and the alerting rules of deploy/ query.
#include <gtest/gtest.h>

#include "control/metrics.h"

namespace aiqos {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

size_t index_of(const StatArray& d, std::string_view name) {
  for (size_t i = 0;; ++i)
    if (name == d.element(i)) return i;
}

ApplianceMetrics appliance() {
  ApplianceMetrics m{.version = "0.1.0", .git = "2ae34dc+", .policy_generation = 3, .reloads_ok = 2, .reloads_failed = 1};
  const size_t reasm = index_of(kUnclassifiedArray, "reassembly"), unknown = index_of(kUnclassifiedArray, "unknown_protocol");
  WorkerStats& w0 = m.dp.workers.emplace_back();
  w0.loops = 1000;
  w0.classifier.flows_created = 10, w0.classifier.over_rps = 1;
  w0.classifier.unclassified[reasm] = 1, w0.classifier.unclassified[unknown] = 2;
  WorkerStats& w1 = m.dp.workers.emplace_back();
  w1.worker = 1, w1.loops = 2000;
  w1.classifier.flows_created = 5, w1.classifier.over_rps = 2, w1.classifier.over_tokens = 3;
  w1.classifier.unclassified[unknown] = 4;
  m.dp.classes.push_back({.id = 0, .name = "interactive", .frames = 100, .bytes = 150000});
  m.dp.classes.push_back({.id = 1, .name = "batch", .frames = 50, .bytes = 70000, .policed = 7, .demoted = 2});
  return m;
}

TEST(MetricsOps, BuildPolicyWorkersClasses) {
  StatsAgg a;
  const ApplianceMetrics m = appliance();
  std::string t = render_metrics(a, &m);
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

}  // namespace
}  // namespace aiqos
