// The dataplane's statistics as JSON: --stats-json, the control socket's
// stats --by port|worker and status, and through them DPDK telemetry. Key
// names are what aiqosctl, scripts and tests read: keep them.
#include <string_view>

#include "control/dp_stats.h"

namespace aiqos {
namespace {

using nlohmann::json;

// Writes each visited field into `o` under its name; arrays as objects by element name.
struct FieldsToJson {
  json& o;
  void operator()(const StatField& f, uint64_t v) const { o[f.name] = v; }
  void operator()(const StatArray& a, std::span<const uint64_t> v) const {
    json m = json::object();
    for (size_t i = a.first; i < v.size(); ++i)
      if (!a.nonzero_only || v[i] != 0) m[a.element(i)] = v[i];
    o[a.name] = std::move(m);
  }
};

// Appliance-wide fields keep the names tools have read since before the struct
// ("mbufs_in_use_at_exit", "bypass": {"on", "frames"}); any other lands under its own name.
struct ApplianceToJson {
  json& o;
  void operator()(const StatField& f, uint64_t v) const {
    std::string_view n = f.name;
    if (n == "mbufs_in_use")
      o["mbufs_in_use_at_exit"] = v;
    else if (n == "bypass_on")
      o["bypass"]["on"] = v != 0;
    else if (n == "bypassed_frames")
      o["bypass"]["frames"] = v;
    else
      o[f.name] = v;
  }
};

}  // namespace

json port_json(const PortStats& p) {
  json j = {{"port", p.port}, {"name", p.name}, {"peer", p.peer ? json(*p.peer) : json(nullptr)}};
  PortStats::visit(p, FieldsToJson{j});
  j["tx_full"] = p.drops[static_cast<size_t>(DropReason::tx_full)];  // also in drops: older readers look here
  return j;
}

json worker_json(const WorkerStats& w) {
  json j = {{"worker", w.worker}, {"lcore", w.lcore}};
  WorkerStats::visit(w, FieldsToJson{j});
  json c = json::object();
  ClassifierStats::visit(w.classifier, FieldsToJson{c});
  j["classifier"] = std::move(c);
  return j;
}

void add_class_counters(json& j, const ClassStats& c) { ClassStats::visit(c, FieldsToJson{j}); }

json stats_json(const DataplaneStats& s) {
  json j = json::object();
  j["ports"] = json::array();
  for (const PortStats& p : s.ports) j["ports"].push_back(port_json(p));
  j["workers"] = json::array();
  for (const WorkerStats& w : s.workers) j["workers"].push_back(worker_json(w));
  j["classes"] = json::array();
  for (const ClassStats& c : s.classes) {
    json o = {{"class", c.id}, {"name", c.name}};
    add_class_counters(o, c);
    j["classes"].push_back(std::move(o));
  }
  json lat = json::object();
  LatencyStats::visit(s.latency_ns, FieldsToJson{lat});
  j["latency_ns"] = std::move(lat);
  DataplaneStats::visit(s, ApplianceToJson{j});
  return j;
}

ClassifierStats classifier_total(const DataplaneStats& s) {
  ClassifierStats t;
  for (const WorkerStats& w : s.workers) {
    const ClassifierStats& c = w.classifier;
#define X(name, ...) t.name += c.name;
    AIQOS_CLASSIFIER_STATS(X)
#undef X
    auto add = [](auto& to, const auto& from) {
      for (size_t i = 0; i < to.size(); ++i) to[i] += from[i];
    };
    add(t.unclassified, c.unclassified);
    add(t.parser_errors, c.parser_errors);
    add(t.reassembly_segments, c.reassembly_segments);
    add(t.reassembly_failures, c.reassembly_failures);
  }
  return t;
}

uint64_t DataplaneStats::rx_packets() const noexcept {
  uint64_t t = 0;
  for (const PortStats& p : ports) t += p.rx_packets;
  return t;
}

uint64_t DataplaneStats::tx_packets() const noexcept {
  uint64_t t = 0;
  for (const PortStats& p : ports) t += p.tx_packets;
  return t;
}

uint64_t DataplaneStats::drops() const noexcept {
  uint64_t t = 0;
  for (const PortStats& p : ports) t += p.drops_total();
  return t;
}

}  // namespace aiqos
