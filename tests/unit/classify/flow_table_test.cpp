#include "classify/flow_table.h"

#include <cstring>
#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdio>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "classify/flow_key.h"
#include "classify/packet_parse.h"

namespace aiqos {

// gtest prints outcomes by name (found by ADL). Inline: the same definition
// appears in tcp_reassembly_test.cpp.
inline void PrintTo(SegmentOutcome o, std::ostream* os) { *os << segment_outcome_name(o); }

namespace {

// Per idle flow, table overhead included, must stay within this.
constexpr size_t kPerFlowBudget = 512;
static_assert(sizeof(Flow) <= 256, "Flow grew: check kPerFlowBudget and the report in SizeReport");

struct Endpoint {
  uint32_t addr;
  uint16_t port;
};

struct Pkt {
  FlowKey key;
  uint8_t side;
};

Pkt make(Endpoint src, Endpoint dst, uint8_t proto = 6, uint16_t vlan = 0) {
  PacketInfo p;
  p.l3 = L3Kind::ipv4;
  p.l4proto = proto;
  for (int i = 0; i < 4; ++i) {
    p.src[i] = static_cast<uint8_t>(src.addr >> (24 - 8 * i));
    p.dst[i] = static_cast<uint8_t>(dst.addr >> (24 - 8 * i));
  }
  p.sport = src.port;
  p.dport = dst.port;
  if (vlan) {
    p.n_vlans = 1;
    p.vlan_tci[0] = vlan;
  }
  Pkt out{};
  bool swapped = false;
  EXPECT_TRUE(make_flow_key(p, out.key, swapped));
  out.side = side_of(swapped);
  return out;
}

constexpr Endpoint kCli{0x0a000001, 40000};
constexpr Endpoint kSrv{0x0a000002, 443};

FlowTableConfig small_table(uint32_t n = 16) {
  return FlowTableConfig{.max_flows = n,
                         .tcp_handshake_timeout_ns = 10,
                         .tcp_established_timeout_ns = 100,
                         .tcp_closing_timeout_ns = 5,
                         .other_timeout_ns = 50,
                         .min_evict_idle_ns = 0};
}

ReassemblyConfig small_pool() {
  return ReassemblyConfig{.pool_bytes = 64 * 64,
                          .chunk_bytes = 64,
                          .max_ooo_bytes_per_flow = 1024,
                          .max_window_bytes = 1 << 16,
                          .acked_hole_grace = 0};  // strict: the first ACK past a hole fails it
}

struct Released {
  std::vector<std::pair<FlowKey, FlowRelease>> log;
  static void hook(void* ctx, Flow& f, FlowRelease why) noexcept {
    static_cast<Released*>(ctx)->log.emplace_back(f.key, why);
  }
};

struct Fixture {
  ReassemblyPool pool;
  Released rel;
  FlowTable t;
  explicit Fixture(const FlowTableConfig& cfg = small_table())
      : pool(small_pool()), t(cfg, pool, &Released::hook, &rel) {}
  FlowLookup pkt(const Pkt& p, uint8_t flags, uint64_t now, uint32_t bytes = 60) {
    return t.lookup_or_create(p.key, p.side, flags, bytes, now);
  }
};

Endpoint nth_client(uint32_t i) { return Endpoint{0x0b000000u + i, static_cast<uint16_t>(1024 + i)}; }

TEST(FlowTable, SizeReport) {
  Fixture fx(FlowTableConfig{.max_flows = 65536});
  const double per_flow = static_cast<double>(fx.t.memory_bytes()) / fx.t.capacity();
  std::printf("[ report ] sizeof(Flow)=%zu sizeof(TcpReassembly)=%zu per-flow bytes incl. buckets=%.1f\n",
              sizeof(Flow), sizeof(TcpReassembly), per_flow);
  testing::Test::RecordProperty("sizeof_Flow", static_cast<int>(sizeof(Flow)));
  EXPECT_LE(per_flow, kPerFlowBudget);
  EXPECT_EQ(fx.t.bucket_count(), 65536u);
}

TEST(FlowTable, BothDirectionsMapToOneFlow) {
  Fixture fx;
  Pkt c2s = make(kCli, kSrv), s2c = make(kSrv, kCli);
  EXPECT_EQ(c2s.key, s2c.key);
  EXPECT_NE(c2s.side, s2c.side);
  FlowLookup a = fx.pkt(c2s, tcpflag::syn, 1, 74);
  ASSERT_NE(a.flow, nullptr);
  EXPECT_TRUE(a.created);
  EXPECT_TRUE(a.from_client);
  FlowLookup b = fx.pkt(s2c, tcpflag::syn | tcpflag::ack, 2, 74);
  EXPECT_EQ(b.flow, a.flow);
  EXPECT_FALSE(b.created);
  EXPECT_FALSE(b.from_client);
  FlowLookup c = fx.pkt(c2s, tcpflag::ack, 3, 1000);
  EXPECT_TRUE(c.from_client);
  Flow& f = *a.flow;
  EXPECT_EQ(f.pkts[c2s.side], 2u);
  EXPECT_EQ(f.pkts[s2c.side], 1u);
  EXPECT_EQ(f.bytes[c2s.side], 1074u);
  EXPECT_EQ(f.bytes[s2c.side], 74u);
  EXPECT_EQ(f.client_side, c2s.side);
  EXPECT_EQ(&f.to_server(), &f.stream[c2s.side]);
  EXPECT_EQ(fx.t.size(), 1u);
  EXPECT_EQ(fx.t.find(s2c.key), &f);
  EXPECT_EQ(fx.t.counters().flows_created, 1u);
  EXPECT_EQ(fx.t.counters().hits, 2u);
  EXPECT_EQ(fx.t.counters().lookups, 3u);
}

TEST(FlowTable, VlanAndProtocolSeparateFlows) {
  Fixture fx;
  Flow* a = fx.pkt(make(kCli, kSrv, 6, 0), 0, 1).flow;
  Flow* b = fx.pkt(make(kCli, kSrv, 6, 10), 0, 1).flow;
  Flow* c = fx.pkt(make(kCli, kSrv, 17, 0), 0, 1).flow;
  Flow* d = fx.pkt(make(kSrv, kCli, 6, 10), 0, 1).flow;
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(b, c);
  EXPECT_EQ(b, d);
  EXPECT_EQ(fx.t.size(), 3u);
}

// Who is the client, by the first packets seen (sent by the client `C` or the server `S`).
struct DirectionCase {
  const char* name;
  std::vector<std::pair<bool, uint8_t>> pkts;  // (from real client, flags)
  bool client_right;                           // table's client == the real client
  ClientSource source;
  uint64_t fixups;
};

TEST(FlowTable, ClientDirectionFromHandshake) {
  using namespace tcpflag;
  const DirectionCase cases[] = {
      {"syn", {{true, syn}, {false, syn | ack}, {true, ack}}, true, ClientSource::syn, 0},
      {"synack_first", {{false, syn | ack}, {true, ack}}, true, ClientSource::syn_ack, 0},
      {"midstream_client_first", {{true, ack | psh}, {false, ack}}, true, ClientSource::first_packet, 0},
      {"midstream_server_first", {{false, ack | psh}, {true, ack}}, false, ClientSource::first_packet, 0},
      {"stray_then_syn", {{false, ack}, {true, syn}}, true, ClientSource::syn, 1},
      {"stray_then_synack", {{true, ack}, {true, syn | ack}}, false, ClientSource::syn_ack, 1},
      {"syn_then_synack_same_side_ignored", {{true, syn}, {true, syn | ack}}, true, ClientSource::syn, 0},
  };
  for (const auto& dc : cases) {
    for (bool client_is_hi : {false, true}) {
      SCOPED_TRACE(std::string(dc.name) + (client_is_hi ? " client=hi" : " client=lo"));
      Fixture fx;
      // Whichever endpoint sorts first, the answer must not change.
      Endpoint cli = client_is_hi ? Endpoint{0x0a000009, 5000} : kCli;
      Pkt c2s = make(cli, kSrv), s2c = make(kSrv, cli);
      ASSERT_EQ(c2s.side, client_is_hi ? kSideHi : kSideLo);
      Flow* f = nullptr;
      FlowLookup last;
      for (auto [from_cli, flags] : dc.pkts) {
        last = fx.pkt(from_cli ? c2s : s2c, flags, 1);
        f = last.flow;
      }
      ASSERT_NE(f, nullptr);
      EXPECT_EQ(f->client_side == c2s.side, dc.client_right);
      EXPECT_EQ(f->client_source, dc.source);
      EXPECT_EQ(fx.t.counters().direction_fixups, dc.fixups);
      EXPECT_EQ(last.from_client, f->from_client(last.side));
    }
  }
}

TEST(FlowTable, L7FixesDirection) {
  Fixture fx;
  Pkt c2s = make(kCli, kSrv), s2c = make(kSrv, kCli);
  Flow* f = fx.pkt(s2c, tcpflag::ack | tcpflag::psh, 1).flow;  // server speaks first: wrong guess
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->client_side, s2c.side);
  EXPECT_FALSE(fx.t.set_client_side(*f, s2c.side));  // no change, not counted
  EXPECT_EQ(fx.t.counters().direction_fixups, 0u);
  // The HTTP/2 preface shows up in the c2s stream.
  EXPECT_TRUE(fx.t.set_client_side(*f, c2s.side));
  EXPECT_EQ(fx.t.counters().direction_fixups, 1u);
  EXPECT_EQ(f->client_source, ClientSource::l7);
  EXPECT_EQ(&f->to_server(), &f->stream[c2s.side]);
  EXPECT_EQ(&f->to_client(), &f->stream[s2c.side]);
  EXPECT_TRUE(fx.pkt(c2s, tcpflag::ack, 2).from_client);
  EXPECT_FALSE(fx.pkt(s2c, tcpflag::ack, 3).from_client);
  // A later SYN-ACK does not override L7 evidence.
  fx.pkt(c2s, tcpflag::syn | tcpflag::ack, 4);
  EXPECT_EQ(f->client_side, c2s.side);
}

TEST(FlowTable, LifecycleAndTimeoutClass) {
  using namespace tcpflag;
  Fixture fx;
  Pkt c2s = make(kCli, kSrv), s2c = make(kSrv, kCli);
  Flow* f = fx.pkt(c2s, syn, 1).flow;
  EXPECT_EQ(f->tcp, flowtcp::syn);
  EXPECT_EQ(f->timeout_class(), TimeoutClass::tcp_handshake);
  fx.pkt(s2c, syn | ack, 2);
  EXPECT_EQ(f->timeout_class(), TimeoutClass::tcp_handshake);
  fx.pkt(c2s, ack, 3);
  EXPECT_TRUE(f->tcp & flowtcp::established);
  EXPECT_EQ(f->timeout_class(), TimeoutClass::tcp_established);
  EXPECT_EQ(fx.t.deadline(*f), 3u + 100u);
  fx.pkt(s2c, fin | ack, 4);
  EXPECT_TRUE(f->tcp & (s2c.side == kSideLo ? flowtcp::fin_lo : flowtcp::fin_hi));
  EXPECT_EQ(f->timeout_class(), TimeoutClass::tcp_closing);
  EXPECT_EQ(fx.t.deadline(*f), 4u + 5u);
  fx.pkt(c2s, fin | ack, 5);
  EXPECT_TRUE(f->tcp & flowtcp::fin_lo);
  EXPECT_TRUE(f->tcp & flowtcp::fin_hi);
  Flow* u = fx.pkt(make(kCli, kSrv, 17), 0, 6).flow;
  EXPECT_EQ(u->timeout_class(), TimeoutClass::other);
  EXPECT_EQ(u->tcp, 0u);
}

TEST(FlowTable, ExpiryPerTimeoutClass) {
  using namespace tcpflag;
  Fixture fx;
  Flow* hs = fx.pkt(make(nth_client(1), kSrv), syn, 0).flow;            // deadline 10
  Flow* est = fx.pkt(make(nth_client(2), kSrv), ack, 0).flow;           // 100
  Flow* clo = fx.pkt(make(nth_client(3), kSrv), ack | fin, 0).flow;     // 5
  Flow* udp = fx.pkt(make(nth_client(4), kSrv, 17), 0, 0).flow;         // 50
  ASSERT_TRUE(hs && est && clo && udp);
  EXPECT_EQ(fx.t.expire(4, 100), 0u);
  EXPECT_EQ(fx.t.expire(5, 100), 1u);
  EXPECT_EQ(fx.t.find(make(nth_client(3), kSrv).key), nullptr);
  EXPECT_EQ(fx.t.expire(10, 100), 1u);
  EXPECT_EQ(fx.t.expire(49, 100), 0u);
  EXPECT_EQ(fx.t.expire(50, 100), 1u);
  EXPECT_EQ(fx.t.size(), 1u);
  // Traffic keeps a flow alive.
  fx.pkt(make(kSrv, nth_client(2)), ack, 90);
  EXPECT_EQ(fx.t.expire(189, 100), 0u);
  EXPECT_EQ(fx.t.expire(190, 100), 1u);
  EXPECT_EQ(fx.t.size(), 0u);
  EXPECT_EQ(fx.t.counters().flows_expired, 4u);
  ASSERT_EQ(fx.rel.log.size(), 4u);
  for (auto& [k, why] : fx.rel.log) EXPECT_EQ(why, FlowRelease::expired);
}

TEST(FlowTable, ExpireDoesBoundedWork) {
  Fixture fx(small_table(256));
  for (uint32_t i = 0; i < 200; ++i) fx.pkt(make(nth_client(i), kSrv, 17), 0, i);
  // Now is 199: flows seen at t=0..149 are past their deadline (timeout 50).
  uint32_t total = 0;
  int calls = 0;
  for (;;) {
    uint32_t n = fx.t.expire(199, 7);
    EXPECT_LE(n, 7u);
    if (n == 0) break;
    total += n;
    ++calls;
  }
  EXPECT_EQ(total, 150u);
  EXPECT_EQ(calls, 22);  // ceil(150 / 7)
  EXPECT_EQ(fx.t.size(), 50u);
  // Oldest first: the survivors are exactly the later ones.
  for (uint32_t i = 0; i < 200; ++i) {
    EXPECT_EQ(fx.t.find(make(nth_client(i), kSrv, 17).key) != nullptr, i >= 150) << i;
  }
  EXPECT_EQ(fx.t.expire(1000, 0), 0u);
}

TEST(FlowTable, ExpireRoundRobinsOverClasses) {
  Fixture fx(small_table(64));
  for (uint32_t i = 0; i < 20; ++i) fx.pkt(make(nth_client(i), kSrv, 17), 0, 0);
  fx.pkt(make(nth_client(100), kSrv), tcpflag::ack | tcpflag::rst, 0);
  // A budget of 2 per call still reaches the closing flow within a couple of calls.
  fx.t.expire(1000, 2);
  fx.t.expire(1000, 2);
  EXPECT_EQ(fx.t.find(make(nth_client(100), kSrv).key), nullptr);
}

TEST(FlowTable, FullTableEvictsSoonestDeadline) {
  using namespace tcpflag;
  Fixture fx(small_table(4));
  Pkt est = make(nth_client(1), kSrv), clo = make(nth_client(2), kSrv);
  fx.pkt(est, ack, 0);                                 // deadline 100
  fx.pkt(make(nth_client(3), kSrv, 17), 0, 1);         // 51
  fx.pkt(make(nth_client(4), kSrv), ack, 2);           // 102
  fx.pkt(clo, ack | fin, 8);                           // 13: newest, but closest to its deadline
  FlowLookup n = fx.pkt(make(nth_client(5), kSrv), syn, 9);
  ASSERT_NE(n.flow, nullptr);
  EXPECT_EQ(fx.t.find(clo.key), nullptr);
  EXPECT_NE(fx.t.find(est.key), nullptr);
  EXPECT_EQ(fx.t.counters().flows_evicted, 1u);
  EXPECT_EQ(fx.t.counters().flows_expired, 0u);
  EXPECT_EQ(fx.t.size(), 4u);
  ASSERT_EQ(fx.rel.log.size(), 1u);
  EXPECT_EQ(fx.rel.log[0].first, clo.key);
  EXPECT_EQ(fx.rel.log[0].second, FlowRelease::evicted);
  // A victim past its deadline counts as expired: the half-open flow from t=9
  // (deadline 19) goes before the UDP flow (deadline 51).
  fx.pkt(make(nth_client(6), kSrv), syn, 60);
  EXPECT_EQ(fx.t.counters().flows_expired, 1u);
  EXPECT_EQ(fx.t.counters().flows_evicted, 1u);
  EXPECT_EQ(fx.t.find(make(nth_client(5), kSrv).key), nullptr);
  EXPECT_NE(fx.t.find(make(nth_client(3), kSrv, 17).key), nullptr);
}

// A flow moves to its list's tail at most once per LRU epoch (2^20 ns), so a
// busy flow costs no list surgery per packet. Expiry still goes by last_seen:
// no flow ever expires before its own deadline, and one touched in a later
// epoch is ordered behind flows seen before it.
TEST(FlowTable, LruMovesOncePerEpochExpiryStillByLastSeen) {
  using namespace tcpflag;
  constexpr uint64_t ms = 1'000'000;
  FlowTableConfig cfg = small_table(8);
  cfg.tcp_established_timeout_ns = 100 * ms;
  Fixture fx(cfg);
  Pkt a = make(nth_client(1), kSrv), b = make(nth_client(2), kSrv);
  // Same epoch: a is touched after b but not moved (a stays the list head).
  fx.pkt(a, ack, 0);
  fx.pkt(b, ack, ms / 10);
  fx.pkt(a, ack, ms / 2);
  EXPECT_EQ(fx.t.expire(100 * ms + ms / 4, 16), 0u);  // b is due, but never a before its deadline
  EXPECT_NE(fx.t.find(a.key), nullptr);
  EXPECT_EQ(fx.t.expire(100 * ms + ms / 2, 16), 2u);  // both, one epoch late at most for b
  // A later epoch: a is moved behind b and b expires alone, on time.
  fx.pkt(a, ack, 200 * ms);
  fx.pkt(b, ack, 201 * ms);
  fx.pkt(a, ack, 205 * ms);
  EXPECT_EQ(fx.t.expire(301 * ms, 16), 1u);
  EXPECT_EQ(fx.t.find(b.key), nullptr);
  EXPECT_NE(fx.t.find(a.key), nullptr);
  EXPECT_EQ(fx.t.expire(305 * ms - 1, 16), 0u);
  EXPECT_EQ(fx.t.expire(305 * ms, 16), 1u);
  EXPECT_EQ(fx.t.size(), 0u);
}

// The inline address order and key equality agree with memcmp on raw bytes
// (the flow key's lo/hi order and the symmetric hash depend on it).
TEST(FlowKey, InlineCompareAgreesWithMemcmp) {
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  auto next = [&] { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x; };
  for (int i = 0; i < 20000; ++i) {
    std::array<uint8_t, 16> a{}, b{};
    for (auto& v : a) v = static_cast<uint8_t>(next() % 4);  // small alphabet: many ties
    b = a;
    for (int k = 0; k < 2; ++k) b[next() % 16] = static_cast<uint8_t>(next() % 4);
    int m = std::memcmp(a.data(), b.data(), 16);
    EXPECT_EQ(compare_addr(a, b), (m > 0) - (m < 0));
    FlowKey ka, kb;
    ka.lo_addr = a;
    kb.lo_addr = b;
    ka.vlan = kb.vlan = static_cast<uint16_t>(i);
    EXPECT_EQ(ka == kb, m == 0);
    kb.lo_addr = a;
    kb.hi_port = 1;
    EXPECT_FALSE(ka == kb);
  }
}

TEST(FlowTable, FullTableWithNothingEvictableFailsOpen) {
  FlowTableConfig cfg = small_table(2);
  cfg.min_evict_idle_ns = 30;
  Fixture fx(cfg);
  fx.pkt(make(nth_client(1), kSrv), tcpflag::ack, 0);
  fx.pkt(make(nth_client(2), kSrv), tcpflag::ack, 10);
  FlowLookup r = fx.pkt(make(nth_client(3), kSrv), tcpflag::ack, 20);
  EXPECT_EQ(r.flow, nullptr);
  EXPECT_FALSE(r.created);
  EXPECT_EQ(fx.t.counters().table_full, 1u);
  // Existing flows still found while full.
  EXPECT_NE(fx.pkt(make(kSrv, nth_client(2)), tcpflag::ack, 25).flow, nullptr);
  r = fx.pkt(make(nth_client(3), kSrv), tcpflag::ack, 30);  // flow 1 idle for 30: evictable
  EXPECT_NE(r.flow, nullptr);
  EXPECT_EQ(fx.t.find(make(nth_client(1), kSrv).key), nullptr);
  EXPECT_EQ(fx.t.counters().flows_evicted, 1u);
}

TEST(FlowTable, ZeroCapacity) {
  Fixture fx(small_table(0));
  EXPECT_EQ(fx.pkt(make(kCli, kSrv), tcpflag::syn, 0).flow, nullptr);
  EXPECT_EQ(fx.t.counters().table_full, 1u);
  EXPECT_EQ(fx.t.expire(100, 10), 0u);
}

TEST(FlowTable, ManyFlowsFindRemoveReinsert) {
  Fixture fx(small_table(1000));
  std::vector<Pkt> pk;
  for (uint32_t i = 0; i < 1000; ++i) pk.push_back(make(nth_client(i), kSrv, 6, i % 3));
  for (auto& p : pk) ASSERT_NE(fx.pkt(p, tcpflag::ack, 1).flow, nullptr);
  EXPECT_EQ(fx.t.size(), 1000u);
  for (auto& p : pk) ASSERT_NE(fx.t.find(p.key), nullptr);
  for (uint32_t i = 0; i < 1000; i += 2) fx.t.remove(*fx.t.find(pk[i].key));
  EXPECT_EQ(fx.t.size(), 500u);
  EXPECT_EQ(fx.t.counters().flows_removed, 500u);
  for (uint32_t i = 0; i < 1000; ++i) EXPECT_EQ(fx.t.find(pk[i].key) != nullptr, i % 2 == 1);
  for (uint32_t i = 0; i < 1000; i += 2) ASSERT_TRUE(fx.pkt(pk[i], tcpflag::ack, 2).created);
  EXPECT_EQ(fx.t.size(), 1000u);
  EXPECT_EQ(fx.t.counters().flows_evicted, 0u);
  for (auto& p : pk) {
    Flow* f = fx.t.find(p.key);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->key, p.key);
  }
  fx.t.clear();
  EXPECT_EQ(fx.t.size(), 0u);
  EXPECT_EQ(fx.rel.log.back().second, FlowRelease::cleared);
}

