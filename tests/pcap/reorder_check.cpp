// Generator test for TCP reassembly under real network conditions: every
// capture of tests/pcap/cases is run through the per-worker Classifier once as
// captured, then again for many random seeds with its data segments permuted
// inside short windows (2-6 consecutive segments of one direction), some
// segments duplicated, and ACKs kept as a tap would see them (no ACK ever
// acknowledges bytes the tap has not seen yet). The request log must come out
// the same every time (every field but the ones derived from frame times,
// which move with the frames, and the budget verdict, which depends on the
// order in which requests complete).
//
//   aiqos_reorder_check --policy FILE [--seeds N] [--seed S] [--ack tap|client|raw]
//                       [--acked-hole-grace N] [--cut FRACTION] CASE_DIR...
//
// --seed S replays one seed (printed on failure). --ack: see AckModel.
// --acked-hole-grace N overrides the reassembly's (0: the behaviour before
// issue 13, which `--ack client` shows failing). --cut F: instead of permuting,
// drop the first F of every connection's frames (mid-stream pickup).
#include <pcap/pcap.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "classify/classifier.h"
#include "classify/flow_key.h"
#include "classify/packet_parse.h"
#include "control/policy_engine.h"
#include "control/policy_yaml.h"
#include "control/request_log.h"

using namespace aiqos;

namespace {

int g_acked_hole_grace = -1;  // --acked-hole-grace: the classifier's default when < 0

struct Frame {
  std::vector<uint8_t> bytes;
  uint64_t ts_ns = 0;
  PacketInfo p;
};

struct Sink : RequestSink {
  const ClassResolver* policy = nullptr;
  std::vector<std::string> lines;
  std::vector<RequestRecord> records;
  void emit(const RequestRecord& r) noexcept override {
    std::string cls = policy ? std::string(policy->class_name_of(r.class_id)) : std::string();
    nlohmann::json j = nlohmann::json::parse(request_json(r, cls));
    // Times move with the frames; budgets are charged in the order requests
    // are classified, which moves with them too.
    for (const char* k : {"ts", "ttfb_ms", "ttft_ms", "tpot_ms", "duration_ms", "budget", "est_tokens"}) j.erase(k);
    lines.push_back(j.dump());
    records.push_back(r);
  }
};

bool read_pcap(const std::string& path, std::vector<Frame>& out) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* pc = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
  if (pc == nullptr) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), err);
    return false;
  }
  pcap_pkthdr* h;
  const u_char* d;
  while (pcap_next_ex(pc, &h, &d) == 1) {
    Frame f;
    f.bytes.assign(d, d + h->caplen);
    f.ts_ns = uint64_t(h->ts.tv_sec) * 1'000'000'000 + uint64_t(h->ts.tv_usec);
    parse_packet(f.bytes, f.p);
    out.push_back(std::move(f));
  }
  pcap_close(pc);
  return true;
}

// Runs frames through a fresh classifier; returns the sorted request log and
// the unclassified-flow counters.
struct Run {
  std::vector<std::string> log;
  std::vector<RequestRecord> records;
  std::array<uint64_t, kUnclassifiedCount> unclassified{};
  ClassifierCounters ctr;
};

Run classify(const std::vector<const Frame*>& frames, const std::vector<uint64_t>& ts,
             const std::vector<uint32_t>& acks, const PolicyEngine& policy) {
  ClassifierConfig cfg;
  cfg.flows.max_flows = 4096;
  cfg.max_l7_conns = 1024;
  cfg.max_requests = 1024;
  for (const std::string& h : policy.policy().capture.headers) cfg.l7.capture.extra.add(h);
  // The per-flow bound as aiqosd takes it from the policy's limits; the pool
  // (all flows together) smaller than its 64 MiB, which no capture here nears:
  // a classifier is built for every run.
  cfg.reassembly.pool_bytes = std::min<uint64_t>(policy.policy().limits.reassembly_bytes_total, 8 << 20);
  cfg.reassembly.max_ooo_bytes_per_flow = static_cast<uint32_t>(policy.policy().limits.reassembly_bytes_per_flow);
  if (g_acked_hole_grace >= 0) cfg.reassembly.acked_hole_grace = static_cast<uint32_t>(g_acked_hole_grace);
  Sink sink;
  sink.policy = &policy;
  Classifier cls(cfg, sink);
  cls.set_policy(&policy, 1, 0, 1);
  for (size_t i = 0; i < frames.size(); ++i) {
    PacketInfo p = frames[i]->p;
    p.ack = acks[i];
    cls.on_packet(p, frames[i]->bytes, ts[i]);
  }
  cls.flush();
  Run r;
  r.records = std::move(sink.records);
  r.log = std::move(sink.lines);
  std::sort(r.log.begin(), r.log.end());
  r.unclassified = cls.counters().unclassified;
  r.ctr = cls.counters();
  return r;
}

