// L7Connection (first-bytes detection, HTTP/1 <-> HTTP/2 routing, h2c
// upgrade, direction repair) over a conversation (conversation.h); a
// zero-length chunk is the direction's FIN. Also sniff_first_bytes on every
// prefix of the first chunk.
#include "classify/l7_detect.h"
#include "conversation.h"
#include "l7_config.h"

using namespace aiqos;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  L7Config cfg = fuzz::small_l7_config();
  fuzz::CheckingSink sink;
  L7Connection l7(cfg, sink);
  bool first = true;
  while (!in.empty()) {
    fuzz::Chunk c = fuzz::next_chunk(in);
    if (first) {
      for (size_t i = 0; i <= c.bytes.size(); ++i) {
        FirstBytes fb = sniff_first_bytes(c.bytes.first(i));
        FUZZ_CHECK(static_cast<uint8_t>(fb) <= static_cast<uint8_t>(FirstBytes::other));
      }
      first = false;
    }
    if (c.bytes.empty()) {
      l7.finish(c.dir);
      continue;
    }
    L7Proto before = l7.proto();
    l7.feed(c.dir, c.bytes);
    // Once decided, the protocol only changes from HTTP/1 to HTTP/2 (h2c).
    if (before != L7Proto::undecided && before != l7.proto())
      FUZZ_CHECK(before == L7Proto::http1 && l7.proto() == L7Proto::http2);
    FUZZ_CHECK(l7_proto_name(l7.proto()) != nullptr);
    if (l7.failed()) FUZZ_CHECK(l7.error() != L7Error::none);
  }
  return 0;
}
