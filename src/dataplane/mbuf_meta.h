// Per-packet metadata in the mbuf private area: written by the parse stage on
// the receiving worker, read by every later stage (and after a software
// dispatch hop, so nothing is parsed twice).
#pragma once

#include <rte_mbuf.h>

#include "classify/flow_key.h"
#include "classify/packet_parse.h"

namespace aiqos {

struct MbufMeta {
  PacketInfo pkt;
  FlowId flow;      // canonical key, direction and symmetric hash
  uint64_t rx_tsc;  // TSC when received
  uint16_t in_port;
  uint16_t worker;    // the worker that ran the pipeline on this frame
  uint16_t class_id;  // QoS class, set by the classify stage
  bool from_client;   // direction within its flow
  bool over_budget;   // drop: a request of its connection is over budget
};

inline constexpr uint16_t kMbufPrivSize = RTE_ALIGN_CEIL(sizeof(MbufMeta), RTE_MBUF_PRIV_ALIGN);
// Three cache lines: the flow key (40 bytes) is built once, by the parse
// stage, instead of again by the flow lookup (~35 instructions a frame).
static_assert(kMbufPrivSize <= 192, "keep the private area within three cache lines");

inline MbufMeta* meta(rte_mbuf* m) noexcept { return static_cast<MbufMeta*>(rte_mbuf_to_priv(m)); }

}  // namespace aiqos
