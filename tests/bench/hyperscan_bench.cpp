// Hyperscan block mode over request paths, as endpoint rules use it: one
// database of typical inference-endpoint patterns, one short string a scan.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "classify/hs_db.h"

namespace aiqos {
namespace {

std::unique_ptr<HsDatabase> endpoint_db() {
  std::vector<HsPattern> p = {
      {0, "^/v1/chat/completions", 0},  {1, "^/v1/completions", 0},
      {2, "^/v1/embeddings", 0},        {3, "^/v1/messages", 0},
      {4, "^/api/(generate|chat)", 0},  {5, "^/v2/models/[^/]+/infer", 0},
      {6, ":generateContent", 0},       {7, "^/inference\\.GRPCInferenceService/", 0},
      {8, "^/v1/models(/|$)", 0},       {9, "^/generate(_stream)?$", 0},
      {10, "^/v1/audio/", 0},           {11, "^/v1/images/", 0},
  };
  HsCompileError err;
  return HsDatabase::compile(p, HsDatabase::Mode::block, err);
}

const std::vector<std::string> kPaths = {
    "/v1/chat/completions", "/v2/models/resnet50/infer", "/api/chat",
    "/static/js/app.min.js?v=12345", "/inference.GRPCInferenceService/ModelInfer",
    "/v1beta/models/gemini-1.5-pro:generateContent", "/healthz", "/v1/embeddings"};

void BM_HyperscanBlockMatch(benchmark::State& st) {
  auto db = endpoint_db();
  HsScratch s;
  s.reserve(db->get());
  size_t i = 0;
  for (auto _ : st) benchmark::DoNotOptimize(db->match(kPaths[i++ % kPaths.size()], s));
  st.SetItemsProcessed(st.iterations());
  st.counters["db_bytes"] = double(db->database_size());
}
BENCHMARK(BM_HyperscanBlockMatch);

void BM_HyperscanFirstMatch(benchmark::State& st) {
  auto db = endpoint_db();
  HsScratch s;
  s.reserve(db->get());
  size_t i = 0;
  for (auto _ : st) benchmark::DoNotOptimize(db->first_match(kPaths[i++ % kPaths.size()], s));
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_HyperscanFirstMatch);

}  // namespace
}  // namespace aiqos
