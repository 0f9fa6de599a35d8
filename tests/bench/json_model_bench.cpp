// Prints throughput of the top-level JSON tracker against a Hyperscan
// stream-mode scan for the literal `"model"` over the same chat-style body and
// chunking. Any Hyperscan-assisted design still has to run the tracker over
// every byte (to know depth and string state at each hit), so the Hyperscan
// number is pure overhead on top of the tracker; this shows how much.
//
//   g++ -std=c++20 -O2 -I src -I/usr/include/hs tests/bench/json_model_bench.cpp
//       src/classify/json_model.cpp src/classify/hs_db.cpp -lhs -o /tmp/json_model_bench
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "classify/json_model.h"

using namespace aiqos;

namespace {

std::string chat_body(size_t target) {
  std::string m = "[";
  for (int i = 0; m.size() < target; ++i) {
    if (i) m += ',';
    m += R"({"role":")";
    m += i % 2 ? "assistant" : "user";
    m += R"(","content":"Lorem ipsum dolor sit amet, \"quoted\" text with a \\ backslash and )";
    m += std::string(300 + (i * 131) % 900, 'a' + i % 26);
    m += R"(\n"})";
  }
  return R"({"messages":)" + m + R"(],"model":"meta-llama/Llama-3.1-8B-Instruct","stream":true})";
}

template <typename F>
double gbps(const std::string& body, size_t chunk, int iters, F&& per_body) {
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) per_body(body, chunk);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return double(body.size()) * iters * 8 / s / 1e9;
}

}  // namespace

int main() {
  std::string body = chat_body(100 * 1024);
  std::vector<HsPattern> pats = {{.id = 0, .expression = "\"model\"", .flags = 0}};
  HsCompileError err;
  auto m = BodyMatcher::compile(pats, err);
  if (!m) return std::fprintf(stderr, "%s\n", err.message.c_str()), 1;
  HsScratch proto;
  m->reserve(proto);
  HsScratch scratch = proto.clone();
  volatile uint64_t sink = 0;

  for (size_t chunk : {size_t{1448}, size_t{16384}}) {
    double tracker = gbps(body, chunk, 2000, [&](const std::string& b, size_t c) {
      JsonTopLevel j;
      for (size_t p = 0; p < b.size(); p += c)
        j.feed({reinterpret_cast<const uint8_t*>(b.data()) + p, std::min(c, b.size() - p)});
      sink = sink + j.fields().model.len;
    });
    double hs = gbps(body, chunk, 2000, [&](const std::string& b, size_t c) {
      hs_stream_t* st = nullptr;
      hs_open_stream(m->database()->get(), 0, &st);
      uint64_t mask = 0;
      for (size_t p = 0; p < b.size(); p += c)
        hs_scan_stream(st, b.data() + p, static_cast<unsigned>(std::min(c, b.size() - p)), 0,
                       scratch.get(), hs_collect_mask, &mask);
      hs_close_stream(st, scratch.get(), hs_collect_mask, &mask);
      sink = sink + mask;
    });
    std::printf("body %zu B, chunk %5zu B: tracker %.2f Gbit/s, hyperscan \"model\" %.2f Gbit/s\n",
                body.size(), chunk, tracker, hs);
  }
  std::printf("sizeof(JsonTopLevel)=%zu sizeof(BodyStream)=%zu hs_stream_size(\"model\")=%zu\n",
              sizeof(JsonTopLevel), sizeof(BodyStream), m->stream_size());
  return 0;
}
