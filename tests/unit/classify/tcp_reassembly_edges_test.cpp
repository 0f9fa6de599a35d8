// Reassembly at its edges: bounds, FIN and RST, ACKs past a hole, the handshake.
#include "classify/tcp_reassembly.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "classify/packet_parse.h"

#include "reassembly_harness.h"

namespace aiqos {
namespace {

// ---------------------------------------------------------------- bounds

TEST(TcpReassembly, PerFlowBoundFailsDirection) {
  ReassemblyConfig cfg = small_cfg();
  cfg.max_ooo_bytes_per_flow = 256;  // 4 chunks of 64
  Harness h(1000, cfg);
  ASSERT_EQ(h.pool.max_chunks_per_flow(), 4u);
  for (uint32_t off : {100u, 200u, 300u, 400u}) {
    EXPECT_EQ(h.at(off, "z"), SegmentOutcome::buffered_ooo);  // one byte, one chunk each
  }
  EXPECT_EQ(h.s.ooo_chunks(), 4u);
  EXPECT_EQ(h.at(110, "z"), SegmentOutcome::buffered_ooo);  // same chunk as 100
  EXPECT_EQ(h.at(500, "z"), SegmentOutcome::dropped_bound);
  EXPECT_EQ(h.s.state(), StreamState::failed);
  EXPECT_EQ(h.s.fail_reason(), StreamFail::ooo_bound);
  EXPECT_EQ(h.pool.chunks_in_use(), 0u);
  EXPECT_EQ(h.ref(0, 40), SegmentOutcome::stream_failed);
  EXPECT_EQ(h.c.out, "");
  EXPECT_EQ(h.pool.counters().failure(StreamFail::ooo_bound), 1u);
  EXPECT_EQ(h.pool.counters().outcome(SegmentOutcome::dropped_bound), 1u);
}

TEST(TcpReassembly, OneLargeSegmentOverPerFlowBound) {
  ReassemblyConfig cfg = small_cfg();
  cfg.max_ooo_bytes_per_flow = 256;
  Harness h(1000, cfg);
  std::string big(300, 'q');  // offset 1..300 spans 5 chunks
  EXPECT_EQ(h.at(1, big), SegmentOutcome::dropped_bound);
  EXPECT_EQ(h.pool.chunks_in_use(), 0u);
}

TEST(TcpReassembly, PoolExhaustionFailsOnlyThatDirection) {
  ReassemblyConfig cfg = small_cfg();
  cfg.pool_bytes = 8 * 64;  // 8 chunks in all
  ReassemblyPool pool(cfg);
  ASSERT_EQ(pool.chunks_total(), 8u);
  std::array<TcpReassembly, 3> st;
  Collector out[3];
  auto feed = [&](int i, uint32_t seq, std::string_view d, uint8_t fl = tcpflag::ack) {
    auto o = st[i].on_segment(TcpSegment{.flags = fl, .seq = seq, .ack = 0, .payload = as_bytes(d)},
                              pool, out[i]);
    EXPECT_LE(pool.chunks_in_use(), pool.chunks_total());
    EXPECT_LE(pool.bytes_in_use(), cfg.pool_bytes);
    return o;
  };
  for (int i = 0; i < 3; ++i) feed(i, 0, "", tcpflag::syn);
  std::string chunkful(64, 'c');
  for (int i = 0; i < 2; ++i) {
    for (uint32_t k = 1; k <= 4; ++k) {
      EXPECT_EQ(feed(i, 1 + k * 64, chunkful), SegmentOutcome::buffered_ooo);
    }
  }
  EXPECT_EQ(pool.chunks_in_use(), 8u);
  EXPECT_EQ(feed(2, 1 + 64, "c"), SegmentOutcome::dropped_pool);
  EXPECT_EQ(st[2].state(), StreamState::failed);
  EXPECT_EQ(st[2].fail_reason(), StreamFail::pool_exhausted);
  EXPECT_EQ(pool.counters().failure(StreamFail::pool_exhausted), 1u);
  // The others are intact and recover once their gap is filled.
  EXPECT_EQ(feed(0, 1, std::string(64, 'c')), SegmentOutcome::delivered);
  EXPECT_EQ(out[0].out, std::string(5 * 64, 'c'));
  EXPECT_EQ(pool.chunks_in_use(), 4u);
  EXPECT_EQ(pool.chunks_high_water(), 8u);
  st[1].release(pool);
  EXPECT_EQ(pool.chunks_in_use(), 0u);
  EXPECT_EQ(st[1].state(), StreamState::idle);
}

TEST(TcpReassembly, PoolNeverExceedsBoundUnderRandomLoad) {
  ReassemblyConfig cfg{.pool_bytes = 32 * 128,
                       .chunk_bytes = 128,
                       .max_ooo_bytes_per_flow = 8 * 128,
                       .max_window_bytes = 1 << 14};
  ReassemblyPool pool(cfg);
  const uint64_t mem = pool.memory_bytes();
  std::array<TcpReassembly, 16> st;
  std::mt19937 rng(77);
  std::string payload(400, 'p');
  auto sink = [](std::span<const uint8_t>) {};
  for (int i = 0; i < 20000; ++i) {
    size_t f = rng() % st.size();
    if (rng() % 500 == 0) {
      st[f].release(pool);
      continue;
    }
    uint8_t fl = st[f].state() == StreamState::idle ? tcpflag::syn : tcpflag::ack;
    uint32_t seq = rng() % 4000;
    st[f].on_segment(TcpSegment{.flags = fl,
                                .seq = seq,
                                .ack = 0,
                                .payload = std::span(reinterpret_cast<const uint8_t*>(payload.data()),
                                                     1 + rng() % payload.size())},
                     pool, sink);
    ASSERT_LE(pool.chunks_in_use(), pool.chunks_total());
    ASSERT_LE(pool.bytes_in_use(), cfg.pool_bytes);
    for (const auto& s : st) ASSERT_LE(s.ooo_chunks(), pool.max_chunks_per_flow());
  }
  EXPECT_GT(pool.counters().failure(StreamFail::ooo_bound) +
                pool.counters().failure(StreamFail::pool_exhausted),
            0u);
  for (auto& s : st) s.release(pool);
  EXPECT_EQ(pool.chunks_in_use(), 0u);
  EXPECT_EQ(pool.memory_bytes(), mem);
}

// Untrusted input: any flags, any sequence numbers, any lengths, ACKs from
// the other side. Nothing asserts; bounds and accounting hold throughout.
TEST(TcpReassembly, RandomGarbageKeepsInvariants) {
  ReassemblyConfig cfg{.pool_bytes = 64 * 256,
                       .chunk_bytes = 256,
                       .max_ooo_bytes_per_flow = 16 * 256,
                       .max_window_bytes = 1 << 13};
  ReassemblyPool pool(cfg);
  std::array<TcpReassembly, 8> st;
  std::array<uint64_t, 8> got{};
  std::vector<uint8_t> payload(3000, 0xab);
  std::mt19937 rng(4242);
  for (int i = 0; i < 50000; ++i) {
    size_t f = rng() % st.size();
    auto count = [&](std::span<const uint8_t> b) { got[f] += b.size(); };
    uint32_t base = 0x7FFFF000u * static_cast<uint32_t>(f);  // some streams near 2^31/2^32
    uint32_t seq = rng() % 8 == 0 ? static_cast<uint32_t>(rng()) : base + rng() % 20000;
    switch (rng() % 16) {
      case 0: st[f].release(pool); got[f] = 0; break;
      case 1: st[f].on_peer_ack(seq, pool); break;
      default:
        st[f].on_segment(TcpSegment{.flags = static_cast<uint8_t>(rng()),
                                    .seq = seq,
                                    .ack = 0,
                                    .payload = std::span(payload).first(rng() % payload.size())},
                         pool, count);
    }
    ASSERT_LE(pool.chunks_in_use(), pool.chunks_total());
    ASSERT_LE(st[f].ooo_chunks(), pool.max_chunks_per_flow());
    ASSERT_LE(st[f].ooo_bytes(), st[f].ooo_chunks() * uint64_t{pool.chunk_bytes()});
    ASSERT_EQ(got[f], st[f].delivered_bytes());
  }
  uint32_t held = 0;
  for (auto& s : st) held += s.ooo_chunks();
  EXPECT_EQ(held, pool.chunks_in_use());
  for (auto& s : st) s.release(pool);
  EXPECT_EQ(pool.chunks_in_use(), 0u);
}

TEST(TcpReassembly, BeyondWindowIgnoredNotFailed) {
  Harness h;  // window 1 << 16
  EXPECT_EQ(h.at((1 << 16) + 1, "far"), SegmentOutcome::beyond_window);
  EXPECT_EQ(h.s.state(), StreamState::open);
  EXPECT_EQ(h.pool.chunks_in_use(), 0u);
  EXPECT_EQ(h.at(1 << 16, "x"), SegmentOutcome::buffered_ooo);
  EXPECT_EQ(h.ref(0, 40), SegmentOutcome::delivered);
  EXPECT_EQ(h.c.out, kRef);
}

// ---------------------------------------------------------------- FIN / RST

TEST(TcpReassembly, FinInOrderClosesAndConsumesOneSeq) {
  Harness h;
  EXPECT_EQ(h.ref(0, 10), SegmentOutcome::delivered);
  EXPECT_EQ(h.ref(10, 20, tcpflag::ack | tcpflag::fin), SegmentOutcome::delivered);
  EXPECT_EQ(h.s.state(), StreamState::closed);
  EXPECT_TRUE(h.s.fin_seen());
  EXPECT_EQ(h.s.next_seq(), h.isn + 1 + 20 + 1);
  EXPECT_EQ(h.ref(20, 30), SegmentOutcome::after_fin);
  EXPECT_EQ(h.at(20, "", tcpflag::ack | tcpflag::fin), SegmentOutcome::retransmission_ignored);
  EXPECT_EQ(h.at(21, ""), SegmentOutcome::no_payload);
  EXPECT_FALSE(h.s.on_peer_ack(h.isn + 22, h.pool));  // ACK of the FIN
  EXPECT_EQ(h.c.out, kRef.substr(0, 20));
}

TEST(TcpReassembly, BareFinInOrder) {
  Harness h;
  h.ref(0, 10);
  EXPECT_EQ(h.at(10, "", tcpflag::ack | tcpflag::fin), SegmentOutcome::fin);
  EXPECT_EQ(h.s.state(), StreamState::closed);
  EXPECT_EQ(h.s.next_seq(), h.isn + 12);
}

TEST(TcpReassembly, FinOutOfOrderClosesAfterGapFill) {
  Harness h;
  EXPECT_EQ(h.ref(0, 10), SegmentOutcome::delivered);
  EXPECT_EQ(h.ref(20, 30, tcpflag::ack | tcpflag::fin), SegmentOutcome::buffered_ooo);
  EXPECT_EQ(h.s.state(), StreamState::open);
  EXPECT_EQ(h.ref(30, 40), SegmentOutcome::after_fin);  // past the FIN
  EXPECT_EQ(h.ref(10, 20), SegmentOutcome::delivered);
  EXPECT_EQ(h.s.state(), StreamState::closed);
  EXPECT_EQ(h.c.out, kRef.substr(0, 30));
  EXPECT_EQ(h.pool.chunks_in_use(), 0u);
  EXPECT_EQ(h.pool.counters().after_fin_bytes, 10u);
}

TEST(TcpReassembly, FinTrimsBufferedAndLaterData) {
  Harness h;
  EXPECT_EQ(h.ref(25, 40), SegmentOutcome::buffered_ooo);  // will lie past the FIN
  EXPECT_EQ(h.at(20, "", tcpflag::ack | tcpflag::fin), SegmentOutcome::fin);
  EXPECT_EQ(h.ref(0, 30), SegmentOutcome::delivered);  // trimmed to [0, 20)
  EXPECT_EQ(h.c.out, kRef.substr(0, 20));
  EXPECT_EQ(h.s.state(), StreamState::closed);
  EXPECT_EQ(h.pool.chunks_in_use(), 0u);
  EXPECT_EQ(h.pool.counters().after_fin_bytes, 10u);
}

TEST(TcpReassembly, RstInWindowClosesAndReleases) {
  Harness h;
  h.ref(0, 10);
  h.ref(20, 30);
  ASSERT_EQ(h.pool.chunks_in_use(), 1u);
  EXPECT_EQ(h.at(5, "", tcpflag::rst), SegmentOutcome::rst_ignored);  // behind next
  EXPECT_EQ(h.at((1 << 16) + 11, "", tcpflag::rst), SegmentOutcome::rst_ignored);  // far ahead
  EXPECT_EQ(h.s.state(), StreamState::open);
  EXPECT_EQ(h.at(10, "", tcpflag::rst | tcpflag::ack), SegmentOutcome::rst);
  EXPECT_EQ(h.s.state(), StreamState::reset);
  EXPECT_EQ(h.pool.chunks_in_use(), 0u);
  EXPECT_EQ(h.ref(10, 20), SegmentOutcome::after_fin);
  EXPECT_EQ(h.c.out, kRef.substr(0, 10));
}

TEST(TcpReassembly, RstAfterFinIsValidatedToo) {
  Harness h;
  h.ref(0, 10, tcpflag::ack | tcpflag::fin);  // FIN at offset 10, next is 11
  ASSERT_EQ(h.s.state(), StreamState::closed);
  EXPECT_EQ(h.at(3, "", tcpflag::rst), SegmentOutcome::rst_ignored);
  EXPECT_EQ(h.s.state(), StreamState::closed);
  EXPECT_EQ(h.at(10, "", tcpflag::rst), SegmentOutcome::rst);  // at the FIN's number
  EXPECT_EQ(h.s.state(), StreamState::reset);
  EXPECT_EQ(h.at(10, "", tcpflag::rst), SegmentOutcome::rst);  // idempotent
}

TEST(TcpReassembly, RstOnIdleStream) {
  Harness h(7, small_cfg(), false);
  EXPECT_EQ(h.seg(tcpflag::rst, 12345, ""), SegmentOutcome::rst);
  EXPECT_EQ(h.s.state(), StreamState::reset);
}

// ---------------------------------------------------------------- ACK past a hole

TEST(TcpReassembly, PeerAckPastHoleFails) {
  ReassemblyConfig cfg = small_cfg();
  cfg.acked_hole_grace = 0;  // fail at the first ACK past the hole
  Harness h(1000, cfg);
  h.ref(0, 10);
  h.ref(20, 30);
  EXPECT_FALSE(h.s.on_peer_ack(h.isn + 1 + 5, h.pool));   // behind
  EXPECT_FALSE(h.s.on_peer_ack(h.isn + 1 + 10, h.pool));  // exactly next
  EXPECT_FALSE(h.s.on_peer_ack(h.isn + 1 + (1 << 20), h.pool));  // bogus, beyond window
  EXPECT_EQ(h.s.state(), StreamState::open);
  EXPECT_TRUE(h.s.on_peer_ack(h.isn + 1 + 30, h.pool));  // receiver has [10,20) we never saw
  EXPECT_EQ(h.s.state(), StreamState::failed);
  EXPECT_EQ(h.s.fail_reason(), StreamFail::acked_hole);
  EXPECT_EQ(h.pool.chunks_in_use(), 0u);
  EXPECT_EQ(h.ref(10, 20), SegmentOutcome::stream_failed);
  EXPECT_EQ(h.c.out, kRef.substr(0, 10));
  EXPECT_EQ(h.pool.counters().failure(StreamFail::acked_hole), 1u);
}

// An ACK may reach the tap before the data it acknowledges (two capture
// points merged, a mirror): the data then arrives and fills the hole. Only
// segments that land past a still-acknowledged hole count against the grace.
TEST(TcpReassembly, PeerAckAheadOfDataWithinGrace) {
  ReassemblyConfig cfg = small_cfg();
  cfg.acked_hole_grace = 2;
  Harness h(1000, cfg);
  h.ref(0, 10);
  EXPECT_FALSE(h.s.on_peer_ack(h.isn + 1 + 40, h.pool));  // far ahead of the data
  EXPECT_FALSE(h.s.on_peer_ack(h.isn + 1 + 40, h.pool));  // ACKs alone never count
  for (uint32_t b = 10; b < 40; b += 5) EXPECT_EQ(h.ref(b, b + 5), SegmentOutcome::delivered);
  EXPECT_EQ(h.s.state(), StreamState::open);
  EXPECT_EQ(h.c.out, kRef.substr(0, 40));
  EXPECT_EQ(h.pool.counters().acked_ahead, 1u);
  EXPECT_EQ(h.pool.counters().acked_ahead_filled, 1u);
}

TEST(TcpReassembly, AckedHoleFailsAfterGraceOfUndeliverableSegments) {
  ReassemblyConfig cfg = small_cfg();
  cfg.acked_hole_grace = 2;
  Harness h(1000, cfg);
  h.ref(0, 10);
  EXPECT_FALSE(h.s.on_peer_ack(h.isn + 1 + 30, h.pool));  // [10,20) never comes
  EXPECT_EQ(h.ref(20, 25), SegmentOutcome::buffered_ooo);  // strike 1
  EXPECT_EQ(h.ref(25, 30), SegmentOutcome::buffered_ooo);  // strike 2
  EXPECT_EQ(h.s.state(), StreamState::open);
  EXPECT_EQ(h.ref(30, 35), SegmentOutcome::buffered_ooo);  // strike 3: over the grace
  EXPECT_EQ(h.s.state(), StreamState::failed);
  EXPECT_EQ(h.s.fail_reason(), StreamFail::acked_hole);
  EXPECT_EQ(h.pool.chunks_in_use(), 0u);
  EXPECT_EQ(h.pool.counters().failure(StreamFail::acked_hole), 1u);
  EXPECT_EQ(h.c.out, kRef.substr(0, 10));
}

TEST(TcpReassembly, PeerAckIgnoredBeforeStreamStarts) {
  Harness h(7, small_cfg(), false);
  EXPECT_FALSE(h.s.on_peer_ack(99999, h.pool));
  EXPECT_EQ(h.s.state(), StreamState::idle);
}

// ---------------------------------------------------------------- handshake

TEST(TcpReassembly, MissedHandshakeStartsAtFirstData) {
  Harness h(0, small_cfg(), false);
  EXPECT_EQ(h.seg(tcpflag::ack, 5000, ""), SegmentOutcome::no_payload);
  EXPECT_EQ(h.s.state(), StreamState::idle);
  EXPECT_EQ(h.seg(tcpflag::ack, 5010, kRef.substr(10, 10)), SegmentOutcome::delivered);
  EXPECT_TRUE(h.s.midstream());
  EXPECT_FALSE(h.s.syn_seen());
  EXPECT_EQ(h.s.isn(), 5009u);
  EXPECT_EQ(h.seg(tcpflag::ack, 5000, kRef.substr(0, 10)), SegmentOutcome::retransmission_ignored);
  EXPECT_EQ(h.seg(tcpflag::ack, 5030, kRef.substr(30, 10)), SegmentOutcome::buffered_ooo);
  EXPECT_EQ(h.seg(tcpflag::ack, 5015, kRef.substr(15, 15)), SegmentOutcome::overlap_trimmed);
  EXPECT_EQ(h.c.out, kRef.substr(10));
  // A SYN with another ISN after data is not believed.
  EXPECT_EQ(h.seg(tcpflag::syn, 1, ""), SegmentOutcome::bad_syn);
}

TEST(TcpReassembly, SynRetransmissionAndSynAck) {
  Harness h(0xFFFFFFFFu);  // SYN at the last sequence number: data starts at 0
  EXPECT_EQ(h.syn(), SegmentOutcome::syn);
  EXPECT_EQ(h.s.next_seq(), 0u);
  EXPECT_EQ(h.seg(tcpflag::ack, 0, "abc"), SegmentOutcome::delivered);
  Harness server(5555, small_cfg(), false);
  EXPECT_EQ(server.seg(tcpflag::syn | tcpflag::ack, 5555, ""), SegmentOutcome::syn);
  EXPECT_TRUE(server.s.syn_seen());
  EXPECT_EQ(server.s.next_seq(), 5556u);
}

TEST(TcpReassembly, SynWithDataFastOpen) {
  Harness h(100, small_cfg(), false);
  EXPECT_EQ(h.seg(tcpflag::syn, 100, kRef.substr(0, 5)), SegmentOutcome::delivered);
  EXPECT_EQ(h.seg(tcpflag::ack, 106, kRef.substr(5, 5)), SegmentOutcome::delivered);
  EXPECT_EQ(h.c.out, kRef.substr(0, 10));
}

TEST(TcpReassembly, NewIsnBeforeAnyDataReplacesOld) {
  Harness h(100);
  EXPECT_EQ(h.seg(tcpflag::syn, 900, ""), SegmentOutcome::syn);
  EXPECT_EQ(h.s.isn(), 900u);
  EXPECT_EQ(h.seg(tcpflag::ack, 901, "ok"), SegmentOutcome::delivered);
}

TEST(TcpReassembly, ReleaseReturnsBuffersAndResets) {
  Harness h;
  h.ref(10, 20);
  h.ref(30, 40);
  EXPECT_EQ(h.pool.chunks_in_use(), 1u);
  EXPECT_EQ(h.s.ooo_bytes(), 20u);
  h.s.release(h.pool);
  EXPECT_EQ(h.pool.chunks_in_use(), 0u);
  EXPECT_EQ(h.s.state(), StreamState::idle);
  EXPECT_EQ(h.s.ooo_bytes(), 0u);
}

TEST(ReassemblyPool, ConfigIsSanitizedAndMemoryFixed) {
  ReassemblyPool p(ReassemblyConfig{.pool_bytes = 1000,
                                    .chunk_bytes = 100,  // -> 128
                                    .max_ooo_bytes_per_flow = 129,
                                    .max_window_bytes = 0xFFFFFFFFu});
  EXPECT_EQ(p.chunk_bytes(), 128u);
  EXPECT_EQ(p.chunks_total(), 7u);
  EXPECT_EQ(p.max_chunks_per_flow(), 2u);
  EXPECT_EQ(p.config().max_window_bytes, 1u << 30);
  EXPECT_LE(p.chunks_total() * uint64_t{p.chunk_bytes()}, 1000u);
  EXPECT_EQ(p.memory_bytes(), 7u * (128 + 16 + 16));
}

TEST(TcpReassembly, SizeIsSmall) {
  static_assert(sizeof(TcpReassembly) <= 64, "two per flow: keep it small");
  EXPECT_LE(sizeof(TcpReassembly), 64u);
}

}  // namespace
}  // namespace aiqos
