// Per-direction TCP stream reassembly over byte spans (Suricata-like, pure C++,
// no EAL). One TcpReassembly per flow direction; one ReassemblyPool per worker.
//
// Delivery: bytes that arrive in order go to the StreamSink straight from the
// packet payload (zero copy). Out-of-order bytes are copied into the pool and
// delivered, in order, once the gap before them is filled.
//
// Pool layout: fixed-size chunks, each covering an aligned range of stream
// offsets [k*C, (k+1)*C) with a presence bitmap (one bit a byte). A direction
// keeps its chunks in a list sorted by offset. Overlaps are then resolved per
// byte: a byte already present is never overwritten (FIRST COPY WINS, for all
// six overlap cases), a differing later copy is counted as a conflict.
//
// Policy, in one place:
//  - ISN from the SYN (data starts at ISN+1). Handshake missed: the stream
//    starts at the first segment that carries data or FIN; pure ACKs before it
//    are ignored, and data before it is treated as an old retransmission.
//  - Data before the next expected byte was delivered already and is not kept
//    (zero copy), so it is trimmed without comparison: conflicts are detected
//    against buffered out-of-order data only.
//  - A segment starting more than max_window_bytes ahead is ignored
//    (beyond_window), the stream is left intact: one spoofed packet must not
//    be able to switch classification off.
//  - The direction FAILS (no more delivery, buffers returned, counted) when:
//    its out-of-order memory would exceed max_ooo_bytes_per_flow, the pool is
//    exhausted, or the peer ACKs past a hole (the receiver has bytes we never
//    saw: unrecoverable) while acked_hole_grace more segments of this
//    direction arrive that cannot be delivered (they lie past the hole). The
//    grace is there because an ACK can reach the tap before the data it
//    acknowledges (two capture points merged, a mirror, the two directions on
//    different ports and queues): that data then arrives, in order, and
//    fills the hole. The caller then marks the
//    flow unclassified and keeps forwarding (fail open).
//  - FIN consumes one sequence number; the direction closes once every byte
//    before it was delivered. Data at or past the FIN is ignored (after_fin).
//  - RST closes the direction when its sequence number is in
//    [next, next + max_window_bytes] (from next - 1 once the FIN was
//    consumed); otherwise it is ignored.
//
// Untrusted input: nothing here asserts on packet contents.
// Threading: a pool, its counters and the streams that use it belong to one
// worker (worker: rw). The control plane may read the counters (ro; plain
// loads, a torn value is tolerated).
#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>

#include "classify/packet_parse.h"

