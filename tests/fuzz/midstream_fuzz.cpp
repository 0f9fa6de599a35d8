// Mid-stream pickup: L7Connection started with start_midstream() over a
// conversation (conversation.h) that begins at an arbitrary point, with small
// resync buffers and a small shared budget; and find_resync on every chunk.
//   byte 0: bit 0 the client guess (c2s / s2c); the rest: the conversation.
// Checks: offsets inside the bytes, the budget never over its cap and all of
// it given back when the connection goes, events well-formed (CheckingSink).
#include "classify/l7_detect.h"
#include "classify/midstream.h"
#include "conversation.h"
#include "l7_config.h"

using namespace aiqos;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  const Dir guess = (in.u8() & 1) ? Dir::s2c : Dir::c2s;
  L7Config cfg = fuzz::small_l7_config();
  cfg.midstream_buffer = 2048;
  cfg.midstream_scan_limit = 16384;
  MidstreamBudget budget;
  budget.cap = 6144;
  cfg.midstream_budget = &budget;
  fuzz::CheckingSink sink;
  {
    L7Connection l7(cfg, sink);
    l7.start_midstream(guess);
    while (!in.empty()) {
      fuzz::Chunk c = fuzz::next_chunk(in);
      for (ResyncKind k : {ResyncKind::h1_request, ResyncKind::h1_status, ResyncKind::h2}) {
        ResyncPoint p = find_resync(c.bytes, 0, k, cfg.http2.max_frame_size);
        FUZZ_CHECK(p.found != Resync::yes || p.offset < c.bytes.size());
        FUZZ_CHECK(p.resume <= c.bytes.size());
      }
      if (c.bytes.empty()) {
        l7.finish(c.dir);
        continue;
      }
      l7.feed(c.dir, c.bytes);
      FUZZ_CHECK(budget.used <= budget.cap);
      if (l7.failed()) FUZZ_CHECK(l7.error() != L7Error::none);
    }
  }
  FUZZ_CHECK(budget.used == 0);
  return 0;
}
