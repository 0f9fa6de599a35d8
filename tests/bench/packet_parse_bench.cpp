// L2-L4 decode (parse_packet) and the symmetric flow hash, per frame.
#include <benchmark/benchmark.h>

#include "bench_util.h"
#include "classify/flow_key.h"
#include "classify/packet_parse.h"

namespace aiqos {
namespace {

std::vector<std::vector<uint8_t>> frames_for(int kind) {
  std::vector<std::vector<uint8_t>> v;
  for (uint32_t i = 0; i < 64; ++i) {
    switch (kind) {
      case 0: v.push_back(test::tcp4(0x0a000001 + i, 0x0a0000fe, 40000 + i, 8080, 0x18, 200)); break;
      case 1: v.push_back(test::tcp4(0x0a000001 + i, 0x0a0000fe, 40000 + i, 8080, 0x18, 200, {100, 200})); break;
      default: v.push_back(test::udp6(uint8_t(i), 0xfe, 5000 + i, 443, 200)); break;
    }
  }
  return v;
}

void BM_ParsePacket(benchmark::State& st) {
  auto frames = frames_for(static_cast<int>(st.range(0)));
  PacketInfo pi;
  size_t i = 0;
  for (auto _ : st) {
    const auto& f = frames[i++ & 63];
    benchmark::DoNotOptimize(parse_packet(f, pi));
    benchmark::DoNotOptimize(pi);
  }
  st.SetItemsProcessed(st.iterations());
  st.SetLabel(st.range(0) == 0 ? "ipv4/tcp" : st.range(0) == 1 ? "qinq/ipv4/tcp" : "ipv6/udp");
}
BENCHMARK(BM_ParsePacket)->Arg(0)->Arg(1)->Arg(2);

void BM_ParseAndHash(benchmark::State& st) {
  auto frames = frames_for(0);
  PacketInfo pi;
  size_t i = 0;
  for (auto _ : st) {
    parse_packet(frames[i++ & 63], pi);
    benchmark::DoNotOptimize(symmetric_hash(pi));
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_ParseAndHash);

}  // namespace
}  // namespace aiqos
