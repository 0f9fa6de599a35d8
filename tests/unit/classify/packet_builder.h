// Builds Ethernet frames byte by byte for tests (Katran-style fixtures).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace aiqos::test {

struct Frame {
  std::vector<uint8_t> b;
  void u8(uint8_t v) { b.push_back(v); }
  void u16(uint16_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
  }
  void u32(uint32_t v) {
    u16(static_cast<uint16_t>(v >> 16));
    u16(static_cast<uint16_t>(v));
  }
  void bytes(std::initializer_list<uint8_t> l) { b.insert(b.end(), l); }
  void zeros(size_t n) { b.insert(b.end(), n, 0); }
};

// Ethernet (+ VLAN tags) + IPv4 + TCP with `payload` bytes of payload.
inline std::vector<uint8_t> tcp4(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
                                 uint8_t flags = 0x18, size_t payload = 10,
                                 std::initializer_list<uint16_t> vlans = {}, uint32_t seq = 1000) {
  Frame f;
  f.bytes({2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1});
  bool outer = true;
  for (uint16_t v : vlans) {
    f.u16(outer && vlans.size() == 2 ? 0x88a8 : 0x8100);
    f.u16(v);
    outer = false;
  }
  f.u16(0x0800);
  f.u8(0x45);
  f.u8(0);
  f.u16(static_cast<uint16_t>(20 + 20 + payload));
  f.u16(1);
  f.u16(0x4000);
  f.u8(64);
  f.u8(6);
  f.u16(0);
  f.u32(src);
  f.u32(dst);
  f.u16(sport);
  f.u16(dport);
  f.u32(seq);
  f.u32(0);
  f.u8(0x50);
  f.u8(flags);
  f.u16(65535);
  f.u16(0);
  f.u16(0);
  f.zeros(payload);
  return f.b;
}

// Ethernet + IPv6 + UDP.
inline std::vector<uint8_t> udp6(uint8_t src_last, uint8_t dst_last, uint16_t sport, uint16_t dport,
                                 size_t payload = 8) {
  Frame f;
  f.bytes({2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1});
  f.u16(0x86dd);
  f.u32(0x60000000);
  f.u16(static_cast<uint16_t>(8 + payload));
  f.u8(17);
  f.u8(64);
  f.bytes({0xfd, 0, 1, 0x98, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, src_last});
  f.bytes({0xfd, 0, 1, 0x98, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, dst_last});
  f.u16(sport);
  f.u16(dport);
  f.u16(static_cast<uint16_t>(8 + payload));
  f.u16(0);
  f.zeros(payload);
  return f.b;
}

}  // namespace aiqos::test
