// Per-worker flow table: fixed capacity, every byte allocated in the
// constructor, no allocation per packet. Pure C++ over FlowKey (flow_key.h).
//
// Layout: a power-of-two array of bucket heads, chains threaded through a pool
// of Flow entries, a free list through the same links. Each flow also sits on
// one of four LRU lists, one per timeout class (TCP handshake, TCP
// established, TCP closing, other). Within a list every flow has the same
// timeout, so the list is ordered by deadline as well as by last_seen:
// expire() only ever looks at list heads (bounded work, O(1) per flow).
// A flow moves to the tail at most once per LRU epoch (2^20 ns, ~1 ms) of
// its own, not on every packet: lists are ordered by last_seen to within one
// epoch, so expiry and eviction order are exact to ~1 ms and a busy flow
// costs no list surgery per packet.
//
// Eviction when full: the list head with the EARLIEST DEADLINE
// (last_seen + its class timeout) is evicted, i.e. the flow closest to timing
// out, which prefers closing and half-open flows over established ones of the
// same age. A victim already past its deadline is counted as expired, not
// evicted. A victim idle for less than min_evict_idle_ns is not taken: the new
// flow is refused (nullptr, table_full counted) and the caller fails open.
//
// Direction: flows are keyed by the canonical (lo, hi) key; `side` 0 is the lo
// endpoint, 1 the hi one. The client is the sender of a SYN without ACK; the
// receiver of a SYN-ACK when the SYN was missed; otherwise, provisionally, the
// sender of the first packet. L7 code that recognises a request (HTTP/2
// preface, HTTP/1 request line, TLS ClientHello) fixes it with set_client_side().
//
// Times are nanoseconds supplied by the caller; the table reads no clock. A
// time that goes backwards is treated as the latest time seen.
//
// Threading: one table per worker (worker: rw). Counters may be read by the
// control plane (ro; plain loads, a torn value is tolerated).
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "classify/flow_key.h"
#include "classify/tcp_reassembly.h"

namespace aiqos {

inline constexpr uint8_t kSideLo = 0;  // packet sent by the key's lo endpoint
inline constexpr uint8_t kSideHi = 1;
// Side of a packet, from make_flow_key()'s `swapped`.
constexpr uint8_t side_of(bool swapped) noexcept { return swapped ? kSideHi : kSideLo; }

enum class TimeoutClass : uint8_t { tcp_handshake, tcp_established, tcp_closing, other, count_ };
inline constexpr size_t kTimeoutClassCount = static_cast<size_t>(TimeoutClass::count_);

// How the client side was decided, weakest first.
enum class ClientSource : uint8_t { first_packet, syn_ack, syn, l7 };

namespace flowtcp {  // Flow::tcp bits
inline constexpr uint8_t syn = 0x01;          // SYN without ACK seen
inline constexpr uint8_t syn_ack = 0x02;      // SYN-ACK seen
inline constexpr uint8_t established = 0x04;  // a non-SYN packet seen (or picked up midstream)
inline constexpr uint8_t fin_lo = 0x08;       // FIN sent by the lo side
inline constexpr uint8_t fin_hi = 0x10;
inline constexpr uint8_t rst = 0x20;
}  // namespace flowtcp

enum class FlowRelease : uint8_t { expired, evicted, removed, reused, cleared };

struct Flow {
  // Identity and direction. Written by the table; read by everyone.
  FlowKey key{};
  uint64_t created_ns = 0;
  uint64_t last_seen_ns = 0;
  // Per side (index kSideLo/kSideHi = sender). Written by the table.
  std::array<uint64_t, 2> bytes{};
  std::array<uint32_t, 2> pkts{};
  // Per side (index = sender). Written by the caller through feed_tcp().
  std::array<TcpReassembly, 2> stream{};
  // L7 attachment: owned by L7 code; the table zeroes it on create/reuse and
  // calls the release hook before a flow goes away.
  uint32_t l7_index = 0;
  uint8_t l7_kind = 0;  // 0: none
  // QoS: the class the flow's frames are charged to, under policy generation
  // `policy_gen`. Owned by the classifier; zeroed on create/reuse.
  uint16_t class_id = 0;
  uint32_t policy_gen = 0;
  // Lifecycle. Written by the table.
  uint8_t tcp = 0;  // flowtcp:: bits
  uint8_t client_side = kSideLo;
  ClientSource client_source = ClientSource::first_packet;

