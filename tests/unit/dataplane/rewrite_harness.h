// Test helpers of the rewrite and QoS tests: IPv4 frames with a correct
// header checksum, an independent checksum check, VLAN tag reads.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "../classify/packet_builder.h"
#include "classify/packet_parse.h"

namespace aiqos {
namespace {

// RFC 1071, written independently of rewrite.cpp: the ones'-complement sum of
// the whole header, checksum field included, is 0xffff when the checksum is right.
inline uint16_t ones_sum(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}
inline bool ipv4_csum_ok(const uint8_t* ip) { return ones_sum(ip, static_cast<size_t>(ip[0] & 0x0f) * 4) == 0xffff; }
inline void ipv4_fill_csum(uint8_t* ip) {
  size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
  ip[10] = ip[11] = 0;
  uint16_t c = static_cast<uint16_t>(~ones_sum(ip, ihl));
  ip[10] = static_cast<uint8_t>(c >> 8);
  ip[11] = static_cast<uint8_t>(c);
}

// a and b are the same length and differ at most at the positions in `skip`.
inline void expect_same_except(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b,
                        std::initializer_list<size_t> skip) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::find(skip.begin(), skip.end(), i) != skip.end()) continue;
    ASSERT_EQ(a[i], b[i]) << "byte " << i;
  }
}

inline PacketInfo parsed(const std::vector<uint8_t>& f) {
  PacketInfo p;
  parse_packet(f, p);
  return p;
}

// An IPv4/TCP frame (tags as given) with a correct header checksum and TOS `tos`.
inline std::vector<uint8_t> tcp4_frame(uint8_t tos, std::initializer_list<uint16_t> vlans = {}, size_t payload = 10) {
  auto f = test::tcp4(0xc6120001, 0xc6120002, 40000, 8080, 0x18, payload, vlans);
  size_t l3 = 14 + 4 * vlans.size();
  f[l3 + 1] = tos;
  ipv4_fill_csum(f.data() + l3);
  return f;
}

inline uint16_t tci_at(const std::vector<uint8_t>& f, size_t off) { return static_cast<uint16_t>(f[off] << 8 | f[off + 1]); }

}  // namespace
}  // namespace aiqos
