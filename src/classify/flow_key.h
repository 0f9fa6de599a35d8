// Canonical, direction-free key of a flow, and the symmetric hash that the
// software dispatcher and the flow table share. Both directions of a
// connection produce the same key and the same hash; `swapped` tells which
// direction a given packet travels relative to the canonical order.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#include "classify/packet_parse.h"

namespace aiqos {

struct FlowKey {
  std::array<uint8_t, 16> lo_addr{};  // the endpoint that sorts first
  std::array<uint8_t, 16> hi_addr{};
  uint16_t lo_port = 0;
  uint16_t hi_port = 0;
  uint16_t vlan = 0;  // innermost VLAN ID, 0 untagged
  uint8_t proto = 0;
  uint8_t family = 0;  // 4 or 6

  // Five 8-byte words, compared inline (the defaulted operator== becomes a
  // memcmp call, the largest single cost of a flow lookup hit).
  bool operator==(const FlowKey& o) const noexcept {
    uint64_t a[5], b[5];
    std::memcpy(a, this, sizeof(a));
    std::memcpy(b, &o, sizeof(b));
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4])) == 0;
  }
};
static_assert(sizeof(FlowKey) == 40, "FlowKey is hashed as raw bytes; no padding allowed");

// Builds the canonical key. Returns false for frames without an L4 5-tuple.
// `swapped` is set when the packet's source is the key's hi endpoint.
static_assert(std::endian::native == std::endian::little, "compare_addr byte-swaps to big-endian order");

// memcmp(a, b, 16) < 0, == 0, > 0 as -1, 0, 1: the same byte order, without a call.
inline int compare_addr(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b) noexcept {
  uint64_t x[2], y[2];
  std::memcpy(x, a.data(), 16);
  std::memcpy(y, b.data(), 16);
  for (int i = 0; i < 2; ++i) {
    if (x[i] != y[i]) return __builtin_bswap64(x[i]) < __builtin_bswap64(y[i]) ? -1 : 1;
  }
  return 0;
}

inline bool make_flow_key(const PacketInfo& p, FlowKey& k, bool& swapped) noexcept {
  if (!p.has_l4()) return false;
  k = FlowKey{};
  int c = compare_addr(p.src, p.dst);
  swapped = c > 0 || (c == 0 && p.sport > p.dport);
  const auto& a = swapped ? p.dst : p.src;
  const auto& b = swapped ? p.src : p.dst;
  k.lo_addr = a;
  k.hi_addr = b;
  k.lo_port = swapped ? p.dport : p.sport;
  k.hi_port = swapped ? p.sport : p.dport;
  k.vlan = p.vlan_id();
  k.proto = p.l4proto;
  k.family = p.l3 == L3Kind::ipv4 ? 4 : 6;
  return true;
}

// 64-bit hash over the canonical key (murmur-style finalizer over 8-byte words).
inline uint64_t flow_key_hash(const FlowKey& k) noexcept {
  uint64_t words[5];
  std::memcpy(words, &k, sizeof(words));
  uint64_t h = 0x9e3779b97f4a7c15ULL;
#pragma GCC unroll 5
  for (uint64_t w : words) {
    h ^= w;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
  }
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// Symmetric hash of any frame: the canonical 5-tuple hash when there is one;
// for IP without L4 (fragments), the unordered address pair; otherwise 0, so
// non-IP frames (ARP, LLDP) stay on one worker and keep their order.
inline uint64_t symmetric_hash(const PacketInfo& p) noexcept {
  FlowKey k;
  bool swapped;
  if (make_flow_key(p, k, swapped)) return flow_key_hash(k);
  if (p.l3 == L3Kind::none) return 0;
  k = FlowKey{};
  bool sw = compare_addr(p.src, p.dst) > 0;
  k.lo_addr = sw ? p.dst : p.src;
  k.hi_addr = sw ? p.src : p.dst;
  k.vlan = p.vlan_id();
  k.family = p.l3 == L3Kind::ipv4 ? 4 : 6;
  return flow_key_hash(k);
}

}  // namespace aiqos
