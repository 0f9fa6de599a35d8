// Top-level fields of a JSON request body (OpenAI, Anthropic, Ollama, TGI
// style), extracted from body chunks as they arrive, at any split.
//
// Fields: "model" (string), "max_tokens", "max_completion_tokens",
// "max_output_tokens", "n" (integers) and "stream" (boolean), only as members
// of the top-level object: the same key inside a nested object or array, or
// the text "model" inside a string, is never taken. Keys and the model value
// are compared/stored after JSON unescaping ("m\u006fdel" is "model"), as the
// server's decoder sees them.
//
// Why a byte-level depth tracker and not Hyperscan for "model": a Hyperscan
// hit on `"model"` says nothing about whether it sits at depth 1, outside a
// string, in key position; only the string/escape/depth state of every byte
// before it can say that, so the tracker must scan the whole body anyway and
// a Hyperscan pass for the key would be pure extra work. The tracker skips
// string contents (the bulk of a chat body) 16 bytes at a time (SSE2).
// tests/bench/json_model_bench.cpp measures both on a 100 KB chat body: the
// tracker alone runs at 42 (1448-byte chunks) to 60 (16 KB chunks) Gbit/s a
// core, a Hyperscan stream scan for `"model"` alone at 120 to 190 Gbit/s; a
// hybrid costs the sum of the two, so is about a third slower than the
// tracker alone, and is no more correct.
// Hyperscan stream mode is still used for what it is good at: the policy's
// body patterns (BodyMatcher), scanned over the same chunks by BodyStream.
//
// Duplicate keys: the last one wins, as in Python's json and Go's
// encoding/json (vLLM, Ollama); `duplicate` flags it so that a policy can
// treat it as suspicious. While a later "model" string is still arriving,
// `has(model)` is false: a partial name is never reported as the model.
//
// Invalid JSON: the server rejects it, so the model does not matter; the
// extractor stops with a sticky error and the caller treats the model as
// unknown. Only the top-level object is validated; nested brackets are only
// counted ("[}" nested inside passes).
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "classify/hs_db.h"
#include "classify/model_name.h"

namespace aiqos {

enum class JsonField : uint8_t {
  none,
  model,
  max_tokens,
  max_completion_tokens,
  max_output_tokens,
  n,
  stream,
};

struct JsonFields {
  ModelName model;  // truncated flag set when the name exceeds kMaxModelName
  int64_t max_tokens = 0;
  int64_t max_completion_tokens = 0;
  int64_t max_output_tokens = 0;
  int64_t n = 0;
  bool stream = false;
  // Bit (1 << JsonField) per field whose last value was complete and of the
  // right type (integers: no fraction/exponent, fits int64).
  uint8_t present = 0;
  uint8_t duplicate = 0;  // bit per field whose key appeared more than once

  static constexpr uint8_t bit(JsonField f) noexcept {
    return static_cast<uint8_t>(1u << static_cast<unsigned>(f));
  }
  bool has(JsonField f) const noexcept { return present & bit(f); }
  bool is_duplicate(JsonField f) const noexcept { return duplicate & bit(f); }
};

enum class JsonStatus : uint8_t {
  in_progress,  // inside the top-level object
  done,         // top-level object closed; trailing whitespace allowed
  not_object,   // body does not start with '{' (after whitespace / UTF-8 BOM)
  error,        // invalid JSON at offset(); sticky
};

// Bounded, allocation-free per-request state (sizeof ~ 320 bytes).
class JsonTopLevel {
 public:
  void reset() noexcept { *this = JsonTopLevel{}; }
  // Consumes the whole chunk. After not_object/error, chunks are ignored.
  JsonStatus feed(std::span<const uint8_t> chunk) noexcept;
  // End of body: an unclosed object becomes an error.
  JsonStatus finish() noexcept;

  JsonStatus status() const noexcept { return status_; }
  const JsonFields& fields() const noexcept { return f_; }
  // Bytes consumed; after an error, the offset of the offending byte.
  uint64_t offset() const noexcept { return offset_; }

