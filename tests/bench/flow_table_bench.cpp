// Flow table: lookup of an existing flow (hit), of an absent one (miss), and
// creation of new flows in a full table (insert = evict the earliest deadline
// + create), the many-new-flows path.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <vector>

#include "classify/flow_table.h"

namespace aiqos {
namespace {

FlowKey key_of(uint32_t i) {
  FlowKey k{};
  k.lo_addr[0] = 10;
  k.lo_addr[1] = uint8_t(i >> 16);
  k.lo_addr[2] = uint8_t(i >> 8);
  k.lo_addr[3] = uint8_t(i);
  k.hi_addr = {10, 255, 0, 1};
  k.lo_port = uint16_t(1024 + i % 50000);
  k.hi_port = 443;
  k.proto = 6;
  k.family = 4;
  return k;
}

struct Table {
  ReassemblyPool pool{ReassemblyConfig{.pool_bytes = 1 << 20}};
  std::unique_ptr<FlowTable> t;
  explicit Table(uint32_t n) { t = std::make_unique<FlowTable>(FlowTableConfig{.max_flows = n}, pool); }
};

// range(0): flows in the table (and its capacity).
void BM_FlowLookupHit(benchmark::State& st) {
  uint32_t n = static_cast<uint32_t>(st.range(0));
  Table tb(n);
  std::vector<FlowKey> keys;
  for (uint32_t i = 0; i < n; ++i) {
    keys.push_back(key_of(i));
    tb.t->lookup_or_create(keys.back(), kSideLo, tcpflag::ack, 100, 1);
  }
  std::mt19937 rng(1);
  std::shuffle(keys.begin(), keys.end(), rng);
  uint64_t now = 2;
  size_t i = 0;
  for (auto _ : st) {
    auto r = tb.t->lookup_or_create(keys[i++ % n], kSideHi, tcpflag::ack, 100, now++);
    benchmark::DoNotOptimize(r.flow);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_FlowLookupHit)->Arg(1024)->Arg(65536)->Arg(1 << 20);

void BM_FlowLookupMiss(benchmark::State& st) {
  uint32_t n = static_cast<uint32_t>(st.range(0));
  Table tb(n);
  for (uint32_t i = 0; i < n; ++i) tb.t->lookup_or_create(key_of(i), kSideLo, tcpflag::ack, 100, 1);
  std::vector<FlowKey> absent;
  for (uint32_t i = 0; i < 4096; ++i) absent.push_back(key_of(n + i));
  size_t i = 0;
  for (auto _ : st) benchmark::DoNotOptimize(tb.t->find(absent[i++ & 4095]));
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_FlowLookupMiss)->Arg(65536)->Arg(1 << 20);

// Every lookup is a new flow; the table is full, so each one evicts.
void BM_FlowInsertEvict(benchmark::State& st) {
  uint32_t n = static_cast<uint32_t>(st.range(0));
  Table tb(n);
  uint32_t i = 0;
  uint64_t now = 1;
  for (; i < n; ++i) tb.t->lookup_or_create(key_of(i), kSideLo, tcpflag::syn, 60, now++);
  for (auto _ : st) {
    auto r = tb.t->lookup_or_create(key_of(i++), kSideLo, tcpflag::syn, 60, now++);
    benchmark::DoNotOptimize(r.flow);
  }
  st.SetItemsProcessed(st.iterations());
  st.counters["evicted"] = double(tb.t->counters().flows_evicted);
}
BENCHMARK(BM_FlowInsertEvict)->Arg(65536)->Arg(1 << 20);

}  // namespace
}  // namespace aiqos
