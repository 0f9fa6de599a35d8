// Test helpers of the reassembly tests: one direction with its pool, fed
// segments at stream offsets of a 40-byte reference text.
#pragma once

#include <gtest/gtest.h>

#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "classify/packet_parse.h"
#include "classify/tcp_reassembly.h"

namespace aiqos {

// gtest prints outcomes by name (found by ADL). Inline: the same definition
// appears in flow_table_test.cpp.
inline void PrintTo(SegmentOutcome o, std::ostream* os) { *os << segment_outcome_name(o); }

namespace {

constexpr std::string_view kRef = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn";  // 40 bytes

inline std::span<const uint8_t> as_bytes(std::string_view s) {
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

inline ReassemblyConfig small_cfg() {
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

}  // namespace
}  // namespace aiqos
