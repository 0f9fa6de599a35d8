// TCP reassembly of one connection (both directions, through feed_tcp as the
// classifier calls it) over a sequence of segments encoded in the fuzz bytes:
//
//   config: 4 bytes (chunk size, pool chunks, per-flow bound, window)
//   then ops, each starting with a byte `op`:
//     op % 8 == 0..4  segment from side (op >> 3) & 1: flags u8, seq delta
//                     i16 (relative to that side's last seq), ack delta i16,
//                     payload length u8 (taken from the input)
//     op % 8 == 5     ACK only (on_peer_ack) for side (op >> 3) & 1
//     op % 8 == 6     abort() one side
//     op % 8 == 7     release() one side (flow teardown)
//
// Invariants checked after every op: pool accounting (chunks in use = the
// streams' chunks, bytes in use within the pool, per-flow bound), delivery
// contiguous and in order (the sink's count matches delivered_bytes()), and
// FIRST COPY WINS: a delivered byte equals the first copy of that stream
// offset the stream accepted.
#include <map>
#include <vector>

#include "classify/flow_table.h"
#include "classify/packet_parse.h"
#include "classify/tcp_reassembly.h"
#include "fuzz_input.h"

using namespace aiqos;

namespace {

struct SideState {
  uint64_t delivered = 0;           // counted by the sink
  std::map<uint64_t, uint8_t> first;  // stream offset -> first accepted copy
  uint32_t seq = 1000;
  uint32_t ack = 5000;
};

bool accepted(SegmentOutcome o) {
  return o == SegmentOutcome::delivered || o == SegmentOutcome::buffered_ooo ||
         o == SegmentOutcome::overlap_trimmed || o == SegmentOutcome::overlap_conflict;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  ReassemblyConfig cfg;
  cfg.chunk_bytes = 64u << (in.u8() % 4);                 // 64..512
  uint32_t chunks = 1 + in.u8() % 32;                     // pool of 1..32 chunks
  cfg.pool_bytes = uint64_t{chunks} * cfg.chunk_bytes;
  cfg.max_ooo_bytes_per_flow = cfg.chunk_bytes * (1 + in.u8() % 16);
  cfg.max_window_bytes = 1024u << (in.u8() % 12);
  ReassemblyPool pool(cfg);
  FUZZ_CHECK(pool.bytes_in_use() == 0);

  Flow flow{};
  SideState st[2];

  for (int ops = 0; !in.empty() && ops < 4096; ++ops) {
    uint8_t op = in.u8();
    uint8_t side = (op >> 3) & 1;
    SideState& s = st[side];
    TcpReassembly& rs = flow.stream[side];
    switch (op % 8) {
      default: {
        TcpSegment seg;
        seg.flags = in.u8();
        s.seq += static_cast<uint32_t>(static_cast<int16_t>(in.u16()));
        s.ack += static_cast<uint32_t>(static_cast<int16_t>(in.u16()));
        seg.seq = s.seq;
        seg.ack = s.ack;
        seg.payload = in.bytes(in.u8());

        // Where the segment lands in the stream, if the stream is open.
        const bool was_open = rs.state() == StreamState::open;
        const uint64_t next_off = rs.delivered_bytes();
        const uint32_t next_seq = rs.next_seq();

        uint64_t seen = s.delivered;
        auto sink = [&](std::span<const uint8_t> b) {
          FUZZ_CHECK(!b.empty());
          for (uint8_t c : b) {
            auto it = s.first.find(seen);
            if (it != s.first.end()) FUZZ_CHECK(it->second == c);
            ++seen;
          }
        };
        SegmentOutcome o = feed_tcp(flow, side, seg, pool, StreamSink(sink));
        FUZZ_CHECK(static_cast<size_t>(o) < kSegmentOutcomeCount);
        FUZZ_CHECK(segment_outcome_name(o) != nullptr);
        s.delivered = seen;

        // Record the first copy of each byte the stream took (offsets not yet
        // delivered when it arrived). SYN/RST segments map differently; skip.
        if (was_open && accepted(o) && !(seg.flags & (tcpflag::syn | tcpflag::rst))) {
          int64_t d = seq_diff(seg.seq, next_seq);
          for (size_t i = 0; i < seg.payload.size(); ++i) {
            int64_t off = static_cast<int64_t>(next_off) + d + static_cast<int64_t>(i);
            if (off < static_cast<int64_t>(next_off)) continue;
            s.first.emplace(static_cast<uint64_t>(off), seg.payload[i]);
          }
        }
        break;
      }
      case 5:
        flow.stream[side].on_peer_ack(s.ack + static_cast<uint32_t>(static_cast<int16_t>(in.u16())),
                                      pool);
        break;
      case 6:
        rs.abort(pool);
        break;
      case 7:
        rs.release(pool);
        st[side] = SideState{};
        break;
    }

    // Delivery and pool invariants.
    for (int i = 0; i < 2; ++i) {
      FUZZ_CHECK(st[i].delivered == flow.stream[i].delivered_bytes());
      FUZZ_CHECK(flow.stream[i].ooo_chunks() <= pool.max_chunks_per_flow());
      FUZZ_CHECK(flow.stream[i].ooo_bytes() <=
                 uint64_t{flow.stream[i].ooo_chunks()} * pool.chunk_bytes());
      if (flow.stream[i].state() != StreamState::open) FUZZ_CHECK(flow.stream[i].ooo_chunks() == 0);
    }
    FUZZ_CHECK(pool.chunks_in_use() == uint32_t{flow.stream[0].ooo_chunks()} + flow.stream[1].ooo_chunks());
    FUZZ_CHECK(pool.chunks_in_use() <= pool.chunks_total());
    FUZZ_CHECK(pool.bytes_in_use() <= pool.config().pool_bytes);
    FUZZ_CHECK(pool.chunks_high_water() <= pool.chunks_total());
  }

  flow.stream[0].release(pool);
  flow.stream[1].release(pool);
  FUZZ_CHECK(pool.chunks_in_use() == 0);
  FUZZ_CHECK(pool.bytes_in_use() == 0);
  return 0;
}
