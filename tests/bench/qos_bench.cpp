// Micro-benchmarks of the QoS stages on real mbufs: policing + marking
// (WorkerQos::apply: rte_meter srTCM colour-blind check, exceed actions, DSCP
// rewrite, VLAN push or outer-tag rewrite) and the strict-priority Shaper
// (enqueue + dequeue of a burst spread over several classes). The classes are
// those of tests/bench/bench_policy.yaml, the policy scripts/bench runs aiqosd
// with. Own main: EAL with --no-huge for a mempool (no NIC, no hugepages).
#include <benchmark/benchmark.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_meter.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include "bench_util.h"
#include "control/policy_engine.h"
#include "control/policy_yaml.h"
#include "dataplane/mbuf_meta.h"
#include "dataplane/qos.h"

namespace aiqos {
namespace {

constexpr uint16_t kBurst = 32;
rte_mempool* g_pool = nullptr;
std::unique_ptr<PolicySnapshot> g_snap;

// The bench policy, compiled and built for one worker as aiqosd does.
bool load_snapshot() {
  LoadResult r = load_policy_file(bench::source_path("tests/bench/bench_policy.yaml"));
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.format_errors().c_str());
    return false;
  }
  std::vector<PolicyError> errs;
  auto eng = PolicyEngine::compile(std::move(*r.policy), {}, 1, "bench_policy.yaml", errs);
  if (!eng) return false;
  std::string err;
  g_snap = PolicySnapshot::build(std::move(eng), 1, 1, err);
  return g_snap != nullptr;
}

// A burst of frames of the LLM mix's shape (a streaming token event: ~200 B
// TCP/IPv4, untagged or with one VLAN tag), classes round-robin over the
// policy's classes.
struct Burst {
  rte_mbuf* m[kBurst];
  std::vector<uint8_t> tmpl[kBurst];
  MbufMeta md[kBurst];

  explicit Burst(bool tagged) {
    const uint16_t nclasses = static_cast<uint16_t>(g_snap->classes.size());
    for (uint16_t i = 0; i < kBurst; ++i) {
      tmpl[i] = tagged ? test::tcp4(0x0a070001 + i, 0x0aff0001, 33000, 8000, 0x18, 150, {10})
                       : test::tcp4(0x0a070001 + i, 0x0aff0001, 33000, 8000, 0x18, 150);
      m[i] = rte_pktmbuf_alloc(g_pool);
      MbufMeta& d = md[i];
      d = MbufMeta{};
      parse_packet(tmpl[i], d.pkt);
      d.class_id = static_cast<uint16_t>(i % nclasses);
      reset(i);
    }
  }
  ~Burst() { rte_pktmbuf_free_bulk(m, kBurst); }
  // Back to the frame as received: headroom, length, bytes of the headers, metadata.
  void reset(uint16_t i) noexcept {
    rte_mbuf* b = m[i];
    b->data_off = RTE_PKTMBUF_HEADROOM;
    b->data_len = static_cast<uint16_t>(tmpl[i].size());
    b->pkt_len = tmpl[i].size();
    std::memcpy(rte_pktmbuf_mtod(b, uint8_t*), tmpl[i].data(), tmpl[i].size());
    *meta(b) = md[i];
  }
  void reset_all() noexcept {
    for (uint16_t i = 0; i < kBurst; ++i) reset(i);
  }
};

struct QosState {
  std::unique_ptr<WorkerQos> qos = std::make_unique<WorkerQos>();
  std::unique_ptr<WorkerCounters> ctr = std::make_unique<WorkerCounters>();
  std::vector<ClassCounters> cc = std::vector<ClassCounters>(kMaxQosClasses);
  uint16_t egress[kBurst] = {};
  QosState() {
    qos->reconfigure(g_snap.get());
    for (auto& e : egress) e = 1;
  }
};

// What a burst costs to restore between iterations: subtract it from BM_QosApply/untagged.
void BM_QosBurstReset(benchmark::State& state) {
  Burst b(false);
  for (auto _ : state) {
    b.reset_all();
    benchmark::DoNotOptimize(b.m[0]);
  }
  state.SetItemsProcessed(state.iterations() * kBurst);
}
BENCHMARK(BM_QosBurstReset);

