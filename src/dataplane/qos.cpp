#include "dataplane/qos.h"

#include <rte_ether.h>

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
  if (port_ != nullptr) rte_sched_port_free(port_);
}

bool Shaper::init(const std::string& name, uint64_t rate_bps, uint16_t queue_frames, int socket, std::string& error) {
  ShaperShare sh = shaper_share(rate_bps, 1);
  sh.frame_overhead = 0;  // rates count Ethernet frame bytes, as the meters do
  port_bytes_per_s_ = sh.port_bytes_per_s;
  tb_size_ = sh.tb_size;
  rte_sched_subport_profile_params sp{};
  sp.tb_rate = sh.port_bytes_per_s;
  sp.tb_size = sh.tb_size;
  for (auto& r : sp.tc_rate) r = sh.port_bytes_per_s;
  sp.tc_period = sh.tc_period_ms;
  rte_sched_port_params pp{};
  pp.name = name.c_str();
  pp.socket = socket;
  pp.rate = sh.port_bytes_per_s;
  pp.mtu = 1522;
  pp.frame_overhead = sh.frame_overhead;
  pp.n_subports_per_port = 1;
  pp.subport_profiles = &sp;
  pp.n_subport_profiles = 1;
  pp.n_max_subport_profiles = 1;
  pp.n_pipes_per_subport = 1;
  port_ = rte_sched_port_config(&pp);
  if (port_ == nullptr) {
    error = "rte_sched_port_config failed for " + name;
    return false;
  }
  rte_sched_pipe_params pipe{};
  pipe.tb_rate = sh.port_bytes_per_s;
  pipe.tb_size = sh.tb_size;
  for (auto& r : pipe.tc_rate) r = sh.port_bytes_per_s;
  pipe.tc_period = sh.tc_period_ms;
  pipe.tc_ov_weight = 1;
  for (auto& w : pipe.wrr_weights) w = 1;
  rte_sched_subport_params sub{};
  sub.n_pipes_per_subport_enabled = 1;
  for (auto& q : sub.qsize) q = queue_frames;
  sub.pipe_profiles = &pipe;
  sub.n_pipe_profiles = 1;
  sub.n_max_pipe_profiles = 256;  // a new one per policy change of class rates
  if (int rc = rte_sched_subport_config(port_, 0, &sub, 0); rc != 0) {
    error = "rte_sched_subport_config failed for " + name + ": " + std::to_string(rc);
    return false;
  }
  if (int rc = rte_sched_pipe_config(port_, 0, 0, 0); rc != 0) {
    error = "rte_sched_pipe_config failed for " + name + ": " + std::to_string(rc);
    return false;
  }
  return true;
}

bool Shaper::set_tc_rates(const std::array<uint64_t, RTE_SCHED_TRAFFIC_CLASSES_PER_PIPE>& r) noexcept {
  if (port_ == nullptr || r == rates_) return true;
  rte_sched_pipe_params pipe{};
  pipe.tb_rate = port_bytes_per_s_;
  pipe.tb_size = tb_size_;
  uint64_t min_rate = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    pipe.tc_rate[i] = r[i] != 0 ? std::min(r[i], port_bytes_per_s_) : port_bytes_per_s_;
    if (r[i] != 0 && (min_rate == 0 || r[i] < min_rate)) min_rate = r[i];
  }
  pipe.tc_period = tc_period_ms_for(min_rate);
  pipe.tc_ov_weight = 1;
  for (auto& w : pipe.wrr_weights) w = 1;
  uint32_t id;
  if (rte_sched_subport_pipe_profile_add(port_, 0, &pipe, &id) != 0) return false;
  if (rte_sched_pipe_config(port_, 0, 0, static_cast<int32_t>(id)) != 0) return false;
  rates_ = r;
  return true;
}

uint32_t Shaper::enqueue(rte_mbuf** pkts, uint32_t n, const uint8_t* tcs) noexcept {
  for (uint32_t i = 0; i < n; ++i) rte_sched_port_pkt_write(port_, pkts[i], 0, 0, tcs[i], 0, RTE_COLOR_GREEN);
  return static_cast<uint32_t>(rte_sched_port_enqueue(port_, pkts, n));
}

uint32_t Shaper::dequeue(rte_mbuf** pkts, uint32_t n) noexcept {
  return static_cast<uint32_t>(rte_sched_port_dequeue(port_, pkts, n));
}

}  // namespace aiqos
