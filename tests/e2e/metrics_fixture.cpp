// A stand-in for aiqosd's control plane, for end-to-end tests of the
// Prometheus exporter and aiqosctl without a dataplane: a StatsAgg fed with
// synthetic requests (a few every 100 ms), the Prometheus exporter, and the
// control socket over a fake ControlApi answering from that StatsAgg.
//
//   metrics_fixture --listen 127.0.0.1:PORT [--socket PATH]
// Runs until SIGINT/SIGTERM. Prints "ready port=N" once both are listening.
#include <atomic>
#include <csignal>
#include <cstring>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include "control/ctl_server.h"
#include "control/metrics.h"
#include "control/stats_agg.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

using nlohmann::json;

class FixtureApi : public aiqos::ControlApi {
 public:
  explicit FixtureApi(aiqos::StatsAgg& agg) : agg_(agg) {}
  aiqos::CtlResult status() override {
    return aiqos::CtlResult::success({{"version", "fixture"},
                                      {"uptime_s", 1},
                                      {"workers", 1},
                                      {"ports", json::array({{{"port", 0}, {"name", "net_null0"}}})},
                                      {"policy", {{"file", "fixture.yaml"}, {"generation", 1}}},
                                      {"frames", {{"rx", 10}, {"tx", 10}, {"drops", 0}}},
                                      {"bypass", {{"on", bypass_.load()}, {"frames", bypass_ ? 7 : 0}}}});
  }
  aiqos::CtlResult bypass(bool on) override {
    bypass_ = on;
    return aiqos::CtlResult::success({{"bypass", on}, {"bypassed_frames", on ? 7 : 0}});
  }
  aiqos::CtlResult policy_show() override { return aiqos::CtlResult::success({{"classes", classes_json()}}); }
  aiqos::CtlResult policy_reload(const std::string& file) override {
    // A file named *limits.yaml stands for one whose limits differ from those in force.
    if (file.ends_with("limits.yaml"))
      return aiqos::CtlResult::success(
          {{"generation", 2}, {"file", file}, {"restart_needed", {"limits.flows", "limits.idle_timeout.tcp"}}});
    return aiqos::CtlResult::failure(file + ":1:1: the fixture has no policy loader");
  }
  aiqos::CtlResult classes() override { return aiqos::CtlResult::success(classes_json()); }
  aiqos::CtlResult class_set(const std::string& name, std::optional<uint64_t> rate,
                             std::optional<uint64_t> burst) override {
    std::lock_guard l(mu_);
    for (auto& c : classes_)
      if (c.name == name) {
        if (rate) c.rate = *rate;
        if (burst) c.burst = *burst;
        return aiqos::CtlResult::success({{"name", name}, {"rate_bps", c.rate}, {"burst_bytes", c.burst}});
      }
    return aiqos::CtlResult::failure("unknown class '" + name + "' (classes: interactive, batch)");
  }
  aiqos::CtlResult flows(const aiqos::FlowQuery& q) override {
    json a = json::array();
    for (uint32_t i = 0; i < std::min<uint32_t>(q.top, 3); ++i)
      a.push_back({{"client", "198.18.0.1:" + std::to_string(40000 + i)}, {"server", "198.18.0.2:8080"},
                   {"class", q.klass.value_or("interactive")}, {"model", q.model.value_or("llama-3")},
                   {"bytes", 1000 * (3 - i)}});
    return aiqos::CtlResult::success(a);
  }
  aiqos::CtlResult stats(const std::string& by) override {
    if (auto s = agg_.snapshot(by)) return aiqos::CtlResult::success(*s);
    json a = appliance();
    if (by == "port") return aiqos::CtlResult::success({{"ports", a["ports"]}});
    return aiqos::CtlResult::success({{"workers", a["workers"]}});
  }
  aiqos::CtlResult stats_reset() override {
    agg_.reset();
    return aiqos::CtlResult::success(nullptr);
  }
  json appliance() {
    uint64_t n = agg_.total_requests();
    return {{"ports", json::array({{{"port", 0}, {"rx_packets", 10 * n}, {"tx_packets", 10 * n},
                                    {"drops", {{"tx_full", 0}, {"no_peer", 0}}}},
                                   {{"port", 1}, {"rx_packets", 12 * n}, {"tx_packets", 12 * n},
                                    {"drops", {{"tx_full", 1}, {"no_peer", 0}}}}})},
            {"workers", json::array({{{"worker", 0},
                                      {"classifier", {{"flows_active", 5}, {"reassembly_bytes_in_use", 0}}}}})}};
  }
  // The same figures, typed, for the Prometheus exporter.
  aiqos::ApplianceMetrics metrics() {
    uint64_t n = agg_.total_requests();
    aiqos::ApplianceMetrics m{.version = "fixture", .git = "fixture", .policy_generation = 1};
    for (uint16_t p = 0; p < 2; ++p) {
      aiqos::PortStats& ps = m.dp.ports.emplace_back();
      ps.port = p;
      ps.rx_packets = ps.tx_packets = (10 + 2 * p) * n;
      ps.drops[static_cast<size_t>(aiqos::DropReason::tx_full)] = p;
    }
    m.dp.workers.emplace_back().classifier.flows_active = 5;
    return m;
  }

