#include "classify/response_tracker.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

namespace aiqos {
namespace {

std::span<const uint8_t> bytes(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

struct Case {
  const char* name;
  Endpoint ep;
  const char* ctype;
  std::string body;
  uint32_t events;
  int64_t input, output;
  const char* model;
  bool done;
  bool error = false;
  bool failed = false;
  bool streaming_rpc = false;
};

std::string rep(std::string_view s, int n) {
  std::string o;
  for (int i = 0; i < n; ++i) o += s;
  return o;
}

std::vector<Case> cases() {
  std::vector<Case> v;
  v.push_back({"openai_chat_sse", Endpoint::chat_completions, "text/event-stream; charset=utf-8",
               "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\","
               "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n" +
                   rep("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\","
                       "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\\\"lo\"},\"logprobs\":null,"
                       "\"finish_reason\":null}],\"usage\":null}\n\n",
                       3) +
                   "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\r\n\r\n"
                   "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,"
                   "\"total_tokens\":15,\"prompt_tokens_details\":{\"cached_tokens\":0}}}\n\n"
                   "data: [DONE]\n\n",
               3, 12, 3, "gpt-4o-mini", true});
  v.push_back({"openai_tool_calls_sse", Endpoint::chat_completions, "text/event-stream",
               rep("data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
                   "{\"arguments\":\"{\\\"a\\\":1}\"}}]}}]}\n\n",
                   4) +
                   "data: [DONE]\n\n",
               4, -1, -1, "", true});
  v.push_back({"openai_completions_sse", Endpoint::completions, "text/event-stream",
               rep("data: {\"id\":\"x\",\"object\":\"text_completion\",\"choices\":[{\"text\":\" a\",\"index\":0}],"
                   "\"model\":\"llama\"}\n\n",
                   5) +
                   "data: [DONE]\n\n",
               5, -1, -1, "llama", true});
  v.push_back({"openai_responses_sse", Endpoint::responses, "text/event-stream",
               "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\","
               "\"model\":\"gpt-4.1\",\"output\":[],\"usage\":null}}\n\n" +
                   rep("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","
                       "\"item_id\":\"m\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\"}\n\n",
                       2) +
                   "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\","
                   "\"model\":\"gpt-4.1\",\"usage\":{\"input_tokens\":9,\"output_tokens\":2,\"total_tokens\":11,"
                   "\"output_tokens_details\":{\"reasoning_tokens\":0}}}}\n\n",
               2, 9, 2, "gpt-4.1", true});
  v.push_back({"anthropic_sse", Endpoint::anthropic_messages, "text/event-stream",
               "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
               "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-3-5-sonnet\",\"stop_reason\":null,"
               "\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":7,\"output_tokens\":1}}}\n\n"
               "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
               "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
               "event: ping\ndata: {\"type\": \"ping\"}\n\n" +
                   rep("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
                       "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
                       2) +
                   "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
                   "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
                   "\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n"
                   "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
               2, 25, 15, "claude-3-5-sonnet", true});
  v.push_back({"anthropic_error_sse", Endpoint::anthropic_messages, "text/event-stream",
               "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"x\"}}\n\n",
               0, -1, -1, "", false, true});
  v.push_back({"ollama_generate_ndjson", Endpoint::ollama_generate, "application/x-ndjson",
               rep("{\"model\":\"llama3\",\"created_at\":\"2024-01-01T00:00:00Z\",\"response\":\"Hi\",\"done\":false}\n", 2) +
                   "{\"model\":\"llama3\",\"created_at\":\"2024-01-01T00:00:00Z\",\"response\":\"\",\"done\":true,"
                   "\"done_reason\":\"stop\",\"context\":[1,2,3],\"total_duration\":123.5e3,\"prompt_eval_count\":26,"
                   "\"eval_count\":2}\n",
               2, 26, 2, "llama3", true});
  v.push_back({"ollama_chat_ndjson_last_line_unterminated", Endpoint::ollama_chat, "application/x-ndjson",
               rep("{\"model\":\"llama3\",\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n", 4) +
                   "{\"model\":\"llama3\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,"
                   "\"prompt_eval_count\":8,\"eval_count\":4}",
               4, 8, 4, "llama3", true});
  v.push_back({"tgi_sse", Endpoint::tgi_generate, "text/event-stream",
               rep("data:{\"index\":1,\"token\":{\"id\":1,\"text\":\"Hi\",\"logprob\":-0.1,\"special\":false},"
                   "\"generated_text\":null,\"details\":null}\n\n",
                   2) +
                   "data:{\"index\":3,\"token\":{\"id\":2,\"text\":\"</s>\",\"logprob\":-0.1,\"special\":true},"
                   "\"generated_text\":\"Hi Hi\",\"details\":{\"finish_reason\":\"eos_token\",\"generated_tokens\":3,"
                   "\"seed\":null}}\n\n",
               3, -1, 3, "", false});
  v.push_back({"triton_generate_stream", Endpoint::triton_generate, "text/event-stream",
               rep("data: {\"model_name\":\"m\",\"model_version\":\"1\",\"text_output\":\"a\"}\n\n", 3), 3, -1, -1, "",
               false});
  v.push_back({"openai_chat_json", Endpoint::chat_completions, "application/json",
               "{\"id\":\"x\",\"object\":\"chat.completion\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"message\":"
               "{\"role\":\"assistant\",\"content\":\"Hello\"},\"finish_reason\":\"stop\"}],"
               "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,\"total_tokens\":12}}",
               0, 5, 7, "gpt-4o", false});
  v.push_back({"openai_error_json", Endpoint::chat_completions, "application/json",
               "{\"error\":{\"message\":\"bad\",\"type\":\"invalid_request_error\",\"code\":null}}", 0, -1, -1, "", false,
               true});
  v.push_back({"embeddings_json", Endpoint::embeddings, "application/json",
               "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,\"embedding\":[0.1,-0.25,3e-5]}],"
               "\"model\":\"text-embedding-3-small\",\"usage\":{\"prompt_tokens\":4,\"total_tokens\":4}}",
               0, 4, -1, "text-embedding-3-small", false});
  std::string grpc;
  for (uint32_t len : {4u, 0u, 300u}) {
    grpc += '\0';
    grpc += static_cast<char>(len >> 24);
    grpc += static_cast<char>(len >> 16);
    grpc += static_cast<char>(len >> 8);
    grpc += static_cast<char>(len);
    grpc += std::string(len, 'x');
  }
  v.push_back({"kserve_grpc_stream", Endpoint::grpc_model_infer, "application/grpc", grpc, 3, -1, -1, "", false, false,
               false, true});
  v.push_back({"escaped_model", Endpoint::chat_completions, "application/json",
               "{\"model\":\"org\\/m\\u0041\",\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}", 0, 1, 2, "org/m",
               false});
  // Keys: escaped ones are never ours, nor longer ones or ones that only start like ours.
  v.push_back({"key_forms", Endpoint::chat_completions, "application/json",
               "{\"model\":\"m1\",\"us\\u0061ge\":{\"prompt_tokens\":7,\"completion_tokens\":8},"
               "\"a_key_that_is_much_longer_than_thirty_two_bytes\":{\"usage\":1},\"usage_\":{\"prompt_tokens\":9},"
               "\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":6}}",
               0, 4, 6, "m1", false});
  // The line template (token events that differ only in their text) against lines that differ
  // elsewhere, carry escapes, or carry usage: always what a full scan finds.
  auto chunk = [](std::string_view text, std::string_view tail) {
    return "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" + std::string(text) +
           "\"}}]" + std::string(tail) + "}\n\n";
  };
  v.push_back({"template_variants", Endpoint::chat_completions, "text/event-stream",
               chunk("a", "") + chunk("bb", "") + chunk("c\\\"d", "") + chunk("", "") + chunk("e", ",\"x\":1") +
                   chunk("f", "") + chunk("g", ",\"usage\":{\"completion_tokens\":5}") + chunk("h", "") +
                   chunk("i", ",\"usage\":{\"completion_tokens\":6}") + chunk("j", ",\"usage\":{\"completion_tokens\":5}") +
                   chunk("k", ",\"error\":{\"message\":\"x\"}") + chunk("l", ""),
               11, -1, 5, "", false, true});
  v.push_back({"ndjson_template", Endpoint::ollama_generate, "application/x-ndjson",
               rep("{\"model\":\"m\",\"response\":\"tok\",\"done\":false}\n", 6) +
                   "{\"model\":\"m\",\"response\":\"t\\\\\",\"done\":false}\n{\"model\":\"m\",\"response\":\"\",\"done\":false}\n" +
                   "{\"model\":\"m\",\"response\":\"\",\"done\":true,\"eval_count\":7}\n",
               7, -1, 7, "m", true});
  // Hostile bodies: the tracker gives up (token_source: estimated).
  v.push_back({"overflowing_usage", Endpoint::chat_completions, "text/event-stream",
               "data: {\"usage\":{\"completion_tokens\":99999999999999999999999}}\n\n", 0, -1, -1, "", false, false,
               true});
  v.push_back({"negative_usage", Endpoint::chat_completions, "application/json",
               "{\"usage\":{\"completion_tokens\":-3}}", 0, -1, -1, "", false, false, true});
  v.push_back({"deep_nesting", Endpoint::chat_completions, "application/json", rep("[", 100000), 0, -1, -1, "", false,
               false, true});
  v.push_back({"not_json", Endpoint::chat_completions, "text/event-stream", "data: hello\n\n", 0, -1, -1, "", false,
               false, true});
  v.push_back({"done_prefix_then_garbage", Endpoint::chat_completions, "text/event-stream", "data: [DON\n\n", 0, -1,
               -1, "", false, false, true});
  // Not failed, just incomplete: an SSE line that never ends.
  v.push_back({"unterminated_line", Endpoint::chat_completions, "text/event-stream",
               "data: {\"choices\":[{\"delta\":{\"content\":\"" + std::string(100000, 'a'), 0, -1, -1, "", false});
  return v;
}

void check(const Case& c, const ResponseTracker& t) {
  const ResponseUsage& u = t.usage();
  EXPECT_EQ(t.failed(), c.failed);
  if (c.failed) return;
  EXPECT_EQ(u.events, c.events);
  EXPECT_EQ(u.input, c.input);
  EXPECT_EQ(u.output, c.output);
  EXPECT_EQ(u.model.view(), c.model);
  EXPECT_EQ(u.done, c.done);
  EXPECT_EQ(u.stream_error, c.error);
}

// Feeds the body cut at `cuts` (offsets, ascending). With `tb`, the line
// template's bytes are kept next to the tracker (as a request slot does):
// memcmp instead of hashes, the same results.
ResponseTracker run(const Case& c, const std::vector<size_t>& cuts, ResponseTemplate* tb = nullptr) {
  ResponseTracker t;
  t.start(c.ep, c.ctype, false, c.streaming_rpc, tb);
  size_t at = 0;
  uint64_t now = 1;
  for (size_t cut : cuts) {
    t.feed(bytes(c.body).subspan(at, cut - at), now++);
    at = cut;
  }
  t.feed(bytes(c.body).subspan(at), now++);
  t.finish(now);
  return t;
}

// Cut points 1-64 bytes apart over a body of `size` bytes.
std::vector<size_t> random_cuts(std::mt19937& rng, size_t size) {
  std::vector<size_t> cuts;
  for (size_t at = 1 + rng() % 64; at < size; at += 1 + rng() % 64) cuts.push_back(at);
  return cuts;
}

TEST(ResponseTracker, TemplateBytesEverySplitPoint) {
  ResponseTemplate tb{};
  for (const Case& c : cases()) {
    if (c.body.size() > 5000) continue;
    SCOPED_TRACE(c.name);
    check(c, run(c, {}, &tb));
    for (size_t cut = 1; cut < c.body.size(); ++cut) {
      SCOPED_TRACE(cut);
      check(c, run(c, {cut}, &tb));
    }
  }
}

TEST(ResponseTracker, TemplateBytesRandomSplits) {
  const uint32_t seed = static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  std::printf("TemplateBytesRandomSplits seed %u\n", seed);
  std::mt19937 rng(seed);
  ResponseTemplate tb{};
  for (const Case& c : cases()) {
    SCOPED_TRACE(std::string(c.name) + " seed " + std::to_string(seed));
    for (int round = 0; round < 50; ++round) {
      check(c, run(c, random_cuts(rng, c.body.size()), &tb));
    }
  }
}

TEST(ResponseTracker, WholeBody) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    check(c, run(c, {}));
  }
}

