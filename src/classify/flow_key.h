// Canonical, direction-free key of a flow, and the symmetric hash that the
// software dispatcher and the flow table share. Both directions of a
// connection produce the same key and the same hash; `swapped` tells which
// direction a given packet travels relative to the canonical order.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
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

// IPv4 addresses as numbers that sort as memcmp sorts their bytes.
inline uint32_t ipv4_be(const std::array<uint8_t, 16>& a) noexcept {
  uint32_t v;
  std::memcpy(&v, a.data(), 4);
  return __builtin_bswap32(v);
}

// The key's last 8 bytes: ports, VLAN, protocol, family.
inline uint64_t flow_key_tail(uint16_t lo_port, uint16_t hi_port, uint16_t vlan, uint8_t proto,
                              uint8_t family) noexcept {
  return uint64_t{lo_port} | uint64_t{hi_port} << 16 | uint64_t{vlan} << 32 | uint64_t{proto} << 48 |
         uint64_t{family} << 56;
}
static_assert(offsetof(FlowKey, lo_port) == 32 && offsetof(FlowKey, family) == 39, "flow_key_tail's layout");

// Builds the canonical key. Returns false for frames without an L4 5-tuple.
// `swapped` is set when the packet's source is the key's hi endpoint.
inline bool make_flow_key(const PacketInfo& p, FlowKey& k, bool& swapped) noexcept {
  if (!p.has_l4()) return false;
  if (p.l3 == L3Kind::ipv4) {
    // The IPv4 case compares two numbers and stores five words.
    const uint32_t s = ipv4_be(p.src), d = ipv4_be(p.dst);
    swapped = s > d || (s == d && p.sport > p.dport);
    const uint64_t lo = __builtin_bswap32(swapped ? d : s), hi = __builtin_bswap32(swapped ? s : d), zero = 0;
    const uint64_t tail =
        flow_key_tail(swapped ? p.dport : p.sport, swapped ? p.sport : p.dport, p.vlan_id(), p.l4proto, 4);
    auto* out = reinterpret_cast<uint8_t*>(&k);
    std::memcpy(out, &lo, 8);
    std::memcpy(out + 8, &zero, 8);
    std::memcpy(out + 16, &hi, 8);
    std::memcpy(out + 24, &zero, 8);
    std::memcpy(out + 32, &tail, 8);
    return true;
  }
  int c = compare_addr(p.src, p.dst);
  swapped = c > 0 || (c == 0 && p.sport > p.dport);
  k.lo_addr = swapped ? p.dst : p.src;
  k.hi_addr = swapped ? p.src : p.dst;
  const uint64_t tail = flow_key_tail(swapped ? p.dport : p.sport, swapped ? p.sport : p.dport, p.vlan_id(),
                                      p.l4proto, 6);
  std::memcpy(&k.lo_port, &tail, sizeof(tail));
  return true;
}

// 64-bit hash over the canonical key: each 8-byte word times its own odd
// constant (five independent multiplies, no chain between them), then a
// murmur-style finalizer so that every bit of every word reaches the low bits
// (bucket choice) and the high bits (worker choice).
inline uint64_t flow_key_hash(const FlowKey& k) noexcept {
  uint64_t w[5];
  std::memcpy(w, &k, sizeof(w));
  uint64_t h = (w[0] * 0x9e3779b97f4a7c15ULL) ^ (w[1] * 0xc2b2ae3d27d4eb4fULL) ^ (w[2] * 0x165667b19e3779f9ULL) ^
               (w[3] * 0xd6e8feb86659fd93ULL) ^ (w[4] * 0xff51afd7ed558ccdULL);
  h ^= h >> 32;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 29;
  return h;
}

// The flow identity of one frame, computed once (the dataplane's parse stage)
// and used by every later stage: the software dispatcher (hash), the flow
// table (key, hash) and the direction (swapped).
struct FlowId {
  FlowKey key;         // valid when `keyed`
  uint64_t hash = 0;   // symmetric_hash(): flow_key_hash(key) when keyed
  bool keyed = false;  // the frame has an L4 5-tuple
  bool swapped = false;
};

// Fills `id` in place (the parse stage writes it straight into the mbuf).
// The hash: the canonical 5-tuple hash when there is one; for IP without L4
// (fragments), the unordered address pair; otherwise 0, so non-IP frames
// (ARP, LLDP) stay on one worker and keep their order.
inline void compute_flow_id(const PacketInfo& p, FlowId& id) noexcept {
  if (make_flow_key(p, id.key, id.swapped)) {
    id.keyed = true;
    id.hash = flow_key_hash(id.key);
    return;
  }
  id.keyed = id.swapped = false;
  id.hash = 0;
  if (p.l3 == L3Kind::none) return;
  FlowKey k{};
  bool sw = compare_addr(p.src, p.dst) > 0;
  k.lo_addr = sw ? p.dst : p.src;
  k.hi_addr = sw ? p.src : p.dst;
  k.vlan = p.vlan_id();
  k.family = p.l3 == L3Kind::ipv4 ? 4 : 6;
  id.hash = flow_key_hash(k);
}

inline FlowId flow_id(const PacketInfo& p) noexcept {
  FlowId id;
  compute_flow_id(p, id);
  return id;
}

inline uint64_t symmetric_hash(const PacketInfo& p) noexcept { return flow_id(p).hash; }

}  // namespace aiqos
