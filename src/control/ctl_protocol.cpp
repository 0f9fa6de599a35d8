#include "control/ctl_protocol.h"

#include <algorithm>
#include <array>
#include <exception>

#include "control/policy.h"

namespace aiqos {

namespace {

using nlohmann::json;

enum class ArgType : uint8_t { string, uint, rate, size, boolean };

struct ArgSpec {
  const char* name;
  ArgType type;
  bool required;
};

struct CmdSpec {
  const char* name;
  std::initializer_list<ArgSpec> args;
};

// The whole protocol surface; docs/cli.md mirrors it.
const std::array<CmdSpec, 9> kCommands = {{
    {"status", {}},
    {"policy.show", {}},
    {"policy.reload", {{"file", ArgType::string, false}}},
    {"classes", {}},
    {"class.set",
     {{"name", ArgType::string, true}, {"rate", ArgType::rate, false}, {"burst", ArgType::size, false}}},
    {"flows",
     {{"top", ArgType::uint, false}, {"class", ArgType::string, false}, {"model", ArgType::string, false}}},
    {"stats", {{"by", ArgType::string, false}}},
    {"stats.reset", {}},
    {"bypass", {{"on", ArgType::boolean, true}}},
}};

constexpr std::array<const char*, 6> kStatsBy = {"class", "model", "endpoint", "tenant", "port", "worker"};
constexpr uint64_t kMaxTop = 100000;
constexpr size_t kMaxStringArg = 4096;

// Names echoed in errors come from the request: keep them short and printable.
std::string sanitize_key(std::string_view k) {
  std::string s;
  for (char c : k.substr(0, 64)) s += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (k.size() > 64) s += "...";
  return s;
}

const CmdSpec* find_cmd(std::string_view name) {
  for (auto& c : kCommands)
    if (name == c.name) return &c;
  return nullptr;
}

std::string arg_list(const CmdSpec& c) {
  if (c.args.size() == 0) return "none";
  std::string s;
  for (auto& a : c.args) {
    if (!s.empty()) s += ", ";
    s += a.name;
  }
  return s;
}

// A rate or size argument: a non-negative integer (bit/s or bytes) or a
// string with units ("20Mbit", "64KB").
bool unit_arg(const json& v, ArgType t, uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer()) return false;  // negative
  if (!v.is_string()) return false;
  auto s = v.get_ref<const std::string&>();
  auto r = t == ArgType::rate ? parse_rate(s) : parse_size(s);
  if (!r) return false;
  out = *r;
  return true;
}

}  // namespace

std::string ctl_command_list() {
  std::string s;
  for (auto& c : kCommands) {
    if (!s.empty()) s += ", ";
    s += c.name;
  }
  return s;
}

bool parse_ctl_request(std::string_view line, CtlRequest& out, std::string& error) {
  if (line.size() > kMaxRequestBytes) {
    error = "request too large (" + std::to_string(line.size()) + " bytes; the limit is " +
            std::to_string(kMaxRequestBytes) + ")";
    return false;
  }
  // nlohmann's parser is iterative but copying or serializing a document
  // recurses once a level: values nested deeper than kMaxRequestDepth are not
  // built (the callback discards them) and the request is refused, so that
  // 64 KB of '[' or '{"a":' cannot overflow the stack.
  bool too_deep = false;
  json::parser_callback_t limit_depth = [&too_deep](int depth, json::parse_event_t ev, json&) {
    // depth: the containers around this event; an object or array starting
    // at depth d is nesting level d + 1.
    bool start = ev == json::parse_event_t::object_start || ev == json::parse_event_t::array_start;
    if (!start || depth < static_cast<int>(kMaxRequestDepth)) return true;
    too_deep = true;
    return false;
  };
  json j = json::parse(line, limit_depth, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Parse again with exceptions only to get the position for the message.
    try {
      json ignored = json::parse(line, limit_depth);
      (void)ignored;
      error = "malformed JSON";
    } catch (const json::exception& e) {
      // Not only parse_error: a number that overflows a double is out_of_range
      // (406), which once escaped and aborted the daemon (ctl_protocol_fuzz).
      error = std::string("malformed JSON: ") + e.what();
    }
    return false;
  }
  if (too_deep) {
    error = "request nested too deeply (more than " + std::to_string(kMaxRequestDepth) + " levels)";
    return false;
  }
  if (!j.is_object()) {
    error = R"(request must be a JSON object {"cmd": ..., "args": {...}})";
    return false;
  }
  for (auto& [k, v] : j.items()) {
    if (k != "cmd" && k != "args") {
      error = "unknown request field '" + sanitize_key(k) + "' (valid: cmd, args)";
      return false;
    }
  }
  auto cmd = j.find("cmd");
  if (cmd == j.end() || !cmd->is_string()) {
    error = "missing \"cmd\" string (valid commands: " + ctl_command_list() + ")";
    return false;
  }
  const CmdSpec* spec = find_cmd(cmd->get_ref<const std::string&>());
  if (!spec) {
    error = "unknown command '" + sanitize_key(cmd->get_ref<const std::string&>()) +
            "' (valid commands: " + ctl_command_list() + ")";
    return false;
  }
  json args = json::object();
  if (auto a = j.find("args"); a != j.end() && !a->is_null()) {
    if (!a->is_object()) {
      error = "\"args\" must be an object";
      return false;
    }
    args = *a;
  }
  // (no structured binding: clang 14 cannot capture one in the lambda)
  for (auto& item : args.items()) {
    const std::string& k = item.key();
    const json& v = item.value();
    auto it = std::find_if(spec->args.begin(), spec->args.end(), [&](auto& s) { return k == s.name; });
    if (it == spec->args.end()) {
      error = std::string(spec->name) + ": unknown argument '" + sanitize_key(k) +
              "' (valid: " + arg_list(*spec) + ")";
      return false;
    }
    bool ok = true;
    switch (it->type) {
      case ArgType::string:
        ok = v.is_string() && v.get_ref<const std::string&>().size() <= kMaxStringArg &&
             v.get_ref<const std::string&>().find('\0') == std::string::npos;
        break;
      case ArgType::uint: ok = v.is_number_unsigned(); break;
      case ArgType::boolean: ok = v.is_boolean(); break;
      case ArgType::rate:
      case ArgType::size: {
        uint64_t dummy;
        ok = unit_arg(v, it->type, dummy);
        break;
      }
    }
    if (!ok) {
      static const char* kWhat[] = {"a string", "a non-negative integer",
                                    "a rate (bit/s or \"20Mbit\")", "a size (bytes or \"64KB\")",
                                    "true or false"};
      error = std::string(spec->name) + ": argument '" + k + "' must be " +
              kWhat[static_cast<int>(it->type)];
      return false;
    }
  }
  for (auto& s : spec->args) {
    if (s.required && !args.contains(s.name)) {
      error = std::string(spec->name) + ": missing argument '" + s.name + "'";
      return false;
    }
  }
  out.cmd = spec->name;
  out.args = std::move(args);
  return true;
}

