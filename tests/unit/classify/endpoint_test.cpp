#include "classify/endpoint.h"

#include <gtest/gtest.h>

#include <string>

namespace aiqos {
namespace {

struct Case {
  const char* method;
  const char* path;
  Endpoint want;
  const char* model;  // expected model from the path ("" for none)
};

const Case kCases[] = {
    // OpenAI (and vLLM / SGLang / llama.cpp server: same paths)
    {"POST", "/v1/chat/completions", Endpoint::chat_completions, ""},
    {"POST", "/v1/completions", Endpoint::completions, ""},
    {"POST", "/v1/embeddings", Endpoint::embeddings, ""},
    {"POST", "/v1/responses", Endpoint::responses, ""},
    {"POST", "/v1/chat/completions?api-version=2024-02-01", Endpoint::chat_completions, ""},
    {"POST", "/v1/embeddings?x=/v1/completions", Endpoint::embeddings, ""},
    {"POST", "/v1/completions#frag", Endpoint::completions, ""},
    // Query or fragment past the first 16 bytes (and at a 16-byte boundary).
    {"POST", "/v2/models/a-rather-long-model-name/infer?x=1#y", Endpoint::kserve_infer, "a-rather-long-model-name"},
    {"POST", "/v2/models/a-rather-long-model-name/infer#?", Endpoint::kserve_infer, "a-rather-long-model-name"},
    {"POST", "/v1/aaaaaaaaaa/c?/v1/chat/completions", Endpoint::other, ""},
    {"POST", "/v1/aaaaaaaaaaaaaaaaaaaaaaaaaa/e#/v1/embeddings", Endpoint::other, ""},
    {"POST", "/v1/chat/complet%69ons", Endpoint::chat_completions, ""},
    {"POST", "/%76%31/chat/completions", Endpoint::chat_completions, ""},
    // Gateways mounting the API under a prefix
    {"POST", "/openai/v1/chat/completions", Endpoint::chat_completions, ""},
    {"POST", "/api/v1/chat/completions", Endpoint::chat_completions, ""},
    {"POST", "/a/b/c/d/e/f/g/h/i/v1/embeddings", Endpoint::embeddings, ""},
    {"POST", "/anthropic/v1/messages", Endpoint::anthropic_messages, ""},
    // Absolute-form target (HTTP/1.1 to a proxy)
    {"POST", "http://api.openai.com/v1/chat/completions", Endpoint::chat_completions, ""},
    {"POST", "HTTPS://api.openai.com:443/v1/responses?x", Endpoint::responses, ""},
    {"POST", "http://api.openai.com", Endpoint::other, ""},
    {"POST", "http://api.openai.com?/v1/completions", Endpoint::other, ""},
    // Anthropic
    {"POST", "/v1/messages", Endpoint::anthropic_messages, ""},
    {"POST", "/v1/messages?beta=true", Endpoint::anthropic_messages, ""},
    {"POST", "/v1/messages/count_tokens", Endpoint::other, ""},
    {"POST", "/v1/messages/batches", Endpoint::other, ""},
    // Ollama
    {"POST", "/api/chat", Endpoint::ollama_chat, ""},
    {"POST", "/api/generate", Endpoint::ollama_generate, ""},
    {"POST", "/api/generate?x=1", Endpoint::ollama_generate, ""},
    {"POST", "/x/api/chat", Endpoint::other, ""},
    {"POST", "/api/embed", Endpoint::other, ""},
    // KServe v2 REST
    {"POST", "/v2/models/resnet/infer", Endpoint::kserve_infer, "resnet"},
    {"POST", "/v2/models/resnet/versions/3/infer", Endpoint::kserve_infer, "resnet"},
    {"POST", "/v2/models/my%20model/infer", Endpoint::kserve_infer, "my model"},
    {"POST", "/v2/models/org%2Fllama/infer", Endpoint::kserve_infer, "org/llama"},
    {"POST", "/v2/models/bad%zzesc%4/infer", Endpoint::kserve_infer, "bad%zzesc%4"},
    {"POST", "/v2/models/m/infer?x=1", Endpoint::kserve_infer, "m"},
    {"POST", "/v2/models//infer", Endpoint::other, ""},
    {"POST", "/v2/models/m/versions//infer", Endpoint::other, ""},
    {"POST", "/v2/models/m/ready", Endpoint::other, ""},
    {"POST", "/v2/models/m/version/1/infer", Endpoint::other, ""},
    {"POST", "/v2/models/m/infer/", Endpoint::other, ""},
    {"POST", "/x/v2/models/m/infer", Endpoint::other, ""},
    {"GET", "/v2/models/m", Endpoint::other, ""},
    // Triton generate extension
    {"POST", "/v2/models/llama/generate", Endpoint::triton_generate, "llama"},
    {"POST", "/v2/models/llama/generate_stream", Endpoint::triton_generate, "llama"},
    {"POST", "/v2/models/ensemble/versions/1/generate_stream", Endpoint::triton_generate,
     "ensemble"},
    // TGI
    {"POST", "/generate", Endpoint::tgi_generate, ""},
    {"POST", "/generate_stream", Endpoint::tgi_generate, ""},
    {"POST", "/generate?x", Endpoint::tgi_generate, ""},
    {"POST", "/x/generate", Endpoint::other, ""},
    // gRPC
    {"POST", "/inference.GRPCInferenceService/ModelInfer", Endpoint::grpc_model_infer, ""},
    {"POST", "/inference.GRPCInferenceService/ModelStreamInfer", Endpoint::grpc_model_infer, ""},
    {"POST", "/inference.GRPCInferenceService/ModelReady", Endpoint::other, ""},
    {"POST", "/x.GRPCInferenceService/ModelInfer", Endpoint::other, ""},
    // Not inference
    {"GET", "/v1/chat/completions", Endpoint::other, ""},
    {"post", "/v1/chat/completions", Endpoint::other, ""},
    {"GET", "/v1/models", Endpoint::other, ""},
    {"POST", "/v1/models", Endpoint::other, ""},
    {"POST", "/v1/chat/completions/", Endpoint::other, ""},
    {"POST", "/v1//chat/completions", Endpoint::other, ""},
    {"POST", "/V1/chat/completions", Endpoint::other, ""},
    {"POST", "/v1/chat%2Fcompletions", Endpoint::other, ""},
    {"POST", "/v1/Completions", Endpoint::other, ""},
    {"POST", "/chat/completions", Endpoint::other, ""},
    {"POST", "/x/completions", Endpoint::other, ""},
    {"POST", "v1/chat/completions", Endpoint::other, ""},
    {"POST", "*", Endpoint::other, ""},
    {"POST", "", Endpoint::other, ""},
    {"POST", "/", Endpoint::other, ""},
    {"", "/v1/completions", Endpoint::other, ""},
};

TEST(Endpoint, Table) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(std::string(c.method) + " " + c.path);
    EndpointMatch m = identify_endpoint(c.method, c.path);
    EXPECT_EQ(endpoint_name(m.endpoint), std::string(endpoint_name(c.want)));
    EXPECT_EQ(m.model.view(), c.model);
    EXPECT_FALSE(m.model.truncated);
  }
}