namespace aiqos {

// Serial number arithmetic (RFC 1982) on 32-bit TCP sequence numbers. Valid
// while the two numbers are less than 2^31 apart.
constexpr int32_t seq_diff(uint32_t a, uint32_t b) noexcept {
  return static_cast<int32_t>(a - b);
}
constexpr bool seq_lt(uint32_t a, uint32_t b) noexcept { return seq_diff(a, b) < 0; }
constexpr bool seq_le(uint32_t a, uint32_t b) noexcept { return seq_diff(a, b) <= 0; }
constexpr bool seq_gt(uint32_t a, uint32_t b) noexcept { return seq_diff(a, b) > 0; }
constexpr bool seq_ge(uint32_t a, uint32_t b) noexcept { return seq_diff(a, b) >= 0; }

// What one segment did to its direction. Each value is a per-worker counter.
#define AIQOS_SEGMENT_OUTCOME(X)                                                     \
  X(delivered, "in order: new bytes delivered (and any buffered bytes it unblocked)") \
  X(buffered_ooo, "out of order: copied into the pool")                              \
  X(overlap_trimmed, "overlapped earlier bytes (identical); only the new part kept") \
  X(overlap_conflict, "overlapped buffered bytes that differ; first copy kept")      \
  X(retransmission_ignored, "every byte seen before (identical or already delivered)") \
  X(no_payload, "no data, no FIN: pure ACK or keepalive")                            \
  X(syn, "SYN: initial sequence number recorded")                                    \
  X(bad_syn, "SYN with another ISN after data: ignored")                             \
  X(fin, "FIN without new data recorded")                                            \
  X(rst, "RST in window: direction closed")                                          \
  X(rst_ignored, "RST out of window: ignored")                                       \
  X(beyond_window, "starts more than max_window_bytes ahead: ignored")               \
  X(after_fin, "data at or past the FIN, or after RST: ignored")                     \
  X(dropped_bound, "per-flow out-of-order bound exceeded: direction failed")        \
  X(dropped_pool, "reassembly pool exhausted: direction failed")                     \
  X(stream_failed, "direction failed earlier: nothing delivered")

enum class SegmentOutcome : uint8_t {
#define X(name, desc) name,
  AIQOS_SEGMENT_OUTCOME(X)
#undef X
      count_
};
inline constexpr size_t kSegmentOutcomeCount = static_cast<size_t>(SegmentOutcome::count_);
const char* segment_outcome_name(SegmentOutcome o) noexcept;

enum class StreamState : uint8_t {
  idle,    // nothing seen that starts the stream
  open,    // delivering
  closed,  // FIN reached in order
  reset,   // RST accepted (or aborted by the caller)
  failed,  // unrecoverable gap or bound hit: no more delivery
};

#define AIQOS_STREAM_FAIL(X)                                        \
  X(none, "not failed")                                             \
  X(ooo_bound, "out-of-order data over max_ooo_bytes_per_flow")     \
  X(pool_exhausted, "reassembly pool had no free chunk")            \
  X(acked_hole, "peer acknowledged bytes this side never saw")

enum class StreamFail : uint8_t {
#define X(name, desc) name,
  AIQOS_STREAM_FAIL(X)
#undef X
      count_
};
inline constexpr size_t kStreamFailCount = static_cast<size_t>(StreamFail::count_);
const char* stream_fail_name(StreamFail f) noexcept;

struct ReassemblyConfig {
  uint64_t pool_bytes = uint64_t{32} << 20;  // bound on buffered out-of-order data, per worker
  uint32_t chunk_bytes = 1024;               // rounded up to a multiple of 64
  // Per direction, counted in pool memory held (chunks x chunk_bytes), so that
  // sparse one-byte segments cannot pin more than this.
  uint32_t max_ooo_bytes_per_flow = 256 << 10;
  // A segment (or RST) starting further ahead than this is not believed.
  // Clamped to 2^30 so serial arithmetic stays valid.
  uint32_t max_window_bytes = 16 << 20;
  // Segments of this direction that arrive past a hole while the peer
  // acknowledges bytes beyond it, before the direction fails with
  // acked_hole. 0: at the first such ACK (strict). At most 255.
  uint32_t acked_hole_grace = 16;
};

struct ReassemblyCounters {  // worker: wo; control plane: ro
  std::array<uint64_t, kSegmentOutcomeCount> outcomes{};
  std::array<uint64_t, kStreamFailCount> failures{};
  uint64_t bytes_zero_copy = 0;  // delivered straight from packets
  uint64_t bytes_from_pool = 0;  // delivered from buffered out-of-order data
  uint64_t overlap_bytes = 0;    // identical bytes seen again (buffered or delivered)
  uint64_t conflict_bytes = 0;   // differing bytes vs buffered data (evasion indicator)
  uint64_t after_fin_bytes = 0;  // bytes trimmed at or past the FIN
  uint64_t acked_ahead = 0;      // peer ACKs beyond the bytes seen (a hole, or an ACK early)
  uint64_t acked_ahead_filled = 0;  // ... whose bytes arrived within the grace

  uint64_t outcome(SegmentOutcome o) const noexcept {
    return outcomes[static_cast<size_t>(o)];
  }
  uint64_t failure(StreamFail f) const noexcept { return failures[static_cast<size_t>(f)]; }
};

// Per-worker store of out-of-order bytes. All memory is allocated in the
// constructor; chunks come and go through a free list.
class ReassemblyPool {
 public:
  explicit ReassemblyPool(const ReassemblyConfig& cfg);
  ReassemblyPool(const ReassemblyPool&) = delete;
  ReassemblyPool& operator=(const ReassemblyPool&) = delete;

  // The configuration after rounding/clamping.
  const ReassemblyConfig& config() const noexcept { return cfg_; }
  uint32_t chunk_bytes() const noexcept { return cfg_.chunk_bytes; }
  uint32_t max_chunks_per_flow() const noexcept { return max_chunks_per_flow_; }
  uint32_t chunks_total() const noexcept { return n_chunks_; }
  uint32_t chunks_in_use() const noexcept { return in_use_; }
  uint32_t chunks_high_water() const noexcept { return high_water_; }
  uint64_t bytes_in_use() const noexcept { return uint64_t{in_use_} * cfg_.chunk_bytes; }
  // Everything the constructor allocated (data, bitmaps, chunk headers).
  uint64_t memory_bytes() const noexcept;

