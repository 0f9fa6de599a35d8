#include "dataplane/stats_snapshot.h"

#include <algorithm>

#include "classify/classifier.h"
#include "dataplane/dataplane.h"
#include "dataplane/request_ring.h"

namespace aiqos {

ClassifierStats classifier_stats(const Classifier& c, const RingRequestSink& sink) {
  const ClassifierCounters& k = c.counters();
  const FlowTableCounters& f = c.flows().counters();
  const ReassemblyCounters& rc = c.reassembly().counters();
  ClassifierStats s;
#define X(name, kind, prom, labels, help, source) s.name = static_cast<uint64_t>(source);
  AIQOS_CLASSIFIER_STATS(X)
#undef X
  s.unclassified = k.unclassified;
  s.parser_errors = k.l7_errors;
  s.reassembly_segments = rc.outcomes;
  s.reassembly_failures = rc.failures;
  return s;
}

WorkerSnapshot take_snapshot(const WorkerCtx& wc, uint16_t nb_ports, uint16_t nb_classes) {
  WorkerSnapshot s;
  s.worker = wc.id;
  s.lcore = wc.lcore;
#define X(name, ...) s.name = wc.ctr.name.get();
  AIQOS_WORKER_COUNTERS(X)
#undef X
  for (size_t i = 0; i < kParseStatuses; ++i) s.parse[i] = wc.ctr.parse[i].get();
  s.ports.resize(nb_ports);
  for (uint16_t p = 0; p < nb_ports; ++p) {
    const PortCounters& c = wc.ctr.port[p];
    PortCounts& o = s.ports[p];
#define X(name, ...) o.name = c.name.get();
    AIQOS_PORT_COUNTERS(X)
#undef X
    for (size_t r = 0; r < kDropReasons; ++r) o.drops[r] = c.drops[r].get();
  }
  if (wc.cls != nullptr && wc.req_sink != nullptr) s.classifier = classifier_stats(*wc.cls, *wc.req_sink);
  s.classes.resize(std::min<uint16_t>(nb_classes, kMaxQosClasses));
  for (size_t i = 0; i < s.classes.size(); ++i) {
    const ClassCounters& cc = wc.cls_ctr[i];
    ClassCounts& o = s.classes[i];
#define X(name, kind, prom, labels, help, source) o.name = source;
    AIQOS_CLASS_STATS(X)
#undef X
  }
  for (unsigned b = 0; b < LatencyHistogram::kBuckets; ++b) s.latency[b] = wc.latency.count(b);
  s.latency_max = wc.latency.max();
  return s;
}

namespace {

// latency_percentile() over the buckets summed over workers.
struct SummedHistogram {
  const std::array<uint64_t, LatencyHistogram::kBuckets>& b;
  uint64_t count(unsigned i) const noexcept { return b[i]; }
};

}  // namespace

DataplaneStats aggregate(std::span<const WorkerSnapshot> workers, std::vector<PortStats> ports,
                         std::vector<ClassStats> classes, uint64_t tsc_hz) {
  DataplaneStats s;
  s.ports = std::move(ports);
  s.classes = std::move(classes);
  std::array<uint64_t, LatencyHistogram::kBuckets> lat{};
  uint64_t lmax = 0;
  for (const WorkerSnapshot& w : workers) {
    WorkerStats& o = s.workers.emplace_back();
    o.worker = w.worker;
    o.lcore = w.lcore;
#define X(name, ...) o.name = w.name;
    AIQOS_WORKER_COUNTERS(X)
#undef X
    o.parse = w.parse;
    o.classifier = w.classifier;
    for (size_t p = 0; p < w.ports.size(); ++p) {
      const PortCounts& c = w.ports[p];
      o.rx_packets += c.rx_packets;
      o.tx_packets += c.tx_packets;
      if (p >= s.ports.size()) continue;
      PortStats& t = s.ports[p];
#define X(name, ...) t.name += c.name;
      AIQOS_PORT_COUNTERS(X)
#undef X
      for (size_t r = 0; r < kDropReasons; ++r) t.drops[r] += c.drops[r];
    }
    for (size_t i = 0; i < w.classes.size() && i < s.classes.size(); ++i) {
#define X(name, ...) s.classes[i].name += w.classes[i].name;
      AIQOS_CLASS_STATS(X)
#undef X
    }
    for (unsigned b = 0; b < LatencyHistogram::kBuckets; ++b) lat[b] += w.latency[b];
    lmax = std::max(lmax, w.latency_max);
    s.bypassed_frames += w.bypassed;
  }
  const SummedHistogram sum{lat};
  const SummedHistogram* h = &sum;
  const double ns = tsc_hz ? 1e9 / static_cast<double>(tsc_hz) : 0;
  auto to_ns = [&](uint64_t cycles) { return static_cast<uint64_t>(static_cast<double>(cycles) * ns); };
  s.latency_ns.p50 = to_ns(latency_percentile(&h, &h + 1, 0.5));
  s.latency_ns.p99 = to_ns(latency_percentile(&h, &h + 1, 0.99));
  s.latency_ns.p999 = to_ns(latency_percentile(&h, &h + 1, 0.999));
  s.latency_ns.max = to_ns(lmax);
  return s;
}

}  // namespace aiqos