struct Perturbed {
  std::vector<const Frame*> order;
  std::vector<uint64_t> ts;
  std::vector<uint32_t> acks;
  size_t moved = 0, duplicated = 0, acks_held = 0;
};

// The connection and direction of a TCP frame: (canonical key, sender side).
struct DirKey {
  std::string conn;  // conn_of(): the same for both directions
  uint8_t side;      // which endpoint sent it
  bool operator<(const DirKey& o) const { return conn != o.conn ? conn < o.conn : side < o.side; }
};

std::string conn_of(const PacketInfo& p);

bool dir_of(const PacketInfo& p, DirKey& out) {
  if (p.status != ParseStatus::ok || p.l4proto != 6) return false;
  out.conn = conn_of(p);
  std::string src = std::string(reinterpret_cast<const char*>(p.src.data()), 16) + std::to_string(p.sport);
  std::string dst = std::string(reinterpret_cast<const char*>(p.dst.data()), 16) + std::to_string(p.dport);
  out.side = src < dst ? 0 : 1;
  return true;
}

// How ACKs move with the frames that carry them:
//  tap:  every frame waits until the tap has seen what its ACK acknowledges
//        (causality: it was sent after its sender received those bytes);
//  client: only the client's data segments are permuted, and they carry
//        their ACK wherever they land (every other frame waits as with tap).
//        A client segment moved earlier may then acknowledge server bytes
//        (an HTTP/2 WINDOW_UPDATE during a large upload) before they are
//        seen: what two merged capture points or a mirror can show, and what
//        the report behind issue 13 did;
//  raw:  nothing waits (not what any tap sees: responses before requests).
enum class AckModel { tap, client, raw };

