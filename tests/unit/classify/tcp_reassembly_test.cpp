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

}  // namespace
}  // namespace aiqos
