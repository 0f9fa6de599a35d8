#include "control/request_log.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

namespace aiqos {
namespace {

RequestRecord sample() {
  RequestRecord r;
  r.ts_ns = 1'700'000'000'123'456'000ULL;
  r.req_end_ns = r.ts_ns + 1'000'000;
  r.resp_first_ns = r.ts_ns + 251'000'000;
  r.resp_end_ns = r.ts_ns + 2'000'000'000;
  r.src = {198, 18, 0, 1};
  r.dst = {198, 18, 0, 2};
  r.sport = 40000;
  r.dport = 8080;
  r.proto = ReqProto::h2;
  r.stream_id = 3;
  r.method.append("POST");
  r.authority.append("198.18.0.2:8080");
  r.path.append("/v1/chat/completions");
  r.endpoint = Endpoint::chat_completions;
  r.model.append("gpt-4o");
  r.model_source = ModelSource::body;
  r.status = 200;
  r.req_bytes = 120;
  r.resp_bytes = 900;
  return r;
}

TEST(RequestLog, JsonHasEveryDocumentedField) {
  auto j = nlohmann::json::parse(request_json(sample(), "interactive"));
  EXPECT_EQ(j["ts"], "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(j["src"], "198.18.0.1");
  EXPECT_EQ(j["dst"], "198.18.0.2");
  EXPECT_EQ(j["sport"], 40000);
  EXPECT_EQ(j["dport"], 8080);
  EXPECT_EQ(j["vlan"], 0);
  EXPECT_EQ(j["proto"], "h2");
  EXPECT_EQ(j["stream_id"], 3);
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["authority"], "198.18.0.2:8080");
  EXPECT_EQ(j["path"], "/v1/chat/completions");
  EXPECT_EQ(j["endpoint"], "chat_completions");
  EXPECT_EQ(j["model"], "gpt-4o");
  EXPECT_EQ(j["model_source"], "body");
  EXPECT_EQ(j["class"], "interactive");
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["req_bytes"], 120);
  EXPECT_EQ(j["resp_bytes"], 900);
  EXPECT_DOUBLE_EQ(j["ttfb_ms"].get<double>(), 250.0);
  EXPECT_DOUBLE_EQ(j["duration_ms"].get<double>(), 2000.0);
  EXPECT_TRUE(j["grpc_status"].is_null());
}

TEST(RequestLog, ResponseAccountingFields) {
  RequestRecord r = sample();
  auto j = nlohmann::json::parse(request_json(r, "interactive"));
  // Nothing learned from the response: estimated tokens, no first token.
  EXPECT_TRUE(j["ttft_ms"].is_null());
  EXPECT_TRUE(j["tpot_ms"].is_null());
  EXPECT_TRUE(j["token_source"].is_null());  // no provider, nothing counted
  EXPECT_TRUE(j["error_type"].is_null());
  EXPECT_EQ(j["compressed"], false);
  r.provider = GenAiProvider::openai;
  r.first_token_ns = r.req_end_ns + 300'000'000;
  r.last_token_ns = r.first_token_ns + 19 * 50'000'000ULL;
  r.streamed = true;
  r.input_tokens = 17;
  r.output_tokens = 20;
  r.token_source = TokenSource::usage;
  r.resp_model.append("gpt-4o-2024-08-06");
  j = nlohmann::json::parse(request_json(r, "interactive"));
  EXPECT_DOUBLE_EQ(j["ttft_ms"].get<double>(), 300.0);
  EXPECT_DOUBLE_EQ(j["tpot_ms"].get<double>(), 50.0);
  EXPECT_EQ(j["input_tokens"], 17);
  EXPECT_EQ(j["output_tokens"], 20);
  EXPECT_EQ(j["token_source"], "usage");
  EXPECT_EQ(j["provider"], "openai");
  EXPECT_EQ(j["response_model"], "gpt-4o-2024-08-06");
  r.first_token_ns = r.req_end_ns - 1;  // a bidirectional stream answering before its request ended
  EXPECT_TRUE(nlohmann::json::parse(request_json(r, "x"))["ttft_ms"].is_null());
  r.status = 0;
  r.reset = true;
  EXPECT_EQ(nlohmann::json::parse(request_json(r, "x"))["error_type"], "stream_reset");
  r.reset = false;
  r.status = 200;
  r.grpc_status = 14;
  EXPECT_EQ(nlohmann::json::parse(request_json(r, "x"))["error_type"], "grpc_unavailable");
  r.grpc_status = -1;
  r.status = 429;
  EXPECT_EQ(nlohmann::json::parse(request_json(r, "x"))["error_type"], "http_4xx");
  r.status = 200;
  r.stream_error = true;
  EXPECT_EQ(nlohmann::json::parse(request_json(r, "x"))["error_type"], "stream_error");
}

TEST(RequestLog, Http1HasNoStreamIdAndIpv6Prints) {
  RequestRecord r = sample();
  r.proto = ReqProto::h1;
  r.family = 6;
  r.src = {0xfd, 0, 1, 0x98, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  auto j = nlohmann::json::parse(request_json(r, "default"));
  EXPECT_TRUE(j["stream_id"].is_null());
  EXPECT_EQ(j["src"], "fd00:198:18::1");
}

TEST(RequestLog, InvalidUtf8FromTheWireStaysValidJson) {
  RequestRecord r = sample();
  r.model.clear();
  r.model.append("m\xff\xfe\"x");
  std::string line = request_json(r, "default");
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto j = nlohmann::json::parse(line);
  EXPECT_NE(j["model"].get<std::string>().find("\"x"), std::string::npos);
}

TEST(RequestLog, WritesOneLinePerRecordAndReopens) {
  std::string path = testing::TempDir() + "aiqos_reqlog_test.jsonl";
  std::remove(path.c_str());
  RequestLog log;
  ASSERT_TRUE(log.open(path));
  log.write(sample(), "a");
  log.write(sample(), "b");
  log.flush();
  std::string moved = path + ".1";
  std::rename(path.c_str(), moved.c_str());
  ASSERT_TRUE(log.reopen());
  log.write(sample(), "c");
  log.flush();
  std::ifstream f1(moved), f2(path);
  std::string l;
  int n1 = 0, n2 = 0;
  while (std::getline(f1, l)) ++n1;
  while (std::getline(f2, l)) ++n2;
  EXPECT_EQ(n1, 2);
  EXPECT_EQ(n2, 1);
  EXPECT_EQ(log.written(), 3u);
  std::remove(path.c_str());
  std::remove(moved.c_str());
}

}  // namespace
}  // namespace aiqos