CtlResult dispatch_ctl(ControlApi& api, const CtlRequest& req) {
  // Re-validate: dispatch may be called with a hand-built request, whose strings
  // may not be UTF-8: replaced (U+FFFD), where a strict dump() would throw.
  std::string error;
  CtlRequest r;
  json j = {{"cmd", req.cmd}, {"args", req.args}};
  if (!parse_ctl_request(j.dump(-1, ' ', false, json::error_handler_t::replace), r, error))
    return CtlResult::failure(error);
  const json& a = r.args;
  try {
    if (r.cmd == "status") return api.status();
    if (r.cmd == "policy.show") return api.policy_show();
    if (r.cmd == "policy.reload") return api.policy_reload(a.value("file", std::string()));
    if (r.cmd == "classes") return api.classes();
    if (r.cmd == "class.set") {
      std::optional<uint64_t> rate, burst;
      uint64_t v;
      if (a.contains("rate") && unit_arg(a["rate"], ArgType::rate, v)) rate = v;
      if (a.contains("burst") && unit_arg(a["burst"], ArgType::size, v)) burst = v;
      if (!rate && !burst) return CtlResult::failure("class.set: give rate, burst or both");
      return api.class_set(a["name"].get<std::string>(), rate, burst);
    }
    if (r.cmd == "flows") {
      FlowQuery q;
      if (a.contains("top")) {
        uint64_t top = a["top"].get<uint64_t>();
        if (top == 0 || top > kMaxTop)
          return CtlResult::failure("flows: top must be 1.." + std::to_string(kMaxTop));
        q.top = static_cast<uint32_t>(top);
      }
      if (a.contains("class")) q.klass = a["class"].get<std::string>();
      if (a.contains("model")) q.model = a["model"].get<std::string>();
      return api.flows(q);
    }
    if (r.cmd == "stats") {
      std::string by = a.value("by", std::string("class"));
      if (std::find(kStatsBy.begin(), kStatsBy.end(), by) == kStatsBy.end())
        return CtlResult::failure("stats: unknown 'by' value '" + sanitize_key(by) +
                                  "' (valid: class, model, endpoint, tenant, port, worker)");
      return api.stats(by);
    }
    if (r.cmd == "stats.reset") return api.stats_reset();
    if (r.cmd == "bypass") return api.bypass(a["on"].get<bool>());
  } catch (const std::exception& e) {
    return CtlResult::failure(r.cmd + ": " + e.what());
  }
  return CtlResult::failure("unknown command '" + r.cmd + "'");  // table and dispatch disagree
}

std::string ctl_reply_line(const CtlResult& r) {
  json j = r.ok ? json{{"ok", true}, {"data", r.data}} : json{{"ok", false}, {"error", r.error}};
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  s.push_back('\n');
  return s;
}

std::string handle_ctl_line(ControlApi& api, std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  CtlRequest req;
  std::string error;
  if (!parse_ctl_request(line, req, error)) return ctl_reply_line(CtlResult::failure(error));
  return ctl_reply_line(dispatch_ctl(api, req));
}

std::string ctl_request_line(const std::string& cmd, const nlohmann::json& args) {
  json j = {{"cmd", cmd}, {"args", args.is_null() ? json::object() : args}};
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  s.push_back('\n');
  return s;
}

CtlResult parse_ctl_reply(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("ok") || !j["ok"].is_boolean())
    return CtlResult::failure("malformed reply from aiqosd");
  // Moved, not copied: a copy recurses once a nesting level.
  if (j["ok"].get<bool>()) return CtlResult::success(j.contains("data") ? std::move(j["data"]) : json(nullptr));
  auto e = j.find("error");
  return CtlResult::failure(e != j.end() && e->is_string() ? e->get<std::string>()
                                                          : std::string("unknown error"));
}

}  // namespace aiqos
