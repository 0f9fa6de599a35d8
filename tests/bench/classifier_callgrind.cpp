// Instructions per frame of the classifier (docs/performance.md, "Response accounting"):
// replays a capture once through one Classifier, as classifier_bench does, in `replay`, so that
//   valgrind --tool=callgrind --toggle-collect='replay*' classifier_callgrind llm.pcap
// counts only the classifier (not start-up, pcap reading or exit). Meson builds it with the
// rest (build/tests/bench/classifier_callgrind); run it by hand.
// AIQOS_RESP_SUM (trees with response accounting) prints a checksum of the records' response
// fields: the same before and after a change that must not change results.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench_util.h"
#include "classify/classifier.h"

namespace aiqos {
struct NullSink final : RequestSink {
  uint64_t n = 0;
  uint64_t sum = 0;  // -DAIQOS_RESP_SUM: a checksum of the response accounting fields
  void emit(const RequestRecord& r) noexcept override {
    ++n;
#ifdef AIQOS_RESP_SUM
    sum = sum * 1000003 + r.first_token_ns;
    sum = sum * 1000003 + r.last_token_ns;
    sum = sum * 1000003 + r.input_tokens;
    sum = sum * 1000003 + r.output_tokens;
    sum = sum * 1000003 + r.token_events;
    sum = sum * 1000003 + static_cast<uint64_t>(r.token_source);
#else
    (void)r;
#endif
  }
};
}  // namespace aiqos

using namespace aiqos;

__attribute__((noinline)) void replay(Classifier& cls, const std::vector<std::vector<uint8_t>>& frames,
                                      const std::vector<PacketInfo>& info) {
  uint64_t now = 1'000'000'000;
  for (size_t i = 0; i < frames.size(); ++i) cls.on_packet(info[i], frames[i], now += 1000);
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  auto frames = bench::read_pcap(argv[1]);
  std::vector<PacketInfo> info;
  for (auto& f : frames) {
    PacketInfo p;
    parse_packet(f, p);
    info.push_back(p);
  }
  NullSink sink;
  auto* cls = new Classifier(ClassifierConfig{}, sink);
  replay(*cls, frames, info);
  std::printf("frames %zu requests %llu sum %016llx\n", frames.size(), static_cast<unsigned long long>(sink.n),
              static_cast<unsigned long long>(sink.sum));
  return 0;
}
