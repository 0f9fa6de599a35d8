// gRPC over HTTP/2: the service and method from :path, and a streaming
// decoder of the length-prefixed message framing over DATA payloads that
// pulls `model_name` out of KServe v2 / Triton ModelInferRequest messages.
//
// Framing (grpc PROTOCOL-HTTP2.md): each message is
//   1 byte compressed flag (0 or 1) | 4 bytes big-endian length | message
// ModelInferRequest (KServe v2 grpc_predict_v2.proto):
//   string model_name = 1; string model_version = 2; string id = 3; ...
// We read field 1 wherever it sits among the top-level fields; every other
// field (any wire type, including groups) is skipped by counting bytes,
// never buffered. A repeated field 1 follows protobuf's "last one wins".
//
// Untrusted input: every length is checked against the enclosing message; a
// malformed varint, wire type, length or flag makes the decoder fail for good
// (sticky), never crash. A compressed message (flag 1) is skipped and
// reported with no model: we do not inflate.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "classify/model_name.h"

namespace aiqos {

// "/inference.GRPCInferenceService/ModelInfer" -> service
// "inference.GRPCInferenceService" (package included), method "ModelInfer".
struct GrpcPath {
  std::string_view service;
  std::string_view method;
  // "inference" ("" when the service has no package).
  std::string_view package() const noexcept {
    size_t dot = service.rfind('.');
    return dot == std::string_view::npos ? std::string_view{} : service.substr(0, dot);
  }
};
// nullopt unless the path is exactly "/" service "/" method, both non-empty
// and without further '/' (a query string is not part of a gRPC path).
std::optional<GrpcPath> parse_grpc_path(std::string_view path) noexcept;

#define AIQOS_GRPC_ERRORS(X)                                               \
  X(none, "no error")                                                      \
  X(bad_flag, "compressed flag neither 0 nor 1")                           \
  X(bad_varint, "varint longer than 10 bytes, or tag longer than 32 bits") \
  X(bad_tag, "field number 0 or wire type 6/7")                            \
  X(bad_length, "field runs past the end of its message")                  \
  X(bad_group, "unbalanced or too deeply nested group")                    \
  X(truncated, "stream ended inside a message")

enum class GrpcError : uint8_t {
#define X(name, desc) name,
  AIQOS_GRPC_ERRORS(X)
#undef X
      count_
};
const char* grpc_error_name(GrpcError e) noexcept;

// One request message, complete.
struct GrpcMessage {
  ModelName model;               // valid when has_model; truncated flag past kMaxModelName
  uint32_t length = 0;           // bytes after the 5-byte prefix
  bool compressed = false;       // flag 1: not decoded, model unknown
  bool has_model = false;        // field 1 (wire type 2) seen and complete
  bool duplicate_model = false;  // field 1 seen more than once (last wins)
};

// Per-stream decoder (one per HTTP/2 request stream). No allocation;
// sizeof 320 bytes (x86-64), most of it the model name.
class GrpcModelDecoder {
 public:
  struct Result {
    size_t consumed = 0;        // bytes of `in` used
    bool message_done = false;  // message() holds a complete message
  };

  // Consumes `in` up to the end of the next complete message. Call again with
  // the rest: the habit of nghttp2's inflater, so the caller sees every
  // message of a ModelStreamInfer stream.
  Result feed(std::span<const uint8_t> in) noexcept;
  // Convenience: feeds all of `in`, calling on_message(const GrpcMessage&)
  // for each completed message.
  template <typename F>
  void feed_all(std::span<const uint8_t> in, F&& on_message) {
    while (!in.empty() && !failed()) {
      Result r = feed(in);
      in = in.subspan(r.consumed);
      if (r.message_done) on_message(message());
    }
  }
  // End of the request stream (END_STREAM): a partial message is an error.
  GrpcError finish() noexcept;

  // The last completed message (valid after feed() said message_done, until
  // the next feed()).
  const GrpcMessage& message() const noexcept { return msg_; }
  uint64_t messages() const noexcept { return n_messages_; }
  bool failed() const noexcept { return err_ != GrpcError::none; }
  GrpcError error() const noexcept { return err_; }
  void reset() noexcept { *this = GrpcModelDecoder{}; }

 private:
  enum class St : uint8_t { header, tag, varint, skip, len, model, compressed };
  static constexpr uint32_t kMaxGroupDepth = 64;

  bool fail(GrpcError e) noexcept {
    err_ = e;
    return false;
  }
  bool field_boundary() const noexcept { return st_ == St::tag && vn_ == 0; }
  bool on_tag(uint64_t tag) noexcept;
  bool on_len(uint64_t len) noexcept;

  GrpcMessage msg_;
  uint64_t n_messages_ = 0;
  uint64_t v_ = 0;         // varint being read
  uint64_t skip_ = 0;      // bytes left to skip or to capture
  uint32_t msg_left_ = 0;  // bytes left in the current message
  uint32_t group_depth_ = 0;
  uint8_t hdr_[5] = {};
  uint8_t hdr_n_ = 0;
  uint8_t vn_ = 0;  // bytes of v_ read
  bool len_is_model_ = false;
  bool model_started_ = false;  // field 1 seen in this message
  bool done_ = false;           // msg_ complete; the next byte starts a new one
  St st_ = St::header;
  GrpcError err_ = GrpcError::none;
};

}  // namespace aiqos
