// The per-worker classifier: flow table -> TCP reassembly -> L7 parsers ->
// request records. Pure C++ over decoded packets (PacketInfo + frame bytes),
// so it runs the same inside a DPDK worker, in unit tests and under a fuzzer.
//
// Memory: everything is sized from ClassifierConfig and allocated in the
// constructor (flow table, reassembly pool, HPACK pool, L7 contexts, request
// slots). The exceptions are per connection, not per packet: an HTTP/2
// connection's stream table (its HPACK inflaters allocate from the HPACK
// pool), an HTTP/1 connection's pipeline queue,
// and a Hyperscan stream per request body when the policy has body patterns.
//
// Fail open: whatever goes wrong (a bound, a gap, a parser error) marks the
// flow unclassified and is counted; the caller forwards the frame regardless.
//
// Threading: one Classifier per worker (worker: rw). Counters are plain
// fields the control plane may read (ro; a torn value is tolerated).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "classify/budget.h"
#include "classify/class_resolver.h"
#include "classify/count_bucket.h"
#include "classify/credential_hash.h"
#include "classify/fleet_view.h"
#include "classify/flow_table.h"
#include "classify/hpack_pool.h"
#include "classify/json_model.h"
#include "classify/l7_detect.h"
#include "classify/name_table.h"
#include "classify/packet_parse.h"
#include "classify/request_record.h"
#include "classify/tcp_reassembly.h"

namespace aiqos {

class TlsClientHelloParser;

struct ClassifierConfig {
  FlowTableConfig flows;
  ReassemblyConfig reassembly;
  L7Config l7;
  uint32_t max_l7_conns = 16384;     // flows with L7 state at once
  uint32_t max_requests = 16384;     // requests in flight at once
  uint64_t body_scan_bytes = 1 << 20;  // request body bytes searched for the model
  uint32_t max_tls_handshakes = 1024;  // ClientHellos being parsed at once
  uint32_t tls_hello_bytes = 16384;    // largest ClientHello parsed
  // Distinct TLS server names kept for connections past their ClientHello (a
  // reload re-evaluates them: classify/name_table.h); 0: none kept.
  uint32_t max_tls_names = 4096;
  uint64_t midstream_bytes = 16 << 20;  // resynchronisation buffers of picked-up connections, together
  // The HPACK inflaters' memory (hpack_pool.h), all connections together; 0:
  // hpack_pool_default_bytes(max_l7_conns, l7.http2.max_hpack_mem).
  uint64_t hpack_pool_bytes = 0;
  int tenant_header = -1;            // index into l7.capture.extra, or -1
  // Bit i: l7.capture.extra[i] is a credential header; its value is replaced
  // by hash_credential(tenant_salt, value) before it is stored anywhere.
  uint8_t hashed_extra = 0;
  CredentialSalt tenant_salt;
};

// What the QoS stages need to know of one frame.
struct PacketClass {
  uint16_t class_id = 0;
  bool from_client = true;  // direction, when the frame belongs to a TCP/UDP flow
  bool drop = false;        // the client's frames of a request over its budget (action drop)
};

// One flow as `aiqosctl flows` shows it.
struct FlowInfo {
  FlowKey key;
  uint8_t client_side = 0;  // kSideLo / kSideHi: which key endpoint is the client
  uint16_t class_id = 0;
  uint64_t bytes[2] = {};  // by sender side
  uint64_t pkts[2] = {};
  uint64_t created_ns = 0, last_seen_ns = 0;
  // What the flow carries. Unscoped, with these values: readers index name
  // tables with it (flow_l7_name() is the one to use).
  enum L7 : uint8_t { l7_none = 0, l7_http1 = 1, l7_http2 = 2, l7_tls = 3, l7_unclassified = 4 };
  L7 l7 = l7_none;
  uint32_t open_requests = 0;
  BoundedString<64> last_model;  // of the latest request whose model was known
  BoundedString<128> server_name;  // TLS past its ClientHello: the SNI (kept names only)
};

// "-", "h1", "h2", "tls" or "unclassified" (as `aiqosctl flows` shows it).
const char* flow_l7_name(FlowInfo::L7 l7) noexcept;

struct FlowFilter {
  int class_id = -1;            // -1: any
  BoundedString<64> model;      // empty: any
};

// Receives finished requests. Called on the worker; must not block.
class RequestSink {
 public:
  virtual ~RequestSink() = default;
  virtual void emit(const RequestRecord& r) noexcept = 0;
};

// Why a flow stopped being classified. Named counters.
#define AIQOS_UNCLASSIFIED(X)                                            \
  X(reassembly, "a TCP direction failed (bound, pool, or acked hole)")   \
  X(l7_error, "the HTTP parser gave up (malformed or over a bound)")     \
  X(l7_pool_full, "no free L7 context (max_l7_conns)")                   \
  X(unknown_protocol, "first bytes are neither HTTP nor TLS")            \
  X(tls_error, "TLS without a parsable ClientHello (or parsers busy)")  \
  X(table_full, "flow table full: packet went on without a flow")

enum class Unclassified : uint8_t {
#define X(name, desc) name,
  AIQOS_UNCLASSIFIED(X)
#undef X
      count_
};
inline constexpr size_t kUnclassifiedCount = static_cast<size_t>(Unclassified::count_);
const char* unclassified_name(Unclassified u) noexcept;

// Plain fields the control plane reads by name; the budget counters
// (over_rps, budget_demoted, tokens_refunded, fleet_checked, ...) come from BudgetCounters.
struct ClassifierCounters : BudgetCounters {
  uint64_t packets = 0;
  // Frames that took the fast path: no reassembly, no L7 parser (a flow whose
  // class can no longer change, or a TCP segment without bytes or SYN/FIN/RST).
  uint64_t fast_path_frames = 0;
  uint64_t tcp_payload_bytes = 0;
  uint64_t l7_conns = 0;         // connections that got L7 state
  uint64_t requests = 0;         // request heads seen
  uint64_t requests_emitted = 0;
  uint64_t request_slots_full = 0;  // request heads seen with no free slot (not logged)
  uint64_t models_found = 0;
  uint64_t direction_swaps = 0;  // L7 said the labeled server was the client
  uint64_t midstream_conns = 0;  // connections picked up mid-stream (no SYN seen)
  uint64_t partial_headers = 0;  // requests whose header block was not decoded whole
  uint64_t tls_hellos = 0;       // ClientHellos parsed (SNI logged)
  uint64_t tls_names_not_kept = 0;  // ... whose server name found no room (name table): L3 rules after a reload
  // Policy reloads: flows re-evaluated under the new policy at their first
  // frame after it, and the open requests re-evaluated with them.
  uint64_t flows_reclassified = 0;
  uint64_t requests_reclassified = 0;
  uint64_t budget_frames_dropped = 0;  // client frames of requests over budget (action drop)
  // Response accounting (response_tracker.h): where output tokens came from.
  uint64_t responses_usage = 0;      // the server reported usage
  uint64_t responses_counted = 0;    // counted from stream events
  uint64_t responses_scan_failed = 0;  // garbage in the body: gave up (estimated)
  uint64_t responses_encoded = 0;    // compressed bodies, not decoded
  std::array<uint64_t, kUnclassifiedCount> unclassified{};
  std::array<uint64_t, static_cast<size_t>(L7Error::count_)> l7_errors{};  // by parser reason
};

class Classifier {
 public:
  Classifier(const ClassifierConfig& cfg, RequestSink& sink, const BodyMatcher* body_db = nullptr);
  ~Classifier();
  Classifier(const Classifier&) = delete;
  Classifier& operator=(const Classifier&) = delete;

