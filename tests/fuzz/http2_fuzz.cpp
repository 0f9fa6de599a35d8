// Http2Connection (frame parser + two HPACK inflaters) over a conversation
// (conversation.h). The first input byte picks the mode: bit 0 starts as an
// h2c upgrade (start_upgraded, with a table size from the next 2 bytes when
// bit 1 is set); bit 2 takes the inflaters' memory from the heap instead of
// a pool (shared by every input, as a worker's is by its connections, and
// small enough to run dry). Small bounds, so that every cap is reachable.
#include "classify/hpack_pool.h"
#include "classify/http2.h"
#include "conversation.h"

using namespace aiqos;

namespace {

void run(fuzz::Input& in, uint8_t mode, const Http2Config& cfg) {
  fuzz::CheckingSink sink;
  Http2Connection h2(cfg, sink);
  if (mode & 1) {
    std::optional<uint32_t> hts;
    if (mode & 2) hts = in.u16();
    h2.start_upgraded(hts);
  }
  while (!in.empty()) {
    fuzz::Chunk c = fuzz::next_chunk(in);
    h2.feed(c.dir, c.bytes);
    FUZZ_CHECK(h2.open_streams() <= cfg.max_streams);
    const Http2Stats& st = h2.stats();
    // The inflaters' allocations stay under the cap (nghttp2_mem counting).
    FUZZ_CHECK(st.hpack_mem_peak[0] <= cfg.max_hpack_mem);
    FUZZ_CHECK(st.hpack_mem_peak[1] <= cfg.max_hpack_mem);
    FUZZ_CHECK(h2.failed() == (h2.error() != L7Error::none));
    FUZZ_CHECK(h2.failed() == sink.error_seen);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  uint8_t mode = in.u8();
  Http2Config cfg;
  cfg.max_streams = 4;
  cfg.max_frame_size = 1 << 14;
  cfg.max_header_block = 8192;
  cfg.max_header_list = 16384;
  cfg.max_hpack_table = 4096;
  cfg.max_hpack_mem = 64 << 10;
  cfg.capture = fuzz::fuzz_capture();
  static HpackPool pool(96 << 10, cfg.max_hpack_mem);
  if (!(mode & 4)) cfg.hpack_pool = &pool;
  run(in, mode, cfg);
  // Every block given back with the connection.
  FUZZ_CHECK(pool.in_use() == 0);
  return 0;
}