  ReassemblyCounters& counters() noexcept { return ctr_; }
  const ReassemblyCounters& counters() const noexcept { return ctr_; }

 private:
  friend class TcpReassembly;
  static constexpr uint32_t kNil = UINT32_MAX;
  struct ChunkMeta {
    uint64_t base = 0;   // stream offset of data[0]
    uint32_t next = kNil;  // next chunk of the same direction (sorted), or free list
    uint32_t live = 0;   // present bytes not delivered yet
  };

  uint32_t alloc(uint64_t base) noexcept;  // kNil when exhausted
  void release(uint32_t idx) noexcept;
  uint8_t* data(uint32_t idx) noexcept { return data_.get() + size_t{idx} * cfg_.chunk_bytes; }
  uint64_t* bits(uint32_t idx) noexcept { return bits_.get() + size_t{idx} * words_per_chunk_; }
  ChunkMeta& meta(uint32_t idx) noexcept { return meta_[idx]; }

  ReassemblyConfig cfg_;
  uint32_t n_chunks_ = 0;
  uint32_t words_per_chunk_ = 0;
  uint32_t max_chunks_per_flow_ = 0;
  uint32_t free_head_ = kNil;
  uint32_t in_use_ = 0;
  uint32_t high_water_ = 0;
  std::unique_ptr<uint8_t[]> data_;
  std::unique_ptr<uint64_t[]> bits_;
  std::unique_ptr<ChunkMeta[]> meta_;
  ReassemblyCounters ctr_;
};

// Non-owning reference to a consumer of in-order bytes: any callable taking
// std::span<const uint8_t>. Called synchronously inside on_segment(), zero or
// more times, in stream order. The span points into the packet or the pool
// and is valid only during the call.
class StreamSink {
 public:
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, StreamSink> &&
             std::invocable<F&, std::span<const uint8_t>>)
  StreamSink(F& f) noexcept  // NOLINT(google-explicit-constructor): a function ref
      : ctx_(const_cast<void*>(static_cast<const void*>(&f))),
        fn_([](void* c, std::span<const uint8_t> b) { (*static_cast<F*>(c))(b); }) {}

  void operator()(std::span<const uint8_t> b) const { fn_(ctx_, b); }

 private:
  void* ctx_;
  void (*fn_)(void*, std::span<const uint8_t>);
};

struct TcpSegment {
  uint8_t flags = 0;  // tcpflag:: bits (packet_parse.h)
  uint32_t seq = 0;
  uint32_t ack = 0;   // used by callers that feed ACKs to the opposite direction
  std::span<const uint8_t> payload{};
};

// One direction of a TCP connection. Small and trivially relocatable: it holds
// chunk indices, not pointers; the pool is passed in on every call.
class TcpReassembly {
 public:
  SegmentOutcome on_segment(const TcpSegment& seg, ReassemblyPool& pool, StreamSink sink) noexcept;
  // on_segment()'s common case, inline: an open direction with nothing
  // buffered, no FIN recorded and no ACK ahead pending, and a segment that
  // starts exactly at the next byte with data and no SYN/FIN/RST. Then the
  // general path would trim nothing, buffer nothing and drain nothing: the
  // payload goes to `sink` whole, is counted as delivered, and this returns
  // true. Otherwise nothing happens and it returns false.
  template <class Sink>
  bool in_order(const TcpSegment& seg, ReassemblyPool& pool, Sink&& sink) noexcept {
    constexpr uint8_t kSlowFlags = tcpflag::syn | tcpflag::fin | tcpflag::rst;
    if (state_ != StreamState::open || ooo_head_ != kNil || (flags_ & (kFinSeen | kAckedAhead)) != 0 ||
        (seg.flags & kSlowFlags) != 0 || seg.seq != next_seq_ || seg.payload.empty())
      return false;
    sink(seg.payload);
    const size_t n = seg.payload.size();
    pool.ctr_.bytes_zero_copy += n;
    ++pool.ctr_.outcomes[static_cast<size_t>(SegmentOutcome::delivered)];
    next_off_ += n;
    next_seq_ += static_cast<uint32_t>(n);
    return true;
  }
  // An ACK travelling the other way, acknowledging this direction's bytes.
  // Returns true when it exposed a hole this side can never fill (the
  // direction failed with acked_hole: the hole stayed acknowledged for more
  // than acked_hole_grace segments). ACKs beyond max_window_bytes are ignored.
  bool on_peer_ack(uint32_t ack, ReassemblyPool& pool) noexcept {
    // The common case inline: nothing acknowledged beyond the bytes seen.
    if (state_ != StreamState::open || seq_diff(ack, next_seq_) <= 0) return false;
    return peer_ack_ahead(ack, pool);
  }
  // A segment with no byte and no SYN/FIN/RST (a pure ACK, a keep-alive):
  // what on_segment() does with one (nothing reaches a sink).
  SegmentOutcome on_bare_segment(ReassemblyPool& pool) noexcept {
    const SegmentOutcome o = state_ == StreamState::failed ? SegmentOutcome::stream_failed : SegmentOutcome::no_payload;
    ++pool.ctr_.outcomes[static_cast<size_t>(o)];
    if (flags_ & kAckedAhead) check_acked_ahead(pool, false);
    return o;
  }
  // Closes the direction as by RST (e.g. RST seen the other way).
  void abort(ReassemblyPool& pool) noexcept;
  // Returns every buffer to the pool and goes back to idle (flow teardown/reuse).
  void release(ReassemblyPool& pool) noexcept;

