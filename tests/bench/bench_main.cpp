// Runs every registered micro-benchmark after printing the per-flow state
// sizes that docs/performance.md reports. Structures private to
// classifier.cpp are sized by differencing Classifier::memory_bytes().
#include <benchmark/benchmark.h>

#include <cstdio>

#include "classify/classifier.h"
#include "classify/flow_table.h"
#include "classify/json_model.h"

namespace {

struct NullSink final : aiqos::RequestSink {
  void emit(const aiqos::RequestRecord&) noexcept override {}
};

void print_sizes() {
  using namespace aiqos;
  NullSink sink;
  ClassifierConfig base{};
  base.flows.max_flows = 1024;
  base.reassembly.pool_bytes = 1 << 20;
  auto mem = [&](ClassifierConfig c) { return Classifier(c, sink).memory_bytes(); };
  uint64_t m0 = mem(base);
  ClassifierConfig c = base;
  c.flows.max_flows += 1024;
  double per_flow = double(mem(c) - m0) / 1024;
  c = base;
  c.max_l7_conns += 1024;
  double per_l7 = double(mem(c) - m0) / 1024;
  c = base;
  c.max_requests += 1024;
  double per_req = double(mem(c) - m0) / 1024;
  c = base;
  c.max_tls_handshakes += 1024;
  double per_tls = double(mem(c) - m0) / 1024;
  std::vector<HsPattern> pats = {{.id = 0, .expression = "\"model\"", .flags = 0},
                                 {.id = 1, .expression = "ignore (all )?previous instructions",
                                  .flags = HS_FLAG_CASELESS}};
  HsCompileError err;
  auto bm = BodyMatcher::compile(pats, err);
  std::printf("state sizes: sizeof(Flow)=%zu sizeof(TcpReassembly)=%zu sizeof(FlowKey)=%zu\n",
              sizeof(Flow), sizeof(TcpReassembly), sizeof(FlowKey));
  std::printf("state sizes: flow table %.1f B/flow (entry + bucket), FlowL7 %.1f B, ReqSlot %.1f B, "
              "TLS parser %.1f B (incl. hello buffer)\n",
              per_flow, per_l7, per_req, per_tls);
  std::printf("state sizes: sizeof(JsonTopLevel)=%zu sizeof(BodyStream)=%zu, Hyperscan stream state "
              "for 2 body patterns: %zu B\n",
              sizeof(JsonTopLevel), sizeof(BodyStream), bm ? bm->stream_size() : size_t{0});
  std::printf("state sizes: default ClassifierConfig memory_bytes=%llu\n",
              static_cast<unsigned long long>(Classifier(ClassifierConfig{}, sink).memory_bytes()));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  print_sizes();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