  bool from_client(uint8_t side) const noexcept { return side == client_side; }
  uint8_t server_side() const noexcept { return client_side ^ 1; }
  TcpReassembly& to_server() noexcept { return stream[client_side]; }
  TcpReassembly& to_client() noexcept { return stream[client_side ^ 1]; }
  TimeoutClass timeout_class() const noexcept { return tclass_; }

 private:
  friend class FlowTable;
  static constexpr uint32_t kNil = UINT32_MAX;
  // Table-private links (entry indices).
  TimeoutClass tclass_ = TimeoutClass::other;
  bool in_use_ = false;
  uint32_t hash_ = 0;  // low bits of flow_key_hash, compared before the key
  uint32_t chain_ = kNil;  // next in bucket chain / free list
  uint32_t lru_prev_ = kNil;
  uint32_t lru_next_ = kNil;
  // Coarse time (now >> kLruEpochShift) of the last move to its list's tail.
  uint32_t lru_epoch_ = 0;
};

struct FlowTableConfig {
  uint32_t max_flows = 65536;
  uint64_t tcp_handshake_timeout_ns = 10'000'000'000;    // SYN seen, nothing else yet
  uint64_t tcp_established_timeout_ns = 300'000'000'000;
  uint64_t tcp_closing_timeout_ns = 15'000'000'000;      // any FIN or RST seen
  uint64_t other_timeout_ns = 60'000'000'000;            // UDP and the rest
  uint64_t min_evict_idle_ns = 0;  // a flow seen more recently is never evicted
};

struct FlowTableCounters {  // worker: wo; control plane: ro
  uint64_t lookups = 0;
  uint64_t hits = 0;
  uint64_t flows_created = 0;
  uint64_t flows_reused = 0;    // SYN on a closed/reset flow: state reset in place
  uint64_t flows_expired = 0;   // idle timeout (by expire() or as an eviction victim)
  uint64_t flows_evicted = 0;   // taken before their deadline to make room
  uint64_t flows_removed = 0;   // by remove()
  uint64_t table_full = 0;      // no entry could be made: packet went on without a flow
  uint64_t direction_fixups = 0;  // client side changed after creation
};

struct FlowLookup {
  Flow* flow = nullptr;  // nullptr: table full, nothing evictable
  uint8_t side = kSideLo;  // sender of this packet
  bool from_client = false;
  bool created = false;    // new flow (or reused after close)
};

// Called before a flow's entry is recycled, so L7 code can free what
// l7_index refers to. The table itself returns the reassembly buffers.
using FlowReleaseHook = void (*)(void* ctx, Flow& flow, FlowRelease why) noexcept;

class FlowTable {
 public:
  FlowTable(const FlowTableConfig& cfg, ReassemblyPool& pool, FlowReleaseHook hook = nullptr,
            void* hook_ctx = nullptr);
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  // Finds or creates the flow of one packet and accounts it: counters, TCP
  // lifecycle, client side, timeout class, LRU position. `tcp_flags` is 0 for
  // non-TCP. `wire_bytes` is whatever the caller wants counted (frame length).
  FlowLookup lookup_or_create(const FlowKey& key, uint8_t side, uint8_t tcp_flags,
                              uint32_t wire_bytes, uint64_t now_ns) noexcept {
    return lookup_or_create(key, flow_key_hash(key), side, tcp_flags, wire_bytes, now_ns);
  }
  // The same with the key's flow_key_hash() already computed (the dataplane
  // hashes every frame once, for dispatch): it MUST be flow_key_hash(key).
  // The hit path (every frame of a known flow) is inline; a miss or a bare
  // SYN (which may reuse a closed flow's entry) takes lookup_slow().
  FlowLookup lookup_or_create(const FlowKey& key, uint64_t key_hash, uint8_t side, uint8_t tcp_flags,
                              uint32_t wire_bytes, uint64_t now_ns) noexcept {
    now_ = now_ns > now_ ? now_ns : now_;
    side &= 1;
    ++ctr_.lookups;
    const uint32_t h = bucket_hash(key_hash);
    const uint32_t idx = find_index(key, h);
    const bool bare_syn = key.proto == 6 && (tcp_flags & (tcpflag::syn | tcpflag::ack)) == tcpflag::syn;
    if (idx == kNil || bare_syn) [[unlikely]]
      return lookup_slow(key, h, idx, side, tcp_flags, wire_bytes);
    ++ctr_.hits;
    Flow& f = flows_[idx];
    const uint8_t client_before = f.client_side;
    account(f, side, tcp_flags, wire_bytes);
    if (f.client_side != client_before) ++ctr_.direction_fixups;
    return FlowLookup{.flow = &f, .side = side, .from_client = f.from_client(side), .created = false};
  }
  // Read-only lookup: no accounting, no creation.
  Flow* find(const FlowKey& key) noexcept;
  // Burst lookups (l3fwd-style): prefetch the bucket of every frame of a
  // burst first, then, a few frames ahead of the lookups, the entry at the
  // head of its chain. `key_hash` as for lookup_or_create. Hints only.
  void prefetch_bucket(uint64_t key_hash) const noexcept {
    __builtin_prefetch(&buckets_[bucket_hash(key_hash) & mask_]);
  }
  void prefetch_flow(uint64_t key_hash) const noexcept {
    const uint32_t i = buckets_[bucket_hash(key_hash) & mask_];
    if (i != kNil) __builtin_prefetch(&flows_[i]);
  }
  // The 32 bits of a key hash that pick the bucket and are kept per entry.
  static uint32_t bucket_hash(uint64_t key_hash) noexcept {
    return static_cast<uint32_t>(key_hash ^ (key_hash >> 32));
  }

