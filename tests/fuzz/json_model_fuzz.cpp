// JsonTopLevel (the top-level "model"/"max_tokens"/... extractor) over a body
// cut at split points chosen by the input; the same body in one piece must
// give the same fields. BodyStream runs it again with a Hyperscan stream-mode
// matcher, as the classifier does for a policy with body patterns.
//   byte 0: chunk length (1..256); the rest: the body.
#include <vector>

#include "classify/json_model.h"
#include "fuzz_input.h"

using namespace aiqos;

namespace {

const BodyMatcher* matcher() {
  static const BodyMatcher* m = [] {
    std::vector<HsPattern> pats = {
        {.id = 0, .expression = "\"stream\"\\s*:\\s*true", .flags = 0},
        {.id = 1, .expression = "ignore (all )?previous instructions", .flags = 0},
        {.id = 2, .expression = "\"tools\"\\s*:", .flags = 0},
    };
    HsCompileError err;
    return BodyMatcher::compile(pats, err).release();  // lives as long as the process
  }();
  return m;
}

bool same(const JsonFields& a, const JsonFields& b) {
  return a.present == b.present && a.duplicate == b.duplicate && a.model.view() == b.model.view() &&
         a.model.truncated == b.model.truncated && a.max_tokens == b.max_tokens &&
         a.max_completion_tokens == b.max_completion_tokens &&
         a.max_output_tokens == b.max_output_tokens && a.n == b.n && a.stream == b.stream;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  size_t step = size_t{in.u8()} + 1;
  std::span<const uint8_t> body = in.rest();

  JsonTopLevel whole;
  whole.feed(body);
  JsonStatus ws = whole.finish();

  JsonTopLevel cut;
  for (std::span<const uint8_t> rest = body; !rest.empty();) {
    std::span<const uint8_t> chunk = rest.first(std::min(step, rest.size()));
    rest = rest.subspan(chunk.size());
    cut.feed(chunk);
  }
  JsonStatus cs = cut.finish();
  FUZZ_CHECK(ws == cs);
  FUZZ_CHECK(whole.offset() == cut.offset());
  if (ws != JsonStatus::error && ws != JsonStatus::not_object) FUZZ_CHECK(same(whole.fields(), cut.fields()));
  FUZZ_CHECK(whole.fields().model.len <= kMaxModelName);
  fuzz::touch(whole.fields().model.view());

  const BodyMatcher* m = matcher();
  FUZZ_CHECK(m != nullptr);
  static HsScratch scratch;
  static bool reserved = m->reserve(scratch);
  FUZZ_CHECK(reserved);
  BodyStream bs;
  bs.open(m);
  for (std::span<const uint8_t> rest = body; !rest.empty();) {
    std::span<const uint8_t> chunk = rest.first(std::min(step, rest.size()));
    rest = rest.subspan(chunk.size());
    bs.feed(chunk, scratch);
  }
  bs.close(scratch);
  FUZZ_CHECK(bs.pattern_mask() < (uint64_t{1} << 3));
  return 0;
}
