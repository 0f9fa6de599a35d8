#include "dataplane/qos.h"

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_malloc.h>

#include <algorithm>

#include "dataplane/mbuf_meta.h"
#include "dataplane/qos_math.h"
#include "dataplane/rewrite.h"

namespace aiqos {

std::unique_ptr<PolicySnapshot> PolicySnapshot::build(std::unique_ptr<PolicyEngine> engine, uint16_t workers,
                                                      uint32_t generation, std::string& error) {
  auto s = std::make_unique<PolicySnapshot>();
  s->generation = generation;
  const Policy& p = engine->policy();
  if (p.classes.size() > kMaxQosClasses) {
    error = "at most " + std::to_string(kMaxQosClasses) + " classes";
    return nullptr;
  }
  // Traffic classes in order of priority, then of appearance.
  std::vector<size_t> order(p.classes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return p.classes[a].priority < p.classes[b].priority; });
  std::vector<uint8_t> tc_of(p.classes.size(), kBestEffortTc);
  for (size_t k = 0; k < order.size() && k < kStrictTcs; ++k) tc_of[order[k]] = static_cast<uint8_t>(k);

  for (size_t ci = 0; ci < p.classes.size(); ++ci) {
    const ClassCfg& c = p.classes[ci];
    QosClass q;
    q.tc = tc_of[ci];
    // A rate whose excess is dropped is a shaping rate: TCP through a queue
    // gets the rate; through a policer it gets far less. Rates with remark or
    // demote need a per-frame verdict: rte_meter polices them.
    MeterShare m = meter_share(c.rate_bps, c.burst_bytes, workers);
    if (m.cir_bytes_per_s != 0 && c.exceed == ExceedAction::drop && q.tc != kBestEffortTc) {
      q.shaped = true;
      s->any_shaped = true;
      s->tc_rate[q.tc] = m.cir_bytes_per_s;
    } else if (m.cir_bytes_per_s != 0) {
      rte_meter_srtcm_params prm{m.cir_bytes_per_s, m.cbs_bytes, 0};
      if (rte_meter_srtcm_profile_config(&q.profile, &prm) != 0) {
        error = "class " + c.name + ": rte_meter rejects rate " + std::to_string(c.rate_bps) + " bit/s";
        return nullptr;
      }
      q.metered = true;
    }
    q.exceed = c.exceed;
    if (c.exceed_dscp) q.exceed_dscp = *c.exceed_dscp;
    if (c.exceed_pcp) q.exceed_pcp = *c.exceed_pcp;
    if (c.demote_to) q.demote_to = *c.demote_to;
    if (c.vlan) q.vlan = *c.vlan;
    if (c.pcp) q.pcp = *c.pcp;
    if (c.dscp) q.dscp = *c.dscp;
    s->classes.push_back(q);
  }
  s->engine = std::move(engine);
  return s;
}

void WorkerQos::reconfigure(const PolicySnapshot* s) noexcept {
  snap_ = s;
  if (s == nullptr) return;
  for (size_t i = 0; i < s->classes.size(); ++i)
    if (s->classes[i].metered)
      rte_meter_srtcm_config(&meters_[i], const_cast<rte_meter_srtcm_profile*>(&s->classes[i].profile));
}

namespace {

// DSCP and VLAN marking of one frame of class `q`; `exceed` adds the exceed
// re-marking. May replace *m (VLAN push prepends in place; the pointer stays).
void mark(rte_mbuf* m, const QosClass& q, bool exceed) noexcept {
  MbufMeta* md = meta(m);
  std::span<uint8_t> f(rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m));
  int dscp = exceed && q.exceed_dscp >= 0 ? q.exceed_dscp : q.dscp;
  if (dscp >= 0) set_dscp(f, md->pkt, static_cast<uint8_t>(dscp));
  int pcp = exceed && q.exceed_pcp >= 0 ? q.exceed_pcp : q.pcp;
  if (q.vlan < 0) {
    // No class VLAN: tags stay as they were, but an exceed PCP re-marks a tagged frame.
    if (exceed && q.exceed_pcp >= 0) rewrite_outer_tag(f, md->pkt, -1, q.exceed_pcp);
    return;
  }
  if (md->pkt.n_vlans > 0) {
    rewrite_outer_tag(f, md->pkt, q.vlan, pcp);
  } else {
    m->vlan_tci = make_tci(static_cast<uint16_t>(q.vlan), static_cast<uint8_t>(pcp < 0 ? 0 : pcp));
    rte_mbuf* mm = m;
    rte_vlan_insert(&mm);  // fails only without headroom: the frame then leaves untagged
  }
}

}  // namespace

