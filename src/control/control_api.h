// What the control socket, Prometheus and DPDK telemetry ask of the running
// appliance. aiqosd implements it on the main lcore's side (never on a
// worker); every method is control path and may take a lock.
//
// Replies are JSON documents; the control socket sends them as they are for
// `aiqosctl --json` and renders tables from them otherwise.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace aiqos {

struct CtlResult {
  bool ok = true;
  std::string error;    // what went wrong, for the operator (when !ok)
  nlohmann::json data;  // the reply (when ok)

  static CtlResult success(nlohmann::json d) { return {true, {}, std::move(d)}; }
  static CtlResult failure(std::string e) { return {false, std::move(e), nullptr}; }
};

struct FlowQuery {
  uint32_t top = 20;                 // largest flows by bytes
  std::optional<std::string> klass;  // only flows of this class
  std::optional<std::string> model;  // only flows whose last request named this model
};

class ControlApi {
 public:
  virtual ~ControlApi() = default;
  // {"version","uptime_s","workers","ports":[...],"policy":{"file","loaded_at","generation"},
  //  "frames":{"rx","tx","drops"}}
  virtual CtlResult status() = 0;
  // The policy in force, as loaded (classes, rules, limits).
  virtual CtlResult policy_show() = 0;
  // Parse, validate, compile and publish FILE (empty: the file in force).
  // On failure the running policy is untouched and the error names file:line:col.
  virtual CtlResult policy_reload(const std::string& file) = 0;
  // [{"name","priority","rate_bps","burst_bytes","vlan","pcp","dscp","exceed",...,
  //   "frames","bytes","drops","requests","active_flows"}]
  virtual CtlResult classes() = 0;
  // Live change of one class's rate/burst (bits/s, bytes; nullopt: unchanged).
  virtual CtlResult class_set(const std::string& name, std::optional<uint64_t> rate_bps,
                              std::optional<uint64_t> burst_bytes) = 0;
  virtual CtlResult flows(const FlowQuery& q) = 0;
  // by: class | model | endpoint | tenant | port | worker
  virtual CtlResult stats(const std::string& by) = 0;
  virtual CtlResult stats_reset() = 0;
  // Operator bypass on/off: {"bypass": bool, "bypassed_frames": n}.
  virtual CtlResult bypass(bool on) = 0;
};

}  // namespace aiqos