TEST(ResponseTracker, EverySplitPoint) {
  for (const Case& c : cases()) {
    if (c.body.size() > 5000) continue;
    SCOPED_TRACE(c.name);
    for (size_t cut = 1; cut < c.body.size(); ++cut) {
      SCOPED_TRACE(cut);
      check(c, run(c, {cut}));
    }
  }
}

TEST(ResponseTracker, ByteByByte) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    std::vector<size_t> cuts;
    for (size_t i = 1; i < c.body.size(); ++i) cuts.push_back(i);
    check(c, run(c, cuts));
  }
}

TEST(ResponseTracker, RandomSplits) {
  const uint32_t seed = static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  std::printf("RandomSplits seed %u\n", seed);
  std::mt19937 rng(seed);
  for (const Case& c : cases()) {
    SCOPED_TRACE(std::string(c.name) + " seed " + std::to_string(seed));
    for (int round = 0; round < 50; ++round) {
      check(c, run(c, random_cuts(rng, c.body.size())));
    }
  }
}

// The time of the first and last content-bearing events is the time of the
// bytes that completed them, not of the response headers or the role chunk.
TEST(ResponseTracker, FirstAndLastTokenTimes) {
  ResponseTracker t;
  t.start(Endpoint::chat_completions, "text/event-stream", false, false);
  t.feed(bytes("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"), 100);
  EXPECT_EQ(t.usage().first_ns, 0u);
  t.feed(bytes("data: {\"choices\":[{\"delta\":{\"content\":\"a"), 200);
  EXPECT_EQ(t.usage().first_ns, 0u);  // the event is not complete yet
  t.feed(bytes("b\"}}]}\n\n"), 300);
  EXPECT_EQ(t.usage().first_ns, 300u);
  for (uint64_t k = 1; k <= 19; ++k) t.feed(bytes("data: {\"choices\":[{\"delta\":{\"content\":\"c\"}}]}\n\n"), 300 + 50 * k);
  EXPECT_EQ(t.usage().last_ns, 300u + 50 * 19);
  EXPECT_EQ(t.usage().events, 20u);
}

