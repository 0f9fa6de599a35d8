// Per-worker snapshots (read off the fast path from the workers' own
// counters), their sum into the typed aggregate, and DPDK telemetry's
// flattening of the stats answers rendered from it.
#include "dataplane/stats_snapshot.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "dataplane/dataplane.h"
#include "dataplane/telemetry.h"

namespace aiqos {
namespace {

// Every counter of a worker gets a value of its own, through the same lists
// the structs are declared from: a counter added to a list is covered.
TEST(StatsSnapshot, TakesEveryWorkerCounter) {
  auto wc = std::make_unique<WorkerCtx>();
  wc->id = 3;
  wc->lcore = 7;
  uint64_t v = 11;
#define X(name, ...) wc->ctr.name.add(v++);
  AIQOS_WORKER_COUNTERS(X)
#undef X
  for (auto& c : wc->ctr.parse) c.add(v++);
  for (uint16_t p = 0; p < 2; ++p) {
#define X(name, ...) wc->ctr.port[p].name.add(v++);
    AIQOS_PORT_COUNTERS(X)
#undef X
    for (auto& d : wc->ctr.port[p].drops) d.add(v++);
  }
  for (size_t c = 0; c < 2; ++c) {
#define X(name, ...) wc->cls_ctr[c].name.add(v++);
    AIQOS_CLASS_STATS(X)
#undef X
  }
  wc->latency.add(1000);
  wc->latency.add(5000);

  const WorkerSnapshot s = take_snapshot(*wc, 2, 2);
  EXPECT_EQ(s.worker, 3);
  EXPECT_EQ(s.lcore, 7u);
  v = 11;
#define X(name, ...) EXPECT_EQ(s.name, v++) << #name;
  AIQOS_WORKER_COUNTERS(X)
#undef X
  for (uint64_t c : s.parse) EXPECT_EQ(c, v++);
  ASSERT_EQ(s.ports.size(), 2u);
  for (uint16_t p = 0; p < 2; ++p) {
#define X(name, ...) EXPECT_EQ(s.ports[p].name, v++) << #name;
    AIQOS_PORT_COUNTERS(X)
#undef X
    for (uint64_t d : s.ports[p].drops) EXPECT_EQ(d, v++);
  }
  ASSERT_EQ(s.classes.size(), 2u);
  for (size_t c = 0; c < 2; ++c) {
#define X(name, ...) EXPECT_EQ(s.classes[c].name, v++) << #name;
    AIQOS_CLASS_STATS(X)
#undef X
  }
  EXPECT_EQ(s.latency[LatencyHistogram::index_of(1000)], 1u);
  EXPECT_EQ(s.latency[LatencyHistogram::index_of(5000)], 1u);
  EXPECT_EQ(s.latency_max, 5000u);
}

WorkerSnapshot snapshot(uint16_t id, uint64_t base) {
  WorkerSnapshot s;
  s.worker = id;
  s.lcore = id + 1u;
  uint64_t v = base;
#define X(name, ...) s.name = v++;
  AIQOS_WORKER_COUNTERS(X)
#undef X
  for (auto& c : s.parse) c = v++;
  s.ports.resize(2);
  for (PortCounts& p : s.ports) {
#define X(name, ...) p.name = v++;
    AIQOS_PORT_COUNTERS(X)
#undef X
    for (auto& d : p.drops) d = v++;
  }
  s.classes.resize(2);
  for (ClassCounts& c : s.classes) {
#define X(name, ...) c.name = v++;
    AIQOS_CLASS_STATS(X)
#undef X
  }
  s.classifier.flows_active = v++;
  s.classifier.unclassified[1] = v++;
  return s;
}

TEST(StatsSnapshot, AggregateSumsWorkers) {
  std::vector<WorkerSnapshot> w = {snapshot(0, 100), snapshot(1, 10000)};
  // Worker 0: 90 frames of ~1000 cycles, 10 of ~100000; worker 1 none.
  for (int i = 0; i < 90; ++i) ++w[0].latency[LatencyHistogram::index_of(1000)];
  for (int i = 0; i < 10; ++i) ++w[0].latency[LatencyHistogram::index_of(100000)];
  w[1].latency_max = 200000;
  std::vector<PortStats> ports(2);
  ports[0].name = "a", ports[0].imissed = 9;
  ports[1].port = 1;
  std::vector<ClassStats> classes(2);
  classes[1].name = "batch";
  const DataplaneStats d = aggregate(w, ports, classes, 1'000'000'000);  // 1 cycle = 1 ns

  ASSERT_EQ(d.ports.size(), 2u);
  EXPECT_EQ(d.ports[0].name, "a");
  EXPECT_EQ(d.ports[0].imissed, 9u);  // the PMD's, kept
  for (size_t p = 0; p < 2; ++p) {
#define X(name, ...) EXPECT_EQ(d.ports[p].name, w[0].ports[p].name + w[1].ports[p].name) << #name;
    AIQOS_PORT_COUNTERS(X)
#undef X
    for (size_t r = 0; r < kDropReasons; ++r) EXPECT_EQ(d.ports[p].drops[r], w[0].ports[p].drops[r] + w[1].ports[p].drops[r]);
  }
  ASSERT_EQ(d.workers.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(d.workers[i].worker, i);
    EXPECT_EQ(d.workers[i].lcore, i + 1);
#define X(name, ...) EXPECT_EQ(d.workers[i].name, w[i].name) << #name;
    AIQOS_WORKER_COUNTERS(X)
#undef X
    EXPECT_EQ(d.workers[i].parse, w[i].parse);
    EXPECT_EQ(d.workers[i].rx_packets, w[i].ports[0].rx_packets + w[i].ports[1].rx_packets);
    EXPECT_EQ(d.workers[i].tx_packets, w[i].ports[0].tx_packets + w[i].ports[1].tx_packets);
    EXPECT_EQ(d.workers[i].classifier.flows_active, w[i].classifier.flows_active);
    EXPECT_EQ(d.workers[i].classifier.unclassified, w[i].classifier.unclassified);
  }
  ASSERT_EQ(d.classes.size(), 2u);
  EXPECT_EQ(d.classes[1].name, "batch");
  for (size_t c = 0; c < 2; ++c) {
#define X(name, ...) EXPECT_EQ(d.classes[c].name, w[0].classes[c].name + w[1].classes[c].name) << #name;
    AIQOS_CLASS_STATS(X)
#undef X
  }
  EXPECT_EQ(d.bypassed_frames, w[0].bypassed + w[1].bypassed);
  // Percentiles over both workers' buckets, as upper bounds.
  EXPECT_GE(d.latency_ns.p50, 1000u);
  EXPECT_LE(d.latency_ns.p50, 1125u);
  EXPECT_GE(d.latency_ns.p99, 100000u);
  EXPECT_LE(d.latency_ns.p99, 112500u);
  EXPECT_EQ(d.latency_ns.max, 200000u);
}

// Telemetry flattens the control socket's answers, rendered from the
// aggregate: every field of a worker and of a port comes out under its path.
TEST(Telemetry, FlattensEveryField) {
  WorkerStats w;
  w.worker = 1;
  uint64_t v = 5000;
  struct Fill {
    uint64_t& v;
    void operator()(const StatField&, uint64_t& x) { x = v++; }
    void operator()(const StatArray&, std::span<uint64_t> a) {
      for (uint64_t& x : a) x = v++;
    }
  } fill{v};
  WorkerStats::visit(w, fill);
  ClassifierStats::visit(w.classifier, fill);
  PortStats p;
  p.name = "net_pcap0";
  PortStats::visit(p, fill);

  std::map<std::string, nlohmann::json> got;
  auto flat = [&](const nlohmann::json& keys) {
    TelemetryReply r = telemetry_flatten({{"by", "x"}, {"keys", keys}});
    EXPECT_FALSE(r.truncated);
    got.clear();
    for (auto& e : r.entries) got[e.name] = e.value;
  };
  struct Expect {
    std::map<std::string, nlohmann::json>& got;
    std::string prefix;
    void operator()(const StatField& f, uint64_t x) const { EXPECT_EQ(got[prefix + f.name], x) << prefix << f.name; }
    void operator()(const StatArray& a, std::span<const uint64_t> x) const {
      for (size_t i = a.first; i < x.size(); ++i)
        EXPECT_EQ(got[prefix + a.name + "/" + a.element(i)], x[i]) << prefix << a.name << "/" << a.element(i);
    }
  };
  flat(nlohmann::json::array({worker_json(w)}));
  WorkerStats::visit(w, Expect{got, "keys/1/"});
  ClassifierStats::visit(w.classifier, Expect{got, "keys/1/classifier/"});
  flat(nlohmann::json::array({port_json(p)}));
  PortStats::visit(p, Expect{got, "keys/net_pcap0/"});
}

TEST(Telemetry, NamesAndLimit) {
  TelemetryReply r = telemetry_flatten({{"models", {{"llama-3.1", 2}}}, {"f", 0.5}, {"n", -3}});
  ASSERT_EQ(r.entries.size(), 3u);
  EXPECT_EQ(r.entries[0].name, "f");
  EXPECT_EQ(r.entries[1].name, "models/llama_3_1");
  EXPECT_EQ(r.entries[1].value, 2);
  nlohmann::json big = nlohmann::json::object();
  for (int i = 0; i < 300; ++i) big["k" + std::to_string(1000 + i)] = i;
  r = telemetry_flatten(big);
  EXPECT_TRUE(r.truncated);
  EXPECT_LT(r.entries.size(), 256u);
}

}  // namespace
}  // namespace aiqos
