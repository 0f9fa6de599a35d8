#include "dataplane/telemetry.h"

#include <rte_telemetry.h>

#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "control/control_api.h"

namespace aiqos {

namespace {

using nlohmann::json;

// Telemetry callbacks take no context pointer: the API they call lives here.
// Guarded by g_mu: registration/detach (main lcore) vs. callbacks (telemetry thread).
std::mutex g_mu;
ControlApi* g_api = nullptr;  // main: rw under g_mu, telemetry thread: ro under g_mu
bool g_registered = false;    // main only

constexpr int kMaxEntries = RTE_TEL_MAX_DICT_ENTRIES - 1;  // one kept for "truncated"

// DPDK accepts only [A-Za-z0-9_/] in names (telemetry_data.c valid_name()) and
// silently drops other entries: '/' joins levels, anything else becomes '_'.
std::string key_name(const std::string& k) {
  std::string s;
  for (char c : k.substr(0, RTE_TEL_MAX_STRING_LEN - 1))
    s += (isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '/') ? c : '_';
  return s.empty() ? "_" : s;
}

std::string element_name(const json& e, size_t i) {
  if (e.is_object())
    for (const char* k : {"name", "key", "port", "worker"})
      if (auto it = e.find(k); it != e.end() && (it->is_string() || it->is_number()))
        return it->is_string() ? it->get<std::string>() : it->dump();
  return std::to_string(i);
}

struct Flattener {
  TelemetryReply out;

  void scalar(const std::string& name, const json& v) {
    if (out.entries.size() >= static_cast<size_t>(kMaxEntries)) {
      out.truncated = true;
      return;
    }
    out.entries.push_back({key_name(name), v});
  }

  void walk(const std::string& prefix, const json& v) {
    if (out.truncated) return;
    if (v.is_object() && !v.empty()) {
      for (auto& [k, x] : v.items()) walk(prefix.empty() ? k : prefix + "/" + k, x);
    } else if (v.is_array() && !v.empty()) {
      for (size_t i = 0; i < v.size(); ++i) {
        std::string name = element_name(v[i], i);
        walk(prefix.empty() ? name : prefix + "/" + name, v[i]);
      }
    } else {
      scalar(prefix.empty() ? "value" : prefix, v);
    }
  }
};

void add_entry(rte_tel_data* d, const TelemetryEntry& e) {
  const char* k = e.name.c_str();
  const json& v = e.value;
  if (v.is_number_unsigned()) {
    rte_tel_data_add_dict_u64(d, k, v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    int64_t x = v.get<int64_t>();
    if (x >= INT32_MIN && x <= INT32_MAX)
      rte_tel_data_add_dict_int(d, k, static_cast<int>(x));
    else
      rte_tel_data_add_dict_string(d, k, v.dump().c_str());
  } else if (v.is_boolean()) {
    rte_tel_data_add_dict_int(d, k, v.get<bool>() ? 1 : 0);
  } else if (v.is_string()) {
    rte_tel_data_add_dict_string(d, k, v.get_ref<const std::string&>().c_str());
  } else {  // float, null, empty containers
    rte_tel_data_add_dict_string(d, k, v.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  }
}

int reply(rte_tel_data* d, const CtlResult& r) {
  rte_tel_data_start_dict(d);
  if (!r.ok) {
    rte_tel_data_add_dict_string(d, "error", r.error.c_str());
    return 0;
  }
  TelemetryReply t = telemetry_flatten(r.data);
  for (const TelemetryEntry& e : t.entries) add_entry(d, e);
  if (t.truncated) rte_tel_data_add_dict_int(d, "truncated", 1);
  return 0;
}

template <typename Fn>
int call(rte_tel_data* d, Fn&& fn) {
  std::lock_guard lock(g_mu);
  if (!g_api) return reply(d, CtlResult::failure("aiqosd is shutting down"));
  try {
    return reply(d, fn(*g_api));
  } catch (const std::exception& e) {
    return reply(d, CtlResult::failure(e.what()));
  }
}

int cb_status(const char*, const char*, rte_tel_data* d) {
  return call(d, [](ControlApi& a) { return a.status(); });
}

int cb_classes(const char*, const char*, rte_tel_data* d) {
  return call(d, [](ControlApi& a) { return a.classes(); });
}

int cb_stats(const char*, const char* params, rte_tel_data* d) {
  std::string by = params && *params ? params : "class";
  static constexpr const char* kBy[] = {"class", "model", "endpoint", "tenant", "port", "worker"};
  bool ok = false;
  for (auto* b : kBy) ok |= by == b;
  if (!ok)
    return reply(d, CtlResult::failure("unknown parameter; use /aiqos/stats,BY with BY = class, model, "
                                       "endpoint, tenant, port or worker"));
  return call(d, [&](ControlApi& a) { return a.stats(by); });
}

}  // namespace

TelemetryReply telemetry_flatten(const json& data) {
  Flattener f;
  f.walk("", data);
  return std::move(f.out);
}

bool telemetry_register(ControlApi& api) {
  {
    std::lock_guard lock(g_mu);
    g_api = &api;
  }
  if (g_registered) return true;
  bool ok = rte_telemetry_register_cmd("/aiqos/status", cb_status,
                                       "aiqosd status: version, uptime, workers, ports, policy. No parameters") == 0;
  ok &= rte_telemetry_register_cmd("/aiqos/classes", cb_classes,
                                   "Traffic classes: rates, bursts and counters. No parameters") == 0;
  ok &= rte_telemetry_register_cmd("/aiqos/stats", cb_stats,
                                   "Statistics. Parameter: class (default), model, endpoint, tenant, port or worker") == 0;
  g_registered = true;
  return ok;
}

void telemetry_detach() {
  std::lock_guard lock(g_mu);
  g_api = nullptr;
}

}  // namespace aiqos
