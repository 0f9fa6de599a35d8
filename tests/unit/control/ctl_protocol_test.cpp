#include "control/ctl_protocol.h"

#include <gtest/gtest.h>

#include "fake_control_api.h"

namespace aiqos {
namespace {

using nlohmann::json;
using testing::FakeControlApi;

json reply(FakeControlApi& api, std::string_view line) {
  std::string r = handle_ctl_line(api, line);
  EXPECT_FALSE(r.empty());
  EXPECT_EQ(r.back(), '\n');
  EXPECT_EQ(r.find('\n'), r.size() - 1) << "one line";
  return json::parse(r);
}

std::string error_of(FakeControlApi& api, std::string_view line) {
  json j = reply(api, line);
  EXPECT_EQ(j["ok"], false) << line;
  return j.value("error", "");
}

TEST(CtlProtocol, EveryCommandDispatches) {
  FakeControlApi api;
  EXPECT_EQ(reply(api, R"({"cmd":"status"})")["data"]["version"], "test");
  EXPECT_EQ(reply(api, R"({"cmd":"policy.show","args":{}})")["ok"], true);
  EXPECT_EQ(reply(api, R"({"cmd":"policy.reload","args":{"file":"/etc/aiqos/p.yaml"}})")["ok"], true);
  EXPECT_EQ(reply(api, R"({"cmd":"policy.reload"})")["ok"], true);
  EXPECT_EQ(reply(api, R"({"cmd":"classes","args":null})")["ok"], true);
  EXPECT_EQ(reply(api, R"({"cmd":"class.set","args":{"name":"interactive","rate":"20Mbit","burst":"64KB"}})")["ok"], true);
  EXPECT_EQ(api.last_rate, 20'000'000u);
  EXPECT_EQ(api.last_burst, 64'000u);
  EXPECT_EQ(reply(api, R"({"cmd":"class.set","args":{"name":"interactive","rate":1000}})")["ok"], true);
  EXPECT_EQ(api.last_rate, 1000u);
  EXPECT_FALSE(api.last_burst);
  EXPECT_EQ(reply(api, R"({"cmd":"flows","args":{"top":5,"class":"batch","model":"llama"}})")["ok"], true);
  EXPECT_EQ(api.last_flows.top, 5u);
  EXPECT_EQ(api.last_flows.klass, "batch");
  EXPECT_EQ(api.last_flows.model, "llama");
  EXPECT_EQ(reply(api, R"({"cmd":"stats","args":{"by":"model"}})")["data"]["by"], "model");
  EXPECT_EQ(reply(api, R"({"cmd":"stats"})")["data"]["by"], "class");
  EXPECT_EQ(reply(api, "{\"cmd\":\"stats.reset\"}\r")["ok"], true);
  EXPECT_EQ(reply(api, R"({"cmd":"bypass","args":{"on":true}})")["data"]["bypass"], true);
  EXPECT_EQ(reply(api, R"({"cmd":"bypass","args":{"on":false}})")["data"]["bypass"], false);
  std::vector<std::string> want = {"status", "policy_show", "policy_reload /etc/aiqos/p.yaml",
                                   "policy_reload ", "classes", "class_set interactive",
                                   "class_set interactive", "flows", "stats model", "stats class",
                                   "stats_reset", "bypass on", "bypass off"};
  EXPECT_EQ(api.calls, want);
}

TEST(CtlProtocol, DaemonErrorsPassThrough) {
  FakeControlApi api;
  EXPECT_EQ(error_of(api, R"({"cmd":"policy.reload","args":{"file":"bad.yaml"}})"),
            "bad.yaml:3:7: unknown key 'clases'");
  EXPECT_EQ(error_of(api, R"({"cmd":"class.set","args":{"name":"nope","rate":"1Mbit"}})"),
            "unknown class 'nope'");
  EXPECT_EQ(error_of(api, R"({"cmd":"stats","args":{"by":"worker"}})"), "stats: boom");
}

TEST(CtlProtocol, RejectsBadRequests) {
  FakeControlApi api;
  EXPECT_NE(error_of(api, "{not json").find("malformed JSON"), std::string::npos);
  EXPECT_NE(error_of(api, "").find("malformed JSON"), std::string::npos);
  EXPECT_NE(error_of(api, "[1,2]").find("must be a JSON object"), std::string::npos);
  // ctl_protocol_fuzz: an overflowing number threw out_of_range past the catch
  // of parse_error, and std::terminate took the daemon down.
  EXPECT_NE(error_of(api, R"({"cmd":"status","args":{"a":1e999}})").find("number overflow"), std::string::npos);
  EXPECT_NE(error_of(api, R"({"args":{}})").find("missing \"cmd\""), std::string::npos);
  EXPECT_NE(error_of(api, R"({"cmd":5})").find("missing \"cmd\""), std::string::npos);
  EXPECT_NE(error_of(api, R"({"cmd":"status","x":1})").find("unknown request field 'x'"), std::string::npos);
  std::string e = error_of(api, R"({"cmd":"reboot"})");
  EXPECT_NE(e.find("unknown command 'reboot'"), std::string::npos) << e;
  EXPECT_NE(e.find("stats.reset"), std::string::npos) << "lists the valid commands: " << e;
  e = error_of(api, R"({"cmd":"flows","args":{"limit":3}})");
  EXPECT_NE(e.find("unknown argument 'limit' (valid: top, class, model)"), std::string::npos) << e;
  EXPECT_NE(error_of(api, R"({"cmd":"status","args":{"x":1}})").find("(valid: none)"), std::string::npos);
  EXPECT_NE(error_of(api, R"({"cmd":"status","args":[1]})").find("must be an object"), std::string::npos);
  EXPECT_NE(error_of(api, R"({"cmd":"flows","args":{"top":-1}})").find("non-negative integer"), std::string::npos);
  EXPECT_NE(error_of(api, R"({"cmd":"flows","args":{"top":"5"}})").find("non-negative integer"), std::string::npos);
  EXPECT_NE(error_of(api, R"({"cmd":"flows","args":{"top":0}})").find("top must be"), std::string::npos);
  EXPECT_NE(error_of(api, R"({"cmd":"class.set","args":{"rate":"1M"}})").find("missing argument 'name'"), std::string::npos);
  EXPECT_NE(error_of(api, R"({"cmd":"class.set","args":{"name":"x"}})").find("give rate, burst"), std::string::npos);
  EXPECT_NE(error_of(api, R"({"cmd":"class.set","args":{"name":"x","rate":"fast"}})").find("must be a rate"), std::string::npos);
  EXPECT_NE(error_of(api, R"({"cmd":"class.set","args":{"name":"x","burst":"1 parsec"}})").find("must be a size"), std::string::npos);
  EXPECT_NE(error_of(api, R"({"cmd":"stats","args":{"by":"colour"}})").find("valid: class, model"), std::string::npos);
  EXPECT_NE(error_of(api, R"({"cmd":"policy.reload","args":{"file":7}})").find("must be a string"), std::string::npos);
  EXPECT_NE(error_of(api, R"({"cmd":"bypass"})").find("missing argument 'on'"), std::string::npos);
  EXPECT_NE(error_of(api, R"({"cmd":"bypass","args":{"on":"yes"}})").find("must be true or false"), std::string::npos);
  EXPECT_NE(error_of(api, R"({"cmd":"bypass","args":{"on":1}})").find("must be true or false"), std::string::npos);
  // Names echoed back are printable and short.
  e = error_of(api, "{\"cmd\":\"\\u0001" + std::string(200, 'a') + "\"}");
  EXPECT_LT(e.size(), 200u + 100u);
  EXPECT_EQ(e.find('\x01'), std::string::npos);
  EXPECT_TRUE(api.calls.empty()) << "nothing reached the API";
}

TEST(CtlProtocol, SizeLimit) {
  FakeControlApi api;
  std::string big = R"({"cmd":"policy.reload","args":{"file":")" + std::string(kMaxRequestBytes, 'a') + "\"}}";
  EXPECT_NE(error_of(api, big).find("request too large"), std::string::npos);
  std::string filler = R"({"cmd":"status","args":{}})";
  filler.insert(1, std::string(kMaxRequestBytes - filler.size(), ' '));
  ASSERT_EQ(filler.size(), kMaxRequestBytes);
  EXPECT_EQ(reply(api, filler)["ok"], true) << "exactly the limit is accepted";
}

TEST(CtlProtocol, HandBuiltRequestWithInvalidUtf8IsRefused) {
  // Found by ctl_protocol_fuzz: dispatch_ctl re-serialized the request with a
  // strict dump(), which threw on a command that is not UTF-8.
  FakeControlApi api;
  CtlRequest req{"stat\xb5\xd0s", json::object()};
  CtlResult r;
  EXPECT_NO_THROW(r = dispatch_ctl(api, req));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("unknown command"), std::string::npos) << r.error;
  req.args = {{"by", "model\xff"}};
  req.cmd = "stats";
  EXPECT_NO_THROW(r = dispatch_ctl(api, req));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("unknown 'by' value"), std::string::npos) << r.error;
  EXPECT_TRUE(api.calls.empty()) << "nothing reached the API";
}