  StreamState state() const noexcept { return state_; }
  StreamFail fail_reason() const noexcept { return fail_; }
  bool delivering() const noexcept { return state_ == StreamState::open; }
  uint32_t isn() const noexcept { return isn_; }
  uint32_t next_seq() const noexcept { return next_seq_; }
  uint64_t delivered_bytes() const noexcept { return next_off_; }
  uint32_t ooo_bytes() const noexcept { return ooo_bytes_; }
  uint32_t ooo_chunks() const noexcept { return ooo_chunks_; }
  uint32_t conflicts() const noexcept { return conflicts_; }  // bytes, saturating
  bool syn_seen() const noexcept { return flags_ & kSynSeen; }
  bool fin_seen() const noexcept { return flags_ & kFinSeen; }
  bool midstream() const noexcept { return flags_ & kMidstream; }

 private:
  struct Tally;
  static constexpr uint32_t kNil = ReassemblyPool::kNil;
  static constexpr uint8_t kSynSeen = 1, kFinSeen = 2, kMidstream = 4, kAckedAhead = 8;

  SegmentOutcome process(const TcpSegment& seg, ReassemblyPool& pool, StreamSink sink) noexcept;
  void start(uint32_t first_seq) noexcept;
  void deliver_in_order(std::span<const uint8_t> bytes, Tally& t, ReassemblyPool& pool,
                        StreamSink sink) noexcept;
  void drain(ReassemblyPool& pool, StreamSink sink) noexcept;
  SegmentOutcome buffer(uint64_t start, std::span<const uint8_t> bytes, Tally& t,
                        ReassemblyPool& pool) noexcept;
  void pop_head(ReassemblyPool& pool) noexcept;
  void free_all(ReassemblyPool& pool) noexcept;
  void fail(StreamFail why, ReassemblyPool& pool) noexcept;
  void close_if_fin_reached(ReassemblyPool& pool) noexcept;
  bool check_acked_ahead(ReassemblyPool& pool, bool strike) noexcept;
  bool peer_ack_ahead(uint32_t ack, ReassemblyPool& pool) noexcept;

  uint64_t next_off_ = 0;  // stream offset of next_seq_ = bytes delivered
  uint64_t fin_off_ = 0;   // stream offset of the FIN, valid with kFinSeen
  uint32_t next_seq_ = 0;
  uint32_t isn_ = 0;
  uint32_t ooo_head_ = kNil;  // first buffered chunk (lowest offset)
  uint32_t ooo_bytes_ = 0;    // buffered bytes not delivered yet
  uint32_t conflicts_ = 0;
  uint32_t acked_ahead_ = 0;  // highest peer ACK beyond next_seq_, with kAckedAhead
  uint16_t ooo_chunks_ = 0;
  uint8_t ack_strikes_ = 0;   // undeliverable segments while kAckedAhead
  StreamState state_ = StreamState::idle;
  StreamFail fail_ = StreamFail::none;
  uint8_t flags_ = 0;
};

}  // namespace aiqos
