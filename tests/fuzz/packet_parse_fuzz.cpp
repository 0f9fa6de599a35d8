// parse_packet over arbitrary frames: L2 (VLAN stacks), IPv4 (IHL, total
// length, fragments), IPv6 (extension headers), TCP/UDP (data offset).
// Checks that every offset it reports lies inside the frame and that the flow
// key and hash are direction free.
#include <cstring>

#include "classify/flow_key.h"
#include "classify/packet_parse.h"
#include "fuzz_input.h"

using namespace aiqos;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A frame is one mbuf segment: data_len is 16 bits.
  if (size > 65535) return 0;
  std::span<const uint8_t> frame{data, size};
  PacketInfo p;
  ParseStatus st = parse_packet(frame, p);
  FUZZ_CHECK(st == p.status);
  FUZZ_CHECK(static_cast<size_t>(st) < static_cast<size_t>(ParseStatus::count_));
  FUZZ_CHECK(parse_status_name(st) != nullptr);
  FUZZ_CHECK(p.n_vlans <= 2);
  if (p.l3 != L3Kind::none) FUZZ_CHECK(p.l3_off <= size);
  if (p.has_l4()) {
    FUZZ_CHECK(p.l3_off <= p.l4_off);
    FUZZ_CHECK(p.l4_off <= p.payload_off);
    FUZZ_CHECK(size_t{p.payload_off} + p.payload_len <= size);
    // The classifier takes exactly this subspan.
    fuzz::touch(frame.subspan(p.payload_off, p.payload_len));

    FlowKey k;
    bool swapped = false;
    FUZZ_CHECK(make_flow_key(p, k, swapped));
    // The reverse direction gives the same key and hash, the other side.
    PacketInfo r = p;
    std::swap(r.src, r.dst);
    std::swap(r.sport, r.dport);
    FlowKey rk;
    bool rswapped = false;
    FUZZ_CHECK(make_flow_key(r, rk, rswapped));
    FUZZ_CHECK(rk == k);
    bool same_endpoint = p.src == p.dst && p.sport == p.dport;
    FUZZ_CHECK(same_endpoint || rswapped != swapped);
    FUZZ_CHECK(symmetric_hash(p) == symmetric_hash(r));
  } else {
    FlowKey k;
    bool swapped;
    FUZZ_CHECK(!make_flow_key(p, k, swapped));
    (void)symmetric_hash(p);
  }
  return 0;
}