TEST(FlowTable, ReuseAfterResetOrClose) {
  using namespace tcpflag;
  for (bool by_rst : {true, false}) {
    Fixture fx;
    Pkt c2s = make(kCli, kSrv), s2c = make(kSrv, kCli);
    Flow* f = fx.pkt(c2s, syn, 0).flow;
    f->l7_kind = 3;
    f->l7_index = 77;
    if (by_rst) {
      fx.pkt(s2c, rst | ack, 1);
    } else {
      fx.pkt(s2c, fin | ack, 1);
      EXPECT_FALSE(fx.pkt(c2s, syn, 1).created);  // half closed: not reused yet
      fx.pkt(c2s, fin | ack, 2);
    }
    // The server side opens a new connection on the same 5-tuple.
    FlowLookup r = fx.pkt(s2c, syn, 3);
    EXPECT_TRUE(r.created);
    EXPECT_EQ(r.flow, f);
    EXPECT_TRUE(r.from_client);
    EXPECT_EQ(f->client_side, s2c.side);
    EXPECT_EQ(f->l7_kind, 0);
    EXPECT_EQ(f->l7_index, 0u);
    EXPECT_EQ(f->tcp, flowtcp::syn);
    EXPECT_EQ(f->pkts[c2s.side], 0u);
    EXPECT_EQ(f->pkts[s2c.side], 1u);
    EXPECT_EQ(f->timeout_class(), TimeoutClass::tcp_handshake);
    EXPECT_EQ(fx.t.counters().flows_reused, 1u);
    EXPECT_EQ(fx.t.counters().flows_created, 1u);
    ASSERT_FALSE(fx.rel.log.empty());
    EXPECT_EQ(fx.rel.log.back().second, FlowRelease::reused);
  }
}

