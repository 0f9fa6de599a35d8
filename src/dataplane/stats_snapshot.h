// Per-worker snapshots of the dataplane's counters and their sum into the
// control plane's typed aggregate (control/dp_stats.h). Control path only:
// the control thread reads each worker's single-writer counters (relaxed
// loads) while the worker runs on; workers never wait for it and never
// see it.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "control/dp_stats.h"
#include "dataplane/latency.h"

namespace aiqos {

struct WorkerCtx;
class Classifier;
class RingRequestSink;

#define AIQOS_DECLARE_U64(name, ...) uint64_t name = 0;
// One port's counters on one worker.
struct PortCounts {
  AIQOS_PORT_COUNTERS(AIQOS_DECLARE_U64)
  std::array<uint64_t, kDropReasons> drops{};
};
// One class's counters on one worker.
struct ClassCounts {
  AIQOS_CLASS_STATS(AIQOS_DECLARE_U64)
};

// What one worker's counters said when they were read.
struct WorkerSnapshot {
  uint16_t worker = 0;
  unsigned lcore = 0;
  AIQOS_WORKER_COUNTERS(AIQOS_DECLARE_U64)
  std::array<uint64_t, kParseStatuses> parse{};
  std::vector<PortCounts> ports;  // one per port
  ClassifierStats classifier;
  std::vector<ClassCounts> classes;  // one per class of the policy in force
  std::array<uint64_t, LatencyHistogram::kBuckets> latency{};  // RX to TX, TSC cycles
  uint64_t latency_max = 0;
};
#undef AIQOS_DECLARE_U64

ClassifierStats classifier_stats(const Classifier& c, const RingRequestSink& sink);
WorkerSnapshot take_snapshot(const WorkerCtx& wc, uint16_t nb_ports, uint16_t nb_classes);

// Sums the snapshots. `ports` and `classes` come with their identity (and the
// ports with the PMD's counters) filled; the workers' counters are added to
// them. Latency percentiles are converted from TSC cycles at `tsc_hz`.
DataplaneStats aggregate(std::span<const WorkerSnapshot> workers, std::vector<PortStats> ports,
                         std::vector<ClassStats> classes, uint64_t tsc_hz);

}  // namespace aiqos
