// TCP reassembly of one direction: in-order 1448-byte segments (zero copy)
// and out-of-order pairs (every other segment buffered in the pool, then
// delivered from it).
#include <benchmark/benchmark.h>

#include <vector>

#include "classify/packet_parse.h"
#include "classify/tcp_reassembly.h"

namespace aiqos {
namespace {

constexpr uint32_t kSeg = 1448;
constexpr int kSegsPerStream = 64;

void run(benchmark::State& st, bool ooo) {
  ReassemblyPool pool(ReassemblyConfig{});
  std::vector<uint8_t> payload(kSeg, 'x');
  uint64_t delivered = 0;
  auto sink_fn = [&](std::span<const uint8_t> b) { delivered += b.size(); };
  for (auto _ : st) {
    TcpReassembly r;
    r.on_segment({.flags = tcpflag::syn, .seq = 999}, pool, sink_fn);
    for (int i = 0; i < kSegsPerStream; i += 2) {
      uint32_t a = 1000 + uint32_t(i) * kSeg, b = a + kSeg;
      if (ooo) std::swap(a, b);
      r.on_segment({.flags = tcpflag::ack, .seq = a, .payload = payload}, pool, sink_fn);
      r.on_segment({.flags = tcpflag::ack, .seq = b, .payload = payload}, pool, sink_fn);
    }
    r.release(pool);
  }
  st.SetItemsProcessed(st.iterations() * kSegsPerStream);
  st.SetBytesProcessed(int64_t(delivered));
  st.counters["pool_high_water_B"] = double(pool.chunks_high_water()) * pool.chunk_bytes();
}

void BM_ReassemblyInOrder(benchmark::State& st) { run(st, false); }
void BM_ReassemblyOutOfOrder(benchmark::State& st) { run(st, true); }
BENCHMARK(BM_ReassemblyInOrder);
BENCHMARK(BM_ReassemblyOutOfOrder);

}  // namespace
}  // namespace aiqos