Perturbed perturb(const std::vector<Frame>& in, uint64_t seed, AckModel acks) {
  std::mt19937_64 rng(seed);
  Perturbed out;
  // Slots keep their time (timestamps stay monotonic); frames move between slots.
  std::vector<const Frame*> slot(in.size());
  for (size_t i = 0; i < in.size(); ++i) slot[i] = &in[i];
  std::set<DirKey> clients;  // the directions that sent a bare SYN
  for (const Frame& f : in) {
    DirKey k;
    if (dir_of(f.p, k) && (f.p.tcp_flags & (tcpflag::syn | tcpflag::ack)) == tcpflag::syn) clients.insert(k);
  }
  std::map<DirKey, std::vector<size_t>> data_slots;  // per direction: its data segments' slots
  for (size_t i = 0; i < in.size(); ++i) {
    DirKey k;
    if (!dir_of(in[i].p, k) || in[i].p.payload_len == 0) continue;
    if (acks == AckModel::client && !clients.count(k)) continue;
    data_slots[k].push_back(i);
  }
  std::vector<std::pair<size_t, const Frame*>> dups;  // (insert after slot, frame)
  for (auto& [k, s] : data_slots) {
    size_t i = 0;
    while (i + 1 < s.size()) {
      if (rng() % 3 != 0) {
        ++i;
        continue;
      }
      size_t n = std::min<size_t>(2 + rng() % 5, s.size() - i);  // 2..6
      std::vector<const Frame*> w(n);
      for (size_t j = 0; j < n; ++j) w[j] = slot[s[i + j]];
      std::vector<const Frame*> orig = w;
      for (int tries = 0; tries < 4 && w == orig; ++tries) std::shuffle(w.begin(), w.end(), rng);
      for (size_t j = 0; j < n; ++j) {
        if (slot[s[i + j]] != w[j]) ++out.moved;
        slot[s[i + j]] = w[j];
      }
      if (rng() % 4 == 0) dups.emplace_back(s[i + rng() % n], w[rng() % n]);  // a retransmission
      i += n;
    }
  }
  std::sort(dups.begin(), dups.end(), [](auto& a, auto& b) { return a.first < b.first; });
  size_t d = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    out.order.push_back(slot[i]);
    out.ts.push_back(in[i].ts_ns);
    for (; d < dups.size() && dups[d].first == i; ++d) {
      out.order.push_back(dups[d].second);
      out.ts.push_back(in[i].ts_ns);
      ++out.duplicated;
    }
  }
  if (acks == AckModel::raw) {
    for (const Frame* f : out.order) out.acks.push_back(f->p.ack);
    return out;
  }
  // Causality, as a tap sees it: a frame acknowledging bytes of the other
  // direction was sent after its sender received them, so it crosses the tap
  // after them. A frame whose ACK is ahead of what the tap has seen of the
  // other direction in order waits until it has; frames that do not wait go
  // ahead of it (a permutation that put a segment before one its own ACK
  // depends on through the peer is undone as far as causality requires).
  struct Seen {
    bool known = false;
    uint32_t next = 0;  // next in-order sequence number of this direction
    std::vector<std::pair<uint32_t, uint32_t>> ooo;  // [seq, end) seen ahead of next
  };
  std::map<DirKey, Seen> seen;
  std::vector<std::pair<const Frame*, uint64_t>> waiting;
  std::vector<const Frame*> order;
  std::vector<uint64_t> ts;
  order.swap(out.order);
  ts.swap(out.ts);
  auto see = [&](const PacketInfo& p, const DirKey& k) {
    Seen& me = seen[k];
    uint32_t len = p.payload_len + ((p.tcp_flags & tcpflag::syn) ? 1 : 0) + ((p.tcp_flags & tcpflag::fin) ? 1 : 0);
    if (!me.known && ((p.tcp_flags & tcpflag::syn) || len > 0)) {
      me.known = true;
      me.next = p.seq;
    }
    if (!me.known || len == 0) return;
    uint32_t b = p.seq, e = p.seq + len;
    if (!seq_gt(e, me.next)) return;
    if (seq_le(b, me.next)) {
      me.next = e;
    } else {
      me.ooo.emplace_back(b, e);
    }
    for (bool grew = true; grew;) {
      grew = false;
      for (auto it = me.ooo.begin(); it != me.ooo.end(); ++it) {
        if (seq_le(it->first, me.next)) {
          if (seq_gt(it->second, me.next)) me.next = it->second;
          me.ooo.erase(it);
          grew = true;
          break;
        }
      }
    }
  };
  auto ready = [&](const PacketInfo& p, const DirKey& k) {
    if (!(p.tcp_flags & tcpflag::ack)) return true;
    if (acks == AckModel::client && clients.count(k) && p.payload_len > 0) return true;
    DirKey other = k;
    other.side ^= 1;
    auto o = seen.find(other);
    return o == seen.end() || !o->second.known || !seq_gt(p.ack, o->second.next);
  };
  uint64_t last_ts = 0;
  auto emit = [&](const Frame* f, uint64_t t) {
    last_ts = std::max(last_ts, t);
    out.order.push_back(f);
    out.ts.push_back(last_ts);
    out.acks.push_back(f->p.ack);
  };
  auto flush = [&]() {
    for (bool again = true; again;) {
      again = false;
      for (auto it = waiting.begin(); it != waiting.end(); ++it) {
        DirKey k;
        dir_of(it->first->p, k);
        if (!ready(it->first->p, k)) continue;
        auto [f, t] = *it;
        waiting.erase(it);
        emit(f, t);
        see(f->p, k);
        again = true;
        break;
      }
    }
  };
  for (size_t i = 0; i < order.size(); ++i) {
    const PacketInfo& p = order[i]->p;
    DirKey k;
    if (!dir_of(p, k)) {
      emit(order[i], ts[i]);
      continue;
    }
    if (!ready(p, k)) {
      ++out.acks_held;
      waiting.emplace_back(order[i], ts[i]);
      continue;
    }
    emit(order[i], ts[i]);
    see(p, k);
    flush();
  }
  for (auto& [f, t] : waiting) emit(f, t);  // acknowledging bytes never captured
  return out;
}

std::string counters(const std::array<uint64_t, kUnclassifiedCount>& u);

// A connection, both directions alike: its two endpoints in a fixed order.
std::string conn_id(const uint8_t* a, uint16_t pa, const uint8_t* b, uint16_t pb, uint16_t vlan) {
  std::string x(reinterpret_cast<const char*>(a), 16), y(reinterpret_cast<const char*>(b), 16);
  x += std::to_string(pa);
  y += std::to_string(pb);
  return (x < y ? x + "|" + y : y + "|" + x) + "|" + std::to_string(vlan);
}
std::string conn_of(const RequestRecord& r) {
  return conn_id(r.src.data(), r.sport, r.dst.data(), r.dport, r.vlan);
}
std::string conn_of(const PacketInfo& p) {
  return conn_id(p.src.data(), p.sport, p.dst.data(), p.dport, p.vlan_id());
}

