// Prometheus exporter: text exposition format 0.0.4 over HTTP, GET /metrics
// only, on its own thread (a StreamServer from control/ctl_server.h).
// docs/metrics.md lists every metric.
//
// Request metrics come from StatsAgg's series (class x model x endpoint,
// bounded there); appliance metrics from the typed dataplane aggregate
// (control/dp_stats.h), every field of it under the Prometheus family its
// declaration names, with the build, the policy and the fleet's status.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "control/dp_stats.h"
#include "control/stats_agg.h"

namespace aiqos {

// OpenTelemetry gen_ai.operation.name for an endpoint: chat,
// text_completion, embeddings, or "infer"/"other" where OTel has no name.
const char* otel_operation_name(std::string_view endpoint) noexcept;

// A label value escaped for the text format (backslash, quote, newline).
std::string prom_escape(std::string_view v);

// What the daemon adds to the request metrics.
struct ApplianceMetrics {
  DataplaneStats dp;
  std::string version, git;  // aiqos_build_info
  uint64_t policy_generation = 0, reloads_ok = 0, reloads_failed = 0;
  nlohmann::json fleet;  // FleetSync::status() while fleet budgets are on, else null
};

// The whole exposition. `appliance` may be null (no dataplane metrics).
std::string render_metrics(const StatsAgg& agg, const ApplianceMetrics* appliance);

struct MetricsConfig {
  // HOST:PORT, IPv4 or [IPv6]; port 0 picks a free one (tests).
  std::string listen = "127.0.0.1:9470";
  // Off: only loopback addresses are accepted (metrics name models and
  // tenants; expose them beyond the host only on purpose).
  bool allow_remote = false;
  size_t max_conns = 8;
  int timeout_ms = 2000;
};

class StreamServer;

class MetricsServer {
 public:
  // Returns the appliance's figures (see above); called on the exporter's
  // thread at every scrape, so it must be thread-safe. May be empty.
  using ApplianceFn = std::function<std::optional<ApplianceMetrics>()>;

  MetricsServer(const StatsAgg& agg, ApplianceFn appliance, MetricsConfig cfg = {});
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds, listens and starts the thread; false with a message on failure.
  bool start(std::string& error);
  void stop();
  uint16_t port() const noexcept { return port_; }  // bound port, after start()

  // The HTTP answer to one request head (exposed for tests).
  std::string respond(std::string_view request_head);

 private:
  const StatsAgg& agg_;
  ApplianceFn appliance_;
  MetricsConfig cfg_;
  std::unique_ptr<StreamServer> server_;
  uint16_t port_ = 0;
};

// Splits "HOST:PORT" / "[V6]:PORT"; false on syntax errors.
bool parse_listen_address(std::string_view s, std::string& host, uint16_t& port);

}  // namespace aiqos