  // L7 evidence of who the client is. Overrides any earlier source. Returns
  // true when the client side changed (counted in direction_fixups).
  bool set_client_side(Flow& flow, uint8_t client_side) noexcept;

  void remove(Flow& flow) noexcept;
  // Removes flows idle past their class timeout, looking at no more than
  // max_to_scan flows. Returns how many it removed.
  uint32_t expire(uint64_t now_ns, uint32_t max_to_scan) noexcept;
  // Removes every flow (reason `cleared`, not counted as expired).
  void clear() noexcept;

  uint64_t deadline(const Flow& flow) const noexcept;
  uint64_t timeout_of(TimeoutClass c) const noexcept { return timeout_[static_cast<size_t>(c)]; }
  uint32_t size() const noexcept { return size_; }
  uint32_t capacity() const noexcept { return cfg_.max_flows; }
  uint32_t bucket_count() const noexcept { return mask_ + 1; }
  // Everything the constructor allocated (entries + buckets).
  uint64_t memory_bytes() const noexcept;
  const FlowTableCounters& counters() const noexcept { return ctr_; }
  // Calls fn(const Flow&) for every flow in the table: O(capacity), for an
  // operator's query (aiqosctl flows), never per packet.
  template <class F>
  void for_each(F&& fn) const {
    for (uint32_t i = 0; i < cfg_.max_flows; ++i)
      if (flows_[i].in_use_) fn(flows_[i]);
  }
  ReassemblyPool& pool() noexcept { return pool_; }

 private:
  static constexpr uint32_t kNil = Flow::kNil;
  struct Lru {
    uint32_t head = kNil;  // oldest
    uint32_t tail = kNil;  // newest
  };

