// What an LLM server did, read passively from its response body as it
// crosses the wire: when the first token came, how many events carried
// content, and the usage figures the server reports.
//
// One ResponseTracker per request slot, fixed size (no allocation, no
// buffering of the body): an SSE line state machine (`data:` lines only),
// an NDJSON / plain JSON splitter, or a gRPC length-prefix counter, all
// feeding one streaming JSON scanner that knows only a handful of keys at
// known depths (usage.*_tokens, choices[].delta.content, type, eval_count,
// token, details.generated_tokens, model...). It parses a stream of JSON
// values, so every split of the bytes gives the same result.
//
// Fail open: garbage (malformed JSON, a usage number that overflows, nesting
// deeper than kMaxDepth) makes the tracker give up on the response: the
// request is still forwarded and logged, with token_source `estimated`.
// Failure is sticky (llhttp / nghttp2 style).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "classify/endpoint.h"
#include "classify/model_name.h"

namespace aiqos {

// Who served the response, from the request's endpoint (gen_ai.provider.name).
// Values appear in logs and metrics: append only.
enum class GenAiProvider : uint8_t { none, openai, anthropic, ollama, tgi, kserve };
const char* provider_name(GenAiProvider p) noexcept;  // "openai"...; "" for none
GenAiProvider provider_of(Endpoint e) noexcept;

// How the response body is framed, from its content-type.
enum class RespFormat : uint8_t { none, sse, ndjson, json, grpc };

// Where a record's token figures come from.
enum class TokenSource : uint8_t { estimated, counted, usage };
const char* token_source_name(TokenSource s) noexcept;

// What the scanner learned; read once the response ends.
struct ResponseUsage {
  uint64_t first_ns = 0;   // first content-bearing event (0: none)
  uint64_t last_ns = 0;    // last content-bearing event
  uint32_t events = 0;     // content-bearing events (SSE events, NDJSON lines, gRPC messages)
  int64_t input = -1;      // reported by the server (usage); -1: not reported
  int64_t output = -1;
  bool stream_error = false;  // the body carried an error event / object
  bool done = false;          // the server said the stream is complete ([DONE], done:true, message_stop)
  BoundedString<64> model;    // the model the response names (first one seen)
};

class ResponseTracker {
 public:
  static constexpr uint8_t kMaxDepth = 32;  // deeper JSON: give up

  // Starts tracking a response. `ctype`: its content-type; `streaming_rpc`:
  // a gRPC server stream (ModelStreamInfer), where every message is a step.
  // A response no tracker applies to (an unknown endpoint's JSON, a
  // compressed body) leaves the tracker idle.
  void start(Endpoint ep, std::string_view ctype, bool encoded, bool streaming_rpc) noexcept;
  void reset() noexcept { *this = ResponseTracker{}; }
  // The next in-order body bytes (de-chunked for HTTP/1.1, DATA payload for
  // HTTP/2), seen at `now_ns`.
  void feed(std::span<const uint8_t> b, uint64_t now_ns) noexcept;
  // The body is complete (an NDJSON line without its newline counts).
  void finish(uint64_t now_ns) noexcept;

  bool active() const noexcept { return fmt_ != RespFormat::none && !failed_; }
  bool failed() const noexcept { return failed_; }
  bool encoded() const noexcept { return encoded_; }
  RespFormat format() const noexcept { return fmt_; }
  // Token by token (SSE, NDJSON, a gRPC server stream), not one body.
  bool streamed() const noexcept;
  const ResponseUsage& usage() const noexcept { return u_; }

 private:
  void feed_json(const uint8_t* p, size_t n) noexcept;
  void feed_sse(const uint8_t* p, size_t n) noexcept;
  void feed_grpc(const uint8_t* p, size_t n) noexcept;
  void value_start(uint8_t c) noexcept;
  void scalar_end() noexcept;
  void doc_end() noexcept;
  void content() noexcept;
  void fail() noexcept { failed_ = true; }

  ResponseUsage u_;
  uint64_t now_ = 0;
  // JSON scanner.
  uint64_t arrays_ = 0;             // bit d: container at depth d is an array (d < 64)
  uint64_t num_ = 0;                // digits of the number being read
  uint32_t khash_ = 0;              // FNV-1a of the key being read
  static constexpr uint8_t kKeyDepth = 8;
  uint8_t keys_[kKeyDepth] = {};    // key each container (depth 0..7) was opened under
  uint8_t depth_ = 0;               // open containers
  uint8_t js_ = 0;                  // scanner state
  uint8_t key_ = 0;                 // key of the value being read
  uint8_t klen_ = 0;
  uint8_t vflags_ = 0;              // per value: non-empty string, capture, number kind
  uint8_t doc_ = 0;                 // per JSON document: content / error / done / type flags
  uint8_t esc_ = 0;                 // \uXXXX hex digits left
  // Framing.
  RespFormat fmt_ = RespFormat::none;
  GenAiProvider provider_ = GenAiProvider::none;
  uint8_t ls_ = 0;                  // SSE line state
  uint8_t lpos_ = 0;                // SSE: position in "data:" or "[DONE]"
  uint8_t ghdr_ = 0;                // gRPC: header bytes read of the current message
  uint32_t gleft_ = 0;              // gRPC: payload bytes left
  bool grpc_stream_ = false;
  bool encoded_ = false;
  bool failed_ = false;
};

}  // namespace aiqos
