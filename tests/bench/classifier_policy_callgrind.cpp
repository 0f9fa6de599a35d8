// Instructions per frame of the classifier under a policy (the bench policy: PolicyEngine rules,
// model_regex, budgets armed), a capture replayed once, records copied out as RingRequestSink does:
//   valgrind --tool=callgrind --toggle-collect='replay*' classifier_policy_callgrind
//       h2_replay_20000.pcap tests/bench/bench_policy.yaml
// counts only the classifier (not start-up, pcap reading, policy loading or the final flush).
// It prints a checksum of every record's fields (after a flush) and, with CLS=1 in the
// environment (replay_cls, not for callgrind), a hash of every frame's class/drop/direction:
// both must be the same before and after a change that must not change results.
// Meson builds it with the rest (build/tests/bench/classifier_policy_callgrind).
#ifndef AIQOS_SOURCE_ROOT
#define AIQOS_SOURCE_ROOT "."
#endif
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <vector>
#include "bench_util.h"
#include "classify/classifier.h"
#include "control/policy_engine.h"
#include "control/policy_yaml.h"
namespace aiqos {
struct CopySink final : RequestSink {
  uint64_t n = 0, sum = 0;
  alignas(64) RequestRecord last;
  void emit(const RequestRecord& r) noexcept override {
    ++n;
    std::memcpy(&last, &r, sizeof r);
    auto mix = [&](uint64_t v) { sum = sum * 1000003 + v; };
    mix(r.class_id); mix(r.input_tokens); mix(r.output_tokens); mix(r.token_events); mix(r.req_bytes); mix(r.resp_bytes);
    mix(r.model.view().size()); mix(static_cast<uint64_t>(r.endpoint)); mix(r.status); mix(r.est_tokens); mix((uint64_t)r.budget);
    for (char c : r.model.view()) mix(c);
    for (char c : r.path.view()) mix(c);
    for (char c : r.class_name.view()) mix(c);
    for (char c : r.tenant.view()) mix(c);
    mix(r.first_token_ns); mix(r.last_token_ns); mix((uint64_t)r.token_source);
  }
};
}
using namespace aiqos;
__attribute__((noinline)) void replay(Classifier& cls, const std::vector<std::vector<uint8_t>>& frames,
                                      const std::vector<PacketInfo>& info) {
  uint64_t now = 1'000'000'000;
  for (size_t i = 0; i < frames.size(); ++i) cls.on_packet(info[i], frames[i], now += 1000);
}
__attribute__((noinline)) uint64_t replay_cls(Classifier& cls, const std::vector<std::vector<uint8_t>>& frames,
                                      const std::vector<PacketInfo>& info) {
  uint64_t now = 1'000'000'000, h = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    PacketClass pc = cls.on_packet(info[i], frames[i], now += 1000);
    h = h * 1000003 + pc.class_id * 4 + pc.drop * 2 + pc.from_client;
  }
  return h;
}
int main(int argc, char** argv) {
  if (argc < 3) return 2;
  auto frames = bench::read_pcap(argv[1]);
  std::vector<PacketInfo> info;
  for (auto& f : frames) { PacketInfo p; parse_packet(f, p); info.push_back(p); }
  LoadResult lr = load_policy_file(argv[2]);
  if (!lr.ok()) { std::puts(lr.format_errors().c_str()); return 1; }
  Policy pol = *lr.policy;
  ClassifierConfig c;
  c.flows.max_flows = static_cast<uint32_t>(pol.limits.flows);
  c.reassembly.pool_bytes = pol.limits.reassembly_bytes_total;
  c.reassembly.max_ooo_bytes_per_flow = static_cast<uint32_t>(pol.limits.reassembly_bytes_per_flow);
  std::vector<std::string> capture;
  for (auto& h : pol.capture.headers) { c.l7.capture.extra.add(h); }
  for (size_t i = 0; i < c.l7.capture.extra.size(); ++i) capture.emplace_back(c.l7.capture.extra.name(i));
  std::vector<PolicyError> errs;
  auto eng = PolicyEngine::compile(std::move(pol), capture, 1, argv[2], errs);
  if (!eng) { std::puts("compile failed"); return 1; }
  CopySink sink;
  auto* cls = new Classifier(c, sink);
  cls->set_policy(eng.get(), 1, 0, 1);
  uint64_t ch = 0;
  if (getenv("CLS")) ch = replay_cls(*cls, frames, info); else replay(*cls, frames, info);
  std::printf("class hash %016llx\n", (unsigned long long)ch);
  cls->flush();
  const auto& k = cls->counters();
  std::printf("frames %zu emitted %llu requests %llu sum %016llx\n", frames.size(), (unsigned long long)sink.n,
              (unsigned long long)k.requests, (unsigned long long)sink.sum);
  return 0;
}
