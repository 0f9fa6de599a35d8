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

namespace aiqos {

// gtest prints outcomes by name (found by ADL). Inline: the same definition
// appears in flow_table_test.cpp.
inline void PrintTo(SegmentOutcome o, std::ostream* os) { *os << segment_outcome_name(o); }

namespace {

constexpr std::string_view kRef = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn";  // 40 bytes

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct Collector {
  std::string out;
  std::vector<std::span<const uint8_t>> calls;
  void operator()(std::span<const uint8_t> b) {
    out.append(reinterpret_cast<const char*>(b.data()), b.size());
    calls.push_back(b);
  }
};

ReassemblyConfig small_cfg() {
  return ReassemblyConfig{.pool_bytes = 64 * 64,
                          .chunk_bytes = 64,
                          .max_ooo_bytes_per_flow = 1024,
                          .max_window_bytes = 1 << 16};
}

// One direction with its pool; offsets are stream offsets (0 = first byte after the SYN).
struct Harness {
  ReassemblyPool pool;
  TcpReassembly s;
  Collector c;
  uint32_t isn;

  explicit Harness(uint32_t isn_ = 1000, const ReassemblyConfig& cfg = small_cfg(),
                   bool with_syn = true)
      : pool(cfg), isn(isn_) {
    if (with_syn) {
      EXPECT_EQ(syn(), SegmentOutcome::syn);
    }
  }
  SegmentOutcome syn() { return seg(tcpflag::syn, isn, {}); }
  SegmentOutcome seg(uint8_t flags, uint32_t seq, std::string_view data) {
    return s.on_segment(TcpSegment{.flags = flags, .seq = seq, .ack = 0, .payload = as_bytes(data)},
                        pool, c);
  }
  SegmentOutcome at(uint64_t off, std::string_view data, uint8_t flags = tcpflag::ack) {
    return seg(flags, isn + 1 + static_cast<uint32_t>(off), data);
  }
  SegmentOutcome ref(uint32_t b, uint32_t e, uint8_t flags = tcpflag::ack) {
    return at(b, kRef.substr(b, e - b), flags);
  }
};

TEST(SeqArith, WrapsAround) {
  EXPECT_TRUE(seq_lt(0xFFFFFFFFu, 0u));
  EXPECT_TRUE(seq_gt(5u, 0xFFFFFFF0u));
  EXPECT_EQ(seq_diff(3u, 0xFFFFFFFEu), 5);
  EXPECT_EQ(seq_diff(0xFFFFFFFEu, 3u), -5);
  EXPECT_TRUE(seq_le(7u, 7u));
  EXPECT_TRUE(seq_ge(7u, 7u));
}

TEST(SegmentOutcome, NamesAreDistinct) {
  std::set<std::string> names;
  for (size_t i = 0; i < kSegmentOutcomeCount; ++i) {
    std::string n = segment_outcome_name(static_cast<SegmentOutcome>(i));
    EXPECT_NE(n, "unknown");
    names.insert(n);
  }
  EXPECT_EQ(names.size(), kSegmentOutcomeCount);
  EXPECT_STREQ(stream_fail_name(StreamFail::acked_hole), "acked_hole");
}

TEST(TcpReassembly, InOrderIsZeroCopy) {
  Harness h;
  std::string a(kRef.substr(0, 10)), b(kRef.substr(10, 30));
  EXPECT_EQ(h.at(0, a), SegmentOutcome::delivered);
  EXPECT_EQ(h.at(10, b), SegmentOutcome::delivered);
  EXPECT_EQ(h.c.out, kRef);
  ASSERT_EQ(h.c.calls.size(), 2u);
  EXPECT_EQ(h.c.calls[0].data(), reinterpret_cast<const uint8_t*>(a.data()));
  EXPECT_EQ(h.c.calls[1].data(), reinterpret_cast<const uint8_t*>(b.data()));
  EXPECT_EQ(h.s.next_seq(), h.isn + 41);
  EXPECT_EQ(h.s.delivered_bytes(), 40u);
  EXPECT_EQ(h.pool.chunks_high_water(), 0u);
  EXPECT_EQ(h.pool.counters().bytes_zero_copy, 40u);
}

TEST(TcpReassembly, PureAckAndKeepaliveDeliverNothing) {
  Harness h;
  EXPECT_EQ(h.at(0, ""), SegmentOutcome::no_payload);
  EXPECT_EQ(h.ref(0, 5), SegmentOutcome::delivered);
  // Keepalive: one old byte.
  EXPECT_EQ(h.at(4, "x"), SegmentOutcome::retransmission_ignored);
  EXPECT_EQ(h.c.out, kRef.substr(0, 5));
}

TEST(TcpReassembly, OutOfOrderThenGapFill) {
  Harness h;
  EXPECT_EQ(h.ref(20, 40), SegmentOutcome::buffered_ooo);
  EXPECT_EQ(h.ref(10, 20), SegmentOutcome::buffered_ooo);
  EXPECT_EQ(h.c.out, "");
  EXPECT_EQ(h.s.ooo_bytes(), 30u);
  EXPECT_EQ(h.ref(0, 10), SegmentOutcome::delivered);
  EXPECT_EQ(h.c.out, kRef);
  EXPECT_EQ(h.s.ooo_bytes(), 0u);
  EXPECT_EQ(h.s.ooo_chunks(), 0u);
  EXPECT_EQ(h.pool.chunks_in_use(), 0u);
  EXPECT_EQ(h.pool.counters().bytes_from_pool, 30u);
  EXPECT_EQ(h.pool.counters().bytes_zero_copy, 10u);
}

TEST(TcpReassembly, RetransmissionsIgnored) {
  Harness h;
  EXPECT_EQ(h.ref(0, 10), SegmentOutcome::delivered);
  EXPECT_EQ(h.ref(0, 10), SegmentOutcome::retransmission_ignored);
  EXPECT_EQ(h.ref(20, 30), SegmentOutcome::buffered_ooo);
  EXPECT_EQ(h.ref(20, 30), SegmentOutcome::retransmission_ignored);
  EXPECT_EQ(h.ref(22, 25), SegmentOutcome::retransmission_ignored);
  EXPECT_EQ(h.ref(10, 30), SegmentOutcome::overlap_trimmed);
  EXPECT_EQ(h.c.out, kRef.substr(0, 30));
  EXPECT_EQ(h.s.conflicts(), 0u);
  EXPECT_EQ(h.pool.counters().outcome(SegmentOutcome::retransmission_ignored), 3u);
}

// ------------------------------------------------------- the six overlap cases

struct OverlapCase {
  const char* name;
  uint32_t b, e;  // new segment, vs existing [20, 30)
};
constexpr uint32_t kExB = 20, kExE = 30;
const OverlapCase kOverlapCases[] = {
    {"before", 10, 18},        {"before_adjacent", 10, 20}, {"after", 32, 38},
    {"after_adjacent", 30, 36}, {"inside", 22, 28},          {"same", 20, 30},
    {"covering", 15, 35},      {"left_partial", 15, 25},    {"right_partial", 25, 35},
    {"inside_left_aligned", 20, 24}, {"inside_right_aligned", 26, 30},
};

uint32_t overlap(const OverlapCase& c) {
  uint32_t b = std::max(c.b, kExB), e = std::min(c.e, kExE);
  return e > b ? e - b : 0;
}

// Existing data buffered out of order, new segment buffered too, then the gap is
// filled with the reference bytes: first copy must win everywhere.
TEST(TcpReassembly, SixOverlapCasesVsBufferedData) {
  for (const OverlapCase& oc : kOverlapCases) {
    for (bool conflicting : {false, true}) {
      SCOPED_TRACE(std::string(oc.name) + (conflicting ? " conflicting" : " identical"));
      Harness h;
      ASSERT_EQ(h.ref(kExB, kExE), SegmentOutcome::buffered_ooo);
      std::string seg(kRef.substr(oc.b, oc.e - oc.b));
      if (conflicting) seg.assign(seg.size(), 'x');
      const uint32_t ov = overlap(oc);
      const uint32_t len = oc.e - oc.b;
      SegmentOutcome want;
      if (ov == 0) want = SegmentOutcome::buffered_ooo;
      else if (conflicting) want = SegmentOutcome::overlap_conflict;
      else if (ov == len) want = SegmentOutcome::retransmission_ignored;
      else want = SegmentOutcome::overlap_trimmed;
      EXPECT_EQ(h.at(oc.b, seg), want);
      EXPECT_EQ(h.s.conflicts(), conflicting ? ov : 0u);
      EXPECT_EQ(h.s.ooo_bytes(), (kExE - kExB) + len - ov);
      EXPECT_EQ(h.c.out, "");

      // First-copy model of the final stream.
      std::string expect(kRef.substr(0, 40));
      for (uint32_t i = oc.b; i < oc.e; ++i) {
        if (i < kExB || i >= kExE) expect[i] = seg[i - oc.b];
      }
      const uint32_t only_new = len - ov;  // bytes of the new segment that fill meets
      SegmentOutcome fill = conflicting && only_new ? SegmentOutcome::overlap_conflict
                                                    : SegmentOutcome::overlap_trimmed;
      EXPECT_EQ(h.ref(0, 40), fill);
      EXPECT_EQ(h.c.out, expect);
      EXPECT_EQ(h.s.conflicts(), conflicting ? len : 0u);
      EXPECT_EQ(h.pool.chunks_in_use(), 0u);
      EXPECT_EQ(h.s.ooo_bytes(), 0u);
    }
  }
}

// The same cases against data already delivered ([0, 30) in order). Delivered
// bytes are not kept (zero copy), so the old part is trimmed without comparison.
TEST(TcpReassembly, SixOverlapCasesVsDeliveredData) {
  for (const OverlapCase& oc : kOverlapCases) {
    for (bool conflicting : {false, true}) {
      SCOPED_TRACE(std::string(oc.name) + (conflicting ? " conflicting" : " identical"));
      Harness h;
      ASSERT_EQ(h.ref(0, 10), SegmentOutcome::delivered);
      ASSERT_EQ(h.ref(10, kExB), SegmentOutcome::delivered);
      ASSERT_EQ(h.ref(kExB, kExE), SegmentOutcome::delivered);
      std::string seg(kRef.substr(oc.b, oc.e - oc.b));
      if (conflicting) seg.assign(seg.size(), 'x');
      SegmentOutcome want;
      if (oc.e <= kExE) want = SegmentOutcome::retransmission_ignored;
      else if (oc.b > kExE) want = SegmentOutcome::buffered_ooo;  // leaves a gap
      else if (oc.b == kExE) want = SegmentOutcome::delivered;
      else want = SegmentOutcome::overlap_trimmed;
      EXPECT_EQ(h.at(oc.b, seg), want);
      std::string expect(kRef.substr(0, kExE));
      if (oc.e > kExE && oc.b <= kExE) expect += seg.substr(kExE - oc.b);
      EXPECT_EQ(h.c.out, expect);
      EXPECT_EQ(h.s.conflicts(), 0u);
    }
  }
}

TEST(TcpReassembly, InOrderSegmentOverlappingBufferedKeepsBufferedCopy) {
  Harness h;
  ASSERT_EQ(h.at(5, "xxxxx"), SegmentOutcome::buffered_ooo);  // first copy of [5,10)
  EXPECT_EQ(h.ref(0, 20), SegmentOutcome::overlap_conflict);
  std::string expect(kRef.substr(0, 20));
  expect.replace(5, 5, "xxxxx");
  EXPECT_EQ(h.c.out, expect);
  EXPECT_EQ(h.s.conflicts(), 5u);
  EXPECT_EQ(h.pool.counters().conflict_bytes, 5u);
  EXPECT_EQ(h.pool.chunks_in_use(), 0u);
}

// --------------------------------------------------- splits and permutations

TEST(TcpReassembly, EverySplitPointBothOrdersAcrossWrap) {
  for (uint32_t isn : {1000u, 0xFFFFFFE0u, 0xFFFFFFFFu}) {
    for (uint32_t k = 0; k <= 40; ++k) {
      for (bool swap : {false, true}) {
        SCOPED_TRACE(testing::Message() << "isn=" << isn << " k=" << k << " swap=" << swap);
        Harness h(isn);
        if (swap) {
          h.ref(k, 40);
          h.ref(0, k);
        } else {
          h.ref(0, k);
          h.ref(k, 40);
        }
        EXPECT_EQ(h.c.out, kRef);
        EXPECT_EQ(h.s.next_seq(), isn + 41);
        EXPECT_EQ(h.pool.chunks_in_use(), 0u);
      }
    }
  }
}

TEST(TcpReassembly, AllPermutationsOfSixSegments) {
  const std::vector<uint32_t> sizes = {1, 7, 3, 12, 9, 8};
  std::vector<uint32_t> starts(sizes.size());
  std::exclusive_scan(sizes.begin(), sizes.end(), starts.begin(), 0u);
  for (uint32_t isn : {1000u, 0xFFFFFFF0u}) {  // the second wraps inside the message
    std::vector<size_t> order(sizes.size());
    std::iota(order.begin(), order.end(), 0);
    int n = 0;
    do {
      Harness h(isn);
      for (size_t i : order) h.ref(starts[i], starts[i] + sizes[i]);
      ASSERT_EQ(h.c.out, kRef) << "permutation " << n;
      ASSERT_EQ(h.pool.chunks_in_use(), 0u);
      ASSERT_EQ(h.s.conflicts(), 0u);
      ++n;
    } while (std::next_permutation(order.begin(), order.end()));
    EXPECT_EQ(n, 720);
  }
}

// First-arrival-wins reference model: bytes before the contiguous prefix are
// not compared (delivered), the rest are compared against the first copy.
struct Model {
  std::vector<int> val;  // -1: not seen
  uint64_t conflicts = 0;
  size_t next = 0;
  explicit Model(size_t n) : val(n, -1) {}
  void add(size_t b, const std::string& bytes) {
    for (size_t i = 0; i < bytes.size(); ++i) {
      size_t p = b + i;
      if (p < next) continue;
      int v = static_cast<uint8_t>(bytes[i]);
      if (val[p] < 0) val[p] = v;
      else if (val[p] != v) ++conflicts;
    }
    while (next < val.size() && val[next] >= 0) ++next;
  }
};

struct RandomRun {
  std::string out;
  std::vector<SegmentOutcome> outcomes;
  uint64_t conflicts;
};

// Random resegmentation of `msg`: a covering partition, extra overlapping
// copies (garbled when `garble`), duplicates, then a shuffle.
RandomRun random_run(uint32_t seed, const std::string& msg, bool garble, Model* model) {
  std::mt19937 rng(seed);
  struct Seg {
    size_t b;
    std::string bytes;
  };
  std::vector<Seg> segs;
  for (size_t p = 0; p < msg.size();) {
    size_t n = std::min<size_t>(msg.size() - p, 1 + rng() % 200);
    segs.push_back({p, msg.substr(p, n)});
    p += n;
  }
  size_t extra = segs.size() / 2;
  for (size_t i = 0; i < extra; ++i) {
    size_t b = rng() % msg.size();
    size_t n = std::min<size_t>(msg.size() - b, 1 + rng() % 300);
    std::string bytes = msg.substr(b, n);
    if (garble && rng() % 2) {
      for (char& ch : bytes) ch = static_cast<char>(ch ^ 0x5a);
    }
    segs.push_back({b, bytes});
  }
  for (size_t i = 0; i < extra; ++i) segs.push_back(segs[rng() % segs.size()]);
  std::shuffle(segs.begin(), segs.end(), rng);

  ReassemblyConfig cfg{.pool_bytes = 1 << 20,
                       .chunk_bytes = 128,
                       .max_ooo_bytes_per_flow = 1 << 16,
                       .max_window_bytes = 1 << 20};
  Harness h(0xFFFFF000u + seed, cfg);  // crosses 2^32 for every seed
  RandomRun r;
  for (const Seg& s : segs) {
    r.outcomes.push_back(h.at(s.b, s.bytes));
    if (model) model->add(s.b, s.bytes);
  }
  EXPECT_EQ(h.pool.chunks_in_use(), 0u);
  EXPECT_LE(h.pool.chunks_high_water(), h.pool.chunks_total());
  r.out = h.c.out;
  r.conflicts = h.s.conflicts();
  return r;
}

std::string random_message(uint32_t seed, size_t n) {
  std::mt19937 rng(seed * 7919u);
  std::string m(n, '\0');
  for (char& ch : m) ch = static_cast<char>(rng());
  return m;
}

TEST(TcpReassembly, RandomShufflesAndDuplicatesAreByteIdentical) {
  for (uint32_t seed : {1u, 2u, 3u, 42u, 1234u, 99991u}) {
    SCOPED_TRACE(seed);
    std::string msg = random_message(seed, 5000);
    RandomRun a = random_run(seed, msg, false, nullptr);
    EXPECT_EQ(a.out, msg);
    EXPECT_EQ(a.conflicts, 0u);
    RandomRun b = random_run(seed, msg, false, nullptr);
    EXPECT_EQ(b.out, a.out);
    EXPECT_EQ(b.outcomes, a.outcomes);
  }
}

TEST(TcpReassembly, RandomConflictingCopiesMatchFirstCopyModel) {
  for (uint32_t seed : {5u, 6u, 7u, 2024u}) {
    SCOPED_TRACE(seed);
    std::string msg = random_message(seed, 4000);
    Model m(msg.size());
    RandomRun r = random_run(seed, msg, true, &m);
    std::string expect;
    for (int v : m.val) {
      ASSERT_GE(v, 0);
      expect.push_back(static_cast<char>(v));
    }
    EXPECT_EQ(r.out, expect);
    EXPECT_GT(m.conflicts, 0u);
    EXPECT_EQ(r.conflicts, m.conflicts);
  }
}

// ---------------------------------------------------------------- wrap

TEST(TcpReassembly, WrapAroundInOrderAndOutOfOrder) {
  Harness h(0xFFFFFFF5u);  // first data byte at 0xFFFFFFF6: offset 10 is 2^32
  EXPECT_EQ(h.seg(tcpflag::ack, 0x00000004u, kRef.substr(14, 16)), SegmentOutcome::buffered_ooo);
  EXPECT_EQ(h.seg(tcpflag::ack, 0xFFFFFFF6u, kRef.substr(0, 8)), SegmentOutcome::delivered);
  EXPECT_EQ(h.seg(tcpflag::ack, 0xFFFFFFFEu, kRef.substr(8, 6)), SegmentOutcome::delivered);
  EXPECT_EQ(h.c.out, kRef.substr(0, 30));
  EXPECT_EQ(h.s.next_seq(), 0x00000014u);
  EXPECT_EQ(h.seg(tcpflag::ack, 0xFFFFFFF6u, kRef.substr(0, 8)),
            SegmentOutcome::retransmission_ignored);
  EXPECT_EQ(h.seg(tcpflag::ack | tcpflag::fin, 0x00000014u, kRef.substr(30, 10)),
            SegmentOutcome::delivered);
  EXPECT_EQ(h.s.state(), StreamState::closed);
  EXPECT_EQ(h.s.next_seq(), 0x0000001Fu);
  EXPECT_EQ(h.c.out, kRef);
}

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
