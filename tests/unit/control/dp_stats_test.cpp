// The dataplane's typed statistics (control/dp_stats.h) and their renderers:
// every field, set to a value no other field has, must come out of the JSON
// (--stats-json, the control socket), Prometheus and the exit report; the
// names tools, dashboards and alerts read must not change.
#include "control/dp_stats.h"

#include <gtest/gtest.h>

#include <charconv>
#include <set>

#include "control/metrics.h"

namespace aiqos {
namespace {

using nlohmann::json;

// Gives every field a value of its own (distinct, non-zero), through the
// same visit() the renderers use: a field added to a list is filled too.
struct Filler {
  uint64_t next = 1'000'003;
  void operator()(const StatField&, uint64_t& v) { v = take(); }
  void operator()(const StatArray&, std::span<uint64_t> v) {
    for (uint64_t& x : v) x = take();
  }
  uint64_t take() {
    uint64_t v = next;
    next += 7;
    return v;
  }
};

// What visit() shows of one row: scalars and arrays with their values.
struct Seen {
  std::vector<std::pair<StatField, uint64_t>> scalars;
  std::vector<std::pair<StatArray, std::vector<uint64_t>>> arrays;
  void operator()(const StatField& f, uint64_t v) { scalars.emplace_back(f, v); }
  void operator()(const StatArray& a, std::span<const uint64_t> v) { arrays.emplace_back(a, std::vector(v.begin(), v.end())); }
};

template <class S>
Seen seen(const S& s) {
  Seen out;
  S::visit(s, out);
  return out;
}

DataplaneStats full_stats() {
  DataplaneStats s;
  Filler f;
  for (uint16_t p = 0; p < 3; ++p) {
    PortStats& ps = s.ports.emplace_back();
    ps.port = p;
    ps.name = "net_pcap" + std::to_string(p);
    if (p < 2) ps.peer = static_cast<uint16_t>(p ^ 1);
    PortStats::visit(ps, f);
  }
  for (uint16_t w = 0; w < 2; ++w) {
    WorkerStats& ws = s.workers.emplace_back();
    ws.worker = w;
    ws.lcore = w + 1u;
    WorkerStats::visit(ws, f);
    ClassifierStats::visit(ws.classifier, f);
  }
  for (const char* name : {"interactive", "batch"}) {
    ClassStats& c = s.classes.emplace_back();
    c.id = static_cast<uint16_t>(s.classes.size() - 1);
    c.name = name;
    ClassStats::visit(c, f);
  }
  LatencyStats::visit(s.latency_ns, f);
  DataplaneStats::visit(s, f);
  s.bypass_on = 1;  // a flag: JSON shows it as true
  return s;
}

// Every field of `row` is in the JSON object `j` under its name; arrays as objects by element name.
template <class S>
void expect_json_fields(const json& j, const S& row, const std::string& where) {
  Seen s = seen(row);
  ASSERT_FALSE(s.scalars.empty()) << where;
  for (auto& [f, v] : s.scalars) EXPECT_EQ(j.value(f.name, json()), json(v)) << where << " " << f.name;
  for (auto& [a, v] : s.arrays) {
    ASSERT_TRUE(j.contains(a.name)) << where << " " << a.name;
    EXPECT_EQ(j[a.name].size(), v.size() - a.first) << where << " " << a.name;
    for (size_t i = a.first; i < v.size(); ++i) EXPECT_EQ(j[a.name].value(a.element(i), json()), json(v[i])) << where << " " << a.name << "." << a.element(i);
  }
}

TEST(DpStats, JsonShowsEveryField) {
  const DataplaneStats s = full_stats();
  const json j = stats_json(s);
  ASSERT_EQ(j["ports"].size(), 3u);
  for (size_t p = 0; p < 3; ++p) {
    expect_json_fields(j["ports"][p], s.ports[p], "port " + std::to_string(p));
    EXPECT_EQ(j["ports"][p]["tx_full"], s.ports[p].drops[static_cast<size_t>(DropReason::tx_full)]);
    EXPECT_EQ(j["ports"][p]["name"], s.ports[p].name);
  }
  EXPECT_EQ(j["ports"][0]["peer"], 1);
  EXPECT_TRUE(j["ports"][2]["peer"].is_null());
  ASSERT_EQ(j["workers"].size(), 2u);
  for (size_t w = 0; w < 2; ++w) {
    expect_json_fields(j["workers"][w], s.workers[w], "worker " + std::to_string(w));
    expect_json_fields(j["workers"][w]["classifier"], s.workers[w].classifier, "classifier " + std::to_string(w));
    EXPECT_EQ(j["workers"][w]["lcore"], w + 1);
  }
  ASSERT_EQ(j["classes"].size(), 2u);
  for (size_t c = 0; c < 2; ++c) {
    expect_json_fields(j["classes"][c], s.classes[c], "class " + s.classes[c].name);
    EXPECT_EQ(j["classes"][c]["name"], s.classes[c].name);
  }
  expect_json_fields(j["latency_ns"], s.latency_ns, "latency_ns");
  // Appliance-wide fields under their historical names; a new one under its own.
  for (auto& [f, v] : seen(s).scalars) {
    std::string n = f.name;
    if (n == "mbufs_in_use")
      EXPECT_EQ(j["mbufs_in_use_at_exit"], v);
    else if (n == "bypass_on")
      EXPECT_EQ(j["bypass"]["on"], true);
    else if (n == "bypassed_frames")
      EXPECT_EQ(j["bypass"]["frames"], v);
    else
      EXPECT_EQ(j.value(n, json()), json(v)) << n;
  }
}

// The names aiqosctl, scripts/bench, tests/ and the Python checks read. A rename fails here.
TEST(DpStats, JsonKeepsTheNamesToolsRead) {
  const json j = stats_json(full_stats());
  auto has_all = [](const json& o, std::initializer_list<const char*> keys, const char* where) {
    for (const char* k : keys) EXPECT_TRUE(o.contains(k)) << where << " lacks " << k;
  };
  has_all(j, {"ports", "workers", "latency_ns", "mbufs_in_use_at_exit", "bypass"}, "stats");
  has_all(j["bypass"], {"on", "frames"}, "bypass");
  has_all(j["latency_ns"], {"p50", "p99", "p999", "max"}, "latency_ns");
  has_all(j["ports"][0], {"port", "name", "peer", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "tx_full",
                          "no_mbuf", "imissed", "class_held", "drops"}, "port");
  has_all(j["ports"][0]["drops"], {"tx_full", "dispatch_full", "tx_ring_full", "no_peer", "policed", "queue_full",
                                   "over_budget"}, "drops");
  has_all(j["workers"][0], {"worker", "classifier", "lcore", "rx_packets", "tx_packets", "dispatched_in",
                            "dispatched_out", "bypassed", "multi_seg", "multi_seg_too_long", "loops", "parse"},
          "worker");
  has_all(j["workers"][0]["classifier"],
          {"flows_active", "flows_created", "flows_expired", "flows_evicted", "flow_table_full", "l7_conns",
           "l7_conns_active", "requests", "requests_completed", "request_slots_full", "request_records_dropped",
           "models_found", "direction_swaps", "flows_reclassified", "requests_reclassified",
           "tls_names_kept", "tls_names_not_kept", "midstream_conns", "midstream_partial_headers", "midstream_buffer_bytes",
           "midstream_budget_refused", "hpack_pool_bytes_in_use", "hpack_pool_exhausted", "over_rps", "over_tokens", "budget_demoted", "budget_dropped",
           "budget_frames_dropped", "responses_usage", "responses_counted", "responses_scan_failed",
           "responses_encoded", "tokens_refunded", "tokens_extra", "fleet_checked", "fleet_local",
           "reassembly_bytes_in_use", "reassembly_conflict_bytes", "reassembly_acked_ahead",
           "reassembly_acked_ahead_filled", "memory_bytes", "unclassified", "parser_errors", "reassembly_segments",
           "reassembly_failures"},
          "classifier");
}

// Parser errors show the reasons seen only; the other arrays every name, zeros included.
TEST(DpStats, JsonZerosAsBefore) {
  DataplaneStats s;
  s.workers.emplace_back();
  const json w = stats_json(s)["workers"][0];
  EXPECT_TRUE(w["classifier"]["parser_errors"].empty());
  EXPECT_EQ(w["classifier"]["unclassified"].size(), kUnclassifiedCount);
  EXPECT_EQ(w["classifier"]["reassembly_failures"].size(), kStreamFailCount - 1);
  EXPECT_EQ(w["parse"].size(), static_cast<size_t>(ParseStatus::count_));
  EXPECT_EQ(stats_json(s)["bypass"]["on"], false);
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

std::string labels(std::string a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (!b.empty()) a += "," + std::string(b);
  return a;
}

std::string sample(const char* name, const std::string& l, const std::string& v) {
  return std::string(name) + (l.empty() ? "" : "{" + l + "}") + " " + v;
}

// Every field of `row` as a sample of its family, with the row's labels.
template <class S>
void expect_prom_fields(const std::string& t, const S& row, const std::string& row_labels) {
  Seen s = seen(row);
  for (auto& [f, v] : s.scalars) {
    EXPECT_TRUE(has_line(t, sample(f.prom, labels(row_labels, f.labels), std::to_string(v)))) << f.name << " " << row_labels;
    EXPECT_NE(t.find(std::string("# TYPE ") + f.prom + (f.kind == StatKind::counter ? " counter\n" : " gauge\n")), std::string::npos) << f.prom;
  }
  for (auto& [a, v] : s.arrays)
    for (size_t i = a.first; i < v.size(); ++i)
      EXPECT_TRUE(has_line(t, sample(a.prom, labels(row_labels, std::string(a.label) + "=\"" + a.element(i) + "\""), std::to_string(v[i]))))
          << a.name << "." << a.element(i) << " " << row_labels;
}

std::string render(const DataplaneStats& s) {
  StatsAgg agg;
  ApplianceMetrics m{.dp = s, .version = "1.2.3", .git = "abc", .policy_generation = 4, .reloads_ok = 3, .reloads_failed = 1};
  return render_metrics(agg, &m);
}

TEST(DpStats, PrometheusShowsEveryField) {
  const DataplaneStats s = full_stats();
  const std::string t = render(s);
  for (const PortStats& p : s.ports) expect_prom_fields(t, p, "port=\"" + std::to_string(p.port) + "\"");
  for (const WorkerStats& w : s.workers) expect_prom_fields(t, w, "worker=\"" + std::to_string(w.worker) + "\"");
  // Classifiers: the sum over workers.
  Seen c0 = seen(s.workers[0].classifier), c1 = seen(s.workers[1].classifier);
  ASSERT_EQ(c0.scalars.size(), c1.scalars.size());
  for (size_t i = 0; i < c0.scalars.size(); ++i) {
    const StatField& f = c0.scalars[i].first;
    EXPECT_TRUE(has_line(t, sample(f.prom, f.labels, std::to_string(c0.scalars[i].second + c1.scalars[i].second)))) << f.name;
  }
  for (size_t i = 0; i < c0.arrays.size(); ++i) {
    const StatArray& a = c0.arrays[i].first;
    for (size_t e = a.first; e < c0.arrays[i].second.size(); ++e)
      EXPECT_TRUE(has_line(t, sample(a.prom, std::string(a.label) + "=\"" + a.element(e) + "\"",
                                     std::to_string(c0.arrays[i].second[e] + c1.arrays[i].second[e]))))
          << a.name << "." << a.element(e);
  }
  for (const ClassStats& c : s.classes) expect_prom_fields(t, c, "class=\"" + c.name + "\"");
  // Latency in seconds.
  for (auto& [f, v] : seen(s.latency_ns).scalars) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, static_cast<double>(v) * 1e-9);
    EXPECT_TRUE(has_line(t, sample(f.prom, f.labels, std::string(buf, r.ptr)))) << f.name;
  }
  expect_prom_fields(t, s, "");
  EXPECT_TRUE(has_line(t, R"(aiqos_build_info{version="1.2.3",git="abc"} 1)"));
  EXPECT_TRUE(has_line(t, "aiqos_policy_generation 4"));
  EXPECT_TRUE(has_line(t, R"(aiqos_policy_reloads_total{result="failed"} 1)"));
  // Each family once.
  std::set<std::string> types;
  for (size_t at = t.find("# TYPE "); at != std::string::npos; at = t.find("# TYPE ", at + 1))
    EXPECT_TRUE(types.insert(t.substr(at, t.find(' ', at + 7) - at)).second) << t.substr(at, 60);
}

// Metric names that the Grafana dashboard, the alert rules (deploy/) and the e2e tests query.
TEST(DpStats, PrometheusKeepsTheNamesDashboardsQuery) {
  const std::string t = render(full_stats());
  for (const char* name :
       {"aiqos_port_rx_packets_total", "aiqos_port_tx_packets_total", "aiqos_port_rx_bytes_total",
        "aiqos_port_tx_bytes_total", "aiqos_port_drops_total", "aiqos_worker_loops_total", "aiqos_flows_active",
        "aiqos_flows_created_total", "aiqos_flows_unclassified_total", "aiqos_parser_errors_total",
        "aiqos_reassembly_segments_total", "aiqos_reassembly_failures_total", "aiqos_reassembly_bytes_in_use",
        "aiqos_request_records_dropped_total", "aiqos_midstream_connections_total",
        "aiqos_midstream_partial_headers_total", "aiqos_over_budget_total", "aiqos_class_frames_total",
        "aiqos_class_bytes_total", "aiqos_class_policed_total", "aiqos_class_demoted_total"})
    EXPECT_NE(t.find(std::string("\n# TYPE ") + name + " "), std::string::npos) << name;
  EXPECT_NE(t.find("aiqos_port_drops_total{port=\"0\",reason=\"rx_nombuf\"}"), std::string::npos);
  EXPECT_NE(t.find("aiqos_port_drops_total{port=\"0\",reason=\"imissed\"}"), std::string::npos);
  EXPECT_NE(t.find("aiqos_over_budget_total{budget=\"rps\"}"), std::string::npos);
  EXPECT_NE(t.find("aiqos_over_budget_total{budget=\"tokens\"}"), std::string::npos);
}

TEST(DpStats, ExitReportShowsEveryField) {
  const DataplaneStats s = full_stats();
  const std::string t = stats_table(s);
  auto expect_text = [&](const auto& row, const std::string& where) {
    Seen v = seen(row);
    for (auto& [f, x] : v.scalars) EXPECT_NE(t.find(std::string(" ") + f.name + "=" + std::to_string(x)), std::string::npos) << where << " " << f.name;
    for (auto& [a, x] : v.arrays)
      for (size_t i = a.first; i < x.size(); ++i)
        EXPECT_NE(t.find(std::string(" ") + a.element(i) + "=" + std::to_string(x[i])), std::string::npos) << where << " " << a.name << "." << a.element(i);
  };
  for (const PortStats& p : s.ports) expect_text(p, "port");
  for (const WorkerStats& w : s.workers) {
    expect_text(w, "worker");
    expect_text(w.classifier, "classifier");
  }
  for (const ClassStats& c : s.classes) expect_text(c, "class");
  expect_text(s.latency_ns, "latency");
  expect_text(s, "appliance");
  EXPECT_NE(t.find("bypass on: " + std::to_string(s.bypassed_frames) + " frames forwarded unparsed\n"), std::string::npos);
  // The port table first: tests/e2e/h2c_bridge_test.sh reads a port's name followed by its numbers.
  char row[128];
  std::snprintf(row, sizeof row, "net_pcap1              %12llu %14llu", static_cast<unsigned long long>(s.ports[1].rx_packets),
                static_cast<unsigned long long>(s.ports[1].rx_bytes));
  EXPECT_NE(t.find(row), std::string::npos) << row << "\n" << t;
  EXPECT_EQ(t.rfind("port name ", 0), 0u) << t;
  for (const std::string& line : {std::string("port 2 (net_pcap2, peer none):"), std::string("worker 1 (lcore 2):"),
                                  std::string("class batch:")})
    EXPECT_NE(t.find(line), std::string::npos) << line << "\n" << t;
}

// --stats-interval's line: tests/hostile and scripts/soak parse it.
TEST(DpStats, StatsLine) {
  DataplaneStats s;
  for (uint16_t p = 0; p < 2; ++p) {
    PortStats& ps = s.ports.emplace_back();
    ps.port = p;
    ps.rx_packets = 10 + p;
    ps.tx_packets = 20 + p;
    ps.drops[static_cast<size_t>(DropReason::queue_full)] = 2;
    ps.drops[static_cast<size_t>(DropReason::tx_full)] = p;
  }
  s.mbufs_in_use = 77;
  EXPECT_EQ(stats_line(s), "p0 rx 10 tx 20 drop 2 | p1 rx 11 tx 21 drop 3 | mbufs in use 77");
}

TEST(DpStats, ClassifierTotalSumsWorkers) {
  DataplaneStats s;
  s.workers.resize(3);
  for (size_t w = 0; w < 3; ++w) {
    Filler f{.next = 100 * (w + 1)};
    ClassifierStats::visit(s.workers[w].classifier, f);
  }
  const ClassifierStats t = classifier_total(s);
  Seen total = seen(t), w0 = seen(s.workers[0].classifier), w1 = seen(s.workers[1].classifier),
       w2 = seen(s.workers[2].classifier);
  for (size_t i = 0; i < total.scalars.size(); ++i)
    EXPECT_EQ(total.scalars[i].second, w0.scalars[i].second + w1.scalars[i].second + w2.scalars[i].second)
        << total.scalars[i].first.name;
  for (size_t i = 0; i < total.arrays.size(); ++i)
    for (size_t e = 0; e < total.arrays[i].second.size(); ++e)
      EXPECT_EQ(total.arrays[i].second[e],
                w0.arrays[i].second[e] + w1.arrays[i].second[e] + w2.arrays[i].second[e])
          << total.arrays[i].first.name;
}

}  // namespace
}  // namespace aiqos