  uint32_t index_of(const Flow& f) const noexcept {
    return static_cast<uint32_t>(&f - flows_.get());
  }
  // Hot (every frame): inlined into lookup_or_create.
  uint32_t find_index(const FlowKey& key, uint32_t hash) const noexcept {
    for (uint32_t i = buckets_[hash & mask_]; i != kNil; i = flows_[i].chain_) {
      const Flow& f = flows_[i];
      if (f.hash_ == hash && f.key == key) return i;
    }
    return kNil;
  }
  FlowLookup lookup_slow(const FlowKey& key, uint32_t h, uint32_t idx, uint8_t side, uint8_t tcp_flags,
                         uint32_t wire_bytes) noexcept;
  uint32_t take_entry(uint64_t now) noexcept;
  void unlink(uint32_t idx, FlowRelease why) noexcept;
  void reset_flow(Flow& f) noexcept;
  void lru_remove(uint32_t idx) noexcept;
  void lru_append(uint32_t idx) noexcept;
  // Moves a flow to the tail of the LRU list of `cls` (see account()).
  void lru_move(Flow& f, TimeoutClass cls, uint32_t epoch) noexcept;
  // Counters, TCP lifecycle, client side, timeout class and LRU position of
  // one packet of `f`.
  void account(Flow& f, uint8_t side, uint8_t tcp_flags, uint32_t wire_bytes) noexcept {
    f.bytes[side] += wire_bytes;
    ++f.pkts[side];
    f.last_seen_ns = now_;
    TimeoutClass cls = TimeoutClass::other;
    if (f.key.proto == 6) {
      const bool syn = tcp_flags & tcpflag::syn;
      const bool ack = tcp_flags & tcpflag::ack;
      if (syn && !ack) {
        f.tcp |= flowtcp::syn;
        if (f.client_source < ClientSource::syn) {
          f.client_side = side;
          f.client_source = ClientSource::syn;
        }
      } else if (syn) {
        f.tcp |= flowtcp::syn_ack;
        if (f.client_source < ClientSource::syn_ack) {
          f.client_side = side ^ 1;
          f.client_source = ClientSource::syn_ack;
        }
      } else {
        f.tcp |= flowtcp::established;
      }
      if (tcp_flags & tcpflag::fin) f.tcp |= side == kSideLo ? flowtcp::fin_lo : flowtcp::fin_hi;
      if (tcp_flags & tcpflag::rst) f.tcp |= flowtcp::rst;
      if (f.tcp & (flowtcp::fin_lo | flowtcp::fin_hi | flowtcp::rst)) {
        cls = TimeoutClass::tcp_closing;
      } else if (f.tcp & flowtcp::established) {
        cls = TimeoutClass::tcp_established;
      } else {
        cls = TimeoutClass::tcp_handshake;
      }
    }
    // Move to the tail of (possibly another) list, at most once an epoch within
    // the same list: lists stay sorted by last_seen to within an epoch.
    const auto epoch = static_cast<uint32_t>(now_ >> kLruEpochShift);
    if (cls != f.tclass_ || epoch != f.lru_epoch_) [[unlikely]]
      lru_move(f, cls, epoch);
  }
  static constexpr unsigned kLruEpochShift = 20;  // ~1.05 ms

  FlowTableConfig cfg_;
  ReassemblyPool& pool_;
  FlowReleaseHook hook_;
  void* hook_ctx_;
  std::array<uint64_t, kTimeoutClassCount> timeout_{};
  std::array<Lru, kTimeoutClassCount> lru_{};
  uint32_t mask_ = 0;
  uint32_t size_ = 0;
  uint32_t free_head_ = kNil;
  uint32_t expire_cursor_ = 0;
  uint64_t now_ = 0;  // latest time seen
  std::unique_ptr<Flow[]> flows_;
  std::unique_ptr<uint32_t[]> buckets_;
  FlowTableCounters ctr_;
};

// Feeds a TCP segment sent by `side` to the flow's reassembly: data and
// flags into stream[side], the ACK into stream[side ^ 1]; an accepted RST
// closes both directions. Returns the outcome for stream[side].
SegmentOutcome feed_tcp(Flow& flow, uint8_t side, const TcpSegment& seg, ReassemblyPool& pool,
                        StreamSink sink) noexcept;

}  // namespace aiqos
