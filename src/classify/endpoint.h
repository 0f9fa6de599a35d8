// Built-in knowledge of inference APIs: which endpoint an HTTP request
// (method + :path, as the HTTP/1.1 and HTTP/2 parsers hand them over) is
// calling, and the model when the API puts it in the path.
//
// Path rules (decided here, tested in tests/unit/classify/endpoint_test.cpp):
// - Only POST is an inference call; any other method is `other` (GET
//   /v1/models, HEAD, OPTIONS preflights...).
// - The query string and fragment are ignored; an absolute-form target
//   (`http://host/v1/...`, HTTP/1.1 to a proxy) is reduced to its path.
// - Segments are split on literal '/' and each is percent-decoded before it is
//   compared, as uvicorn/Starlette (vLLM, SGLang) route on the decoded path:
//   `/v1/chat/complet%69ons` is chat_completions. An encoded "%2F" stays
//   inside its segment. No other normalisation: no "//" collapse, no dot
//   segments, no trailing '/', case-sensitive -- routers reject those too.
// - OpenAI-style (`/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
//   `/v1/responses`) and Anthropic (`/v1/messages`) paths match as a suffix at
//   a segment boundary, so that gateways mounting the API under a prefix are
//   recognised: Groq `/openai/v1/chat/completions`, OpenRouter
//   `/api/v1/chat/completions`. The suffix must include the `v1` segment,
//   which keeps `/x/completions` from matching; so Cloudflare AI gateway's
//   `/v1/{account}/{gateway}/openai/chat/completions` is not recognised.
// - Everything else matches the whole path: Ollama `/api/chat` and
//   `/api/generate`, KServe v2 `/v2/models/{m}[/versions/{v}]/infer`, Triton
//   `.../generate` and `.../generate_stream`, TGI `/generate` and
//   `/generate_stream`, gRPC `/inference.GRPCInferenceService/ModelInfer` and
//   `/ModelStreamInfer` (their short generic names would misfire as suffixes).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "classify/model_name.h"

namespace aiqos {

#define AIQOS_ENDPOINTS(X) \
  X(other)                 \
  X(chat_completions)      \
  X(completions)           \
  X(embeddings)            \
  X(responses)             \
  X(anthropic_messages)    \
  X(ollama_chat)           \
  X(ollama_generate)       \
  X(kserve_infer)          \
  X(triton_generate)       \
  X(tgi_generate)          \
  X(grpc_model_infer)      \
  X(unknown) /* header fields lost at a mid-stream pickup */

// Values index per-endpoint counters and appear in policy files: keep the
// names stable and append new ones at the end.
enum class Endpoint : uint8_t {
#define X(name) name,
  AIQOS_ENDPOINTS(X)
#undef X
      count_
};

// The snake_case name ("chat_completions"); "?" for an out-of-range value.
const char* endpoint_name(Endpoint e) noexcept;
// Inverse of endpoint_name, for the control plane's policy parser.
std::optional<Endpoint> endpoint_from_name(std::string_view name) noexcept;

struct EndpointMatch {
  Endpoint endpoint = Endpoint::other;
  // Percent-decoded model name from the path (KServe/Triton
  // `/v2/models/{name}/...`); empty for endpoints that carry it in the body.
  ModelName model;
};

EndpointMatch identify_endpoint(std::string_view method, std::string_view path) noexcept;

// Percent-decodes `in` into `out` (appending). A '%' not followed by two hex
// digits is kept as is; '+' is not a space in a path.
void percent_decode(std::string_view in, ModelName& out) noexcept;

}  // namespace aiqos
