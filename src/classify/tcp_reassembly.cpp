#include "classify/tcp_reassembly.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "classify/packet_parse.h"

namespace aiqos {
namespace {

constexpr uint32_t kMaxWindow = uint32_t{1} << 30;
constexpr uint32_t kMaxChunkBytes = uint32_t{1} << 20;

ReassemblyConfig sanitize(ReassemblyConfig c) noexcept {
  c.chunk_bytes = std::clamp<uint32_t>(c.chunk_bytes, 64, kMaxChunkBytes);
  c.chunk_bytes = (c.chunk_bytes + 63) / 64 * 64;
  c.max_window_bytes = std::clamp<uint32_t>(c.max_window_bytes, 1, kMaxWindow);
  return c;
}

bool test_bit(const uint64_t* bits, uint32_t i) noexcept { return (bits[i / 64] >> (i % 64)) & 1; }

// Length of the run of bits equal to `set`, from `from` up to `to` (exclusive).
uint32_t run_length(const uint64_t* bits, uint32_t from, uint32_t to, bool set) noexcept {
  uint32_t i = from;
  while (i < to) {
    uint64_t w = bits[i / 64];
    if (!set) w = ~w;
    uint32_t shift = i % 64;
    w >>= shift;  // the bits shifted in from the top are 0, which ends the run
    uint32_t avail = 64 - shift;
    auto ones = static_cast<uint32_t>(std::countr_one(w));
    if (ones < avail) {
      i += ones;
      break;
    }
    i += avail;
  }
  return std::min(i, to) - from;
}

void set_bits(uint64_t* bits, uint32_t from, uint32_t to) noexcept {
  while (from < to) {
    uint32_t shift = from % 64;
    uint32_t n = std::min(to - from, 64 - shift);
    uint64_t mask = n == 64 ? ~uint64_t{0} : ((uint64_t{1} << n) - 1) << shift;
    bits[from / 64] |= mask;
    from += n;
  }
}

uint32_t count_diff(const uint8_t* a, const uint8_t* b, uint32_t n) noexcept {
  uint32_t d = 0;
  for (uint32_t i = 0; i < n; ++i) d += a[i] != b[i];
  return d;
}

}  // namespace

const char* segment_outcome_name(SegmentOutcome o) noexcept {
  switch (o) {
#define X(name, desc) \
  case SegmentOutcome::name: return #name;
    AIQOS_SEGMENT_OUTCOME(X)
#undef X
    case SegmentOutcome::count_: break;
  }
  return "unknown";
}

const char* stream_fail_name(StreamFail f) noexcept {
  switch (f) {
#define X(name, desc) \
  case StreamFail::name: return #name;
    AIQOS_STREAM_FAIL(X)
#undef X
    case StreamFail::count_: break;
  }
  return "unknown";
}

// ---------------------------------------------------------------- pool

ReassemblyPool::ReassemblyPool(const ReassemblyConfig& cfg) : cfg_(sanitize(cfg)) {
  uint64_t n = cfg_.pool_bytes / cfg_.chunk_bytes;
  n_chunks_ = static_cast<uint32_t>(std::min<uint64_t>(n, kNil - 1));
  words_per_chunk_ = cfg_.chunk_bytes / 64;
  uint64_t per_flow = (uint64_t{cfg_.max_ooo_bytes_per_flow} + cfg_.chunk_bytes - 1) / cfg_.chunk_bytes;
  max_chunks_per_flow_ = static_cast<uint32_t>(std::min<uint64_t>(per_flow, UINT16_MAX));
  // Default-initialized: pages are committed by the kernel as chunks are used.
  data_.reset(new uint8_t[size_t{n_chunks_} * cfg_.chunk_bytes]);
  bits_.reset(new uint64_t[size_t{n_chunks_} * words_per_chunk_]);
  meta_.reset(new ChunkMeta[n_chunks_]);
  for (uint32_t i = n_chunks_; i-- > 0;) {
    meta_[i].next = free_head_;
    free_head_ = i;
  }
}

uint64_t ReassemblyPool::memory_bytes() const noexcept {
  return uint64_t{n_chunks_} * (cfg_.chunk_bytes + words_per_chunk_ * 8 + sizeof(ChunkMeta));
}

uint32_t ReassemblyPool::alloc(uint64_t base) noexcept {
  uint32_t idx = free_head_;
  if (idx == kNil) return kNil;
  ChunkMeta& m = meta_[idx];
  free_head_ = m.next;
  m = ChunkMeta{.base = base, .next = kNil, .live = 0};
  std::memset(bits(idx), 0, size_t{words_per_chunk_} * 8);
  ++in_use_;
  high_water_ = std::max(high_water_, in_use_);
  return idx;
}

void ReassemblyPool::release(uint32_t idx) noexcept {
  meta_[idx].next = free_head_;
  free_head_ = idx;
  --in_use_;
}

// ---------------------------------------------------------------- stream

struct TcpReassembly::Tally {
  uint64_t fresh = 0;     // bytes never seen before (delivered or buffered)
  uint64_t dup = 0;       // identical to a buffered first copy
  uint64_t old = 0;       // before the next expected byte (already delivered)
  uint64_t conflict = 0;  // differing from a buffered first copy
};

SegmentOutcome TcpReassembly::on_segment(const TcpSegment& seg, ReassemblyPool& pool,
                                         StreamSink sink) noexcept {
  if (in_order(seg, pool, sink)) [[likely]]
    return SegmentOutcome::delivered;
  constexpr uint8_t kSlowFlags = tcpflag::syn | tcpflag::fin | tcpflag::rst;
  // No byte, no SYN/FIN/RST (a pure ACK, a keep-alive): process() would
  // change nothing (in the failed state it says so).
  if (seg.payload.empty() && (seg.flags & kSlowFlags) == 0) return on_bare_segment(pool);
  const uint32_t before = next_seq_;
  SegmentOutcome o = process(seg, pool, sink);
  ++pool.ctr_.outcomes[static_cast<size_t>(o)];
  if (flags_ & kAckedAhead) check_acked_ahead(pool, next_seq_ == before && !seg.payload.empty());
  return o;
}

// While the peer acknowledges bytes beyond next_seq_: resolved once the
// stream reaches the ACK. A segment of this direction that cannot be
// delivered meanwhile (`strike`: it lies past the hole) counts; after
// acked_hole_grace of them the hole is taken for one the tap will never see
// filled. ACKs alone never count: an early ACK followed by the data it
// acknowledges, in order, costs nothing however much data that is.
// Returns true when the direction failed now.
bool TcpReassembly::check_acked_ahead(ReassemblyPool& pool, bool strike) noexcept {
  if (state_ != StreamState::open || seq_ge(next_seq_, acked_ahead_)) {
    if (state_ != StreamState::failed) ++pool.ctr_.acked_ahead_filled;
    flags_ &= static_cast<uint8_t>(~kAckedAhead);
    return false;
  }
  if (!strike || ++ack_strikes_ <= std::min<uint32_t>(pool.cfg_.acked_hole_grace, 255)) return false;
  fail(StreamFail::acked_hole, pool);
  return true;
}

void TcpReassembly::start(uint32_t first_seq) noexcept {
  next_seq_ = first_seq;
  isn_ = first_seq - 1;
  next_off_ = 0;
  state_ = StreamState::open;
}

SegmentOutcome TcpReassembly::process(const TcpSegment& seg, ReassemblyPool& pool,
                                      StreamSink sink) noexcept {
  const ReassemblyConfig& cfg = pool.cfg_;
  const bool has_fin = seg.flags & tcpflag::fin;
  std::span<const uint8_t> data = seg.payload;

  switch (state_) {
    case StreamState::failed:
      return SegmentOutcome::stream_failed;
    case StreamState::closed:
      if (seg.flags & tcpflag::rst) {
        // After our FIN: the RST carries the FIN's number or the one after it.
        int32_t rel = seq_diff(seg.seq, next_seq_);
        if (rel < -1 || rel > static_cast<int32_t>(cfg.max_window_bytes)) {
          return SegmentOutcome::rst_ignored;
        }
        state_ = StreamState::reset;
        return SegmentOutcome::rst;
      }
      [[fallthrough]];
    case StreamState::reset:
      if (seg.flags & tcpflag::rst) return SegmentOutcome::rst;
      if (!data.empty()) {
        pool.ctr_.after_fin_bytes += data.size();
        return SegmentOutcome::after_fin;
      }
      return has_fin ? SegmentOutcome::retransmission_ignored : SegmentOutcome::no_payload;
    case StreamState::idle:
    case StreamState::open:
      break;
  }

  if (seg.flags & tcpflag::rst) {
    if (state_ == StreamState::open) {
      int32_t rel = seq_diff(seg.seq, next_seq_);
      if (rel < 0 || static_cast<uint32_t>(rel) > cfg.max_window_bytes) {
        return SegmentOutcome::rst_ignored;
      }
    }
    abort(pool);
    return SegmentOutcome::rst;
  }

  uint32_t seq = seg.seq;
  if (seg.flags & tcpflag::syn) {
    bool pristine = next_off_ == 0 && ooo_head_ == kNil && !(flags_ & kFinSeen);
    if (state_ == StreamState::idle || (pristine && seq != isn_)) {
      start(seq + 1);
      isn_ = seq;
      flags_ = kSynSeen;
    } else if (seq != isn_ || !(flags_ & kSynSeen)) {
      return SegmentOutcome::bad_syn;
    }
    seq += 1;  // SYN takes one sequence number; any data (TFO) follows it
    if (data.empty() && !has_fin) return SegmentOutcome::syn;
  }

  if (data.empty() && !has_fin) return SegmentOutcome::no_payload;
  if (state_ == StreamState::idle) {
    start(seq);
    flags_ |= kMidstream;
  }

  const int64_t rel = seq_diff(seq, next_seq_);
  if (rel > int64_t{cfg.max_window_bytes}) return SegmentOutcome::beyond_window;

  // FIN: the first one believed wins; one in the past is ignored.
  if (has_fin && !(flags_ & kFinSeen)) {
    int64_t fin_rel = rel + static_cast<int64_t>(data.size());
    if (fin_rel >= 0) {
      flags_ |= kFinSeen;
      fin_off_ = next_off_ + static_cast<uint64_t>(fin_rel);
    }
  }

  // Trim to [next_off_, fin_off_): before is old, past the FIN is ignored.
  int64_t s = rel;
  int64_t e = rel + static_cast<int64_t>(data.size());
  if (flags_ & kFinSeen) {
    auto limit = static_cast<int64_t>(fin_off_ - next_off_);
    if (e > limit) {
      int64_t cut = e - std::max(s, limit);
      pool.ctr_.after_fin_bytes += static_cast<uint64_t>(cut);
      if (s >= limit) return data.empty() ? SegmentOutcome::fin : SegmentOutcome::after_fin;
      data = data.first(data.size() - static_cast<size_t>(cut));
      e = limit;
    }
  }

  Tally t;
  SegmentOutcome base;
  if (data.empty()) {
    base = SegmentOutcome::fin;  // a bare FIN: recorded above
  } else if (e <= 0) {
    t.old = static_cast<uint64_t>(e - s);
    base = SegmentOutcome::retransmission_ignored;
  } else if (s <= 0) {
    t.old = static_cast<uint64_t>(-s);
    deliver_in_order(data.subspan(static_cast<size_t>(-s)), t, pool, sink);
    base = SegmentOutcome::delivered;
  } else {
    base = buffer(next_off_ + static_cast<uint64_t>(s), data, t, pool);
  }
  pool.ctr_.overlap_bytes += t.dup + t.old;
  if (state_ == StreamState::failed) return base;
  close_if_fin_reached(pool);

  if (data.empty()) return rel < 0 ? SegmentOutcome::retransmission_ignored : SegmentOutcome::fin;
  if (t.conflict) return SegmentOutcome::overlap_conflict;
  if (t.fresh == 0) return SegmentOutcome::retransmission_ignored;
  if (t.dup || t.old) return SegmentOutcome::overlap_trimmed;
  return base;
}

void TcpReassembly::deliver_in_order(std::span<const uint8_t> bytes, Tally& t,
                                     ReassemblyPool& pool, StreamSink sink) noexcept {
  const uint32_t c = pool.cfg_.chunk_bytes;
  const uint64_t begin = next_off_;
  const uint64_t end = begin + bytes.size();
  uint64_t pos = begin;
  while (pos < end) {
    // Chunks wholly behind pos hold nothing live (see ChunkMeta::live); drop them.
    while (ooo_head_ != kNil && pool.meta(ooo_head_).base + c <= pos) pop_head(pool);
    const uint8_t* pkt = bytes.data() + (pos - begin);
    if (ooo_head_ == kNil || pool.meta(ooo_head_).base > pos) {
      uint64_t lim = ooo_head_ == kNil ? end : std::min(end, pool.meta(ooo_head_).base);
      auto n = static_cast<size_t>(lim - pos);
      sink(std::span<const uint8_t>(pkt, n));
      pool.ctr_.bytes_zero_copy += n;
      t.fresh += n;
      pos = lim;
      continue;
    }
    // pos lies inside the head chunk: take buffered bytes where present (first
    // copy wins), the packet's bytes elsewhere.
    uint32_t h = ooo_head_;
    auto& m = pool.meta(h);
    auto from = static_cast<uint32_t>(pos - m.base);
    auto to = static_cast<uint32_t>(std::min<uint64_t>(c, end - m.base));
    const uint64_t* bits = pool.bits(h);
    if (test_bit(bits, from)) {
      uint32_t n = run_length(bits, from, to, true);
      const uint8_t* buf = pool.data(h) + from;
      uint32_t d = count_diff(buf, pkt, n);
      t.conflict += d;
      t.dup += n - d;
      conflicts_ = d > UINT32_MAX - conflicts_ ? UINT32_MAX : conflicts_ + d;
      pool.ctr_.conflict_bytes += d;
      sink(std::span<const uint8_t>(buf, n));
      pool.ctr_.bytes_from_pool += n;
      m.live -= n;
      ooo_bytes_ -= n;
      pos += n;
      if (m.live == 0) pop_head(pool);
    } else {
      uint32_t n = run_length(bits, from, to, false);
      sink(std::span<const uint8_t>(pkt, n));
      pool.ctr_.bytes_zero_copy += n;
      t.fresh += n;
      pos += n;
    }
  }
  next_off_ = end;
  next_seq_ += static_cast<uint32_t>(bytes.size());
  drain(pool, sink);
}

// Delivers buffered bytes that the stream has now reached, up to the next hole
// (or the FIN).
void TcpReassembly::drain(ReassemblyPool& pool, StreamSink sink) noexcept {
  const uint32_t c = pool.cfg_.chunk_bytes;
  const uint64_t limit = (flags_ & kFinSeen) ? fin_off_ : UINT64_MAX;
  while (ooo_head_ != kNil && next_off_ < limit) {
    uint32_t h = ooo_head_;
    auto& m = pool.meta(h);
    if (m.base + c <= next_off_) {
      pop_head(pool);
      continue;
    }
    if (m.base > next_off_) break;
    auto from = static_cast<uint32_t>(next_off_ - m.base);
    auto to = static_cast<uint32_t>(std::min<uint64_t>(c, limit - m.base));
    uint32_t n = run_length(pool.bits(h), from, to, true);
    if (n == 0) break;
    sink(std::span<const uint8_t>(pool.data(h) + from, n));
    pool.ctr_.bytes_from_pool += n;
    m.live -= n;
    ooo_bytes_ -= n;
    next_off_ += n;
    next_seq_ += n;
    if (m.live == 0) pop_head(pool);
    else if (from + n < to) break;  // hole inside this chunk
  }
}

SegmentOutcome TcpReassembly::buffer(uint64_t start, std::span<const uint8_t> bytes, Tally& t,
                                     ReassemblyPool& pool) noexcept {
  const uint32_t c = pool.cfg_.chunk_bytes;
  const uint64_t end = start + bytes.size();
  uint32_t prev = kNil;
  uint32_t cur = ooo_head_;
  for (uint64_t cb = start - start % c; cb < end; cb += c) {
    while (cur != kNil && pool.meta(cur).base < cb) {
      prev = cur;
      cur = pool.meta(cur).next;
    }
    if (cur == kNil || pool.meta(cur).base != cb) {
      if (ooo_chunks_ >= pool.max_chunks_per_flow_) {
        fail(StreamFail::ooo_bound, pool);
        return SegmentOutcome::dropped_bound;
      }
      uint32_t n = pool.alloc(cb);
      if (n == kNil) {
        fail(StreamFail::pool_exhausted, pool);
        return SegmentOutcome::dropped_pool;
      }
      pool.meta(n).next = cur;
      (prev == kNil ? ooo_head_ : pool.meta(prev).next) = n;
      cur = n;
      ++ooo_chunks_;
    }
    auto& m = pool.meta(cur);
    uint64_t* bits = pool.bits(cur);
    uint8_t* buf = pool.data(cur);
    auto from = static_cast<uint32_t>(std::max(start, cb) - cb);
    auto to = static_cast<uint32_t>(std::min(end, cb + c) - cb);
    while (from < to) {
      const uint8_t* src = bytes.data() + (cb + from - start);
      if (test_bit(bits, from)) {
        uint32_t n = run_length(bits, from, to, true);
        uint32_t d = count_diff(buf + from, src, n);
        t.conflict += d;
        t.dup += n - d;
        conflicts_ = d > UINT32_MAX - conflicts_ ? UINT32_MAX : conflicts_ + d;
        pool.ctr_.conflict_bytes += d;
        from += n;
      } else {
        uint32_t n = run_length(bits, from, to, false);
        std::memcpy(buf + from, src, n);
        set_bits(bits, from, from + n);
        m.live += n;
        ooo_bytes_ += n;
        t.fresh += n;
        from += n;
      }
    }
  }
  return SegmentOutcome::buffered_ooo;
}

void TcpReassembly::pop_head(ReassemblyPool& pool) noexcept {
  uint32_t h = ooo_head_;
  ooo_bytes_ -= pool.meta(h).live;
  ooo_head_ = pool.meta(h).next;
  pool.release(h);
  --ooo_chunks_;
}

void TcpReassembly::free_all(ReassemblyPool& pool) noexcept {
  while (ooo_head_ != kNil) pop_head(pool);
}

void TcpReassembly::fail(StreamFail why, ReassemblyPool& pool) noexcept {
  free_all(pool);
  state_ = StreamState::failed;
  fail_ = why;
  ++pool.ctr_.failures[static_cast<size_t>(why)];
}

void TcpReassembly::close_if_fin_reached(ReassemblyPool& pool) noexcept {
  if (!(flags_ & kFinSeen) || next_off_ != fin_off_) return;
  free_all(pool);  // anything buffered lies past the FIN
  next_seq_ += 1;
  state_ = StreamState::closed;
}

// on_peer_ack() past its inline checks: the ACK is ahead of the bytes seen.
bool TcpReassembly::peer_ack_ahead(uint32_t ack, ReassemblyPool& pool) noexcept {
  if (state_ != StreamState::open) return false;
  int32_t d = seq_diff(ack, next_seq_);
  if (d <= 0 || static_cast<uint32_t>(d) > pool.cfg_.max_window_bytes) return false;
  if (!(flags_ & kAckedAhead)) {
    flags_ |= kAckedAhead;
    acked_ahead_ = ack;
    ack_strikes_ = 0;
    ++pool.ctr_.acked_ahead;
  } else if (seq_gt(ack, acked_ahead_)) {
    acked_ahead_ = ack;
  }
  // With no grace (the strict policy) the ACK alone is proof.
  return check_acked_ahead(pool, pool.cfg_.acked_hole_grace == 0);
}

void TcpReassembly::abort(ReassemblyPool& pool) noexcept {
  if (state_ == StreamState::failed) return;
  free_all(pool);
  state_ = StreamState::reset;
}

void TcpReassembly::release(ReassemblyPool& pool) noexcept {
  free_all(pool);
  *this = TcpReassembly{};
}

}  // namespace aiqos