uint16_t WorkerQos::apply(rte_mbuf** pkts, uint16_t n, uint64_t tsc, ClassCounters* cc, WorkerCounters& ctr,
                          const uint16_t* egress) noexcept {
  if (snap_ == nullptr) return n;
  const auto& classes = snap_->classes;
  uint16_t kept = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    MbufMeta* md = meta(m);
    uint16_t c = md->class_id < classes.size() ? md->class_id : snap_->engine->default_class();
    uint32_t len = rte_pktmbuf_pkt_len(m);
    if (md->over_budget) {
      ctr.port[egress[i]].drops[static_cast<size_t>(DropReason::over_budget)].add();
      rte_pktmbuf_free(m);
      continue;
    }
    bool exceed = false;
    const QosClass* q = &classes[c];
    if (q->metered &&
        rte_meter_srtcm_color_blind_check(&meters_[c], const_cast<rte_meter_srtcm_profile*>(&q->profile), tsc, len) ==
            RTE_COLOR_RED) {
      switch (q->exceed) {
        case ExceedAction::drop:
          cc[c].policed.add();
          ctr.port[egress[i]].drops[static_cast<size_t>(DropReason::policed)].add();
          rte_pktmbuf_free(m);
          continue;
        case ExceedAction::remark:
          cc[c].remarked.add();
          exceed = true;
          break;
        case ExceedAction::demote:
          // The frame continues as the lower class, under that class's own meter.
          cc[c].demoted.add();
          c = q->demote_to < classes.size() ? q->demote_to : c;
          q = &classes[c];
          md->class_id = c;
          if (q->metered &&
              rte_meter_srtcm_color_blind_check(&meters_[c], const_cast<rte_meter_srtcm_profile*>(&q->profile), tsc,
                                                len) == RTE_COLOR_RED) {
            cc[c].policed.add();
            ctr.port[egress[i]].drops[static_cast<size_t>(DropReason::policed)].add();
            rte_pktmbuf_free(m);
            continue;
          }
          break;
      }
    }
    if (q->dscp >= 0 || q->vlan >= 0 || exceed) mark(m, *q, exceed);
    cc[c].frames.add();
    cc[c].bytes.add(len);
    pkts[kept++] = m;
  }
  return kept;
}

Shaper::~Shaper() {
  if (slots_ != nullptr)
    for (size_t t = 0; t < kTcs; ++t)
      for (uint32_t k = 0; k < fifo_[t].count; ++k) rte_pktmbuf_free(slots_[t * qsize_ + (fifo_[t].head + k) % qsize_]);
  rte_free(slots_);
  rte_free(flows_);
  rte_free(pins_);
}

namespace {
// Burst of a rate-limited bucket: 20 ms at the rate, at least two full frames.
double burst_for(double bytes_per_s) noexcept {
  return std::max(bytes_per_s / 50.0, 2.0 * static_cast<double>(kMaxFrameBytes));
}
}  // namespace

bool Shaper::init(const std::string& name, uint64_t rate_bps, uint16_t queue_frames, int socket, std::string& error) {
  if (queue_frames == 0 || (queue_frames & (queue_frames - 1)) != 0) {
    error = "shaper " + name + ": queue length must be a power of two";
    return false;
  }
  qsize_ = queue_frames;
  // At most one pin per queued frame: twice the slots keeps the table at most
  // half full, so a probe always ends at the flow or at a free entry.
  const uint32_t npins = rte_align32pow2(static_cast<uint32_t>(2 * kTcs * qsize_));
  slots_ = static_cast<rte_mbuf**>(
      rte_zmalloc_socket(name.c_str(), sizeof(rte_mbuf*) * kTcs * qsize_, RTE_CACHE_LINE_SIZE, socket));
  flows_ = static_cast<uint64_t*>(
      rte_zmalloc_socket(name.c_str(), sizeof(uint64_t) * kTcs * qsize_, RTE_CACHE_LINE_SIZE, socket));
  pins_ = static_cast<Pin*>(rte_zmalloc_socket(name.c_str(), sizeof(Pin) * npins, RTE_CACHE_LINE_SIZE, socket));
  pin_mask_ = npins - 1;
  if (slots_ == nullptr || flows_ == nullptr || pins_ == nullptr) {
    error = "shaper " + name + ": out of memory";
    return false;
  }
  tsc_hz_ = static_cast<double>(rte_get_tsc_hz());
  double port = static_cast<double>(rate_bps) / 8.0;
  port_.per_tsc = port / tsc_hz_;
  port_.burst = burst_for(port);
  port_.tokens = port_.burst;
  last_tsc_ = rte_rdtsc();
  return true;
}

bool Shaper::set_tc_rates(const std::array<uint64_t, kTcs>& r) noexcept {
  if (r == rates_) return true;
  for (size_t t = 0; t < kTcs; ++t) {
    Bucket& b = tc_[t];
    if (r[t] == 0) {
      b = Bucket{};
    } else {
      b.per_tsc = static_cast<double>(r[t]) / tsc_hz_;
      b.burst = burst_for(static_cast<double>(r[t]));
      b.tokens = std::min(b.tokens, b.burst);
    }
  }
  rates_ = r;
  return true;
}

