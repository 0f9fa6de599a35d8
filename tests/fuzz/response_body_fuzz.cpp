// ResponseTracker (the LLM response scanner: SSE, NDJSON, JSON, gRPC) over a
// hostile body cut at split points chosen by the input; the same body in one
// piece must give the same figures, the state stays fixed-size, and a body
// the scanner gave up on reports no usage.
//   byte 0: which response (endpoint and content-type, kKinds below)
//   byte 1: chunk length (1..256); the rest: the body.
#include "classify/response_tracker.h"
#include "fuzz_input.h"

using namespace aiqos;

namespace {

struct Kind {
  Endpoint ep;
  const char* ctype;
  bool grpc_stream;
};
constexpr Kind kKinds[] = {
    {Endpoint::chat_completions, "text/event-stream", false},
    {Endpoint::anthropic_messages, "text/event-stream; charset=utf-8", false},
    {Endpoint::responses, "text/event-stream", false},
    {Endpoint::tgi_generate, "text/event-stream", false},
    {Endpoint::ollama_chat, "application/x-ndjson", false},
    {Endpoint::chat_completions, "application/json", false},
    {Endpoint::grpc_model_infer, "application/grpc", true},
    {Endpoint::triton_generate, "text/event-stream", false},
};

bool same(const ResponseTracker& a, const ResponseTracker& b) {
  if (a.failed() != b.failed()) return false;
  if (a.failed()) return true;
  const ResponseUsage &x = a.usage(), &y = b.usage();
  return x.events == y.events && x.input == y.input && x.output == y.output && x.done == y.done &&
         x.stream_error == y.stream_error && x.model.view() == y.model.view();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static_assert(sizeof(ResponseTracker) <= 256, "per-request state must stay small");
  fuzz::Input in(data, size);
  const Kind& k = kKinds[in.u8() % (sizeof kKinds / sizeof kKinds[0])];
  size_t step = size_t{in.u8()} + 1;
  std::span<const uint8_t> body = in.rest();

  ResponseTracker whole;
  whole.start(k.ep, k.ctype, false, k.grpc_stream);
  whole.feed(body, 1);
  whole.finish(2);

  ResponseTracker cut;
  cut.start(k.ep, k.ctype, false, k.grpc_stream);
  for (std::span<const uint8_t> rest = body; !rest.empty();) {
    std::span<const uint8_t> chunk = rest.first(std::min(step, rest.size()));
    rest = rest.subspan(chunk.size());
    cut.feed(chunk, 1);
  }
  cut.finish(2);
  FUZZ_CHECK(same(whole, cut));

  // The same cut, the line template's bytes kept aside (memcmp instead of hashes): the same.
  static ResponseTemplate tb;
  ResponseTracker cut_tb;
  cut_tb.start(k.ep, k.ctype, false, k.grpc_stream, &tb);
  for (std::span<const uint8_t> rest = body; !rest.empty();) {
    std::span<const uint8_t> chunk = rest.first(std::min(step, rest.size()));
    rest = rest.subspan(chunk.size());
    cut_tb.feed(chunk, 1);
  }
  cut_tb.finish(2);
  FUZZ_CHECK(same(whole, cut_tb));
  const ResponseUsage& u = whole.usage();
  FUZZ_CHECK(u.input <= 1'000'000'000'000LL && u.output <= 1'000'000'000'000LL);
  FUZZ_CHECK(u.model.len <= 64);
  FUZZ_CHECK(u.events <= body.size());
  fuzz::touch(u.model.view());
  return 0;
}
