// The control socket's wire protocol: one JSON request line in, one JSON
// reply line out, then the connection closes.
//
//   request: {"cmd": "stats", "args": {"by": "model"}}\n
//   reply:   {"ok": true, "data": ...}\n   or   {"ok": false, "error": "..."}\n
//
// Requests are untrusted input (any local user in the socket's group): they
// are bounded (kMaxRequestBytes, kMaxRequestDepth), parsed with nlohmann::json
// without exceptions escaping, checked against a fixed table of commands and
// their arguments, and only then dispatched to ControlApi. Nothing reaches a
// shell.
// docs/cli.md lists every command.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "control/control_api.h"

namespace aiqos {

inline constexpr size_t kMaxRequestBytes = 64 * 1024;  // the line, '\n' excluded
inline constexpr size_t kMaxRequestDepth = 16;         // JSON nesting (a request needs 2)

struct CtlRequest {
  std::string cmd;
  nlohmann::json args = nlohmann::json::object();
};

// Names of every command, comma-separated: for error messages and --help.
std::string ctl_command_list();

// Parses and validates one request line (without its '\n'). On failure
// returns nullopt-like: `error` set, request untouched.
bool parse_ctl_request(std::string_view line, CtlRequest& out, std::string& error);

// Validates `req` and calls the matching ControlApi method. Exceptions from
// `api` become failures; never throws.
CtlResult dispatch_ctl(ControlApi& api, const CtlRequest& req);

// Serializes a result as one reply line, '\n' included. Invalid UTF-8 in
// strings (names copied from traffic) is replaced, never an error.
std::string ctl_reply_line(const CtlResult& r);

// The whole server side of one request: line (no '\n') -> reply line.
std::string handle_ctl_line(ControlApi& api, std::string_view line);

// Client side: the request line for cmd/args, '\n' included.
std::string ctl_request_line(const std::string& cmd, const nlohmann::json& args);
// Client side: parses a reply line into a CtlResult (a malformed reply is a
// failure that says so).
CtlResult parse_ctl_reply(std::string_view line);

}  // namespace aiqos
