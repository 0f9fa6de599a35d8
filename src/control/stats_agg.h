// Request statistics on the control plane: every finished RequestRecord
// (with its class name) is added on the main loop; the control socket, the
// Prometheus exporter and DPDK telemetry read snapshots from their own
// threads. One mutex guards everything: this is control path only, a few
// thousand records a second at most, never a worker.
//
// Two views of the same records:
// - per dimension (class, model, endpoint, tenant): full detail, latency
//   quantiles, status codes; what `aiqosctl stats --by ...` shows;
// - per series (class x model x endpoint): request counts per status class,
//   bytes and latency histograms; what Prometheus scrapes.
// Every table is bounded. A record whose key does not fit goes to the key
// kOtherKey of that table and the table's `overflow` counter counts it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "classify/request_record.h"
#include "control/histogram.h"

namespace aiqos {

struct StatsLimits {
  size_t classes = 512;    // more than kMaxClasses: names of reloaded policies add up until reset
  size_t models = 4096;
  size_t tenants = 4096;
  size_t series = 4096;    // class x model x endpoint combinations (Prometheus series)
  size_t status_codes = 32;  // exact HTTP status codes kept per key
};

// Keys used when a record has no value, or its value did not fit.
inline constexpr std::string_view kNoneKey = "(none)";
inline constexpr std::string_view kOtherKey = "(other)";

// HTTP status classes: none (no response seen), 1xx .. 5xx, and "other"
// (a status outside 100..599).
inline constexpr std::array<const char*, 7> kStatusClassNames = {"none", "1xx", "2xx", "3xx",
                                                                 "4xx",  "5xx", "other"};
int status_class_of(uint16_t status) noexcept;

// Time to first byte and duration of a record in seconds; nullopt when the
// record lacks the timestamps (a response never seen).
std::optional<double> record_ttfb_s(const RequestRecord& r) noexcept;
std::optional<double> record_duration_s(const RequestRecord& r) noexcept;
// Time to first token: end of the request (its headers when it has no body)
// to the first content-bearing event; nullopt when none was seen.
std::optional<double> record_ttft_s(const RequestRecord& r) noexcept;
// Mean time per output token after the first, (last - first) / (output - 1),
// for streamed responses with at least two output tokens.
std::optional<double> record_tpot_s(const RequestRecord& r) noexcept;
// OpenTelemetry error.type of a finished request: "stream_reset",
// "incomplete", "http_4xx", "http_5xx", "grpc_<code name>", "stream_error",
// "no_response"; nullptr for a success.
const char* error_type_of(const RequestRecord& r) noexcept;
// Token figures of a record are meaningful (an LLM endpoint, or a count/usage).
bool record_has_tokens(const RequestRecord& r) noexcept;

// Invalid UTF-8 replaced with U+FFFD, so that keys are safe in JSON and in
// Prometheus label values.
std::string sanitize_utf8(std::string_view s);

struct KeyStats {
  uint64_t requests = 0;
  uint64_t req_bytes = 0;
  uint64_t resp_bytes = 0;
  std::array<uint64_t, kStatusClassNames.size()> status_class{};
  std::map<uint16_t, uint64_t> status_codes;  // bounded by StatsLimits::status_codes
  uint64_t status_codes_other = 0;            // codes that did not fit
  std::array<uint64_t, 17> grpc{};            // grpc-status 0..16
  uint64_t grpc_other = 0;                    // > 16
  uint64_t incomplete = 0;
  uint64_t reset = 0;
  Histogram ttfb{kTtftBounds};
  Histogram duration{kDurationBounds};
  Histogram ttft{kTtftBounds};  // successful responses with a first token
  Histogram tpot{kTpotBounds};  // successful streamed responses with >= 2 output tokens
  // Tokens of requests with token figures (record_has_tokens), by source.
  uint64_t token_requests = 0;
  uint64_t input_tokens = 0;
  uint64_t output_tokens = 0;
  std::array<uint64_t, 3> token_source{};  // by TokenSource
  // Output tokens per second: output tokens of streamed successful responses
  // over their first-token-to-end time.
  uint64_t gen_tokens = 0;
  double gen_s = 0;
};

struct SeriesKey {
  std::string klass, model, endpoint;
  std::string response_model;  // gen_ai.response.model: the model the response named; "" when none
  bool operator==(const SeriesKey&) const = default;
};
struct SeriesKeyHash {
  size_t operator()(const SeriesKey& k) const noexcept;
};

struct SeriesStats {
  std::array<uint64_t, kStatusClassNames.size()> requests{};  // by status class
  uint64_t req_bytes = 0;
  uint64_t resp_bytes = 0;
  Histogram ttfb{kTtftBounds};
  Histogram duration{kDurationBounds};
  Histogram ttft{kTtftBounds};  // gen_ai.server.time_to_first_token (successes)
  Histogram tpot{kTpotBounds};  // gen_ai.server.time_per_output_token (successes)
  // gen_ai.client.token.usage by error.type ("" for a success): input, output.
  std::map<std::string, std::array<Histogram, 2>> tokens;
};

enum class StatsDim : uint8_t { klass, model, endpoint, tenant };
inline constexpr std::array<const char*, 4> kStatsDimNames = {"class", "model", "endpoint",
                                                              "tenant"};
std::optional<StatsDim> stats_dim_from_name(std::string_view by) noexcept;

class StatsAgg {
 public:
  explicit StatsAgg(StatsLimits limits = {}) : limits_(limits) {}
  StatsAgg(const StatsAgg&) = delete;
  StatsAgg& operator=(const StatsAgg&) = delete;

  // Main loop, once per finished request.
  void add(const RequestRecord& r, std::string_view class_name);
  void reset();

  // {"by", "requests", "keys": [{"key", "requests", "req_bytes", "resp_bytes",
  //  "status": {"2xx": n, ...}, "codes": {"200": n, ...}, "grpc": {"0": n, ...},
  //  "incomplete", "reset", "ttfb_ms": {"count","mean","p50","p90","p99","p999","max"},
  //  "duration_ms": {...}, "tokens": {"input": null, "output": null}}, ...],
  //  "distinct", "limit", "overflow"}; keys sorted by requests, descending.
  nlohmann::json snapshot(StatsDim by) const;
  // Same from a name; nullopt for anything but class|model|endpoint|tenant.
  std::optional<nlohmann::json> snapshot(std::string_view by) const;

  uint64_t total_requests() const;
  // For the Prometheus exporter: calls `fn` for every series under the lock
  // (keep it short: format, do not block). Also reports per-table overflow.
  void for_each_series(const std::function<void(const SeriesKey&, const SeriesStats&)>& fn) const;
  struct Overflow {
    uint64_t classes = 0, models = 0, tenants = 0, series = 0;
  };
  Overflow overflow() const;

 private:
  using Table = std::unordered_map<std::string, KeyStats>;
  KeyStats& slot(Table& t, std::string_view key, size_t limit, uint64_t& overflow);

  StatsLimits limits_;
  mutable std::mutex mu_;
  uint64_t total_ = 0;
  Table classes_, models_, tenants_;
  std::array<KeyStats, static_cast<size_t>(Endpoint::count_)> endpoints_;
  std::unordered_map<SeriesKey, SeriesStats, SeriesKeyHash> series_;
  Overflow overflow_;
};

}  // namespace aiqos
