// `aiqosctl top`: a live view of the classes and models, redrawn every interval from two
// successive snapshots (rates are differences over the time between them). Plain ANSI output;
// the terminal is put in non-canonical mode so a single `q` quits (docs/cli.md).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "control/control_api.h"

namespace aiqos::ctl {

// One request to the daemon: protocol command and arguments (aiqosctl's transport).
using Fetch = std::function<CtlResult(const std::string& cmd, const nlohmann::json& args)>;

struct TopOptions {
  double interval_s = 1;  // between refreshes
  unsigned iterations = 0;  // refreshes before exiting; 0: until `q` (or SIGINT)
  unsigned rows = 20;       // at most this many classes and models each
};

// What one refresh reads: `classes`, `stats --by class`, `stats --by model`, at time t_s.
struct TopSnapshot {
  double t_s = 0;
  nlohmann::json classes, by_class, by_model;
};

// The screen for `cur` with rates since `prev` (the first screen passes cur twice: rates "-").
std::string render_top(const TopSnapshot& prev, const TopSnapshot& cur, const TopOptions& o,
                       const std::string& header);

// Runs the view until `q`, SIGINT or o.iterations; returns aiqosctl's exit code.
int run_top(const Fetch& fetch, const TopOptions& o);

}  // namespace aiqos::ctl
