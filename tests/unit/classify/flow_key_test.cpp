#include "classify/flow_key.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "packet_builder.h"

namespace aiqos {
namespace {

TEST(FlowKey, BothDirectionsGiveOneKeyAndHash) {
  std::mt19937 rng(7);
  for (int i = 0; i < 10000; ++i) {
    uint32_t a = rng(), b = rng();
    uint16_t pa = static_cast<uint16_t>(rng()), pb = static_cast<uint16_t>(rng());
    auto fwd = test::tcp4(a, b, pa, pb);
    auto rev = test::tcp4(b, a, pb, pa);
    PacketInfo pf, pr;
    ASSERT_EQ(parse_packet(fwd, pf), ParseStatus::ok);
    ASSERT_EQ(parse_packet(rev, pr), ParseStatus::ok);
    FlowKey kf, kr;
    bool sf, sr;
    ASSERT_TRUE(make_flow_key(pf, kf, sf));
    ASSERT_TRUE(make_flow_key(pr, kr, sr));
    EXPECT_EQ(kf, kr);
    if (a != b || pa != pb) {
      EXPECT_NE(sf, sr);
    }
    EXPECT_EQ(symmetric_hash(pf), symmetric_hash(pr));
  }
}

TEST(FlowKey, VlanAndProtocolSeparateFlows) {
  PacketInfo p1, p2;
  auto f1 = test::tcp4(1, 2, 3, 4, 0x10, 0, {100});
  auto f2 = test::tcp4(1, 2, 3, 4, 0x10, 0, {200});
  parse_packet(f1, p1);
  parse_packet(f2, p2);
  EXPECT_NE(symmetric_hash(p1), symmetric_hash(p2));
}

TEST(FlowKey, HashSpreadsFlows) {
  // 4096 flows over 8 buckets: no bucket is empty or holds more than twice its share.
  int buckets[8] = {};
  for (uint32_t i = 0; i < 4096; ++i) {
    PacketInfo p;
    auto f = test::tcp4(0xc6120000 + i, 0xc6120100, static_cast<uint16_t>(30000 + i), 443);
    parse_packet(f, p);
    ++buckets[(symmetric_hash(p) >> 40) % 8];
  }
  for (int b : buckets) {
    EXPECT_GT(b, 256);
    EXPECT_LT(b, 1024);
  }
}

TEST(FlowKey, Ipv4KeyHoldsTheLowerEndpointFirst) {
  // 10.0.0.9:80 -> 10.0.0.1:5000: the key starts with 10.0.0.1 (memcmp order of the bytes).
  PacketInfo p;
  ASSERT_EQ(parse_packet(test::tcp4(0x0a000009, 0x0a000001, 80, 5000, 0x10, 0, {300}), p), ParseStatus::ok);
  FlowKey k;
  bool swapped = false;
  ASSERT_TRUE(make_flow_key(p, k, swapped));
  EXPECT_TRUE(swapped);
  const std::array<uint8_t, 16> lo = {10, 0, 0, 1}, hi = {10, 0, 0, 9};
  EXPECT_EQ(k.lo_addr, lo);
  EXPECT_EQ(k.hi_addr, hi);
  EXPECT_EQ(k.lo_port, 5000);
  EXPECT_EQ(k.hi_port, 80);
  EXPECT_EQ(k.vlan, 300);
  EXPECT_EQ(k.proto, 6);
  EXPECT_EQ(k.family, 4);
  // Byte order, not numeric order of the little-endian words: 1.0.0.2 sorts after 2.0.0.1.
  ASSERT_EQ(parse_packet(test::tcp4(0x01000002, 0x02000001, 1, 2), p), ParseStatus::ok);
  ASSERT_TRUE(make_flow_key(p, k, swapped));
  EXPECT_FALSE(swapped);
  EXPECT_EQ(k.lo_addr[0], 1);
}

TEST(FlowKey, LowBitsSpreadSequentialClients) {
  // The flow table picks its bucket from the low bits: 65 536 flows from
  // consecutive client addresses and ports into 65 536 buckets should leave
  // about 1/e of them empty (random placement) and no long chain.
  constexpr uint32_t kFlows = 65536;
  std::vector<uint8_t> load(kFlows, 0);
  for (uint32_t i = 0; i < kFlows; ++i) {
    PacketInfo p;
    parse_packet(test::tcp4(0x0a060000 + i, 0x0afe0101, static_cast<uint16_t>(1024 + (i % 60000)), 443), p);
    uint64_t h = symmetric_hash(p);
    uint32_t b = static_cast<uint32_t>(h ^ (h >> 32)) & (kFlows - 1);  // FlowTable::bucket_hash
    ++load[b];
  }
  uint32_t empty = 0, longest = 0;
  for (uint8_t l : load) {
    empty += l == 0;
    longest = std::max<uint32_t>(longest, l);
  }
  EXPECT_NEAR(static_cast<double>(empty) / kFlows, 0.3679, 0.02);
  EXPECT_LE(longest, 10u);
}

TEST(FlowKey, NonIpHashesToZeroSoItKeepsOrder) {
  std::vector<uint8_t> arp = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06};
  arp.resize(60, 0);
  PacketInfo p;
  parse_packet(arp, p);
  EXPECT_EQ(symmetric_hash(p), 0u);
}

}  // namespace
}  // namespace aiqos
