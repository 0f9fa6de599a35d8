// The control socket's command parser (src/control/ctl_protocol.h) over
// arbitrary request lines. The input is the line as the server reads it
// (without its '\n'); seeds are plain JSON requests.
//   - handle_ctl_line (parse, validate, dispatch to a fake ControlApi, reply)
//     never throws and always answers one well-formed reply line that the
//     client side (parse_ctl_reply) reads back as a success or a failure;
//   - parse_ctl_request fails with a message, or gives a command of the table
//     and an object of arguments that survive the client's round trip
//     (ctl_request_line -> parse_ctl_request) unchanged;
//   - bounds: the same request padded with JSON whitespace to exactly
//     kMaxRequestBytes is accepted, one byte more is "request too large";
//   - dispatch_ctl with a hand-built request (any bytes as the command, the
//     input's arguments) and parse_ctl_reply over the input never throw.
#include <algorithm>
#include <string>
#include <string_view>

#include "../unit/control/fake_control_api.h"
#include "control/ctl_protocol.h"
#include "fuzz_input.h"

using namespace aiqos;
using nlohmann::json;

namespace {

// A reply line: one line, '\n' last, a JSON object {"ok": bool, ...}.
void check_reply(const std::string& reply, bool* ok = nullptr) {
  FUZZ_CHECK(!reply.empty() && reply.back() == '\n');
  FUZZ_CHECK(std::count(reply.begin(), reply.end(), '\n') == 1);
  json j = json::parse(reply, nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(j.is_object() && j.contains("ok") && j["ok"].is_boolean());
  CtlResult r = parse_ctl_reply(reply);
  FUZZ_CHECK(r.ok == j["ok"].get<bool>());
  if (!r.ok) FUZZ_CHECK(r.error != "malformed reply from aiqosd");
  if (ok) *ok = r.ok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  testing::FakeControlApi api;

  // The server side, end to end.
  std::string reply = handle_ctl_line(api, line);
  bool reply_ok = false;
  check_reply(reply, &reply_ok);

  CtlRequest req;
  std::string error;
  bool parsed = parse_ctl_request(line, req, error);
  if (!parsed) {
    FUZZ_CHECK(!error.empty());
    FUZZ_CHECK(req.cmd.empty() && req.args == json::object());  // untouched
    if (line.empty() || line.back() != '\r') FUZZ_CHECK(!reply_ok);
  } else {
    FUZZ_CHECK(ctl_command_list().find(req.cmd) != std::string::npos);
    FUZZ_CHECK(req.args.is_object());
    // The client's line for the same request parses to the same request.
    std::string again = ctl_request_line(req.cmd, req.args);
    FUZZ_CHECK(again.back() == '\n');
    again.pop_back();
    CtlRequest req2;
    std::string error2;
    FUZZ_CHECK(parse_ctl_request(again, req2, error2));
    FUZZ_CHECK(req2.cmd == req.cmd && req2.args == req.args);
    check_reply(ctl_reply_line(dispatch_ctl(api, req)));

    // Bounds: padded with whitespace to exactly the limit it is still the same
    // request; one byte more is refused before any parsing.
    if (line.size() <= kMaxRequestBytes) {
      std::string padded(line);
      padded.append(kMaxRequestBytes - padded.size(), ' ');
      CtlRequest req3;
      std::string error3;
      FUZZ_CHECK(parse_ctl_request(padded, req3, error3));
      FUZZ_CHECK(req3.cmd == req.cmd && req3.args == req.args);
      padded.push_back(' ');
      FUZZ_CHECK(!parse_ctl_request(padded, req3, error3));
      FUZZ_CHECK(error3.find("request too large") != std::string::npos);
    }
  }

  // Oversized: whatever the bytes, one past the limit is an error, not a parse.
  {
    std::string big;
    big.reserve(kMaxRequestBytes + 1);
    while (big.size() <= kMaxRequestBytes) big.append(size ? line : std::string_view("{"));
    CtlRequest r;
    std::string e;
    FUZZ_CHECK(!parse_ctl_request(big, r, e));
    FUZZ_CHECK(e.find("request too large") != std::string::npos);
    check_reply(handle_ctl_line(api, big));
  }

  // A hand-built request: the first bytes (any, invalid UTF-8 included) as the
  // command, the parsed arguments if any. dispatch_ctl re-validates it.
  {
    CtlRequest hand;
    hand.cmd.assign(line.substr(0, std::min<size_t>(line.size(), 16)));
    if (parsed) hand.args = req.args;
    check_reply(ctl_reply_line(dispatch_ctl(api, hand)));
  }

  // The client side over the same bytes, as if a server had sent them.
  CtlResult r = parse_ctl_reply(line);
  if (r.ok) FUZZ_CHECK(r.error.empty());
  return 0;
}
