#include "classify/packet_parse.h"

#include <cstring>

namespace aiqos {
namespace {

constexpr uint16_t kEthIPv4 = 0x0800;
constexpr uint16_t kEthIPv6 = 0x86dd;
constexpr uint16_t kEthVlan = 0x8100;
constexpr uint16_t kEthQinQ = 0x88a8;
constexpr uint16_t kEthQinQOld = 0x9100;

inline uint16_t rd16(const uint8_t* p) noexcept {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
inline uint32_t rd32(const uint8_t* p) noexcept {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

ParseStatus parse_l4(std::span<const uint8_t> f, size_t off, size_t l3_end, PacketInfo& out) noexcept {
  out.l4_off = static_cast<uint16_t>(off);
  if (out.l4proto == 6) {
    if (l3_end < off + 20) return ParseStatus::bad_l4;
    const uint8_t* t = f.data() + off;
    size_t doff = size_t{static_cast<uint8_t>(t[12] >> 4)} * 4;
    if (doff < 20 || l3_end < off + doff) return ParseStatus::bad_l4;
    out.sport = rd16(t);
    out.dport = rd16(t + 2);
    out.seq = rd32(t + 4);
    out.ack = rd32(t + 8);
    out.tcp_flags = t[13];
    out.payload_off = static_cast<uint16_t>(off + doff);
    out.payload_len = static_cast<uint16_t>(l3_end - off - doff);
  } else if (out.l4proto == 17) {
    if (l3_end < off + 8) return ParseStatus::bad_l4;
    const uint8_t* u = f.data() + off;
    out.sport = rd16(u);
    out.dport = rd16(u + 2);
    out.payload_off = static_cast<uint16_t>(off + 8);
    out.payload_len = static_cast<uint16_t>(l3_end - off - 8);
  }
  return ParseStatus::ok;
}

ParseStatus parse_ipv4(std::span<const uint8_t> f, size_t off, PacketInfo& out) noexcept {
  if (f.size() < off + 20) return ParseStatus::bad_l3;
  const uint8_t* ip = f.data() + off;
  if ((ip[0] >> 4) != 4) return ParseStatus::bad_l3;
  size_t ihl = size_t{static_cast<uint8_t>(ip[0] & 0x0f)} * 4;
  size_t total = rd16(ip + 2);
  if (ihl < 20 || total < ihl || f.size() < off + total) return ParseStatus::bad_l3;
  out.l3 = L3Kind::ipv4;
  out.tos = ip[1];
  out.l4proto = ip[9];
  std::memcpy(out.src.data(), ip + 12, 4);
  std::memcpy(out.dst.data(), ip + 16, 4);
  uint16_t frag = rd16(ip + 6);
  if ((frag & 0x3fff) != 0) return ParseStatus::fragment;  // MF set or offset != 0
  return parse_l4(f, off + ihl, off + total, out);
}

bool ipv6_ext_header(uint8_t nh) noexcept {
  // hop-by-hop, routing, destination options, mobility, HIP, shim6
  return nh == 0 || nh == 43 || nh == 60 || nh == 135 || nh == 139 || nh == 140;
}

ParseStatus parse_ipv6(std::span<const uint8_t> f, size_t off, PacketInfo& out) noexcept {
  if (f.size() < off + 40) return ParseStatus::bad_l3;
  const uint8_t* ip = f.data() + off;
  if ((ip[0] >> 4) != 6) return ParseStatus::bad_l3;
  size_t plen = rd16(ip + 4);
  size_t end = off + 40 + plen;
  if (f.size() < end) return ParseStatus::bad_l3;
  out.l3 = L3Kind::ipv6;
  out.tos = static_cast<uint8_t>(((ip[0] & 0x0f) << 4) | (ip[1] >> 4));
  std::memcpy(out.src.data(), ip + 8, 16);
  std::memcpy(out.dst.data(), ip + 24, 16);
  uint8_t nh = ip[6];
  size_t p = off + 40;
  // Bounded walk: at most 8 extension headers, each checked against `end`.
  for (int i = 0; i < 8 && ipv6_ext_header(nh); ++i) {
    if (end < p + 8) return ParseStatus::bad_l3;
    uint8_t next = f[p];
    size_t len = (size_t{f[p + 1]} + 1) * 8;
    if (end < p + len) return ParseStatus::bad_l3;
    nh = next;
    p += len;
  }
  if (nh == 44) {  // fragment header
    out.l4proto = nh;
    return ParseStatus::fragment;
  }
  if (ipv6_ext_header(nh)) return ParseStatus::bad_l3;
  out.l4proto = nh;
  return parse_l4(f, p, end, out);
}

}  // namespace

const char* parse_status_name(ParseStatus s) noexcept {
  switch (s) {
#define X(name, desc) \
  case ParseStatus::name: return #name;
    AIQOS_PARSE_STATUS(X)
#undef X
    default: return "unknown";
  }
}

ParseStatus parse_packet(std::span<const uint8_t> f, PacketInfo& out) noexcept {
  out = PacketInfo{};
  if (f.size() < 14) return out.status = ParseStatus::short_l2;
  uint16_t et = rd16(f.data() + 12);
  size_t off = 14;
  while (et == kEthVlan || et == kEthQinQ || et == kEthQinQOld) {
    if (out.n_vlans == 2) return out.status = ParseStatus::too_many_vlans;
    if (f.size() < off + 4) return out.status = ParseStatus::short_l2;
    out.vlan_tpid[out.n_vlans] = et;
    out.vlan_tci[out.n_vlans] = rd16(f.data() + off);
    ++out.n_vlans;
    et = rd16(f.data() + off + 2);
    off += 4;
  }
  out.ethertype = et;
  out.l3_off = static_cast<uint16_t>(off);
  if (et == kEthIPv4) {
    out.status = parse_ipv4(f, off, out);
  } else if (et == kEthIPv6) {
    out.status = parse_ipv6(f, off, out);
  }
  return out.status;
}

}  // namespace aiqos