void Shaper::refill(uint64_t now) noexcept {
  double dt = static_cast<double>(now - last_tsc_);
  last_tsc_ = now;
  port_.tokens = std::min(port_.burst, port_.tokens + dt * port_.per_tsc);
  for (Bucket& b : tc_)
    if (b.per_tsc != 0) b.tokens = std::min(b.burst, b.tokens + dt * b.per_tsc);
}

namespace {
// Flow keys are hashes already, but tests and non-IP frames use small ones:
// mix before taking the low bits.
inline uint32_t pin_home(uint64_t flow, uint32_t mask) noexcept {
  return static_cast<uint32_t>((flow * 0x9e3779b97f4a7c15ULL) >> 32) & mask;
}
}  // namespace

// The entry of `flow`, or the free entry where it would go.
uint32_t Shaper::pin_slot(uint64_t flow) const noexcept {
  uint32_t i = pin_home(flow, pin_mask_);
  while (pins_[i].count != 0 && pins_[i].flow != flow) i = (i + 1) & pin_mask_;
  return i;
}

// One frame of `flow` has left its FIFO; the last one frees the entry
// (backward-shift deletion: no tombstones, probes stay short).
void Shaper::pin_release(uint64_t flow) noexcept {
  uint32_t i = pin_slot(flow);
  if (pins_[i].count == 0 || --pins_[i].count != 0) return;
  --pinned_;
  for (uint32_t j = (i + 1) & pin_mask_; pins_[j].count != 0; j = (j + 1) & pin_mask_) {
    uint32_t home = pin_home(pins_[j].flow, pin_mask_);
    if (((j - home) & pin_mask_) >= ((j - i) & pin_mask_)) {
      pins_[i] = pins_[j];
      pins_[j].count = 0;
      i = j;
    }
  }
}

uint32_t Shaper::enqueue(rte_mbuf** pkts, uint32_t n, const uint8_t* tcs, const uint64_t* flows,
                         uint32_t* held) noexcept {
  uint32_t ok = 0, moved = 0;
  for (uint32_t i = 0; i < n; ++i) {
    size_t t = tcs[i] < kTcs ? tcs[i] : kTcs - 1;
    Pin& p = pins_[pin_slot(flows[i])];
    const bool keep = p.count != 0 && p.tc != t;
    if (keep) t = p.tc;  // the flow keeps the queue that holds its frames
    Fifo& f = fifo_[t];
    if (f.count == qsize_) {
      rte_pktmbuf_free(pkts[i]);
      continue;
    }
    moved += keep;
    const uint32_t slot = static_cast<uint32_t>(t * qsize_ + ((f.head + f.count) & (qsize_ - 1)));
    slots_[slot] = pkts[i];
    flows_[slot] = flows[i];
    ++f.count;
    ++queued_;
    ++ok;
    if (p.count++ == 0) {
      p.flow = flows[i];
      p.tc = static_cast<uint8_t>(t);
      ++pinned_;
    }
  }
  if (held != nullptr) *held = moved;
  return ok;
}

uint32_t Shaper::pass(rte_mbuf* const* pkts, uint32_t n, const uint8_t* tcs, uint64_t now) noexcept {
  if (queued_ != 0) return 0;
  refill(now);
  uint32_t k = 0;
  for (; k < n; ++k) {
    const double len = static_cast<double>(rte_pktmbuf_pkt_len(pkts[k]));
    Bucket& b = tc_[tcs[k] < kTcs ? tcs[k] : kTcs - 1];
    if (port_.tokens < len || (b.per_tsc != 0 && b.tokens < len)) break;
    port_.tokens -= len;
    if (b.per_tsc != 0) b.tokens -= len;
  }
  return k;
}

uint32_t Shaper::dequeue(rte_mbuf** out, uint32_t n) noexcept {
  refill(rte_rdtsc());
  const uint32_t mask = qsize_ - 1;  // qsize_ is a power of two (init)
  uint32_t k = 0;
  // Strict priority. Within one call no tokens are added, so a class found
  // empty or over its rate stays so: each class is visited once, most urgent
  // first, and gives what it can before the next may go.
  for (size_t t = 0; t < kTcs && k < n; ++t) {
    Fifo& f = fifo_[t];
    Bucket& b = tc_[t];
    while (f.count != 0 && k < n) {
      rte_mbuf* m = slots_[t * qsize_ + f.head];
      double len = static_cast<double>(rte_pktmbuf_pkt_len(m));
      if (port_.tokens < len) return k;                 // the port is the limit: nobody may go
      if (b.per_tsc != 0 && b.tokens < len) break;      // this class waits; a lower one may go
      port_.tokens -= len;
      if (b.per_tsc != 0) b.tokens -= len;
      pin_release(flows_[t * qsize_ + f.head]);
      f.head = (f.head + 1) & mask;
      --f.count;
      --queued_;
      out[k++] = m;
    }
  }
  return k;
}

uint32_t Shaper::queued() const noexcept { return queued_; }

}  // namespace aiqos
