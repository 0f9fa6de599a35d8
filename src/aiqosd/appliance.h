// The appliance as the control plane runs it: the dataplane, the policy in
// force and its reloads, the request log, request statistics, and the
// ControlApi that aiqosctl, Prometheus and DPDK telemetry query. Lives on the
// main lcore; the control socket calls it from its own thread, so every
// ControlApi method takes the appliance's lock.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "control/control_api.h"
#include "control/fleet_sync.h"
#include "control/metrics.h"
#include "control/options.h"
#include "control/policy.h"
#include "control/request_log.h"
#include "control/stats_agg.h"
#include "dataplane/dataplane.h"

namespace aiqos {

class Appliance final : public ControlApi {
 public:
  explicit Appliance(Options opts);

  // Before EAL: parse and validate the policy file (or take the built-in
  // one). False with every error, file:line:column, in `errors`.
  bool load_policy(std::string& errors);
  // After EAL: ports, workers, the first snapshot. Throws on failure.
  void init();
  void start();
  // Main-loop work: request records to the log and the statistics.
  void poll();
  // SIGHUP and aiqosctl: reload the file in force.
  CtlResult reload(const std::string& file);
  void stop();
  void close() { dp_.close(); }
  void reopen_log();

  Dataplane& dataplane() noexcept { return dp_; }
  StatsAgg& stats_agg() noexcept { return agg_; }
  // The classes of the policy in force with their counters in `st`.
  nlohmann::json classes_json(const DataplaneStats& st);
  // The dataplane's counters (ports, workers, classifier, classes, latency),
  // build and policy, for the Prometheus exporter's thread.
  std::optional<ApplianceMetrics> appliance_metrics();

  // ControlApi
  CtlResult status() override;
  CtlResult policy_show() override;
  CtlResult policy_reload(const std::string& file) override;
  CtlResult classes() override;
  CtlResult class_set(const std::string& name, std::optional<uint64_t> rate_bps,
                      std::optional<uint64_t> burst_bytes) override;
  CtlResult flows(const FlowQuery& q) override;
  CtlResult stats(const std::string& by) override;
  CtlResult stats_reset() override;
  CtlResult bypass(bool on) override;

 private:
  bool load_salt(std::string& errors);
  // Compiles `p` and publishes it; caller holds mu_.
  CtlResult publish_locked(Policy p, const std::string& file);

  Options opts_;
  Dataplane dp_;
  RequestLog log_;
  StatsAgg agg_;
  std::unique_ptr<FleetSync> fleet_;  // fleet budgets on Redis (its own thread); made by init()
  std::mutex mu_;
  Policy pending_;        // loaded before init, published by init()
  Limits limits_;         // in force: fixed at start (a reload that changes them says so)
  // What the last successful reload said of them: the limits of the policy in
  // force that differ from limits_ (empty before any reload: the tables were
  // sized from what aiqosd started with, whatever the built-in policy says).
  std::vector<std::string> restart_needed_;
  std::string policy_file_;
  uint32_t generation_ = 0;
  std::chrono::system_clock::time_point loaded_at_{};
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  uint64_t reloads_ok_ = 0, reloads_failed_ = 0;
};

}  // namespace aiqos
