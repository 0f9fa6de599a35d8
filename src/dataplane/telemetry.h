// DPDK telemetry commands over ControlApi, for `dpdk-telemetry.py`:
//   /aiqos/status            ControlApi::status()
//   /aiqos/classes           ControlApi::classes()
//   /aiqos/stats,BY          ControlApi::stats(BY); BY = class (default) | model |
//                            endpoint | tenant | port | worker
// The telemetry socket is /var/run/dpdk/<file-prefix>/dpdk_telemetry.v2
// (default prefix "rte"): query with `dpdk-telemetry.py -f <prefix>` when
// aiqosd runs with --file-prefix (offline mode uses the prefix
// aiqos-offline-<pid>).
//
// Replies are flat dictionaries (DPDK 22.11 nests only arrays of scalars):
// nested JSON becomes '/'-joined keys ("frames/rx", "interactive/rate_bps";
// an array element is named by its "name"/"key"/"port"/"worker" field, else
// its index). DPDK accepts only [A-Za-z0-9_/] in names, so other bytes become
// '_' ("llama-3.1" -> "llama_3_1"). At most 255 entries, then "truncated": 1.
// Floats and nulls are strings. Callbacks run on DPDK's
// telemetry thread: the ControlApi implementation must be thread-safe.
//
// The stats answers are JSON renderings of the dataplane's typed aggregate
// (control/dp_stats.h); telemetry_flatten() keeps every one of their fields
// (tests/unit/dataplane/telemetry_test.cpp checks it over a full aggregate).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace aiqos {

class ControlApi;

// One entry of a telemetry reply: its name and a scalar value (unsigned or
// int for numbers that fit, else a string).
struct TelemetryEntry {
  std::string name;
  nlohmann::json value;
};
struct TelemetryReply {
  std::vector<TelemetryEntry> entries;
  bool truncated = false;  // more than DPDK's dictionary holds
};
TelemetryReply telemetry_flatten(const nlohmann::json& data);

// After rte_eal_init(). Idempotent for the same api (DPDK 22.11 cannot
// unregister commands: they stay, answering an error after
// telemetry_detach()). Returns false if DPDK refused a command.
bool telemetry_register(ControlApi& api);
// Before `api` is destroyed: waits for a callback in progress, then makes
// every command answer an error.
void telemetry_detach();

}  // namespace aiqos
