// Header rewrites of the marking stage, over the bytes of a frame whose
// layout the parse stage recorded (PacketInfo). Pure functions: no mbuf, no
// EAL, so they are tested byte for byte. Checksums stay right: the IPv4
// header checksum is updated incrementally (RFC 1624); TCP/UDP checksums do
// not cover the DSCP bits or the VLAN tag, so they need no change.
#pragma once

#include <cstdint>
#include <span>

#include "classify/packet_parse.h"

namespace aiqos {

// Sets the DSCP (upper 6 bits of IPv4 TOS / IPv6 traffic class), keeping ECN.
// Returns false when the frame has no IP header to mark.
bool set_dscp(std::span<uint8_t> frame, const PacketInfo& p, uint8_t dscp) noexcept;

// Rewrites the outermost VLAN tag in place: VID when vid >= 0, PCP when pcp >= 0.
// Returns false when the frame carries no tag.
bool rewrite_outer_tag(std::span<uint8_t> frame, const PacketInfo& p, int vid, int pcp) noexcept;

// The TCI to push on an untagged frame (DEI 0).
constexpr uint16_t make_tci(uint16_t vid, uint8_t pcp) noexcept {
  return static_cast<uint16_t>((uint16_t{pcp} << 13) | (vid & 0x0fff));
}

// RFC 1624 incremental update of a ones'-complement checksum when one 16-bit
// word changes from `old_word` to `new_word` (all in host order).
constexpr uint16_t csum_update16(uint16_t csum, uint16_t old_word, uint16_t new_word) noexcept {
  uint32_t s = static_cast<uint16_t>(~csum) + static_cast<uint16_t>(~old_word) + uint32_t{new_word};
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

// Full IPv4 header checksum (for tests and verification).
uint16_t ipv4_header_checksum(const uint8_t* ip, size_t ihl_bytes) noexcept;

}  // namespace aiqos