TEST(ResponseTracker, CompressedBodyIsNotScanned) {
  ResponseTracker t;
  t.start(Endpoint::chat_completions, "application/json", true, false);
  EXPECT_TRUE(t.encoded());
  EXPECT_FALSE(t.active());
  t.feed(bytes("{\"usage\":{\"completion_tokens\":3}}"), 1);
  EXPECT_EQ(t.usage().output, -1);
}

TEST(ResponseTracker, UnknownEndpointJsonIsNotScanned) {
  ResponseTracker t;
  t.start(Endpoint::other, "application/json", false, false);
  EXPECT_FALSE(t.active());
  t.start(Endpoint::other, "text/event-stream", false, false);
  EXPECT_TRUE(t.active());
}

TEST(ResponseTracker, HugeEventAndNdjsonWithoutNewlines) {
  // A 10 MB SSE event and NDJSON documents never separated by a newline:
  // scanned without buffering, figures still found.
  ResponseTracker t;
  t.start(Endpoint::chat_completions, "text/event-stream", false, false);
  t.feed(bytes("data: {\"choices\":[{\"delta\":{\"content\":\""), 1);
  std::string chunk(1 << 20, 'z');
  for (int i = 0; i < 10; ++i) t.feed(bytes(chunk), 2);
  t.feed(bytes("\"}}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n"), 3);
  EXPECT_FALSE(t.failed());
  EXPECT_EQ(t.usage().events, 1u);
  EXPECT_EQ(t.usage().output, 2);
  EXPECT_LE(sizeof(ResponseTracker), 256u);

  ResponseTracker n;
  n.start(Endpoint::ollama_generate, "application/x-ndjson", false, false);
  n.feed(bytes(rep("{\"response\":\"x\",\"done\":false}", 1000) + "{\"done\":true,\"eval_count\":1000}"), 1);
  n.finish(2);
  EXPECT_EQ(n.usage().events, 1000u);
  EXPECT_EQ(n.usage().output, 1000);
  EXPECT_TRUE(n.usage().done);
}

}  // namespace
}  // namespace aiqos