TEST(Endpoint, Names) {
  const char* want[] = {"other",        "chat_completions",   "completions",  "embeddings",
                        "responses",    "anthropic_messages", "ollama_chat",  "ollama_generate",
                        "kserve_infer", "triton_generate",    "tgi_generate", "grpc_model_infer",
                        "unknown"};
  ASSERT_EQ(std::size(want), static_cast<size_t>(Endpoint::count_));
  for (size_t i = 0; i < std::size(want); ++i) {
    auto e = static_cast<Endpoint>(i);
    EXPECT_STREQ(endpoint_name(e), want[i]);
    EXPECT_EQ(endpoint_from_name(want[i]), e);
  }
  EXPECT_STREQ(endpoint_name(Endpoint::count_), "?");
  EXPECT_EQ(endpoint_from_name("chat"), std::nullopt);
  EXPECT_EQ(endpoint_from_name(""), std::nullopt);
}

TEST(Endpoint, LongModelTruncated) {
  std::string name(300, 'a');
  EndpointMatch m = identify_endpoint("POST", "/v2/models/" + name + "/infer");
  EXPECT_EQ(m.endpoint, Endpoint::kserve_infer);
  EXPECT_EQ(m.model.view(), std::string(kMaxModelName, 'a'));
  EXPECT_TRUE(m.model.truncated);
}

TEST(Endpoint, ManySegmentsNoCrash) {
  std::string p;
  for (int i = 0; i < 1000; ++i) p += "/v2";
  EXPECT_EQ(identify_endpoint("POST", p).endpoint, Endpoint::other);
  EXPECT_EQ(identify_endpoint("POST", p + "/v1/completions").endpoint, Endpoint::completions);
  EXPECT_EQ(identify_endpoint("POST", std::string(5000, '/')).endpoint, Endpoint::other);
  EXPECT_EQ(identify_endpoint("POST", "%").endpoint, Endpoint::other);
  EXPECT_EQ(identify_endpoint("POST", "/%").endpoint, Endpoint::other);
  EXPECT_EQ(identify_endpoint("POST", "/v2/models/%/infer").model.view(), "%");
  EXPECT_EQ(identify_endpoint("POST", "/v2/models/%4/infer").model.view(), "%4");
}

TEST(Endpoint, PercentDecode) {
  ModelName n;
  percent_decode("a%41%4a%4A%2f+%", n);
  EXPECT_EQ(n.view(), "aAJJ/+%");
}

}  // namespace
}  // namespace aiqos
