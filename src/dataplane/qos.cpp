#include "dataplane/qos.h"

#include <rte_ether.h>

#include <algorithm>
#include <cstring>

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

// Pushes an 802.1Q tag in the headroom: what rte_vlan_insert() does, with the
// 12 address bytes moved as two words instead of a memmove call (~35
// instructions a frame less). As with rte_vlan_insert, a shared or indirect
// mbuf, a first segment shorter than two addresses or a full headroom leave
// the frame untagged.
void push_vlan(rte_mbuf* m, uint16_t tci) noexcept {
  m->vlan_tci = tci;
  if (!RTE_MBUF_DIRECT(m) || rte_mbuf_refcnt_read(m) > 1 || rte_pktmbuf_data_len(m) < 2 * RTE_ETHER_ADDR_LEN)
    return;
  const auto* old_hdr = rte_pktmbuf_mtod(m, const uint8_t*);
  uint64_t macs8;
  uint32_t macs4;
  std::memcpy(&macs8, old_hdr, 8);
  std::memcpy(&macs4, old_hdr + 8, 4);
  auto* h = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, sizeof(rte_vlan_hdr)));
  if (h == nullptr) return;
  std::memcpy(h, &macs8, 8);
  std::memcpy(h + 8, &macs4, 4);
  const uint32_t tag = rte_cpu_to_be_32((uint32_t{RTE_ETHER_TYPE_VLAN} << 16) | tci);
  std::memcpy(h + 12, &tag, 4);
  m->ol_flags &= ~(RTE_MBUF_F_RX_VLAN_STRIPPED | RTE_MBUF_F_TX_VLAN);
  if (m->ol_flags & RTE_MBUF_F_TX_TUNNEL_MASK)
    m->outer_l2_len += sizeof(rte_vlan_hdr);
  else
    m->l2_len += sizeof(rte_vlan_hdr);
}

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
    push_vlan(m, make_tci(static_cast<uint16_t>(q.vlan), static_cast<uint8_t>(pcp < 0 ? 0 : pcp)));
  }
}

}  // namespace

uint16_t WorkerQos::apply(rte_mbuf** pkts, uint16_t n, uint64_t tsc, ClassCounters* cc, WorkerCounters& ctr,
                          const uint16_t* egress) noexcept {
  if (snap_ == nullptr) return n;
  // Locals: the stores below (mbufs, counters) would otherwise make the
  // compiler load the class table again for every frame.
  const QosClass* const classes = snap_->classes.data();
  const size_t nb_classes = snap_->classes.size();
  const uint16_t default_class = snap_->engine->default_class();
  rte_meter_srtcm* const meters = meters_;
  uint16_t kept = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    MbufMeta* md = meta(m);
    uint16_t c = md->class_id < nb_classes ? md->class_id : default_class;
    uint32_t len = rte_pktmbuf_pkt_len(m);
    if (md->over_budget) {
      ctr.port[egress[i]].drops[static_cast<size_t>(DropReason::over_budget)].add();
      rte_pktmbuf_free(m);
      continue;
    }
    bool exceed = false;
    const QosClass* q = &classes[c];
    if (q->metered &&
        rte_meter_srtcm_color_blind_check(&meters[c], const_cast<rte_meter_srtcm_profile*>(&q->profile), tsc, len) ==
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
          c = q->demote_to < nb_classes ? q->demote_to : c;
          q = &classes[c];
          md->class_id = c;
          if (q->metered &&
              rte_meter_srtcm_color_blind_check(&meters[c], const_cast<rte_meter_srtcm_profile*>(&q->profile), tsc,
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

}  // namespace aiqos
