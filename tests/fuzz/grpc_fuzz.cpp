// GrpcModelDecoder (length-prefixed framing + ModelInferRequest.model_name)
// over a request body cut at split points chosen by the input, and
// parse_grpc_path over the same bytes read as a :path.
//   byte 0: chunk length (1..256); the rest: the body.
#include <string_view>

#include "classify/grpc.h"
#include "fuzz_input.h"

using namespace aiqos;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  size_t step = size_t{in.u8()} + 1;
  std::span<const uint8_t> body = in.rest();

  std::string_view as_path(reinterpret_cast<const char*>(body.data()), body.size());
  if (auto p = parse_grpc_path(as_path)) {
    FUZZ_CHECK(!p->service.empty() && !p->method.empty());
    FUZZ_CHECK(p->service.find('/') == std::string_view::npos);
    FUZZ_CHECK(p->method.find('/') == std::string_view::npos);
    fuzz::touch(p->package());
  }

  GrpcModelDecoder dec;
  uint64_t messages = 0;
  while (!body.empty() && !dec.failed()) {
    std::span<const uint8_t> chunk = body.first(std::min(step, body.size()));
    body = body.subspan(chunk.size());
    while (!chunk.empty() && !dec.failed()) {
      GrpcModelDecoder::Result r = dec.feed(chunk);
      FUZZ_CHECK(r.consumed <= chunk.size());
      // Progress: a call that consumed nothing must have finished a message
      // or failed, or the caller's loop would spin.
      FUZZ_CHECK(r.consumed > 0 || r.message_done || dec.failed());
      chunk = chunk.subspan(r.consumed);
      if (r.message_done) {
        ++messages;
        const GrpcMessage& m = dec.message();
        FUZZ_CHECK(m.model.len <= kMaxModelName);
        fuzz::touch(m.model.view());
        if (m.compressed) FUZZ_CHECK(!m.has_model);
      }
    }
  }
  FUZZ_CHECK(dec.messages() == messages);
  GrpcError e = dec.finish();
  FUZZ_CHECK(grpc_error_name(e) != nullptr);
  FUZZ_CHECK(dec.failed() == (dec.error() != GrpcError::none));
  return 0;
}
