// The operator's flow dump (`aiqosctl flows`): the largest flows of one
// worker's table, with what their L7 state knows. Control-path queries only:
// it scans the whole table.
#include "classify/classifier_slots.h"

namespace aiqos {

const char* flow_l7_name(FlowInfo::L7 l7) noexcept {
  switch (l7) {
    case FlowInfo::l7_none: return "-";
    case FlowInfo::l7_http1: return "h1";
    case FlowInfo::l7_http2: return "h2";
    case FlowInfo::l7_tls: return "tls";
    case FlowInfo::l7_unclassified: return "unclassified";
  }
  return "-";
}

size_t Classifier::top_flows(FlowInfo* out, size_t max, const FlowFilter& filter) const noexcept {
  if (max == 0) return 0;
  size_t n = 0;
  auto total = [](const FlowInfo& f) { return f.bytes[0] + f.bytes[1]; };
  flows_->for_each([&](const Flow& f) {
    if (filter.class_id >= 0 && f.class_id != filter.class_id) return;
    FlowInfo fi;
    fi.key = f.key;
    fi.client_side = f.client_side;
    fi.class_id = f.class_id;
    fi.bytes[0] = f.bytes[0];
    fi.bytes[1] = f.bytes[1];
    fi.pkts[0] = f.pkts[0];
    fi.pkts[1] = f.pkts[1];
    fi.created_ns = f.created_ns;
    fi.last_seen_ns = f.last_seen_ns;
    if (f.l7_kind == kL7Unclassified) fi.l7 = FlowInfo::l7_unclassified;
    if (f.l7_kind == kL7Done) {
      fi.l7 = FlowInfo::l7_tls;
      if (f.l7_index != 0) fi.server_name.append(tls_names_.name(f.l7_index - 1));
    }
    if (f.l7_kind == kL7Active && f.l7_index != 0) {
      const FlowL7& c = l7_[f.l7_index - 1];
      fi.last_model = c.last_model;
      for (uint32_t i = c.head; i != kNil; i = req_[i].next) {
        ++fi.open_requests;
        if (!req_[i].rec.model.empty()) {
          fi.last_model.clear();
          fi.last_model.append(req_[i].rec.model.view());
        }
      }
      if (c.tls != kNil) fi.l7 = FlowInfo::l7_tls;
      else if (c.l7 && c.l7->proto() == L7Proto::http2) fi.l7 = FlowInfo::l7_http2;
      else if (c.l7 && c.l7->proto() == L7Proto::http1) fi.l7 = FlowInfo::l7_http1;
    }
    if (!filter.model.empty() && fi.last_model.view() != filter.model.view()) return;
    // Keep the largest `max`: insertion into a sorted prefix (max is small).
    size_t pos = n < max ? n : max;
    while (pos > 0 && total(out[pos - 1]) < total(fi)) {
      if (pos < max) out[pos] = out[pos - 1];
      --pos;
    }
    if (pos < max) {
      out[pos] = fi;
      if (n < max) ++n;
    }
  });
  return n;
}

}  // namespace aiqos