// The same request in two runs: same connection, same stream (HTTP/2), and
// what identifies it (HTTP/1: method and path; HTTP/2: the model).
bool same_request(const RequestRecord& a, const RequestRecord& b) {
  if (conn_of(a) != conn_of(b)) return false;
  if (a.proto == ReqProto::h1 || b.proto == ReqProto::h1)
    return a.proto == b.proto && a.method.view() == b.method.view() && a.path.view() == b.path.view() &&
           a.model.view() == b.model.view();
  return a.stream_id == b.stream_id && a.model.view() == b.model.view();
}

std::string brief(const RequestRecord& r, const ClassResolver& p) {
  return std::string(req_proto_name(r.proto)) + " stream " + std::to_string(r.stream_id) + " " +
         std::string(r.method.view()) + " " + std::string(r.path.view()) + " model=" + std::string(r.model.view()) +
         " class=" + std::string(p.class_name_of(r.class_id)) + (r.midstream ? " (midstream)" : "");
}

// Mid-stream pickup: each connection loses its first `fraction` of frames
// (handshake, preface, SETTINGS...). What is classified after the cut must be
// right, and every HTTP/1.1 request after the cut, and every HTTP/2 request
// whose body names its model, must be classified.
bool check_cut(const std::string& dir, const std::vector<Frame>& frames, double fraction, const Run& clean,
               const PolicyEngine& policy) {
  std::map<std::string, size_t> total, seen;
  for (const Frame& f : frames)
    if (f.p.status == ParseStatus::ok && f.p.l4proto == 6) ++total[conn_of(f.p)];
  std::vector<const Frame*> order;
  std::vector<uint64_t> ts;
  std::vector<uint32_t> acks;
  std::map<std::string, uint64_t> cut_ts;
  for (const Frame& f : frames) {
    if (f.p.status == ParseStatus::ok && f.p.l4proto == 6) {
      std::string c = conn_of(f.p);
      if (seen[c]++ < static_cast<size_t>(static_cast<double>(total[c]) * fraction)) continue;
      cut_ts.emplace(c, f.ts_ns);
    }
    order.push_back(&f);
    ts.push_back(f.ts_ns);
    acks.push_back(f.p.ack);
  }
  Run cut = classify(order, ts, acks, policy);
  size_t wrong = 0, missed = 0, expected = 0, right = 0;
  for (const RequestRecord& r : cut.records) {
    if (r.model.empty() && r.proto != ReqProto::h1) continue;  // nothing claimed
    bool ok = false;
    for (const RequestRecord& c : clean.records) ok |= same_request(r, c) && r.class_id == c.class_id;
    if (!ok) {
      ++wrong;
      std::printf("  WRONG %s\n", brief(r, policy).c_str());
    }
  }
  for (const RequestRecord& c : clean.records) {
    auto it = cut_ts.find(conn_of(c));
    if (it == cut_ts.end() || c.ts_ns < it->second || c.proto == ReqProto::tls) continue;
    bool must = c.proto == ReqProto::h1 || c.model_source == ModelSource::body || c.model_source == ModelSource::grpc;
    if (!must) continue;
    ++expected;
    bool found = false;
    for (const RequestRecord& r : cut.records) found |= same_request(r, c) && r.class_id == c.class_id;
    right += found;
    if (!found) {
      ++missed;
      std::printf("  MISSED %s\n", brief(c, policy).c_str());
    }
  }
  std::printf("%-60s cut %.0f%% of each connection: %zu of %zu requests after the cut classified, %zu wrong, "
              "%zu in all (%llu connections picked up mid-stream, %llu header blocks partly decoded); "
              "unclassified flows:%s\n",
              dir.c_str(), fraction * 100, right, expected, wrong, cut.records.size(),
              static_cast<unsigned long long>(cut.ctr.midstream_conns),
              static_cast<unsigned long long>(cut.ctr.partial_headers), counters(cut.unclassified).c_str());
  return wrong == 0 && missed == 0;
}

