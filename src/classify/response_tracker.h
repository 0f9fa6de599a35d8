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
#include "classify/genai.h"
#include "classify/model_name.h"

namespace aiqos {

// How the response body is framed, from its content-type.
enum class RespFormat : uint8_t { none, sse, ndjson, json, grpc };

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

// Room for a line template's bytes (its prefix and suffix), kept next to a tracker by its owner
// (a request slot) so that the tracker itself stays small: with it, a token line is checked
// against its template with memcmp instead of hashes (cost only; the result is the same).
struct ResponseTemplate {
  static constexpr uint16_t kBytes = 256;
  uint8_t b[kBytes];
};

class ResponseTracker {
 public:
  static constexpr uint8_t kMaxDepth = 32;  // deeper JSON: give up

  // Starts tracking a response. `ctype`: its content-type; `streaming_rpc`:
  // a gRPC server stream (ModelStreamInfer), where every message is a step.
  // A response no tracker applies to (an unknown endpoint's JSON, a
  // compressed body) leaves the tracker idle.
  // `tpl`: room for the line template's bytes while the response is tracked (nullptr: hashes).
  void start(Endpoint ep, std::string_view ctype, bool encoded, bool streaming_rpc,
             ResponseTemplate* tpl = nullptr) noexcept;
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
  void feed_line(const uint8_t* p, size_t n) noexcept;
  uint64_t prefix_hash(const uint8_t* p, uint16_t len, uint8_t holes) const noexcept;
  size_t tpl_match(const uint8_t* p, size_t avail) const noexcept;
  void feed_ndjson(const uint8_t* p, size_t n) noexcept;
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
  // The line template (cost): a stream's token events differ only in their token text. Once a
  // whole line scanned exactly was one content event whose only variable part can be that text,
  // the next lines equal to it outside that string (hashes of the prefix and suffix, a middle
  // without quote or backslash) are counted without scanning them again: the scan would find
  // exactly the same. Lines split across feeds are always scanned; results never depend on it.
  // Holes: string values of keys the scanner ignores (ids, timestamps) may differ too, at the same
  // length; only the first kHoles of the prefix.
  // With a ResponseTemplate (tpl_bytes_: the template fits in it), its bytes replace the hashes.
  static constexpr uint8_t kHoles = 4;
  ResponseTemplate* tb_ = nullptr;
  uint64_t tpl_pre_h_ = 0, tpl_suf_h_ = 0;
  uint16_t tpl_pre_ = 0, tpl_suf_ = 0;  // prefix and suffix lengths; tpl_pre_ 0: no template
  uint16_t hole_[kHoles][2] = {};       // [begin, end) in the line; in the template, then the scan
  uint8_t tpl_holes_ = 0, line_holes_ = 0;
  bool tpl_bytes_ = false;
  bool holes_on_ = false;  // a line missed only by its prefix: this stream varies its ignored strings
  uint32_t str_beg_ = 0, str_end_ = 0;  // line mode: where the string being read starts and ends
  uint32_t rec_beg_ = 0, rec_end_ = 0;  // line mode: the content string of the document
  uint8_t line_docs_ = 0;               // line mode: documents ended in the line, and their flags
  uint8_t line_flags_ = 0;
  bool line_mode_ = false;
  bool str_rec_ = false;
  bool line_usage_ = false;  // line mode: a usage figure was read (never a template)
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
