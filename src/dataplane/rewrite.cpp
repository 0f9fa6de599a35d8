#include "dataplane/rewrite.h"

namespace aiqos {

uint16_t ipv4_header_checksum(const uint8_t* ip, size_t ihl) noexcept {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < ihl; i += 2) {
    if (i == 10) continue;  // the checksum field itself
    s += static_cast<uint32_t>((ip[i] << 8) | ip[i + 1]);
  }
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

bool set_dscp(std::span<uint8_t> f, const PacketInfo& p, uint8_t dscp) noexcept {
  size_t off = p.l3_off;
  if (p.l3 == L3Kind::ipv4) {
    if (f.size() < off + 20) return false;
    uint8_t* ip = f.data() + off;
    uint8_t old_tos = ip[1];
    uint8_t tos = static_cast<uint8_t>((dscp << 2) | (old_tos & 0x03));
    if (tos == old_tos) return true;
    uint16_t old_word = static_cast<uint16_t>((ip[0] << 8) | old_tos);
    uint16_t new_word = static_cast<uint16_t>((ip[0] << 8) | tos);
    uint16_t csum = static_cast<uint16_t>((ip[10] << 8) | ip[11]);
    csum = csum_update16(csum, old_word, new_word);
    ip[1] = tos;
    ip[10] = static_cast<uint8_t>(csum >> 8);
    ip[11] = static_cast<uint8_t>(csum);
    return true;
  }
  if (p.l3 == L3Kind::ipv6) {
    if (f.size() < off + 40) return false;
    uint8_t* ip = f.data() + off;
    // Traffic class spans the low nibble of byte 0 and the high nibble of byte 1.
    uint8_t tc = static_cast<uint8_t>(((ip[0] & 0x0f) << 4) | (ip[1] >> 4));
    tc = static_cast<uint8_t>((dscp << 2) | (tc & 0x03));
    ip[0] = static_cast<uint8_t>((ip[0] & 0xf0) | (tc >> 4));
    ip[1] = static_cast<uint8_t>((ip[1] & 0x0f) | ((tc & 0x0f) << 4));
    return true;
  }
  return false;
}

bool rewrite_outer_tag(std::span<uint8_t> f, const PacketInfo& p, int vid, int pcp) noexcept {
  if (p.n_vlans == 0 || f.size() < 18) return false;
  uint8_t* tci = f.data() + 14;
  uint16_t t = static_cast<uint16_t>((tci[0] << 8) | tci[1]);
  if (vid >= 0) t = static_cast<uint16_t>((t & 0xf000) | (vid & 0x0fff));
  if (pcp >= 0) t = static_cast<uint16_t>((t & 0x1fff) | ((pcp & 0x7) << 13));
  tci[0] = static_cast<uint8_t>(t >> 8);
  tci[1] = static_cast<uint8_t>(t);
  return true;
}

}  // namespace aiqos
