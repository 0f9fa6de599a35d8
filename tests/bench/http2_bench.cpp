// HTTP/2 + HPACK: a real nghttp <-> nghttpd exchange (tests/unit/classify/data)
// fed through a fresh Http2Connection per iteration: connection set-up (two
// HPACK inflaters), frame parsing, header decoding, events.
#include <benchmark/benchmark.h>

#include <vector>

#include "../unit/classify/data/nghttp_capture.inc"
#include "classify/http2.h"

namespace aiqos {
namespace {

struct Count final : RequestEvents {
  uint64_t heads = 0;
  void on_request_headers(const RequestHead&) noexcept override { ++heads; }
  void on_response_headers(const ResponseHead&) noexcept override { ++heads; }
};

template <size_t N>
void run(benchmark::State& st, const CaptureSegment (&segs)[N]) {
  Count c;
  uint64_t bytes = 0;
  size_t hpack_peak = 0;
  for (auto _ : st) {
    Http2Connection h(Http2Config{}, c);
    for (const auto& s : segs) {
      h.feed(s.c2s ? Dir::c2s : Dir::s2c, {s.data, s.len});
      bytes += s.len;
    }
    benchmark::DoNotOptimize(h.failed());
    hpack_peak = h.stats().hpack_mem_peak[0] + h.stats().hpack_mem_peak[1];
  }
  st.SetBytesProcessed(int64_t(bytes));
  st.counters["hpack_peak_B"] = double(hpack_peak);  // both inflaters, per connection
  st.counters["header_blocks/s"] = benchmark::Counter(double(c.heads), benchmark::Counter::kIsRate);
}

void BM_Http2CaptureGet(benchmark::State& st) { run(st, kNghttpGetSegments); }
void BM_Http2CapturePost(benchmark::State& st) { run(st, kNghttpPostSegments); }
BENCHMARK(BM_Http2CaptureGet);
BENCHMARK(BM_Http2CapturePost);

}  // namespace
}  // namespace aiqos
