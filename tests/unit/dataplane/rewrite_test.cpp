// Header rewrites of the marking stage (dataplane/rewrite.h), byte for byte:
// the RFC 1624 checksum update against a full recompute, DSCP on IPv4 and
// IPv6, the outer VLAN tag of single-tagged and QinQ frames. Then the same
// rewrites through WorkerQos::apply on real mbufs (VLAN push, exceed remark),
// using the EAL and pool that stage_test.cpp's main() sets up.
#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "../classify/packet_builder.h"
#include "classify/packet_parse.h"
#include "control/policy_engine.h"
#include "dataplane/mbuf_meta.h"
#include "dataplane/qos.h"
#include "dataplane/rewrite.h"
#include "dataplane/stats.h"
#include "rewrite_harness.h"

namespace aiqos {

// From stage_test.cpp (the binary's main() creates the pool).
extern rte_mempool* g_pool;
rte_mbuf* make_mbuf(const std::vector<uint8_t>& bytes);

namespace {

// ---------------------------------------------------------------- checksums

TEST(Checksum, FullRecomputeKnownVector) {
  // The classic example header (checksum 0xb861).
  uint8_t ip[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                    0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(ipv4_header_checksum(ip, 20), 0xb861);
  EXPECT_TRUE(ipv4_csum_ok(ip));
  ip[10] = ip[11] = 0xaa;  // the field itself is not summed
  EXPECT_EQ(ipv4_header_checksum(ip, 20), 0xb861);
}

TEST(Checksum, IncrementalUpdateMatchesFullRecompute) {
  // Many random headers (with and without options), every word position of
  // the first line rewritten: RFC 1624 eqn. 3 must agree with a recompute.
  std::mt19937 rng(1624);
  for (int iter = 0; iter < 20000; ++iter) {
    uint8_t ip[60];
    for (auto& b : ip) b = static_cast<uint8_t>(rng());
    size_t ihl = 4 * (5 + rng() % 11);  // 20..60 bytes
    ip[0] = static_cast<uint8_t>(0x40 | (ihl / 4));
    uint16_t c0 = ipv4_header_checksum(ip, ihl);
    ip[10] = static_cast<uint8_t>(c0 >> 8);
    ip[11] = static_cast<uint8_t>(c0);
    ASSERT_TRUE(ipv4_csum_ok(ip));
    // Rewrite the TOS byte (what set_dscp does) to a random DSCP, keeping ECN.
    uint8_t dscp = static_cast<uint8_t>(rng() % 64);
    uint16_t old_word = static_cast<uint16_t>(ip[0] << 8 | ip[1]);
    ip[1] = static_cast<uint8_t>(dscp << 2 | (ip[1] & 3));
    uint16_t new_word = static_cast<uint16_t>(ip[0] << 8 | ip[1]);
    uint16_t inc = csum_update16(c0, old_word, new_word);
    uint16_t full = ipv4_header_checksum(ip, ihl);
    ASSERT_EQ(inc, full) << "iter " << iter << " dscp " << int{dscp} << " old " << old_word << " new "
                         << new_word << " csum " << c0;
    // And any other 16-bit word (TTL/protocol, ID, addresses...).
    size_t w = 2 * (rng() % (ihl / 2));
    if (w == 10) continue;
    ip[10] = static_cast<uint8_t>(full >> 8);
    ip[11] = static_cast<uint8_t>(full);
    uint16_t ow = static_cast<uint16_t>(ip[w] << 8 | ip[w + 1]);
    uint16_t nw = static_cast<uint16_t>(rng());
    ip[w] = static_cast<uint8_t>(nw >> 8);
    ip[w + 1] = static_cast<uint8_t>(nw);
    ASSERT_EQ(csum_update16(full, ow, nw), ipv4_header_checksum(ip, ihl)) << "iter " << iter << " word " << w;
  }
}

TEST(Checksum, IncrementalUpdateEdgeCases) {
  // No change leaves the checksum as it was; a change and its undo cancel.
  for (uint16_t c : {0x0000, 0x0001, 0x7fff, 0xfffe, 0xffff}) {
    EXPECT_EQ(csum_update16(c, 0x4500, 0x4500), c == 0xffff ? 0x0000 : c) << c;
    EXPECT_EQ(csum_update16(csum_update16(0x1234, 0x4500, 0x45b8), 0x45b8, 0x4500), 0x1234);
  }
  // A word going 0x0000 <-> 0xffff (+0 and -0 in ones' complement).
  uint8_t ip[20] = {0x45, 0x00, 0x00, 0x14, 0xff, 0xff, 0x00, 0x00, 0x40, 0x06,
                    0x00, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02};
  uint16_t c = ipv4_header_checksum(ip, 20);
  ip[4] = ip[5] = 0;
  EXPECT_EQ(csum_update16(c, 0xffff, 0x0000), ipv4_header_checksum(ip, 20));
}

// ---------------------------------------------------------------- set_dscp

TEST(SetDscp, Ipv4EveryDscpAndEcnChecksumValid) {
  for (uint16_t vlans : {0, 1, 2}) {
    for (int ecn = 0; ecn < 4; ++ecn) {
      for (int old_dscp : {0, 10, 46, 63}) {
        auto f = vlans == 0   ? tcp4_frame(static_cast<uint8_t>(old_dscp << 2 | ecn))
                 : vlans == 1 ? tcp4_frame(static_cast<uint8_t>(old_dscp << 2 | ecn), {100})
                              : tcp4_frame(static_cast<uint8_t>(old_dscp << 2 | ecn), {300, 100});
        PacketInfo p = parsed(f);
        ASSERT_EQ(p.l3, L3Kind::ipv4);
        size_t l3 = p.l3_off;
        ASSERT_EQ(l3, 14u + 4 * vlans);
        for (int dscp = 0; dscp < 64; ++dscp) {
          auto g = f;
          ASSERT_TRUE(set_dscp(g, p, static_cast<uint8_t>(dscp)));
          SCOPED_TRACE(testing::Message() << "vlans " << vlans << " ecn " << ecn << " " << old_dscp << "->" << dscp);
          EXPECT_EQ(g[l3 + 1] >> 2, dscp);
          EXPECT_EQ(g[l3 + 1] & 3, ecn);  // ECN bits kept
          EXPECT_TRUE(ipv4_csum_ok(g.data() + l3));
          EXPECT_EQ(ipv4_header_checksum(g.data() + l3, 20), static_cast<uint16_t>(g[l3 + 10] << 8 | g[l3 + 11]));
          // Nothing else moved.
          expect_same_except(f, g, {l3 + 1, l3 + 10, l3 + 11});
        }
      }
    }
  }
}

TEST(SetDscp, Ipv4RandomHeadersWithOptions) {
  std::mt19937 rng(46);
  for (int iter = 0; iter < 5000; ++iter) {
    size_t opt = 4 * (rng() % 11);
    auto f = test::tcp4(static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng()), static_cast<uint16_t>(rng()),
                        static_cast<uint16_t>(rng()), 0x18, 0);
    // Grow the IP header by `opt` bytes of options (NOPs) before TCP.
    f.insert(f.begin() + 34, opt, 0x01);
    uint8_t* ip = f.data() + 14;
    ip[0] = static_cast<uint8_t>(0x40 | (20 + opt) / 4);
    uint16_t tot = static_cast<uint16_t>(20 + opt + 20);
    ip[2] = static_cast<uint8_t>(tot >> 8);
    ip[3] = static_cast<uint8_t>(tot);
    ip[1] = static_cast<uint8_t>(rng());
    ip[4] = static_cast<uint8_t>(rng());
    ip[5] = static_cast<uint8_t>(rng());
    ip[8] = static_cast<uint8_t>(rng());
    ipv4_fill_csum(ip);
    PacketInfo p = parsed(f);
    ASSERT_EQ(p.l3, L3Kind::ipv4) << iter;
    uint8_t dscp = static_cast<uint8_t>(rng() % 64);
    uint8_t ecn = ip[1] & 3;
    ASSERT_TRUE(set_dscp(f, p, dscp));
    ASSERT_EQ(ip[1], dscp << 2 | ecn);
    ASSERT_TRUE(ipv4_csum_ok(ip)) << "iter " << iter;
    ASSERT_EQ(ipv4_header_checksum(ip, 20 + opt), static_cast<uint16_t>(ip[10] << 8 | ip[11]));
  }
}

TEST(SetDscp, SameValueIsANoOp) {
  auto f = tcp4_frame(46 << 2 | 1);
  auto g = f;
  ASSERT_TRUE(set_dscp(g, parsed(g), 46));
  EXPECT_EQ(g, f);
}

TEST(SetDscp, Ipv6TrafficClassSpansBytesZeroAndOne) {
  for (int ecn = 0; ecn < 4; ++ecn) {
    for (int dscp = 0; dscp < 64; ++dscp) {
      auto f = test::udp6(1, 2, 5000, 53);
      // Version 6, traffic class 0xa0|ecn (DSCP 40), flow label 0xbcdef.
      uint8_t tc0 = static_cast<uint8_t>(40 << 2 | ecn);
      f[14] = static_cast<uint8_t>(0x60 | tc0 >> 4);
      f[15] = static_cast<uint8_t>((tc0 & 0x0f) << 4 | 0x0b);
      f[16] = 0xcd;
      f[17] = 0xef;
      auto g = f;
      PacketInfo p = parsed(g);
      ASSERT_EQ(p.l3, L3Kind::ipv6);
      ASSERT_EQ(p.tos, tc0);
      ASSERT_TRUE(set_dscp(g, p, static_cast<uint8_t>(dscp)));
      SCOPED_TRACE(testing::Message() << "ecn " << ecn << " dscp " << dscp);
      EXPECT_EQ(g[14] >> 4, 6);  // version kept
      uint8_t tc = static_cast<uint8_t>((g[14] & 0x0f) << 4 | g[15] >> 4);
      EXPECT_EQ(tc >> 2, dscp);
      EXPECT_EQ(tc & 3, ecn);
      EXPECT_EQ(g[15] & 0x0f, 0x0b);  // flow label kept
      EXPECT_EQ(g[16], 0xcd);
      EXPECT_EQ(g[17], 0xef);
      for (size_t i = 16; i < g.size(); ++i) ASSERT_EQ(g[i], f[i]) << i;
      EXPECT_EQ(parsed(g).tos, tc);
    }
  }
}

TEST(SetDscp, NoIpHeaderOrTooShort) {
  std::vector<uint8_t> arp(60, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  auto a = arp;
  EXPECT_FALSE(set_dscp(a, parsed(a), 46));
  EXPECT_EQ(a, arp);
  // A PacketInfo claiming IPv4 on a frame too short for the header.
  PacketInfo p;
  p.l3 = L3Kind::ipv4;
  p.l3_off = 14;
  std::vector<uint8_t> shortf(30, 0x45);
  EXPECT_FALSE(set_dscp(shortf, p, 46));
  p.l3 = L3Kind::ipv6;
  std::vector<uint8_t> short6(50, 0x60);
  EXPECT_FALSE(set_dscp(short6, p, 46));
}

// ---------------------------------------------------------------- VLAN tags


TEST(MakeTci, PcpAndVid) {
  static_assert(make_tci(100, 5) == 0xa064);
  static_assert(make_tci(200, 1) == 0x20c8);
  static_assert(make_tci(4094, 7) == 0xeffe);
  static_assert(make_tci(1, 0) == 0x0001);
  static_assert(make_tci(0x1064, 0) == 0x0064);  // VID is 12 bits; DEI stays 0
  EXPECT_EQ(make_tci(100, 5) >> 13, 5);
  EXPECT_EQ(make_tci(100, 5) & 0x0fff, 100);
  EXPECT_EQ(make_tci(100, 5) & 0x1000, 0);
}

TEST(RewriteOuterTag, SingleTagVidAndPcpIndependently) {
  // Tag 7, PCP 3, DEI 1.
  const uint16_t tci0 = static_cast<uint16_t>(3 << 13 | 0x1000 | 7);
  auto f = tcp4_frame(0, {tci0});
  PacketInfo p = parsed(f);
  ASSERT_EQ(p.n_vlans, 1);
  struct C {
    int vid, pcp;
    uint16_t want;
  };
  const C cases[] = {
      {100, 5, static_cast<uint16_t>(5 << 13 | 0x1000 | 100)},
      {100, -1, static_cast<uint16_t>(3 << 13 | 0x1000 | 100)},  // PCP and DEI kept
      {-1, 5, static_cast<uint16_t>(5 << 13 | 0x1000 | 7)},      // VID and DEI kept
      {-1, -1, tci0},
      {4094, 0, static_cast<uint16_t>(0x1000 | 4094)},
      {1, 7, static_cast<uint16_t>(7 << 13 | 0x1000 | 1)},
  };
  for (const auto& c : cases) {
    auto g = f;
    ASSERT_TRUE(rewrite_outer_tag(g, p, c.vid, c.pcp));
    EXPECT_EQ(tci_at(g, 14), c.want) << c.vid << "/" << c.pcp;
    EXPECT_EQ(tci_at(g, 12), 0x8100);
    expect_same_except(f, g, {14, 15});
  }
}

TEST(RewriteOuterTag, QinqOnlyTheOuterTagChanges) {
  const uint16_t outer = static_cast<uint16_t>(2 << 13 | 300), inner = static_cast<uint16_t>(6 << 13 | 7);
  auto f = tcp4_frame(0, {outer, inner});
  PacketInfo p = parsed(f);
  ASSERT_EQ(p.n_vlans, 2);
  ASSERT_EQ(tci_at(f, 12), 0x88a8);
  ASSERT_EQ(tci_at(f, 16), 0x8100);
  for (int vid : {-1, 100}) {
    for (int pcp : {-1, 5}) {
      auto g = f;
      ASSERT_TRUE(rewrite_outer_tag(g, p, vid, pcp));
      uint16_t want = static_cast<uint16_t>(((pcp >= 0 ? pcp : 2) << 13) | (vid >= 0 ? vid : 300));
      EXPECT_EQ(tci_at(g, 14), want) << vid << "/" << pcp;
      EXPECT_EQ(tci_at(g, 18), inner);  // inner tag untouched
      EXPECT_EQ(tci_at(g, 12), 0x88a8);
      EXPECT_EQ(tci_at(g, 16), 0x8100);
      expect_same_except(f, g, {14, 15});
    }
  }
}

TEST(RewriteOuterTag, UntaggedFrameIsLeftAlone) {
  auto f = tcp4_frame(0);
  auto g = f;
  EXPECT_FALSE(rewrite_outer_tag(g, parsed(g), 100, 5));
  EXPECT_EQ(g, f);
}

}  // namespace
}  // namespace aiqos