std::string counters(const std::array<uint64_t, kUnclassifiedCount>& u) {
  std::string s;
  for (size_t i = 0; i < u.size(); ++i)
    if (u[i]) s += std::string(" ") + unclassified_name(static_cast<Unclassified>(i)) + "=" + std::to_string(u[i]);
  return s.empty() ? " none" : s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string policy_file;
  uint64_t seeds = 100, first_seed = std::random_device{}();
  bool one_seed = false;
  AckModel ack_model = AckModel::tap;
  double cut_fraction = 0;
  std::vector<std::string> cases;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--policy") policy_file = next();
    else if (a == "--seeds") seeds = std::stoull(next());
    else if (a == "--seed") first_seed = std::stoull(next()), one_seed = true;
    else if (a == "--ack") {
      std::string m = next();
      ack_model = m == "raw" ? AckModel::raw : m == "client" ? AckModel::client : AckModel::tap;
    }
    else if (a == "--cut") cut_fraction = std::stod(next());
    else if (a == "--acked-hole-grace") g_acked_hole_grace = std::stoi(next());
    else cases.push_back(a);
  }
  if (policy_file.empty() || cases.empty()) {
    std::fprintf(stderr,
                 "usage: %s --policy FILE [--seeds N] [--seed S] [--ack tap|client|raw] [--acked-hole-grace N] "
                 "[--cut FRACTION] CASE_DIR...\n",
                 argv[0]);
    return 2;
  }
  LoadResult lr = load_policy_file(policy_file);
  if (!lr.ok()) {
    std::fprintf(stderr, "%s: does not load\n", policy_file.c_str());
    return 2;
  }
  std::vector<PolicyError> errs;
  std::vector<std::string> capture = lr.policy->capture.headers;
  auto policy = PolicyEngine::compile(std::move(*lr.policy), capture, 1, policy_file, errs);
  if (!policy) {
    std::fprintf(stderr, "%s: does not compile\n", policy_file.c_str());
    return 2;
  }
  // Fewer seeds where each run costs more (scripts/test-sanitized: -O0 under ASan).
  if (const char* e = std::getenv("AIQOS_REORDER_SEEDS"); e != nullptr && *e != '\0') seeds = std::stoull(e);
  if (one_seed) seeds = 1;
  std::printf("reorder_check: %zu captures x %llu seeds from %llu (replay one: --seed S)\n", cases.size(),
              static_cast<unsigned long long>(seeds), static_cast<unsigned long long>(first_seed));
  int failed = 0;
  uint64_t total_runs = 0;
  for (const std::string& dir : cases) {
    std::vector<Frame> frames;
    if (!read_pcap(dir + "/in.pcap", frames)) return 2;
    std::vector<const Frame*> order;
    std::vector<uint64_t> ts;
    std::vector<uint32_t> acks;
    for (const Frame& f : frames) {
      order.push_back(&f);
      ts.push_back(f.ts_ns);
      acks.push_back(f.p.ack);
    }
    Run clean = classify(order, ts, acks, *policy);
    if (cut_fraction > 0) {
      failed += !check_cut(dir, frames, cut_fraction, clean, *policy);
      continue;
    }
    size_t moved = 0, dup = 0, held = 0, case_failed = 0;
    for (uint64_t s = 0; s < seeds; ++s) {
      uint64_t seed = first_seed + s;
      Perturbed pt = perturb(frames, seed, ack_model);
      moved += pt.moved;
      dup += pt.duplicated;
      held += pt.acks_held;
      Run r = classify(pt.order, pt.ts, pt.acks, *policy);
      ++total_runs;
      if (r.log == clean.log && r.unclassified == clean.unclassified) continue;
      ++case_failed;
      if (case_failed <= 3) {
        std::printf("FAIL %s seed %llu: %zu requests (clean %zu), unclassified%s (clean%s)\n", dir.c_str(),
                    static_cast<unsigned long long>(seed), r.log.size(), clean.log.size(),
                    counters(r.unclassified).c_str(), counters(clean.unclassified).c_str());
        std::vector<std::string> only_clean, only_run;
        std::set_difference(clean.log.begin(), clean.log.end(), r.log.begin(), r.log.end(),
                            std::back_inserter(only_clean));
        std::set_difference(r.log.begin(), r.log.end(), clean.log.begin(), clean.log.end(),
                            std::back_inserter(only_run));
        for (size_t j = 0; j < std::min<size_t>(2, only_clean.size()); ++j)
          std::printf("  expected %s\n", only_clean[j].c_str());
        for (size_t j = 0; j < std::min<size_t>(2, only_run.size()); ++j)
          std::printf("  got      %s\n", only_run[j].c_str());
      }
    }
    std::printf("%-60s %4zu requests, %5zu frames: %llu seeds, %zu failed (segments moved %zu, duplicated %zu, frames held for their ACK %zu)\n",
                dir.c_str(), clean.log.size(), frames.size(), static_cast<unsigned long long>(seeds), case_failed,
                moved, dup, held);
    failed += case_failed > 0;
  }
  std::printf("reorder_check: %llu runs, %d captures failed\n", static_cast<unsigned long long>(total_runs), failed);
  return failed ? 1 : 0;
}
