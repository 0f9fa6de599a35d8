// A ControlApi that records its calls, for the protocol and server tests.
#pragma once

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "control/control_api.h"

namespace aiqos::testing {

class FakeControlApi : public ControlApi {
 public:
  std::mutex mu;
  std::vector<std::string> calls;  // "cmd arg..." per call
  FlowQuery last_flows;
  std::optional<uint64_t> last_rate, last_burst;

  void log(std::string s) {
    std::lock_guard l(mu);
    calls.push_back(std::move(s));
  }
  CtlResult status() override {
    log("status");
    return CtlResult::success({{"version", "test"}, {"workers", 1}});
  }
  CtlResult policy_show() override {
    log("policy_show");
    return CtlResult::success({{"classes", nlohmann::json::array()}});
  }
  CtlResult policy_reload(const std::string& file) override {
    log("policy_reload " + file);
    if (file == "bad.yaml") return CtlResult::failure("bad.yaml:3:7: unknown key 'clases'");
    return CtlResult::success({{"generation", 2}});
  }
  CtlResult classes() override {
    log("classes");
    return CtlResult::success(nlohmann::json::array({{{"name", "interactive"}, {"rate_bps", 20000000}}}));
  }
  CtlResult class_set(const std::string& name, std::optional<uint64_t> rate,
                      std::optional<uint64_t> burst) override {
    log("class_set " + name);
    last_rate = rate;
    last_burst = burst;
    if (name != "interactive") return CtlResult::failure("unknown class '" + name + "'");
    return CtlResult::success({{"name", name}});
  }
  CtlResult flows(const FlowQuery& q) override {
    log("flows");
    last_flows = q;
    return CtlResult::success(nlohmann::json::array());
  }
  CtlResult stats(const std::string& by) override {
    log("stats " + by);
    if (by == "worker") throw std::runtime_error("boom");
    return CtlResult::success({{"by", by}});
  }
  CtlResult bypass(bool on) override {
    log(std::string("bypass ") + (on ? "on" : "off"));
    return CtlResult::success({{"bypass", on}, {"bypassed_frames", 0}});
  }
  CtlResult stats_reset() override {
    log("stats_reset");
    return CtlResult::success(nullptr);
  }
};

}  // namespace aiqos::testing
