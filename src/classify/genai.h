// OpenTelemetry GenAI facts a request record carries: who served it and where its token
// figures come from. Shared by the classifier (response_tracker.h) and the control plane.
#pragma once

#include <cstdint>

#include "classify/endpoint.h"

namespace aiqos {

// Who served the response, from the request's endpoint (gen_ai.provider.name).
// Values appear in logs and metrics: append only.
enum class GenAiProvider : uint8_t { none, openai, anthropic, ollama, tgi, kserve };
const char* provider_name(GenAiProvider p) noexcept;  // "openai"...; "" for none
GenAiProvider provider_of(Endpoint e) noexcept;

// Where a record's token figures come from.
enum class TokenSource : uint8_t { estimated, counted, usage };
const char* token_source_name(TokenSource s) noexcept;

}  // namespace aiqos
