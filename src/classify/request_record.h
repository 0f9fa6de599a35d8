// One inference request as the wire revealed it: filled by a worker's
// classifier, handed to the control plane through a ring, written as one
// JSON line of the request log. Fixed size, no pointers: it crosses threads
// by copy into preallocated slots.
#pragma once

#include <array>
#include <cstdint>

#include "classify/endpoint.h"
#include "classify/model_name.h"
#include "classify/genai.h"

namespace aiqos {

enum class ReqProto : uint8_t { unknown, h2, h1, grpc, tls };
const char* req_proto_name(ReqProto p) noexcept;

// Where the model name came from.
enum class ModelSource : uint8_t { none, path, body, grpc };

// A request against its class's request and token budgets (classify/budget.h):
// within them, or over one and demoted (another class) or dropped (its
// client's frames). Moves once, from within.
enum class BudgetState : uint8_t { within = 0, demoted = 1, dropped = 2 };

struct RequestRecord {
  uint64_t ts_ns = 0;          // request headers seen (capture time offline, wall clock live)
  uint64_t req_end_ns = 0;     // last request byte seen; 0 if never
  uint64_t resp_first_ns = 0;  // first response byte (headers) seen; 0 if never
  uint64_t resp_end_ns = 0;    // response complete; 0 if never
  std::array<uint8_t, 16> src{}, dst{};  // client, server
  uint16_t sport = 0, dport = 0;
  uint16_t vlan = 0;
  uint8_t family = 4;
  ReqProto proto = ReqProto::unknown;
  uint32_t stream_id = 0;
  BoundedString<16> method;
  BoundedString<128> authority;
  BoundedString<256> path;
  Endpoint endpoint = Endpoint::other;
  ModelSource model_source = ModelSource::none;
  ModelName model;
  BoundedString<64> tenant;
  uint16_t class_id = 0;
  BoundedString<32> class_name;  // as named by the policy in force when it was classified
  uint16_t status = 0;      // HTTP status; 0 if no response was seen
  int16_t grpc_status = -1;
  bool reset = false;       // ended by RST_STREAM
  bool incomplete = false;  // the flow ended (or failed) before the response did
  bool midstream = false;   // its connection was picked up mid-stream (no handshake seen)
  bool headers_partial = false;  // some header fields could not be decoded (HPACK table lost)
  BudgetState budget = BudgetState::within;
  uint32_t est_tokens = 0;  // LLM tokens charged to the budget (estimate; 0 when none)
  uint64_t req_bytes = 0;   // request body bytes
  uint64_t resp_bytes = 0;  // response body bytes
  // What the server did (classify/response_tracker.h), set when the response ends.
  uint64_t first_token_ns = 0;  // first content-bearing event (not streamed: first body byte); 0 if none
  uint64_t last_token_ns = 0;   // last content-bearing event
  uint32_t input_tokens = 0;    // usage if the server reported it, else the estimate (req_bytes / 4)
  uint32_t output_tokens = 0;   // per token_source
  uint32_t token_events = 0;    // content-bearing events counted
  TokenSource token_source = TokenSource::estimated;
  GenAiProvider provider = GenAiProvider::none;
  bool streamed = false;        // SSE, NDJSON or a gRPC server stream
  bool stream_error = false;    // the body carried an error event or object
  bool resp_encoded = false;    // compressed (content-encoding): not decoded, nothing counted
  BoundedString<64> resp_model;  // the model the response names
};

}  // namespace aiqos
