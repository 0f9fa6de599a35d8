#include "classify/flow_table.h"

#include <algorithm>
#include <bit>

namespace aiqos {
namespace {

uint32_t hash32(uint64_t h) noexcept { return FlowTable::bucket_hash(h); }
uint32_t hash32(const FlowKey& key) noexcept { return hash32(flow_key_hash(key)); }

}  // namespace

FlowTable::FlowTable(const FlowTableConfig& cfg, ReassemblyPool& pool, FlowReleaseHook hook,
                     void* hook_ctx)
    : cfg_(cfg), pool_(pool), hook_(hook), hook_ctx_(hook_ctx) {
  cfg_.max_flows = std::min<uint32_t>(cfg_.max_flows, uint32_t{1} << 30);
  timeout_[static_cast<size_t>(TimeoutClass::tcp_handshake)] = cfg_.tcp_handshake_timeout_ns;
  timeout_[static_cast<size_t>(TimeoutClass::tcp_established)] = cfg_.tcp_established_timeout_ns;
  timeout_[static_cast<size_t>(TimeoutClass::tcp_closing)] = cfg_.tcp_closing_timeout_ns;
  timeout_[static_cast<size_t>(TimeoutClass::other)] = cfg_.other_timeout_ns;

  uint32_t buckets = std::bit_ceil(std::max<uint32_t>(cfg_.max_flows, 1));
  mask_ = buckets - 1;
  buckets_ = std::make_unique<uint32_t[]>(buckets);
  std::fill_n(buckets_.get(), buckets, kNil);
  flows_ = std::make_unique<Flow[]>(cfg_.max_flows);
  for (uint32_t i = cfg_.max_flows; i-- > 0;) {
    flows_[i].chain_ = free_head_;
    free_head_ = i;
  }
}

uint64_t FlowTable::memory_bytes() const noexcept {
  return uint64_t{cfg_.max_flows} * sizeof(Flow) + uint64_t{bucket_count()} * sizeof(uint32_t);
}

uint64_t FlowTable::deadline(const Flow& f) const noexcept {
  uint64_t t = timeout_[static_cast<size_t>(f.tclass_)];
  return f.last_seen_ns > UINT64_MAX - t ? UINT64_MAX : f.last_seen_ns + t;
}

Flow* FlowTable::find(const FlowKey& key) noexcept {
  uint32_t i = find_index(key, hash32(key));
  return i == kNil ? nullptr : &flows_[i];
}

void FlowTable::lru_remove(uint32_t idx) noexcept {
  Flow& f = flows_[idx];
  Lru& l = lru_[static_cast<size_t>(f.tclass_)];
  (f.lru_prev_ == kNil ? l.head : flows_[f.lru_prev_].lru_next_) = f.lru_next_;
  (f.lru_next_ == kNil ? l.tail : flows_[f.lru_next_].lru_prev_) = f.lru_prev_;
  f.lru_prev_ = f.lru_next_ = kNil;
}

void FlowTable::lru_append(uint32_t idx) noexcept {
  Flow& f = flows_[idx];
  Lru& l = lru_[static_cast<size_t>(f.tclass_)];
  f.lru_prev_ = l.tail;
  f.lru_next_ = kNil;
  (l.tail == kNil ? l.head : flows_[l.tail].lru_next_) = idx;
  l.tail = idx;
}

// Back to a fresh flow with the same key and links: reassembly buffers are
// returned, L7 attachment and lifecycle zeroed.
void FlowTable::reset_flow(Flow& f) noexcept {
  for (TcpReassembly& s : f.stream) s.release(pool_);
  f.created_ns = now_;
  f.bytes = {};
  f.pkts = {};
  f.l7_index = 0;
  f.l7_kind = 0;
  f.class_id = 0;
  f.policy_gen = 0;
  f.tcp = 0;
  f.client_side = kSideLo;
  f.client_source = ClientSource::first_packet;
}

void FlowTable::unlink(uint32_t idx, FlowRelease why) noexcept {
  Flow& f = flows_[idx];
  if (hook_) hook_(hook_ctx_, f, why);
  for (TcpReassembly& s : f.stream) s.release(pool_);
  uint32_t* link = &buckets_[f.hash_ & mask_];
  while (*link != idx && *link != kNil) link = &flows_[*link].chain_;
  if (*link == idx) *link = f.chain_;
  lru_remove(idx);
  f.in_use_ = false;
  f.chain_ = free_head_;
  free_head_ = idx;
  --size_;
  switch (why) {
    case FlowRelease::expired: ++ctr_.flows_expired; break;
    case FlowRelease::evicted: ++ctr_.flows_evicted; break;
    case FlowRelease::removed: ++ctr_.flows_removed; break;
    case FlowRelease::reused:
    case FlowRelease::cleared: break;
  }
}

uint32_t FlowTable::take_entry(uint64_t now) noexcept {
  if (free_head_ == kNil) {
    uint32_t victim = kNil;
    uint64_t best = UINT64_MAX;
    for (const Lru& l : lru_) {
      if (l.head == kNil) continue;
      uint64_t d = deadline(flows_[l.head]);
      if (victim == kNil || d < best) {
        victim = l.head;
        best = d;
      }
    }
    if (victim == kNil) return kNil;
    if (now - flows_[victim].last_seen_ns < cfg_.min_evict_idle_ns) return kNil;
    unlink(victim, best <= now ? FlowRelease::expired : FlowRelease::evicted);
  }
  uint32_t idx = free_head_;
  free_head_ = flows_[idx].chain_;
  return idx;
}

// A miss, or a bare SYN on a known flow (which may reuse a closed flow's entry).
FlowLookup FlowTable::lookup_slow(const FlowKey& key, uint32_t h, uint32_t idx, uint8_t side, uint8_t tcp_flags,
                                  uint32_t wire_bytes) noexcept {
  bool created = false;
  if (idx != kNil) {
    ++ctr_.hits;
    Flow& f = flows_[idx];
    const bool dead = (f.tcp & flowtcp::rst) ||
                      (f.tcp & (flowtcp::fin_lo | flowtcp::fin_hi)) ==
                          (flowtcp::fin_lo | flowtcp::fin_hi);
    if (dead) {  // port reuse: a new connection on the same 5-tuple
      if (hook_) hook_(hook_ctx_, f, FlowRelease::reused);
      reset_flow(f);
      f.client_side = side;
      ++ctr_.flows_reused;
      created = true;
    }
  } else {
    idx = take_entry(now_);
    if (idx == kNil) {
      ++ctr_.table_full;
      return FlowLookup{.flow = nullptr, .side = side, .from_client = false, .created = false};
    }
    Flow& f = flows_[idx];
    f.key = key;
    f.hash_ = h;
    f.in_use_ = true;
    f.tclass_ = TimeoutClass::other;
    reset_flow(f);
    f.client_side = side;
    uint32_t& head = buckets_[h & mask_];
    f.chain_ = head;
    head = idx;
    f.lru_epoch_ = static_cast<uint32_t>(now_ >> kLruEpochShift);
    lru_append(idx);
    ++size_;
    ++ctr_.flows_created;
    created = true;
  }
  Flow& f = flows_[idx];
  const uint8_t client_before = f.client_side;
  account(f, side, tcp_flags, wire_bytes);
  if (!created && f.client_side != client_before) ++ctr_.direction_fixups;
  return FlowLookup{.flow = &f, .side = side, .from_client = f.from_client(side), .created = created};
}

void FlowTable::lru_move(Flow& f, TimeoutClass cls, uint32_t epoch) noexcept {
  const uint32_t idx = index_of(f);
  lru_remove(idx);
  f.tclass_ = cls;
  f.lru_epoch_ = epoch;
  lru_append(idx);
}

bool FlowTable::set_client_side(Flow& flow, uint8_t client_side) noexcept {
  client_side &= 1;
  bool changed = flow.client_side != client_side;
  flow.client_side = client_side;
  flow.client_source = ClientSource::l7;
  if (changed) ++ctr_.direction_fixups;
  return changed;
}

void FlowTable::remove(Flow& flow) noexcept {
  if (flow.in_use_) unlink(index_of(flow), FlowRelease::removed);
}

uint32_t FlowTable::expire(uint64_t now_ns, uint32_t max_to_scan) noexcept {
  now_ = std::max(now_, now_ns);
  uint32_t scanned = 0;
  uint32_t removed = 0;
  bool progress = true;
  // Round robin over the lists, so one long list of expired flows does not
  // starve the others when the budget is small.
  while (progress && scanned < max_to_scan) {
    progress = false;
    for (size_t k = 0; k < kTimeoutClassCount && scanned < max_to_scan; ++k) {
      const Lru& l = lru_[(expire_cursor_ + k) % kTimeoutClassCount];
      if (l.head == kNil) continue;
      ++scanned;
      if (deadline(flows_[l.head]) <= now_) {
        unlink(l.head, FlowRelease::expired);
        ++removed;
        progress = true;
      }
    }
  }
  expire_cursor_ = (expire_cursor_ + 1) % kTimeoutClassCount;
  return removed;
}

void FlowTable::clear() noexcept {
  for (const Lru& l : lru_) {
    while (l.head != kNil) unlink(l.head, FlowRelease::cleared);
  }
}

SegmentOutcome feed_tcp(Flow& flow, uint8_t side, const TcpSegment& seg, ReassemblyPool& pool,
                        StreamSink sink) noexcept {
  side &= 1;
  TcpReassembly& self = flow.stream[side];
  TcpReassembly& peer = flow.stream[side ^ 1];
  SegmentOutcome o = self.on_segment(seg, pool, sink);
  if (o == SegmentOutcome::rst) {
    peer.abort(pool);
  } else if (seg.flags & tcpflag::ack) {
    peer.on_peer_ack(seg.ack, pool);
  }
  return o;
}

}  // namespace aiqos