  // The policy in force (RCU: the caller guarantees it outlives its use until
  // the next call), its generation, and this classifier's worker index.
  // Flows classified under another generation are re-evaluated at their next
  // frame: their open requests (and a TLS connection's server name) under
  // the new rules, else the new L3 rules.
  void set_policy(const ClassResolver* r, uint32_t generation, uint16_t worker, uint16_t workers = 1) noexcept;
  // Fleet budgets (fleet_view.h): the view the fleet sync thread publishes and
  // this worker's consumption counters. Both outlive the classifier; null
  // (the default) keeps every budget local.
  void set_fleet(const FleetView* view, FleetUsage* usage) noexcept { budgets_.set_fleet(view, usage); }

  // One decoded frame. `now_ns` is the frame's time (capture time offline,
  // wall clock live); it stamps request records and drives timeouts.
  // Returns the class the frame is charged to.
  PacketClass on_packet(const PacketInfo& p, std::span<const uint8_t> frame, uint64_t now_ns) noexcept {
    return on_packet(p, frame, now_ns, flow_id(p));
  }
  // The same with the frame's flow identity already computed (the dataplane's
  // parse stage builds it once for dispatch and lookup). `id` MUST be flow_id(p).
  PacketClass on_packet(const PacketInfo& p, std::span<const uint8_t> frame, uint64_t now_ns,
                        const FlowId& id) noexcept;
  // Expires idle flows, looking at no more than `budget` flows.
  void expire(uint64_t now_ns, uint32_t budget = 64) noexcept;
  // Ends every flow: open requests are emitted as incomplete (offline end, shutdown).
  void flush() noexcept;

