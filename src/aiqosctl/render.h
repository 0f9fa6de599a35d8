// aiqosctl's renderers: a daemon reply (nlohmann::json, the data member of a
// control reply) as the tables and "key: value" lines of docs/cli.md, or as
// indented JSON with --json.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

namespace aiqos::ctl {

// Prints the reply to command `cmd` ("classes", "stats", "policy.show", ...).
void render(std::ostream& out, const std::string& cmd, const nlohmann::json& data, bool json);

}  // namespace aiqos::ctl
