// Per-packet metadata in the mbuf private area: written by the parse stage on
// the receiving worker, read by every later stage (and after a software
// dispatch hop, so nothing is parsed twice).
#pragma once

#include <rte_mbuf.h>

#include "classify/packet_parse.h"

namespace aiqos {

struct MbufMeta {
  PacketInfo pkt;
  uint64_t hash;    // symmetric flow hash
  uint64_t rx_tsc;  // TSC when received
  uint16_t in_port;
  uint16_t worker;    // the worker that ran the pipeline on this frame
  uint16_t class_id;  // QoS class, set by the classify stage
  bool from_client;   // direction within its flow
  bool over_budget;   // drop: a request of its connection is over budget
};

inline constexpr uint16_t kMbufPrivSize = RTE_ALIGN_CEIL(sizeof(MbufMeta), RTE_MBUF_PRIV_ALIGN);
static_assert(kMbufPrivSize <= 128, "keep the private area within two cache lines");

inline MbufMeta* meta(rte_mbuf* m) noexcept { return static_cast<MbufMeta*>(rte_mbuf_to_priv(m)); }

}  // namespace aiqos
