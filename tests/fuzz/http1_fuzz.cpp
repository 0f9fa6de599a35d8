// Http1Connection over a conversation (conversation.h). A zero-length chunk
// is an event: finish(dir) (the direction's FIN), or resume_c2s() when the
// client side is paused at an h2c upgrade. The first byte picks h2c_pause.
#include "classify/endpoint.h"
#include "classify/http1.h"
#include "conversation.h"

using namespace aiqos;

namespace {
// Like the classifier: every request head also goes through the endpoint
// table (method and path are attacker-chosen strings).
struct EndpointSink : fuzz::CheckingSink {
  void on_request_headers(const RequestHead& r) noexcept override {
    fuzz::CheckingSink::on_request_headers(r);
    EndpointMatch m = identify_endpoint(r.method, r.path);
    h += fuzz::touch(m.model.view());
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  uint8_t mode = in.u8();
  Http1Config cfg;
  cfg.max_header_section = 1024;
  cfg.max_pipeline = 4;
  cfg.h2c_pause = mode & 1;
  cfg.capture = fuzz::fuzz_capture();
  EndpointSink sink;
  Http1Connection h1(cfg, sink);
  bool paused[2] = {false, false};
  while (!in.empty()) {
    fuzz::Chunk c = fuzz::next_chunk(in);
    size_t d = static_cast<size_t>(c.dir);
    if (c.bytes.empty()) {
      if (c.dir == Dir::c2s && h1.c2s_paused()) {
        h1.resume_c2s();
        paused[0] = false;
      } else {
        h1.finish(c.dir);
      }
      continue;
    }
    size_t used = h1.feed(c.dir, c.bytes);
    FUZZ_CHECK(used <= c.bytes.size());
    if (used < c.bytes.size()) {
      // Only an h2c switch point stops a direction short.
      FUZZ_CHECK(cfg.h2c_pause);
      FUZZ_CHECK(c.dir == Dir::c2s ? h1.c2s_paused() : h1.s2c_switched());
      paused[d] = true;
    }
    if (paused[d] && c.dir == Dir::c2s && !h1.c2s_paused()) paused[d] = false;
    FUZZ_CHECK(h1.failed() == (h1.error() != L7Error::none));
    FUZZ_CHECK(h1.failed() == sink.error_seen);
  }
  return 0;
}