TEST(FlowTable, TimeGoingBackwardsKeepsOrder) {
  Fixture fx;
  Flow* a = fx.pkt(make(nth_client(1), kSrv, 17), 0, 100).flow;
  Flow* b = fx.pkt(make(nth_client(2), kSrv, 17), 0, 90).flow;  // clock stepped back
  EXPECT_EQ(b->last_seen_ns, 100u);
  EXPECT_EQ(fx.t.expire(149, 10), 0u);
  EXPECT_EQ(fx.t.expire(150, 10), 2u);
  (void)a;
}

// ------------------------------------------------------- with reassembly

struct Sink {
  std::string out;
  void operator()(std::span<const uint8_t> b) { out.append(reinterpret_cast<const char*>(b.data()), b.size()); }
};

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(FlowTable, FeedTcpBothDirections) {
  using namespace tcpflag;
  Fixture fx;
  Pkt c2s = make(kCli, kSrv), s2c = make(kSrv, kCli);
  Sink up, down;
  auto send = [&](const Pkt& p, uint8_t flags, uint32_t seq, uint32_t ack, std::string_view d) {
    FlowLookup r = fx.pkt(p, flags, 1);
    EXPECT_NE(r.flow, nullptr);
    Sink& s = r.from_client ? up : down;
    return feed_tcp(*r.flow, r.side, TcpSegment{.flags = flags, .seq = seq, .ack = ack, .payload = as_bytes(d)},
                    fx.pool, s);
  };
  EXPECT_EQ(send(c2s, syn, 100, 0, ""), SegmentOutcome::syn);
  EXPECT_EQ(send(s2c, syn | ack, 900, 101, ""), SegmentOutcome::syn);
  EXPECT_EQ(send(c2s, ack, 101, 901, ""), SegmentOutcome::no_payload);
  EXPECT_EQ(send(c2s, ack | psh, 106, 901, "World"), SegmentOutcome::buffered_ooo);
  EXPECT_EQ(send(c2s, ack | psh, 101, 901, "Hello"), SegmentOutcome::delivered);
  EXPECT_EQ(send(s2c, ack | psh, 901, 111, "reply"), SegmentOutcome::delivered);
  EXPECT_EQ(up.out, "HelloWorld");
  EXPECT_EQ(down.out, "reply");
  Flow* f = fx.t.find(c2s.key);
  EXPECT_EQ(f->to_server().delivered_bytes(), 10u);
  EXPECT_EQ(f->to_client().delivered_bytes(), 5u);
  // The client ACKs server bytes we never saw: that direction fails, the other goes on.
  EXPECT_EQ(send(c2s, ack | psh, 111, 920, "more"), SegmentOutcome::delivered);
  EXPECT_EQ(f->to_client().state(), StreamState::failed);
  EXPECT_EQ(f->to_client().fail_reason(), StreamFail::acked_hole);
  EXPECT_EQ(f->to_server().state(), StreamState::open);
  // RST from the server closes both directions.
  EXPECT_EQ(send(s2c, rst | ack, 906, 115, ""), SegmentOutcome::stream_failed);
  EXPECT_EQ(send(c2s, rst, 115, 0, ""), SegmentOutcome::rst);
  EXPECT_EQ(f->to_server().state(), StreamState::reset);
  EXPECT_EQ(up.out, "HelloWorldmore");
}

