#include "classify/flow_key.h"

#include <gtest/gtest.h>

#include <random>

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

TEST(FlowKey, NonIpHashesToZeroSoItKeepsOrder) {
  std::vector<uint8_t> arp = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06};
  arp.resize(60, 0);
  PacketInfo p;
  parse_packet(arp, p);
  EXPECT_EQ(symmetric_hash(p), 0u);
}

}  // namespace
}  // namespace aiqos
