// L2/L3/L4 decode over a byte span: Ethernet, up to two VLAN tags (802.1Q,
// 802.1ad QinQ), IPv4 (options, fragments), IPv6 (extension headers), TCP, UDP.
// Pure C++, no EAL: the dataplane calls it on mbuf data, the fuzzers on bytes.
//
// Untrusted input: every length is checked against the span; a frame that
// does not decode is reported through `status`, never asserted on. The caller
// forwards it regardless (fail open).
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace aiqos {

enum class L3Kind : uint8_t { none, ipv4, ipv6 };

// Outcome of decoding, from "fully decoded" to the first layer that failed.
// Each value maps to a per-worker counter, so keep names stable.
#define AIQOS_PARSE_STATUS(X)                                                        \
  X(ok, "decoded to L4 (or a non-IP ethertype)")                                     \
  X(short_l2, "frame shorter than its Ethernet/VLAN header")                          \
  X(too_many_vlans, "more than two VLAN tags")                                       \
  X(bad_l3, "IP header truncated or with a bad version/length field")               \
  X(fragment, "IP fragment: L4 not decoded")                                         \
  X(bad_l4, "TCP/UDP header truncated or with a bad data offset")

enum class ParseStatus : uint8_t {
#define X(name, desc) name,
  AIQOS_PARSE_STATUS(X)
#undef X
      count_
};
const char* parse_status_name(ParseStatus s) noexcept;

namespace tcpflag {
inline constexpr uint8_t fin = 0x01, syn = 0x02, rst = 0x04, psh = 0x08, ack = 0x10;
}

struct PacketInfo {
  // L2
  uint16_t ethertype = 0;  // innermost ethertype (after VLAN tags)
  uint8_t n_vlans = 0;
  std::array<uint16_t, 2> vlan_tci{};  // outer tag first
  std::array<uint16_t, 2> vlan_tpid{};
  uint16_t l3_off = 0;
  // L3
  L3Kind l3 = L3Kind::none;
  uint8_t l4proto = 0;
  uint8_t tos = 0;  // IPv4 TOS / IPv6 traffic class
  std::array<uint8_t, 16> src{};  // IPv4 in the first 4 bytes
  std::array<uint8_t, 16> dst{};
  uint16_t l4_off = 0;
  // L4
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint8_t tcp_flags = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint16_t payload_off = 0;
  uint16_t payload_len = 0;  // bounded by the IP total length, not the frame
  ParseStatus status = ParseStatus::ok;

  bool has_l4() const noexcept {
    return status == ParseStatus::ok && (l4proto == 6 || l4proto == 17);
  }
  // Innermost VLAN ID, or 0 for untagged.
  uint16_t vlan_id() const noexcept {
    return n_vlans ? static_cast<uint16_t>(vlan_tci[n_vlans - 1] & 0x0fff) : 0;
  }
};

// Decodes `frame`. Always fills what it could decode; returns out.status.
ParseStatus parse_packet(std::span<const uint8_t> frame, PacketInfo& out) noexcept;

}  // namespace aiqos
