// The whole per-worker classifier (flow table -> reassembly -> HTTP/1.1,
// HTTP/2, gRPC, TLS -> request records) over real captures from
// tests/pcap/cases, frames decoded once up front. Each iteration replays the
// capture once; connections are reused by their SYN, as in a looping replay.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"
#include "classify/classifier.h"

namespace aiqos {
namespace {

struct NullSink final : RequestSink {
  uint64_t n = 0;
  void emit(const RequestRecord&) noexcept override { ++n; }
};

struct Decoded {
  std::vector<std::vector<uint8_t>> frames;
  std::vector<PacketInfo> info;
  uint64_t bytes = 0;
};

Decoded decode(const std::string& path) {
  Decoded d;
  d.frames = bench::read_pcap(path);
  for (auto& f : d.frames) {
    PacketInfo p;
    parse_packet(f, p);
    d.info.push_back(p);
    d.bytes += f.size();
  }
  return d;
}

void replay(benchmark::State& st, const std::string& path) {
  Decoded d = decode(path);
  if (d.frames.empty()) {
    st.SkipWithError(("cannot read " + path).c_str());
    return;
  }
  NullSink sink;
  Classifier cls(ClassifierConfig{}, sink);
  uint64_t now = 1'000'000'000;
  for (auto _ : st) {
    for (size_t i = 0; i < d.frames.size(); ++i) cls.on_packet(d.info[i], d.frames[i], now += 1000);
  }
  st.SetItemsProcessed(int64_t(st.iterations() * d.frames.size()));
  st.SetBytesProcessed(int64_t(st.iterations() * d.bytes));
  st.counters["requests"] = double(sink.n);
}

void BM_ClassifyCapture(benchmark::State& st, const char* name) {
  replay(st, bench::source_path("tests/pcap/cases/") + name + "/in.pcap");
}
BENCHMARK_CAPTURE(BM_ClassifyCapture, h2c_h2load, "h2c_h2load");
BENCHMARK_CAPTURE(BM_ClassifyCapture, h1_keepalive, "h1_keepalive");
BENCHMARK_CAPTURE(BM_ClassifyCapture, grpc_modelinfer, "grpc_modelinfer");
BENCHMARK_CAPTURE(BM_ClassifyCapture, big_body_100k, "big_body_100k");
BENCHMARK_CAPTURE(BM_ClassifyCapture, tls_sni, "tls_sni");

// The LLM mix of scripts/bench, when AIQOS_BENCH_PCAP names it.
void BM_ClassifyMix(benchmark::State& st) {
  const char* p = std::getenv("AIQOS_BENCH_PCAP");
  if (p == nullptr) {
    st.SkipWithError("AIQOS_BENCH_PCAP not set (scripts/bench sets it)");
    return;
  }
  replay(st, p);
}
BENCHMARK(BM_ClassifyMix);

}  // namespace
}  // namespace aiqos
