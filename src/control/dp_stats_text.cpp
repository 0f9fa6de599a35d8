// The dataplane's statistics as text: the report aiqosd prints at exit
// (the port and worker tables, then every field, name=value) and the one-line summary of --stats-interval
// (its format is parsed by tests/hostile and scripts/soak: keep it).
#include <cinttypes>
#include <cstdio>
#include <sstream>

#include "control/dp_stats.h"

namespace aiqos {
namespace {

// Scalars as " name=value" on the current line (wrapped), arrays on lines of their own.
struct TextFields {
  std::string& out;
  size_t line_start;
  static constexpr const char* kIndent = "        ";  // then a space, as before each field
  void operator()(const StatField& f, uint64_t v) {
    std::string item = std::string(" ") + f.name + "=" + std::to_string(v);
    if (out.size() - line_start + item.size() > 110) {
      out += '\n';
      line_start = out.size();
      out += kIndent;
    }
    out += item;
  }
  // Non-zero elements only: the report stays short; JSON and Prometheus show the zeros.
  void operator()(const StatArray& a, std::span<const uint64_t> v) {
    std::string line;
    for (size_t i = a.first; i < v.size(); ++i)
      if (v[i] != 0) line += std::string(" ") + a.element(i) + "=" + std::to_string(v[i]);
    if (line.empty()) return;
    out += '\n';
    out += kIndent;
    out += ' ';
    out += a.name;
    out += ':';
    out += line;
    line_start = out.size();
  }
};

template <class S>
void fields(std::string& out, const S& s) {
  TextFields t{out, out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1};
  S::visit(s, t);
  out += '\n';
}

// The summary tables aiqosd has always printed first (tests/e2e read the port rows).
std::string summary_tables(const DataplaneStats& s) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-4s %-22s %12s %14s %12s %14s %10s %10s %10s\n", "port", "name", "rx-pkts",
                "rx-bytes", "tx-pkts", "tx-bytes", "drops", "no-mbuf", "missed");
  out += line;
  for (const PortStats& p : s.ports) {
    std::snprintf(line, sizeof line,
                  "%-4u %-22s %12" PRIu64 " %14" PRIu64 " %12" PRIu64 " %14" PRIu64 " %10" PRIu64 " %10" PRIu64
                  " %10" PRIu64 "\n",
                  unsigned{p.port}, p.name.c_str(), p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes,
                  p.drops_total(), p.no_mbuf, p.imissed);
    out += line;
  }
  std::snprintf(line, sizeof line, "%-7s %-6s %12s %12s %12s %12s %12s\n", "worker", "lcore", "rx-pkts", "tx-pkts",
                "dispatch-in", "dispatch-out", "busy-loops");
  out += line;
  for (const WorkerStats& w : s.workers) {
    std::snprintf(line, sizeof line, "%-7u %-6u %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64 "\n",
                  unsigned{w.worker}, w.lcore, w.rx_packets, w.tx_packets, w.dispatched_in, w.dispatched_out,
                  w.busy_loops);
    out += line;
  }
  return out;
}

}  // namespace

std::string stats_table(const DataplaneStats& s) {
  std::string out = summary_tables(s);
  for (const PortStats& p : s.ports) {
    out += "port " + std::to_string(p.port) + " (" + p.name + ", peer " +
           (p.peer ? std::to_string(*p.peer) : std::string("none")) + "):";
    fields(out, p);
  }
  for (const WorkerStats& w : s.workers) {
    out += "worker " + std::to_string(w.worker) + " (lcore " + std::to_string(w.lcore) + "):";
    fields(out, w);
    out += "worker " + std::to_string(w.worker) + " classifier:";
    fields(out, w.classifier);
  }
  for (const ClassStats& c : s.classes) {
    out += "class " + c.name + ":";
    fields(out, c);
  }
  out += "latency_ns:";
  fields(out, s.latency_ns);
  if (s.bypass_on || s.bypassed_frames)
    out += std::string("bypass ") + (s.bypass_on ? "on" : "off") + ": " + std::to_string(s.bypassed_frames) +
           " frames forwarded unparsed\n";
  out += "appliance:";
  fields(out, s);
  return out;
}

std::string stats_line(const DataplaneStats& s) {
  std::ostringstream o;
  for (const PortStats& p : s.ports) {
    if (p.port) o << " | ";
    o << "p" << p.port << " rx " << p.rx_packets << " tx " << p.tx_packets << " drop " << p.drops_total();
  }
  o << " | mbufs in use " << s.mbufs_in_use;
  return o.str();
}

}  // namespace aiqos