 private:
  std::atomic<bool> bypass_{false};
  struct Cls {
    std::string name;
    uint64_t rate, burst;
  };
  json classes_json() {
    std::lock_guard l(mu_);
    json a = json::array();
    for (auto& c : classes_)
      a.push_back({{"name", c.name}, {"priority", c.name == "interactive" ? 0 : 7}, {"rate_bps", c.rate},
                   {"burst_bytes", c.burst}, {"exceed", "drop"}, {"frames", 100}, {"bytes", 150000},
                   {"drops", 0}, {"requests", 4}, {"active_flows", 2}});
    return a;
  }
  aiqos::StatsAgg& agg_;
  std::mutex mu_;
  std::vector<Cls> classes_ = {{"interactive", 20'000'000, 64'000}, {"batch", 0, 0}};
};

aiqos::RequestRecord synthetic(uint64_t i) {
  static const char* models[] = {"llama-3-8b", "text-embedding-3-small", "mistral-7b"};
  static const aiqos::Endpoint eps[] = {aiqos::Endpoint::chat_completions, aiqos::Endpoint::embeddings,
                                        aiqos::Endpoint::completions};
  aiqos::RequestRecord r;
  r.ts_ns = 1'700'000'000'000'000'000ULL + i * 1'000'000;
  r.req_end_ns = r.ts_ns + 1'000'000;
  r.resp_first_ns = r.req_end_ns + (5 + i % 300) * 1'000'000;  // 5..305 ms
  r.resp_end_ns = r.resp_first_ns + (i % 7) * 100'000'000;
  // Streamed answers: the first token 5..305 ms after the request, 20 tokens 25 ms apart.
  r.first_token_ns = r.resp_first_ns;
  r.last_token_ns = r.first_token_ns + 19 * 25'000'000;
  r.token_events = 20;
  r.output_tokens = 20;
  r.input_tokens = static_cast<uint32_t>(50 + i % 50);
  r.token_source = aiqos::TokenSource::usage;
  r.endpoint = eps[i % 3];
  r.model.append(models[i % 3]);
  r.status = i % 10 == 9 ? 503 : 200;
  r.req_bytes = 200 + i % 50;
  r.resp_bytes = 2000 + i % 500;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0", socket;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--listen")) listen = argv[i + 1];
    else if (!std::strcmp(argv[i], "--socket")) socket = argv[i + 1];
    else {
      std::cerr << "usage: metrics_fixture --listen HOST:PORT [--socket PATH]\n";
      return 2;
    }
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  aiqos::StatsAgg agg;
  FixtureApi api(agg);
  aiqos::MetricsServer metrics(agg, [&] { return api.metrics(); }, {.listen = listen});
  std::string err;
  if (!metrics.start(err)) {
    std::cerr << "metrics_fixture: " << err << '\n';
    return 1;
  }
  aiqos::CtlServer ctl(api, {.path = socket.empty() ? "/tmp/unused" : socket});
  if (!socket.empty() && !ctl.start(err)) {
    std::cerr << "metrics_fixture: " << err << '\n';
    return 1;
  }
  std::cout << "ready port=" << metrics.port() << std::endl;
  uint64_t i = 0;
  while (!g_stop) {
    for (int k = 0; k < 5; ++k, ++i) agg.add(synthetic(i), i % 3 == 1 ? "batch" : "interactive");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ctl.stop();
  metrics.stop();
  return 0;
}