 private:
  enum class St : uint8_t {
    start,
    bom1,
    bom2,
    key_or_end,
    key_next,
    key,
    colon,
    value,
    scalar,
    str_capture,
    str_skip,
    nested,
    comma_or_end,
    trailing,
  };
  static constexpr uint32_t kMaxDepth = 1u << 20;

  const uint8_t* skip_string(const uint8_t* p, const uint8_t* end) noexcept;
  const uint8_t* skip_nested(const uint8_t* p, const uint8_t* end) noexcept;
  void step(uint8_t c) noexcept;
  void decoded_byte(uint8_t c) noexcept;
  void put_cp(uint32_t cp) noexcept;
  void put_raw(uint8_t c) noexcept;
  void flush_surrogate() noexcept;
  void end_key() noexcept;
  void end_scalar() noexcept;
  void begin_value(uint8_t c) noexcept;
  void fail() noexcept { status_ = JsonStatus::error; }
  // The top-level object's closing brace: only white space may follow.
  void end_object() noexcept {
    depth_ = 0;
    st_ = St::trailing;
    status_ = JsonStatus::done;
  }

  JsonFields f_;
  uint64_t offset_ = 0;
  uint32_t depth_ = 0;
  uint32_t u_ = 0;   // \uXXXX being read
  uint16_t hi_ = 0;  // pending high surrogate (model capture)
  St st_ = St::start;
  JsonStatus status_ = JsonStatus::in_progress;
  uint8_t esc_ = 0;                    // 0: none, 1: after '\', 2..5: hex digits read + 2
  JsonField field_ = JsonField::none;  // key of the value being read
  uint8_t seen_ = 0;                   // JsonFields::bit per wanted key seen
  BoundedString<24> key_;              // longest wanted key: 21 bytes
  BoundedString<24> scalar_;           // number or literal at depth 1
};

// The policy's body patterns, compiled once into a Hyperscan stream-mode
// database on the control path; immutable and shared by all workers. May hold
// no patterns, then bodies only go through JsonTopLevel.
class BodyMatcher {
 public:
  // null + err on a compile error; an empty list gives a matcher with no database.
  static std::unique_ptr<BodyMatcher> compile(std::span<const HsPattern> patterns,
                                              HsCompileError& err);
  const HsDatabase* database() const noexcept { return db_.get(); }
  size_t stream_size() const noexcept { return db_ ? db_->stream_size() : 0; }
  // Control path: size a worker-scratch prototype for this database.
  bool reserve(HsScratch& proto) const noexcept { return !db_ || proto.reserve(db_->get()); }

 private:
  std::unique_ptr<HsDatabase> db_;
};

// Per-worker scratch: a clone of the prototype the control plane reserved for
// every database it published (HsScratch::clone).
using BodyScratch = HsScratch;

// Per-request body state: the JSON tracker plus one Hyperscan stream.
class BodyStream {
 public:
  BodyStream() = default;
  ~BodyStream();
  BodyStream(const BodyStream&) = delete;
  BodyStream& operator=(const BodyStream&) = delete;

  // Starts a body. `m` (may be null: JSON only) must outlive the stream.
  // Returns false if Hyperscan could not allocate the stream; the JSON
  // tracker still runs, pattern matching is skipped (`hs_failed()`).
  bool open(const BodyMatcher* m) noexcept;
  // One in-order chunk of the body.
  void feed(std::span<const uint8_t> chunk, BodyScratch& scratch) noexcept;
  // End of body: flushes end-anchored pattern matches, frees the stream.
  void close(BodyScratch& scratch) noexcept;

  const JsonTopLevel& json() const noexcept { return json_; }
  uint64_t pattern_mask() const noexcept { return mask_; }  // bit per body-pattern id
  bool hs_failed() const noexcept { return hs_failed_; }

 private:
  JsonTopLevel json_;
  const HsDatabase* db_ = nullptr;
  hs_stream_t* hs_ = nullptr;
  uint64_t mask_ = 0;
  bool hs_failed_ = false;
};

}  // namespace aiqos