TEST(CtlProtocol, DepthLimit) {
  // Found with ctl_protocol_fuzz: 8 000 levels of '{"a":' (48 KB) overflowed
  // the stack under ASan where the parsed arguments were copied (recursively).
  FakeControlApi api;
  std::string deep;
  const size_t levels = (kMaxRequestBytes - 64) / 6;
  for (size_t i = 0; i < levels; ++i) deep += "{\"a\":";
  deep += "1" + std::string(levels, '}');
  std::string e = error_of(api, R"({"cmd":"status","args":)" + deep + "}");
  EXPECT_NE(e.find("nested too deeply"), std::string::npos) << e;
  e = error_of(api, R"({"cmd":"status","args":{"a":)" + std::string(kMaxRequestBytes - 40, '[') + "}}");
  EXPECT_NE(e.find("malformed JSON"), std::string::npos) << e;
  e = error_of(api, R"({"cmd":"status","args":{"x":)" + std::string(kMaxRequestDepth - 2, '[') +
                        std::string(kMaxRequestDepth - 2, ']') + "}}");
  EXPECT_NE(e.find("unknown argument 'x'"), std::string::npos) << "within the limit: " << e;
  EXPECT_NE(error_of(api, std::string(kMaxRequestDepth + 1, '[') + std::string(kMaxRequestDepth + 1, ']'))
                .find("nested too deeply"),
            std::string::npos);
  EXPECT_NE(error_of(api, std::string(kMaxRequestDepth, '[') + std::string(kMaxRequestDepth, ']'))
                .find("must be a JSON object"),
            std::string::npos)
      << "exactly the limit parses";
  EXPECT_TRUE(api.calls.empty());
  // A reply nested as deep reaches the client whole (moved, not copied).
  std::string data = std::string(20000, '[') + std::string(20000, ']');
  CtlResult r = parse_ctl_reply(R"({"ok":true,"data":)" + data + "}");
  EXPECT_TRUE(r.ok);
}

TEST(CtlProtocol, InvalidUtf8InRepliesIsReplaced) {
  std::string line = ctl_reply_line(CtlResult::success({{"model", "bad\xff"}}));
  json j = json::parse(line);
  EXPECT_EQ(j["data"]["model"], "bad\xef\xbf\xbd");
}

TEST(CtlProtocol, ClientSide) {
  EXPECT_EQ(ctl_request_line("stats", {{"by", "model"}}), "{\"args\":{\"by\":\"model\"},\"cmd\":\"stats\"}\n");
  EXPECT_EQ(ctl_request_line("status", nullptr), "{\"args\":{},\"cmd\":\"status\"}\n");
  auto ok = parse_ctl_reply("{\"ok\":true,\"data\":[1]}\n");
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(ok.data, json::array({1}));
  auto bad = parse_ctl_reply("{\"ok\":false,\"error\":\"nope\"}");
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.error, "nope");
  EXPECT_EQ(parse_ctl_reply("garbage").error, "malformed reply from aiqosd");
  EXPECT_NE(ctl_command_list().find("class.set"), std::string::npos);
}

}  // namespace
}  // namespace aiqos