TEST(FlowTable, ExpiryAndEvictionReturnReassemblyBuffers) {
  Fixture fx(small_table(2));
  Sink s;
  for (uint32_t i = 0; i < 2; ++i) {
    Pkt p = make(nth_client(i), kSrv);
    FlowLookup r = fx.pkt(p, tcpflag::ack, 0);
    feed_tcp(*r.flow, r.side, TcpSegment{.flags = tcpflag::ack, .seq = 10, .ack = 0, .payload = as_bytes("a")},
             fx.pool, s);
    feed_tcp(*r.flow, r.side, TcpSegment{.flags = tcpflag::ack, .seq = 500, .ack = 0, .payload = as_bytes("b")},
             fx.pool, s);
  }
  EXPECT_EQ(fx.pool.chunks_in_use(), 2u);
  fx.pkt(make(nth_client(9), kSrv), tcpflag::syn, 1);  // evicts one
  EXPECT_EQ(fx.pool.chunks_in_use(), 1u);
  fx.t.expire(1000, 10);
  EXPECT_EQ(fx.pool.chunks_in_use(), 0u);
  EXPECT_EQ(fx.t.size(), 0u);
}

// No allocation per packet: heap in use is the same before and after a long
// run of creates, evictions, expiries, reuses and reassembly.
TEST(FlowTable, NoMemoryGrowth) {
  struct Fx {
    ReassemblyPool pool{small_pool()};
    uint64_t released = 0;
    FlowTable t{small_table(128), pool,
                [](void* ctx, Flow&, FlowRelease) noexcept { ++*static_cast<uint64_t*>(ctx); },
                &released};
  } fx;
  const uint64_t table_mem = fx.t.memory_bytes();
  const uint64_t pool_mem = fx.pool.memory_bytes();
  std::mt19937 rng(11);
  std::vector<Pkt> pk;
  for (uint32_t i = 0; i < 1000; ++i) {
    pk.push_back(make(nth_client(i), kSrv, i % 5 ? 6 : 17));
    Pkt back = make(kSrv, nth_client(i), i % 5 ? 6 : 17);
    pk.push_back(back);
  }
  static const uint8_t payload[256] = {};
  struct NullSink {
    void operator()(std::span<const uint8_t>) {}
  } sink;
  const uint8_t flag_set[] = {tcpflag::syn, tcpflag::syn | tcpflag::ack, tcpflag::ack,
                              tcpflag::ack | tcpflag::psh, tcpflag::fin | tcpflag::ack,
                              tcpflag::rst};
  auto run = [&](int n, uint64_t& now) {
    for (int i = 0; i < n; ++i) {
      const Pkt& p = pk[rng() % pk.size()];
      uint8_t fl = p.key.proto == 6 ? flag_set[rng() % 6] : 0;
      now += rng() % 3;
      FlowLookup r = fx.t.lookup_or_create(p.key, p.side, fl, 100, now);
      if (r.flow && p.key.proto == 6) {
        feed_tcp(*r.flow, r.side,
                 TcpSegment{.flags = fl, .seq = static_cast<uint32_t>(rng() % 3000),
                            .ack = static_cast<uint32_t>(rng() % 3000),
                            .payload = std::span(payload, rng() % 256)},
                 fx.pool, sink);
      }
      if (i % 64 == 0) fx.t.expire(now, 16);
    }
  };
  uint64_t now = 0;
  run(1000, now);  // warm up (gtest, lazy statics)
  const size_t before = mallinfo2().uordblks;
  run(200000, now);
  const size_t after = mallinfo2().uordblks;
  EXPECT_EQ(before, after);
  EXPECT_EQ(fx.t.memory_bytes(), table_mem);
  EXPECT_EQ(fx.pool.memory_bytes(), pool_mem);
  EXPECT_LE(fx.t.size(), fx.t.capacity());
  EXPECT_GT(fx.t.counters().flows_evicted + fx.t.counters().flows_expired, 0u);
  EXPECT_GT(fx.released, 0u);
  EXPECT_GT(fx.pool.chunks_high_water(), 0u);
  EXPECT_LE(fx.pool.chunks_high_water(), fx.pool.chunks_total());
  fx.t.clear();
  EXPECT_EQ(fx.pool.chunks_in_use(), 0u);
}

}  // namespace
}  // namespace aiqos
