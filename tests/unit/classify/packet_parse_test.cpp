#include "classify/packet_parse.h"

#include <gtest/gtest.h>

#include "packet_builder.h"

namespace aiqos {
namespace {

using test::tcp4;
using test::udp6;

TEST(PacketParse, UntaggedIpv4Tcp) {
  auto f = tcp4(0xc6120001, 0xc6120002, 40000, 8080, 0x18, 100);
  PacketInfo p;
  ASSERT_EQ(parse_packet(f, p), ParseStatus::ok);
  EXPECT_EQ(p.ethertype, 0x0800);
  EXPECT_EQ(p.n_vlans, 0);
  EXPECT_EQ(p.l3, L3Kind::ipv4);
  EXPECT_EQ(p.l4proto, 6);
  EXPECT_EQ(p.sport, 40000);
  EXPECT_EQ(p.dport, 8080);
  EXPECT_EQ(p.seq, 1000u);
  EXPECT_EQ(p.tcp_flags, 0x18);
  EXPECT_EQ(p.payload_off, 14 + 20 + 20);
  EXPECT_EQ(p.payload_len, 100);
  EXPECT_EQ(p.src[0], 0xc6);
  EXPECT_EQ(p.dst[3], 0x02);
  EXPECT_TRUE(p.has_l4());
}

TEST(PacketParse, SingleAndDoubleVlan) {
  PacketInfo p;
  auto one = tcp4(1, 2, 3, 4, 0x10, 0, {0x2064});
  ASSERT_EQ(parse_packet(one, p), ParseStatus::ok);
  EXPECT_EQ(p.n_vlans, 1);
  EXPECT_EQ(p.vlan_id(), 100);
  EXPECT_EQ(p.l3_off, 18);
  EXPECT_EQ(p.sport, 3);

  auto two = tcp4(1, 2, 3, 4, 0x10, 0, {0x0010, 0x2064});
  ASSERT_EQ(parse_packet(two, p), ParseStatus::ok);
  EXPECT_EQ(p.n_vlans, 2);
  EXPECT_EQ(p.vlan_tpid[0], 0x88a8);
  EXPECT_EQ(p.vlan_tpid[1], 0x8100);
  EXPECT_EQ(p.vlan_id(), 100);  // innermost
  EXPECT_EQ(p.l3_off, 22);
  EXPECT_EQ(p.dport, 4);
}

TEST(PacketParse, ThreeTagsAreCountedNotDecoded) {
  std::vector<uint8_t> f = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1};
  for (int i = 0; i < 3; ++i) {
    f.insert(f.end(), {0x81, 0x00, 0x00, 0x01});
  }
  f.insert(f.end(), {0x08, 0x00});
  f.resize(80, 0);
  PacketInfo p;
  EXPECT_EQ(parse_packet(f, p), ParseStatus::too_many_vlans);
}

TEST(PacketParse, Ipv6Udp) {
  auto f = udp6(1, 2, 5353, 53, 20);
  PacketInfo p;
  ASSERT_EQ(parse_packet(f, p), ParseStatus::ok);
  EXPECT_EQ(p.l3, L3Kind::ipv6);
  EXPECT_EQ(p.l4proto, 17);
  EXPECT_EQ(p.sport, 5353);
  EXPECT_EQ(p.payload_len, 20);
  EXPECT_EQ(p.src[15], 1);
}

TEST(PacketParse, ArpAndLldpAreNonIp) {
  std::vector<uint8_t> arp = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06};
  arp.resize(60, 0);
  PacketInfo p;
  EXPECT_EQ(parse_packet(arp, p), ParseStatus::ok);
  EXPECT_EQ(p.ethertype, 0x0806);
  EXPECT_EQ(p.l3, L3Kind::none);
  EXPECT_FALSE(p.has_l4());
  std::vector<uint8_t> lldp = {0x01, 0x80, 0xc2, 0, 0, 0x0e, 2, 0, 0, 0, 0, 1, 0x88, 0xcc};
  lldp.resize(60, 0);
  EXPECT_EQ(parse_packet(lldp, p), ParseStatus::ok);
  EXPECT_EQ(p.ethertype, 0x88cc);
}

TEST(PacketParse, FragmentsStopAtL3) {
  auto f = tcp4(1, 2, 3, 4);
  f[14 + 6] = 0x20;  // MF
  PacketInfo p;
  EXPECT_EQ(parse_packet(f, p), ParseStatus::fragment);
  EXPECT_FALSE(p.has_l4());
  EXPECT_EQ(p.l3, L3Kind::ipv4);
}

TEST(PacketParse, BadLengthsAreReportedNotTrusted) {
  PacketInfo p;
  auto f = tcp4(1, 2, 3, 4, 0x18, 10);
  auto bad_ihl = f;
  bad_ihl[14] = 0x44;  // IHL 16 bytes
  EXPECT_EQ(parse_packet(bad_ihl, p), ParseStatus::bad_l3);
  auto long_total = f;
  long_total[16] = 0x10;  // total length 4096+ beyond the frame
  EXPECT_EQ(parse_packet(long_total, p), ParseStatus::bad_l3);
  auto bad_doff = f;
  bad_doff[14 + 20 + 12] = 0xf0;  // TCP data offset 60 > segment
  EXPECT_EQ(parse_packet(bad_doff, p), ParseStatus::bad_l4);
  auto small_doff = f;
  small_doff[14 + 20 + 12] = 0x10;
  EXPECT_EQ(parse_packet(small_doff, p), ParseStatus::bad_l4);
  EXPECT_EQ(parse_packet(std::span<const uint8_t>(f.data(), 13), p), ParseStatus::short_l2);
}

TEST(PacketParse, EthernetPaddingIsNotPayload) {
  auto f = tcp4(1, 2, 3, 4, 0x10, 0);
  f.resize(60, 0xee);  // minimum frame padding after a 40-byte IP packet
  PacketInfo p;
  ASSERT_EQ(parse_packet(f, p), ParseStatus::ok);
  EXPECT_EQ(p.payload_len, 0);
}

// Every prefix of a valid frame decodes without reading past the span.
TEST(PacketParse, EveryTruncationIsSafe) {
  auto f = tcp4(1, 2, 3, 4, 0x18, 30, {0x0010, 0x2064});
  for (size_t n = 0; n <= f.size(); ++n) {
    std::vector<uint8_t> cut(f.begin(), f.begin() + static_cast<long>(n));
    PacketInfo p;
    ParseStatus st = parse_packet(cut, p);
    if (n < f.size()) {
      EXPECT_NE(st, ParseStatus::ok) << "prefix " << n;
    }
  }
}

}  // namespace
}  // namespace aiqos