// Policing (rte_meter on the 3 metered classes; every class far under its
// rate: green) and marking of a 32-frame burst. untagged: frames are restored
// each iteration (VLAN push; includes BM_QosBurstReset); tagged: one ingress
// tag, rewritten in place (no reset needed, idempotent).
void BM_QosApply(benchmark::State& state) {
  const bool tagged = state.range(0) != 0;
  Burst b(tagged);
  QosState q;
  for (auto _ : state) {
    if (!tagged) b.reset_all();
    uint16_t kept = q.qos->apply(b.m, kBurst, rte_rdtsc(), q.cc.data(), *q.ctr, q.egress);
    benchmark::DoNotOptimize(kept);
  }
  state.SetItemsProcessed(state.iterations() * kBurst);
  state.SetLabel(tagged ? "tagged: outer tag + DSCP rewritten" : "untagged: VLAN push + DSCP (incl. reset)");
}
BENCHMARK(BM_QosApply)->Arg(0)->Arg(1);

// The meter alone: one srTCM colour-blind check per frame.
void BM_MeterCheck(benchmark::State& state) {
  rte_meter_srtcm_params prm{5'000'000'000ULL, 64'000'000ULL, 0};
  rte_meter_srtcm_profile prof;
  rte_meter_srtcm m;
  rte_meter_srtcm_profile_config(&prof, &prm);
  rte_meter_srtcm_config(&m, &prof);
  for (auto _ : state) {
    uint64_t tsc = rte_rdtsc();
    for (uint16_t i = 0; i < kBurst; ++i)
      benchmark::DoNotOptimize(rte_meter_srtcm_color_blind_check(&m, &prof, tsc, 200));
  }
  state.SetItemsProcessed(state.iterations() * kBurst);
}
BENCHMARK(BM_MeterCheck);

// The strict-priority shaper: a 32-frame burst spread over the policy's
// traffic classes enqueued, then dequeued (all of it: the port and the shaped
// class run at rates no burst reaches, so only the queueing and the priority
// scan are measured, with the token checks of a rate-limited class).
void BM_ShaperEnqueueDequeue(benchmark::State& state) {
  Burst b(false);
  const int nclasses = static_cast<int>(state.range(0));
  uint8_t tcs[kBurst];
  uint64_t flows[kBurst];  // 8 flows, each in one class: every frame updates its flow's entry
  for (uint16_t i = 0; i < kBurst; ++i) {
    const QosClass& c = g_snap->classes[(i % 8) % g_snap->classes.size()];
    tcs[i] = static_cast<uint8_t>(nclasses == 1 ? kBestEffortTc : c.tc);
    flows[i] = 0x9e3779b97f4a7c15ULL * (i % 8 + 1);
  }
  Shaper s;
  std::string err;
  if (!s.init("bench_shaper", 10'000'000'000'000ULL, 512, 0, err)) {
    state.SkipWithError(err.c_str());
    return;
  }
  std::array<uint64_t, Shaper::kTcs> rates{};
  for (size_t t = 0; t < Shaper::kTcs; ++t)
    if (g_snap->tc_rate[t] != 0) rates[t] = 100'000'000'000ULL;  // bytes/s: limited, never binding
  s.set_tc_rates(rates);
  rte_mbuf* out[kBurst];
  uint64_t short_deq = 0;
  for (auto _ : state) {
    s.enqueue(b.m, kBurst, tcs, flows);
    uint32_t k = s.dequeue(out, kBurst);
    while (k < kBurst) {  // never expected: tokens ran out
      ++short_deq;
      k += s.dequeue(out + k, kBurst - k);
    }
    benchmark::DoNotOptimize(out[0]);
  }
  // The mbufs are back in `out` (as a permutation of b.m): Burst frees them.
  state.SetItemsProcessed(state.iterations() * kBurst);
  state.counters["short_dequeues"] = static_cast<double>(short_deq);
  state.SetLabel(nclasses == 1 ? "1 traffic class" : "4 classes, 1 rate-limited");
}
BENCHMARK(BM_ShaperEnqueueDequeue)->Arg(1)->Arg(4);

}  // namespace
}  // namespace aiqos

int main(int argc, char** argv) {
  std::string prefix = "--file-prefix=aiqos_qos_bench_" + std::to_string(getpid());
  std::vector<std::string> a = {"aiqos_qos_bench", "--no-huge", "-m", "128", "--no-pci", "--no-shconf",
                                "--log-level=*:warning", prefix};
  std::vector<char*> av;
  for (auto& s : a) av.push_back(s.data());
  if (rte_eal_init(static_cast<int>(av.size()), av.data()) < 0) {
    std::fprintf(stderr, "EAL init failed\n");
    return 1;
  }
  aiqos::g_pool = rte_pktmbuf_pool_create("bench_pool", 1023, 0, aiqos::kMbufPrivSize, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  if (aiqos::g_pool == nullptr || !aiqos::load_snapshot()) {
    std::fprintf(stderr, "mempool or bench policy failed\n");
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  aiqos::g_snap.reset();
  rte_mempool_free(aiqos::g_pool);
  rte_eal_cleanup();
  return 0;
}