  const ClassifierCounters& counters() const noexcept { return ctr_; }
  // The `max` largest flows (by bytes) passing `filter`, largest first; returns
  // how many were written. Scans the whole table: operator queries only.
  size_t top_flows(FlowInfo* out, size_t max, const FlowFilter& filter) const noexcept;
  const FlowTable& flows() const noexcept { return *flows_; }
  const ReassemblyPool& reassembly() const noexcept { return *pool_; }
  const MidstreamBudget& midstream() const noexcept { return midstream_budget_; }
  const HpackPool& hpack_pool() const noexcept { return *hpack_pool_; }
  uint32_t l7_in_use() const noexcept { return l7_in_use_; }
  uint32_t requests_in_use() const noexcept { return req_in_use_; }
  const NameTable& tls_names() const noexcept { return tls_names_; }
  // Bytes allocated at construction (flow table, pool, L7 contexts, slots).
  uint64_t memory_bytes() const noexcept;

  struct FlowL7;  // per-connection L7 state (classifier_slots.h)
  struct ReqSlot;  // per-request state (classifier_slots.h)

 private:
  friend struct FlowL7;
  static void on_flow_release(void* ctx, Flow& f, FlowRelease why) noexcept;
  FlowL7* l7_alloc(Flow& f, uint8_t client_side) noexcept;
  void l7_free(FlowL7& c) noexcept;
  ReqSlot* req_alloc() noexcept;
  void req_free(ReqSlot* s) noexcept;
  void emit(FlowL7& c, ReqSlot& s) noexcept;
  void fail_flow(Flow& f, FlowL7* c, Unclassified why) noexcept;

  ClassifierConfig cfg_;
  RequestSink& sink_;
  const BodyMatcher* body_db_;
  BodyScratch scratch_;
  std::unique_ptr<ReassemblyPool> pool_;
  std::unique_ptr<HpackPool> hpack_pool_;  // before the L7 contexts: their inflaters free into it
  std::unique_ptr<FlowTable> flows_;
  std::unique_ptr<FlowL7[]> l7_;
  uint32_t l7_free_ = UINT32_MAX;
  uint32_t l7_in_use_ = 0;
  void finish_tls(Flow& f, FlowL7& c) noexcept;
  std::vector<std::unique_ptr<TlsClientHelloParser>> tls_;
  std::vector<uint32_t> tls_free_;
  NameTable tls_names_;  // server names of TLS flows past their ClientHello (Flow::l7_index - 1)
  std::unique_ptr<ReqSlot[]> req_;
  uint32_t req_free_ = UINT32_MAX;
  uint32_t req_in_use_ = 0;
  void on_bare_ack(Flow& f, uint8_t side, const PacketInfo& p) noexcept;
  void on_tcp(Flow& f, uint8_t side, const PacketInfo& p, std::span<const uint8_t> frame) noexcept;
  void classify_request(FlowL7& c, ReqSlot& s, bool final) noexcept;
  // `changed`: the one request whose class may have changed since the last call (null: any).
  void update_flow_class(FlowL7& c, const ReqSlot* changed = nullptr) noexcept;
  void reclassify_flow(Flow& f) noexcept;
  void reclassify_request(FlowL7& c, ReqSlot& s) noexcept;
  void request_facts(ReqSlot& s, RequestFacts& f, std::array<std::string_view, kMaxExtraHeaders>& extra) const noexcept;
  void tls_record(const Flow& f, std::string_view sni, RequestRecord& r) const noexcept;
  uint16_t tls_class(std::string_view sni, RequestRecord& r) const noexcept;
  void set_class_name(RequestRecord& r) const noexcept;

  void charge_budgets(FlowL7& c, ReqSlot& s, bool final) noexcept;
  void account_response(ReqSlot& s) noexcept;

  std::vector<uint8_t> prio_;              // per class: resolver_->priority(), read per request event
  uint16_t default_class_ = 0;             // resolver_->default_class(), read per frame

  uint64_t now_ = 0;
  const ClassResolver* resolver_ = nullptr;
  uint32_t policy_gen_ = 0;
  uint16_t worker_ = 0;
  ClassifierCounters ctr_;
  // Request and token budgets: this worker's share, re-armed at each policy change.
  RequestBudgets budgets_{ctr_};
  MidstreamBudget midstream_budget_;
};

}  // namespace aiqos
