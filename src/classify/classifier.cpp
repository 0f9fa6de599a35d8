#include "classify/classifier.h"

#include <cmath>
#include <cstring>
#include <optional>

#include "classify/endpoint.h"
#include "classify/flow_key.h"
#include "classify/grpc.h"
#include "classify/response_tracker.h"
#include "classify/tls.h"

namespace aiqos {

const char* unclassified_name(Unclassified u) noexcept {
  switch (u) {
#define X(name, desc) \
  case Unclassified::name: return #name;
    AIQOS_UNCLASSIFIED(X)
#undef X
    default: return "unknown";
  }
}

namespace {
constexpr uint32_t kNil = UINT32_MAX;
// Flow::l7_kind values.
constexpr uint8_t kL7None = 0;          // no payload seen yet
constexpr uint8_t kL7Active = 1;        // l7_index names a FlowL7
constexpr uint8_t kL7Unclassified = 2;  // given up: frames pass without inspection
constexpr uint8_t kL7Done = 3;          // classified (TLS: SNI seen); nothing more to parse

bool starts_with_ci(std::string_view s, std::string_view prefix) noexcept {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}
// The record's client and server, from the flow key and the client side.
void set_endpoints(RequestRecord& r, const FlowKey& k, bool client_lo) noexcept {
  r.src = client_lo ? k.lo_addr : k.hi_addr;
  r.dst = client_lo ? k.hi_addr : k.lo_addr;
  r.sport = client_lo ? k.lo_port : k.hi_port;
  r.dport = client_lo ? k.hi_port : k.lo_port;
  r.vlan = k.vlan;
  r.family = k.family;
}
}  // namespace

struct Classifier::ReqSlot {
  RequestRecord rec;
  uint32_t class_gen = 0;  // policy generation rec.class_id belongs to
  bool rps_charged = false, tokens_charged = false;
  uint16_t tokens_class = 0;  // class whose token budget was charged
  double tokens_taken = 0;    // tokens taken from that budget (0: none), corrected when the response ends
  bool tokens_fleet = false;  // ... taken from the fleet's allowance: the correction goes to the fleet's count too
  bool has_json = false;      // `body` was opened for this request (else it holds an earlier one's fields)
  ResponseTracker resp;
  ResponseTemplate resp_tpl;  // the tracker's line template bytes (memcmp, not hashes: cost)
  BodyStream body;
  GrpcModelDecoder grpc;
  bool grpc_open = false;
  bool class_pending = false;  // a rule testing the model came first: decide again when it is known
  // Captured header values, kept for a second classification once the model is known.
  std::array<BoundedString<64>, kMaxExtraHeaders> extra;
  uint8_t n_extra = 0;
  uint64_t scanned = 0;  // body bytes given to the model search
  uint32_t next = kNil;  // next slot of the same connection (creation order), or free list
  uint32_t stream_id = 0;
  bool in_use = false;
  bool body_open = false;
  bool req_ended = false;
  bool resp_ended = false;
};

struct Classifier::FlowL7 final : RequestEvents {
  Classifier* cls = nullptr;
  Flow* flow = nullptr;
  uint32_t next_free = kNil;
  uint32_t head = kNil, tail = kNil;  // this connection's requests, oldest first
  uint8_t c2s_side = kSideLo;         // flow side whose bytes are fed as c2s
  bool in_use = false;
  bool swap_applied = false;
  L7Error pending_error = L7Error::none;  // set inside a callback, acted on after feed()
  uint32_t tls = kNil;                    // index of a ClientHello parser while one is needed
  uint32_t blocked = 0;                   // open requests over budget with action drop
  BoundedString<64> last_model;           // for aiqosctl flows --model
  std::optional<L7Connection> l7;

  uint8_t client_side() const noexcept {
    bool swapped = l7 && l7->client_side() == ClientSide::swapped;
    return swapped ? static_cast<uint8_t>(c2s_side ^ 1) : c2s_side;
  }

  // Newest slot of `stream` whose request is still open (HTTP/1: the request
  // being read; HTTP/2: the stream's only slot).
  ReqSlot* find_req(uint32_t stream) noexcept {
    ReqSlot* found = nullptr;
    for (uint32_t i = head; i != kNil; i = cls->req_[i].next)
      if (cls->req_[i].stream_id == stream && !cls->req_[i].req_ended) found = &cls->req_[i];
    return found;
  }
  // Oldest slot of `stream` whose response is still open (HTTP/1 pipelining
  // answers requests in order).
  ReqSlot* find_resp(uint32_t stream) noexcept {
    for (uint32_t i = head; i != kNil; i = cls->req_[i].next)
      if (cls->req_[i].stream_id == stream && !cls->req_[i].resp_ended) return &cls->req_[i];
    return nullptr;
  }
  void unlink(ReqSlot* s) noexcept {
    uint32_t idx = static_cast<uint32_t>(s - cls->req_.get());
    uint32_t prev = kNil;
    for (uint32_t i = head; i != kNil; prev = i, i = cls->req_[i].next) {
      if (i != idx) continue;
      if (prev == kNil) {
        head = s->next;
      } else {
        cls->req_[prev].next = s->next;
      }
      if (tail == idx) tail = prev;
      return;
    }
  }
  void finish_req(ReqSlot* s) noexcept {
    if (s->rec.budget == 2 && blocked > 0) --blocked;
    cls->account_response(*s);
    unlink(s);
    cls->emit(*this, *s);
    cls->req_free(s);
    if (head != kNil) cls->update_flow_class(*this);
  }
  void close_body(ReqSlot& s) noexcept {
    if (!s.body_open) return;
    s.body.close(cls->scratch_);
    s.body_open = false;
    const JsonTopLevel& j = s.body.json();
    if (s.rec.model_source == ModelSource::none && j.fields().has(JsonField::model)) {
      s.rec.model = j.fields().model;
      s.rec.model_source = ModelSource::body;
      ++cls->ctr_.models_found;
    }
    if (s.class_pending) cls->classify_request(*this, s, true);
  }

  // --- RequestEvents ---
  void on_request_headers(const RequestHead& h) noexcept override {
    ++cls->ctr_.requests;
    ReqSlot* s = cls->req_alloc();
    if (s == nullptr) {
      ++cls->ctr_.request_slots_full;
      return;
    }
    s->stream_id = h.stream_id;
    RequestRecord& r = s->rec;
    r.ts_ns = cls->now_;
    set_endpoints(r, flow->key, client_side() == kSideLo);
    r.stream_id = h.stream_id;
    bool h2 = l7 && l7->proto() == L7Proto::http2;
    r.proto = starts_with_ci(h.content_type, "application/grpc") ? ReqProto::grpc : (h2 ? ReqProto::h2 : ReqProto::h1);
    r.method.append(h.method);
    r.authority.append(h.authority);
    r.path.append(h.path);
    // A method lost with the HPACK table (mid-stream pickup): a request with
    // a body is a POST for every inference API, one without a GET.
    std::string_view method = h.method;
    if (h.partial && method.empty()) method = h.end_stream ? "GET" : "POST";
    EndpointMatch em = identify_endpoint(method, h.path);
    r.endpoint = em.endpoint;
    r.midstream = l7 && l7->midstream();
    r.headers_partial = h.partial;
    if (h.partial && h.path.empty()) r.endpoint = Endpoint::unknown;  // model rules still apply
    if (h.partial) ++cls->ctr_.partial_headers;
    if (!em.model.empty()) {
      r.model = em.model;
      r.model_source = ModelSource::path;
      ++cls->ctr_.models_found;
    }
    s->n_extra = static_cast<uint8_t>(std::min(cls->cfg_.l7.capture.extra.size(), kMaxExtraHeaders));
    for (size_t i = 0; i < s->n_extra; ++i) {
      s->extra[i].clear();
      if (cls->cfg_.hashed_extra & (1u << i)) {
        hash_credential(cls->cfg_.tenant_salt, h.extra[i], s->extra[i]);  // a credential: never stored
      } else {
        s->extra[i].append(h.extra[i]);
      }
    }
    if (cls->cfg_.tenant_header >= 0 && static_cast<size_t>(cls->cfg_.tenant_header) < s->n_extra)
      r.tenant.append(s->extra[static_cast<size_t>(cls->cfg_.tenant_header)].view());
    if (tail == kNil) {
      head = tail = static_cast<uint32_t>(s - cls->req_.get());
    } else {
      cls->req_[tail].next = static_cast<uint32_t>(s - cls->req_.get());
      tail = cls->req_[tail].next;
    }
    // Headers lost at a mid-stream pickup may hide a gRPC content-type: the
    // body tells (a gRPC message prefix fails the JSON tracker and vice versa).
    const bool body_unknown = h.partial && h.content_type.empty();
    if (!h.end_stream && r.proto != ReqProto::grpc) {
      s->body.open(cls->body_db_);
      s->body_open = true;
      s->has_json = true;
    }
    if (!h.end_stream && (r.proto == ReqProto::grpc || body_unknown)) {
      s->grpc.reset();
      s->grpc_open = true;
    }
    cls->classify_request(*this, *s, h.end_stream);
  }
  void on_request_body(uint32_t stream, std::span<const uint8_t> b) noexcept override {
    ReqSlot* s = find_req(stream);
    if (s == nullptr) return;
    s->rec.req_bytes += b.size();
    if (s->grpc_open) {
      // gRPC: the model is field 1 of each ModelInferRequest; the first one named wins.
      s->grpc.feed_all(b, [&](const GrpcMessage& m) {
        if (m.has_model && s->rec.model_source == ModelSource::none) {
          s->rec.model = m.model;
          s->rec.model_source = ModelSource::grpc;
          s->rec.proto = ReqProto::grpc;
          ++cls->ctr_.models_found;
          if (s->class_pending) cls->classify_request(*this, *s, true);
        }
      });
      if (s->grpc.failed()) s->grpc_open = false;
    }
    if (s->body_open && s->scanned < cls->cfg_.body_scan_bytes) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(b.size(), cls->cfg_.body_scan_bytes - s->scanned));
      s->body.feed(b.first(n), cls->scratch_);
      s->scanned += n;
    }
  }
  void on_request_end(uint32_t stream) noexcept override {
    ReqSlot* s = find_req(stream);
    if (s == nullptr) return;
    s->req_ended = true;
    s->rec.req_end_ns = cls->now_;
    close_body(*s);
    s->grpc_open = false;
    if (s->class_pending) {
      cls->classify_request(*this, *s, true);
    } else if (cls->resolver_ != nullptr && s->class_gen == cls->policy_gen_) {
      // The body is in: charge its tokens (may demote the request). A request
      // classified under an earlier policy keeps that class and its name.
      cls->charge_budgets(*this, *s, true);
      cls->set_class_name(s->rec);
      cls->update_flow_class(*this);
    }
    if (s->resp_ended) finish_req(s);
  }
  void on_response_headers(const ResponseHead& h) noexcept override {
    ReqSlot* s = find_resp(h.stream_id);
    if (s == nullptr) return;
    if (s->rec.resp_first_ns == 0) s->rec.resp_first_ns = cls->now_;
    s->rec.status = h.status;
    if (h.grpc_status >= 0) s->rec.grpc_status = static_cast<int16_t>(h.grpc_status);
    const bool grpc_stream = s->rec.proto == ReqProto::grpc && s->rec.path.view().find("StreamInfer") != std::string_view::npos;
    s->resp.start(s->rec.endpoint, h.content_type, h.encoded, grpc_stream, &s->resp_tpl);
  }
  void on_response_body(uint32_t stream, std::span<const uint8_t> b) noexcept override {
    ReqSlot* s = find_resp(stream);
    if (s == nullptr) return;
    s->rec.resp_bytes += b.size();
    if (s->resp.active()) s->resp.feed(b, cls->now_);
  }
  void on_response_trailers(uint32_t stream, int grpc_status) noexcept override {
    ReqSlot* s = find_resp(stream);
    if (s != nullptr && grpc_status >= 0) s->rec.grpc_status = static_cast<int16_t>(grpc_status);
  }
  void on_response_end(uint32_t stream) noexcept override {
    ReqSlot* s = find_resp(stream);
    if (s == nullptr) return;
    s->resp_ended = true;
    s->rec.resp_end_ns = cls->now_;
    // HTTP/1 may answer before the request body ends; HTTP/2 streams end
    // with the response. Either way the request is complete now.
    if (!s->req_ended) {
      s->req_ended = true;
      close_body(*s);
    }
    finish_req(s);
  }
  void on_stream_reset(uint32_t stream, uint32_t, Dir) noexcept override {
    for (uint32_t i = head; i != kNil; i = cls->req_[i].next) {
      ReqSlot& s = cls->req_[i];
      if (s.stream_id != stream) continue;
      s.rec.reset = true;
      s.rec.incomplete = !s.resp_ended;
      close_body(s);
      finish_req(&s);
      return;
    }
  }
  void on_parse_error(L7Error e) noexcept override {
    if (pending_error == L7Error::none) pending_error = e;
  }

  // Emits whatever is still open as incomplete and returns the slots.
  void drain() noexcept {
    while (head != kNil) {
      ReqSlot& s = cls->req_[head];
      s.rec.incomplete = true;
      close_body(s);
      finish_req(&s);
    }
  }
};

Classifier::Classifier(const ClassifierConfig& cfg, RequestSink& sink, const BodyMatcher* body_db)
    : cfg_(cfg), sink_(sink), body_db_(body_db) {
  // What connections picked up mid-stream hold while they resynchronise, together.
  midstream_budget_.cap = cfg_.midstream_bytes;
  cfg_.l7.midstream_budget = &midstream_budget_;
  pool_ = std::make_unique<ReassemblyPool>(cfg_.reassembly);
  flows_ = std::make_unique<FlowTable>(cfg_.flows, *pool_, &Classifier::on_flow_release, this);
  if (body_db_ != nullptr) body_db_->reserve(scratch_);
  l7_ = std::make_unique<FlowL7[]>(cfg_.max_l7_conns);
  for (uint32_t i = cfg_.max_l7_conns; i-- > 0;) {
    l7_[i].cls = this;
    l7_[i].next_free = l7_free_;
    l7_free_ = i;
  }
  tls_.reserve(cfg_.max_tls_handshakes);
  for (uint32_t i = 0; i < cfg_.max_tls_handshakes; ++i) {
    tls_.push_back(std::make_unique<TlsClientHelloParser>(cfg_.tls_hello_bytes));
    tls_free_.push_back(cfg_.max_tls_handshakes - 1 - i);
  }
  req_ = std::make_unique<ReqSlot[]>(cfg_.max_requests);
  for (uint32_t i = cfg_.max_requests; i-- > 0;) {
    req_[i].next = req_free_;
    req_free_ = i;
  }
}

Classifier::~Classifier() {
  // Return per-connection memory; nothing is emitted on destruction.
  for (uint32_t i = 0; i < cfg_.max_l7_conns; ++i) {
    if (!l7_[i].in_use) continue;
    for (uint32_t r = l7_[i].head; r != kNil; r = req_[r].next)
      if (req_[r].body_open) req_[r].body.close(scratch_);
    l7_[i].l7.reset();
  }
}

uint64_t Classifier::memory_bytes() const noexcept {
  return flows_->memory_bytes() + pool_->memory_bytes() + uint64_t{cfg_.max_l7_conns} * sizeof(FlowL7) +
         uint64_t{cfg_.max_requests} * sizeof(ReqSlot) +
         uint64_t{cfg_.max_tls_handshakes} * (sizeof(TlsClientHelloParser) + cfg_.tls_hello_bytes);
}

Classifier::FlowL7* Classifier::l7_alloc(Flow& f, uint8_t c2s_side) noexcept {
  if (l7_free_ == kNil) return nullptr;
  uint32_t i = l7_free_;
  FlowL7& c = l7_[i];
  l7_free_ = c.next_free;
  c.next_free = kNil;
  c.in_use = true;
  c.flow = &f;
  c.head = c.tail = kNil;
  c.c2s_side = c2s_side;
  c.swap_applied = false;
  c.blocked = 0;
  c.last_model.clear();
  c.pending_error = L7Error::none;
  c.l7.emplace(cfg_.l7, c);
  // Neither SYN seen: the connection was open before this flow existed (a
  // (re)start, or the flow was evicted). Resynchronise instead of judging it
  // by its first bytes; when the bytes cannot tell who the client is, the side
  // with the lower port is taken for the server.
  if (f.key.proto == 6 && !f.stream[0].syn_seen() && !f.stream[1].syn_seen()) {
    const uint16_t c2s_port = c2s_side == kSideLo ? f.key.lo_port : f.key.hi_port;
    const uint16_t s2c_port = c2s_side == kSideLo ? f.key.hi_port : f.key.lo_port;
    c.l7->start_midstream(c2s_port < s2c_port ? Dir::s2c : Dir::c2s);
    ++ctr_.midstream_conns;
  }
  f.l7_index = i + 1;
  f.l7_kind = kL7Active;
  ++l7_in_use_;
  ++ctr_.l7_conns;
  return &c;
}

void Classifier::l7_free(FlowL7& c) noexcept {
  c.drain();
  if (c.tls != kNil) {
    tls_free_.push_back(c.tls);
    c.tls = kNil;
  }
  c.l7.reset();
  if (c.flow != nullptr) {
    c.flow->l7_index = 0;
    c.flow = nullptr;
  }
  c.in_use = false;
  c.next_free = l7_free_;
  l7_free_ = static_cast<uint32_t>(&c - l7_.get());
  --l7_in_use_;
}

Classifier::ReqSlot* Classifier::req_alloc() noexcept {
  if (req_free_ == kNil) return nullptr;
  ReqSlot* s = &req_[req_free_];
  req_free_ = s->next;
  s->rec = RequestRecord{};
  s->next = kNil;
  s->scanned = 0;
  s->stream_id = 0;
  s->in_use = true;
  s->body_open = s->req_ended = s->resp_ended = s->grpc_open = s->class_pending = false;
  s->rps_charged = s->tokens_charged = false;
  s->tokens_taken = 0;
  s->tokens_fleet = false;
  s->has_json = false;
  s->resp.reset();
  s->class_gen = 0;
  s->n_extra = 0;
  ++req_in_use_;
  return s;
}

void Classifier::req_free(ReqSlot* s) noexcept {
  if (s->body_open) {
    s->body.close(scratch_);
    s->body_open = false;
  }
  s->in_use = false;
  s->next = req_free_;
  req_free_ = static_cast<uint32_t>(s - req_.get());
  --req_in_use_;
}

void Classifier::emit(FlowL7& c, ReqSlot& s) noexcept {
  if (!s.rec.model.empty()) {
    c.last_model.clear();
    c.last_model.append(s.rec.model.view());
  }
  ++ctr_.requests_emitted;
  sink_.emit(s.rec);
}

void Classifier::set_class_name(RequestRecord& r) const noexcept {
  r.class_name.clear();
  if (resolver_ == nullptr) {
    r.class_name.append("default");
    return;
  }
  r.class_name.append(resolver_->class_name_of(r.class_id));
}

// Classifies one request with what is known of it now. `final`: the model
// will not become any better known (body over, or none).
void Classifier::classify_request(FlowL7& c, ReqSlot& s, bool final) noexcept {
  RequestRecord& r = s.rec;
  if (resolver_ == nullptr) {
    s.class_pending = false;
    set_class_name(r);
    return;
  }
  std::array<std::string_view, kMaxExtraHeaders> extra{};
  for (size_t i = 0; i < s.n_extra; ++i) extra[i] = s.extra[i].view();
  RequestFacts f;
  f.proto = r.proto;
  f.endpoint = r.endpoint;
  f.method = r.method.view();
  f.path = r.path.view();
  f.authority = r.authority.view();
  f.model = r.model.view();
  f.model_known = final || r.model_source != ModelSource::none;
  f.headers_partial = r.headers_partial;
  f.extra = {extra.data(), s.n_extra};
  f.vlan = r.vlan;
  f.family = r.family;
  f.src = r.src.data();
  f.dst = r.dst.data();
  if (r.tenant.empty()) resolver_->tenant(f, r.tenant);
  f.tenant = r.tenant.view();
  bool pending = false;
  r.class_id = resolver_->classify(f, worker_, &pending);
  s.class_gen = policy_gen_;
  s.class_pending = pending && !final;
  charge_budgets(c, s, final || !s.class_pending);
  set_class_name(r);
  update_flow_class(c);
}

void Classifier::set_policy(const ClassResolver* r, uint32_t generation, uint16_t worker, uint16_t workers) noexcept {
  resolver_ = r;
  policy_gen_ = generation;
  worker_ = worker;
  workers_ = workers ? workers : 1;
  // This worker's share of each class's budgets; a new policy starts them full.
  // (Allocation here is once per policy change, not per frame.)
  uint16_t n = r ? r->class_count() : 0;
  rps_.assign(n, CountBucket{});
  tokens_.assign(n, CountBucket{});
  prio_.assign(n, 7);
  for (uint16_t i = 0; i < n; ++i) prio_[i] = r->priority(i);
  default_class_ = r ? r->default_class() : 0;
  for (uint16_t i = 0; i < n; ++i) {
    ClassBudget b = r->budget(i);
    // A fleet budget's local bucket holds this box's share: it is what the
    // worker enforces while the fleet's figures are stale.
    double rps = b.requests_per_second * (b.requests_fleet ? b.local_share : 1.0) / workers_;
    if (rps > 0) rps_[i] = CountBucket::make(rps, std::max(1.0, rps));
    double tpm = b.tokens_per_minute * (b.tokens_fleet ? b.local_share : 1.0);
    double tps = tpm / 60.0 / workers_;
    if (tps > 0) tokens_[i] = CountBucket::make(tps, tpm / workers_);
  }
  fleet_taken_.reset();
  if (!tenant_buckets_) tenant_buckets_ = std::make_unique<TenantBucket[]>(kTenantBuckets);
  for (size_t i = 0; i < kTenantBuckets; ++i) tenant_buckets_[i] = TenantBucket{};
}

// Fleet budgets: while the view is fresh, this worker may take up to its
// allowance for the current epoch (what the last sync left it); a new epoch
// starts a new count. Admitted amounts go to the worker's usage counters,
// which the sync thread pushes to Redis.
std::optional<bool> Classifier::fleet_take(uint16_t class_id, FleetKind k, double n) noexcept {
  if (fleet_ == nullptr || fleet_usage_ == nullptr) return std::nullopt;
  switch (fleet_taken_.take(*fleet_, *fleet_usage_, class_id, k, n, now_)) {
    case FleetTaker::Result::stale: ++ctr_.fleet_local; return std::nullopt;
    case FleetTaker::Result::ok: ++ctr_.fleet_checked; return true;
    case FleetTaker::Result::over: ++ctr_.fleet_checked; return false;
  }
  return std::nullopt;
}

// Per-tenant token budgets live in a fixed direct-mapped table: a tenant
// colliding with another takes its slot (and starts with a full budget).
CountBucket* Classifier::tenant_bucket(uint16_t class_id, std::string_view tenant) noexcept {
  uint64_t h = 0xcbf29ce484222325ULL ^ class_id;
  for (char ch : tenant) h = (h ^ static_cast<uint8_t>(ch)) * 0x100000001b3ULL;
  h |= 1;
  TenantBucket& t = tenant_buckets_[h % kTenantBuckets];
  if (t.key != h) {
    t.key = h;
    ClassBudget b = resolver_->budget(class_id);
    double tps = b.tokens_per_minute / 60.0 / workers_;
    t.b = CountBucket::make(tps, b.tokens_per_minute / workers_);
  }
  return &t.b;
}

namespace {
// The output limit a request names (max_completion_tokens / max_output_tokens
// / max_tokens) times n: the output part of a token estimate.
double estimated_output(const JsonFields& j) noexcept {
  int64_t out = j.has(JsonField::max_completion_tokens) ? j.max_completion_tokens
                : j.has(JsonField::max_output_tokens)   ? j.max_output_tokens
                : j.has(JsonField::max_tokens)          ? j.max_tokens
                                                        : 0;
  int64_t n = j.has(JsonField::n) && j.n > 0 ? j.n : 1;
  return static_cast<double>(std::max<int64_t>(out, 0)) * static_cast<double>(n);
}
uint32_t clamp_tokens(double t) noexcept { return static_cast<uint32_t>(std::clamp(t, 0.0, 4e9)); }
}  // namespace

// Requests per second are charged when the request's class is first known;
// LLM tokens when the body has been read (estimated: the output limit the
// request names, max_completion_tokens / max_output_tokens / max_tokens,
// times n, plus body bytes / 4 for the input). Over budget: the request is
// demoted, or its client's frames are dropped (docs/qos.md).
void Classifier::charge_budgets(FlowL7& c, ReqSlot& s, bool final) noexcept {
  RequestRecord& r = s.rec;
  if (s.class_gen != policy_gen_ || r.class_id >= rps_.size() || r.budget != 0) return;
  ClassBudget b = resolver_->budget(r.class_id);
  bool over = false;
  if (!s.rps_charged && b.requests_per_second > 0) {
    s.rps_charged = true;
    std::optional<bool> fleet_ok = b.requests_fleet ? fleet_take(r.class_id, FleetKind::requests, 1) : std::nullopt;
    if (fleet_ok ? !*fleet_ok : !rps_[r.class_id].take(1, now_)) {
      over = true;
      ++ctr_.over_rps;
    }
  }
  if (!over && final && s.req_ended && !s.tokens_charged && b.tokens_per_minute > 0) {
    s.tokens_charged = true;
    double est = (s.has_json ? estimated_output(s.body.json().fields()) : 0) + static_cast<double>(r.req_bytes) / 4.0;
    r.est_tokens = static_cast<uint32_t>(std::min(est, 4e9));
    CountBucket* bucket = b.tokens_per_tenant ? tenant_bucket(r.class_id, r.tenant.view()) : &tokens_[r.class_id];
    std::optional<bool> fleet_ok = b.tokens_fleet ? fleet_take(r.class_id, FleetKind::tokens, est) : std::nullopt;
    if (fleet_ok ? !*fleet_ok : !bucket->take(est, now_)) {
      over = true;
      ++ctr_.over_tokens;
    } else {
      s.tokens_taken = est;
      s.tokens_class = r.class_id;
      s.tokens_fleet = fleet_ok.has_value();
    }
  }
  if (!over) return;
  if (b.demote) {
    r.class_id = b.demote_to;
    r.budget = 1;
    ++ctr_.budget_demoted;
  } else {
    r.budget = 2;
    ++c.blocked;
    ++ctr_.budget_dropped;
  }
}

// The response is over (ended, reset, or its flow gone): what the server
// reported (usage), else what its stream showed (counted), else the estimate.
// The token budget charged with the estimate is corrected by the difference,
// in the same bucket (class or tenant): a refund, or an extra charge that may
// put the bucket in debt. A request already in flight is never stopped by it;
// the requests after it are (docs/qos.md).
void Classifier::account_response(ReqSlot& s) noexcept {
  RequestRecord& r = s.rec;
  ResponseTracker& t = s.resp;
  t.finish(now_);
  const ResponseUsage& u = t.usage();
  r.provider = provider_of(r.endpoint);
  r.streamed = t.streamed();
  r.resp_encoded = t.encoded();
  r.first_token_ns = u.first_ns;
  r.last_token_ns = u.last_ns;
  r.token_events = u.events;
  r.stream_error = u.stream_error;
  r.resp_model = u.model;
  double in = static_cast<double>(r.req_bytes) / 4.0;
  double out = s.has_json ? estimated_output(s.body.json().fields()) : 0;
  if (t.failed()) {
    ++ctr_.responses_scan_failed;
  } else {
    if (u.input >= 0) in = static_cast<double>(u.input);
    if (u.output >= 0) {
      out = static_cast<double>(u.output);
      r.token_source = TokenSource::usage;
      ++ctr_.responses_usage;
    } else if (u.input >= 0 && r.endpoint == Endpoint::embeddings) {
      out = 0;  // embeddings report input tokens only
      r.token_source = TokenSource::usage;
      ++ctr_.responses_usage;
    } else if (t.streamed() && u.events > 0) {
      out = u.events;
      r.token_source = TokenSource::counted;
      ++ctr_.responses_counted;
    }
  }
  if (t.encoded()) ++ctr_.responses_encoded;
  r.input_tokens = clamp_tokens(in);
  r.output_tokens = clamp_tokens(out);
  if (s.tokens_taken <= 0 || r.token_source == TokenSource::estimated || resolver_ == nullptr ||
      s.class_gen != policy_gen_ || s.tokens_class >= tokens_.size())
    return;
  const double delta = in + out - s.tokens_taken;
  ClassBudget b = resolver_->budget(s.tokens_class);
  if (b.tokens_per_minute <= 0) return;
  CountBucket* bucket = b.tokens_per_tenant ? tenant_bucket(s.tokens_class, r.tenant.view()) : &tokens_[s.tokens_class];
  bucket->adjust(delta, now_);
  // A request charged to the fleet's allowance is corrected in the fleet's
  // count too (pushed at the next sync: Redis sums what the fleet really used).
  if (s.tokens_fleet && fleet_usage_ != nullptr && s.tokens_class < kFleetMaxClasses)
    fleet_usage_->add(s.tokens_class, FleetKind::tokens, std::llround(delta));
  if (delta > 0) {
    ctr_.tokens_extra += static_cast<uint64_t>(delta);
  } else {
    ctr_.tokens_refunded += static_cast<uint64_t>(-delta);
  }
  s.tokens_taken = 0;
}

// A connection carrying requests of several classes is charged to the most
// urgent class among its open requests (lowest priority number; the earliest
// request on a tie). With none open it keeps the last class it had.
void Classifier::update_flow_class(FlowL7& c) noexcept {
  if (c.flow == nullptr || resolver_ == nullptr) return;
  // Only requests classified under the policy in force count: a class number
  // means nothing under another policy.
  bool any = false;
  uint16_t best = 0;
  uint8_t best_prio = 0;
  for (uint32_t i = c.head; i != kNil; i = req_[i].next) {
    if (req_[i].class_gen != policy_gen_) continue;
    const uint16_t cid = req_[i].rec.class_id;
    uint8_t p = cid < prio_.size() ? prio_[cid] : resolver_->priority(cid);
    if (!any || p < best_prio) {
      any = true;
      best_prio = p;
      best = req_[i].rec.class_id;
    }
  }
  if (!any) return;
  c.flow->class_id = best;
  c.flow->policy_gen = policy_gen_;
}

// The flow's class under the policy in force: a flow first seen (or last
// classified) under another policy starts again from the L3 rules.
uint16_t Classifier::flow_class(Flow& f) noexcept {
  if (resolver_ == nullptr) return 0;
  if (f.policy_gen != policy_gen_) {
    const FlowKey& k = f.key;
    bool client_lo = f.client_side == kSideLo;
    f.class_id = resolver_->classify_flow(k.vlan, k.family, client_lo ? k.lo_addr.data() : k.hi_addr.data(),
                                          client_lo ? k.hi_addr.data() : k.lo_addr.data());
    f.policy_gen = policy_gen_;
  }
  return f.class_id;
}

void Classifier::fail_flow(Flow& f, FlowL7* c, Unclassified why) noexcept {
  ++ctr_.unclassified[static_cast<size_t>(why)];
  if (c != nullptr) l7_free(*c);
  f.l7_index = 0;
  f.l7_kind = kL7Unclassified;
  // Out-of-order bytes are of no use any more: give the memory back now.
  f.stream[0].release(*pool_);
  f.stream[1].release(*pool_);
}

void Classifier::on_flow_release(void* ctx, Flow& f, FlowRelease) noexcept {
  auto* self = static_cast<Classifier*>(ctx);
  if (f.l7_kind == kL7Active && f.l7_index != 0) self->l7_free(self->l7_[f.l7_index - 1]);
  f.l7_index = 0;
  f.l7_kind = kL7None;
}

PacketClass Classifier::on_packet(const PacketInfo& p, std::span<const uint8_t> frame, uint64_t now_ns,
                                  uint64_t flow_hash) noexcept {
  ++ctr_.packets;
  now_ = now_ns;
  PacketClass pc;
  pc.class_id = default_class_;
  FlowKey key;
  bool swapped;
  if (!make_flow_key(p, key, swapped)) {
    // Non-IP, fragments and undecodable frames: the L3 rules where there is
    // an IP header, else the default class.
    if (resolver_ && p.l3 != L3Kind::none)
      pc.class_id = resolver_->classify_flow(p.vlan_id(), p.l3 == L3Kind::ipv4 ? 4 : 6, p.src.data(), p.dst.data());
    return pc;
  }
  const uint8_t side = side_of(swapped);
  const bool tcp = p.l4proto == 6;
  // symmetric_hash(p) is flow_key_hash(key) for every frame with a flow key.
  FlowLookup lk = flows_->lookup_or_create(key, flow_hash, side, tcp ? p.tcp_flags : 0,
                                           static_cast<uint32_t>(frame.size()), now_ns);
  if (lk.flow == nullptr) {
    ++ctr_.unclassified[static_cast<size_t>(Unclassified::table_full)];
    if (resolver_) pc.class_id = resolver_->classify_flow(key.vlan, key.family, p.src.data(), p.dst.data());
    return pc;
  }
  Flow& f = *lk.flow;
  pc.from_client = lk.from_client;
  if (tcp && f.l7_kind != kL7Unclassified && f.l7_kind != kL7Done) on_tcp(f, side, p, frame);
  pc.class_id = flow_class(f);
  // A request over its budget with action drop: the client's frames on that
  // connection go no further (FIN and RST still pass, so it can close).
  if (f.l7_kind == kL7Active && l7_[f.l7_index - 1].blocked > 0 && lk.from_client == true &&
      (p.tcp_flags & (tcpflag::fin | tcpflag::rst)) == 0) {
    pc.drop = true;
    ++ctr_.budget_frames_dropped;
  }
  return pc;
}

void Classifier::on_tcp(Flow& f, uint8_t side, const PacketInfo& p, std::span<const uint8_t> frame) noexcept {
  std::span<const uint8_t> payload = frame.subspan(p.payload_off, p.payload_len);
  ctr_.tcp_payload_bytes += payload.size();
  FlowL7* c = f.l7_kind == kL7Active ? &l7_[f.l7_index - 1] : nullptr;
  bool no_ctx = false, tls_busy = false;

  auto deliver = [&](std::span<const uint8_t> bytes) {
    if (no_ctx || bytes.empty()) return;
    if (c == nullptr) {
      c = l7_alloc(f, f.client_side);
      if (c == nullptr) {
        no_ctx = true;
        return;
      }
    }
    if (c->pending_error != L7Error::none) return;
    if (c->tls != kNil) {  // TLS: only the client's ClientHello matters
      if (side == c->client_side()) tls_[c->tls]->feed(bytes);
      return;
    }
    c->l7->feed(side == c->c2s_side ? Dir::c2s : Dir::s2c, bytes);
    if (c->l7->proto() == L7Proto::tls_candidate && side == c->client_side()) {
      if (tls_free_.empty()) {
        c->pending_error = L7Error::unknown_protocol;
        tls_busy = true;
        return;
      }
      c->tls = tls_free_.back();
      tls_free_.pop_back();
      tls_[c->tls]->reset();
      tls_[c->tls]->feed(bytes);
    }
  };

  TcpSegment seg{.flags = p.tcp_flags, .seq = p.seq, .ack = p.ack, .payload = payload};
  TcpReassembly& rs = f.stream[side];
  const bool was_open = rs.state() == StreamState::open;
  feed_tcp(f, side, seg, *pool_, StreamSink(deliver));
  bool gap = f.stream[0].state() == StreamState::failed || f.stream[1].state() == StreamState::failed;

  if (no_ctx) return fail_flow(f, nullptr, Unclassified::l7_pool_full);
  if (gap) return fail_flow(f, c, Unclassified::reassembly);
  if (c == nullptr) return;
  if (tls_busy) return fail_flow(f, c, Unclassified::tls_error);
  if (c->tls != kNil) {
    TlsStatus st = tls_[c->tls]->status();
    if (st == TlsStatus::done) return finish_tls(f, *c);
    if (st != TlsStatus::need_more) return fail_flow(f, c, Unclassified::tls_error);
    return;
  }
  if (c->pending_error != L7Error::none) {
    ++ctr_.l7_errors[static_cast<size_t>(c->pending_error)];
    return fail_flow(f, c, Unclassified::l7_error);
  }
  L7Proto proto = c->l7->proto();
  if (proto == L7Proto::unknown) return fail_flow(f, c, Unclassified::unknown_protocol);
  // TLS whose first bytes came from the server: the ClientHello was missed.
  if (proto == L7Proto::tls_candidate && c->l7->client_side() != ClientSide::unknown && c->tls == kNil &&
      side != c->client_side())
    return fail_flow(f, c, Unclassified::tls_error);
  if (!c->swap_applied && c->l7->client_side() == ClientSide::swapped) {
    c->swap_applied = true;
    ++ctr_.direction_swaps;
    flows_->set_client_side(f, c->client_side());
  }
  // The FIN was reached in order: an HTTP/1 response delimited by the close ends here.
  if (was_open && rs.state() == StreamState::closed) c->l7->finish(side == c->c2s_side ? Dir::c2s : Dir::s2c);
}

// The ClientHello is all a TLS flow reveals: log it once (SNI as authority)
// and stop inspecting the flow, which stays classified.
void Classifier::finish_tls(Flow& f, FlowL7& c) noexcept {
  const TlsClientHello& h = tls_[c.tls]->hello();
  RequestRecord r;
  r.ts_ns = now_;
  set_endpoints(r, f.key, c.client_side() == kSideLo);
  r.proto = ReqProto::tls;
  r.authority.append(h.sni);
  r.endpoint = Endpoint::other;
  r.req_bytes = tls_[c.tls]->consumed();
  if (resolver_ != nullptr) {
    RequestFacts facts;
    facts.proto = ReqProto::tls;
    facts.sni = h.sni;
    facts.authority = h.sni;
    facts.model_known = true;
    facts.vlan = r.vlan;
    facts.family = r.family;
    facts.src = r.src.data();
    facts.dst = r.dst.data();
    resolver_->tenant(facts, r.tenant);
    facts.tenant = r.tenant.view();
    r.class_id = resolver_->classify(facts, worker_, nullptr);
    f.class_id = r.class_id;
    f.policy_gen = policy_gen_;
  }
  set_class_name(r);
  ++ctr_.tls_hellos;
  ++ctr_.requests_emitted;
  sink_.emit(r);
  if (!c.swap_applied && c.l7->client_side() == ClientSide::swapped) {
    ++ctr_.direction_swaps;
    flows_->set_client_side(f, c.client_side());
  }
  l7_free(c);
  f.l7_index = 0;
  f.l7_kind = kL7Done;
  f.stream[0].release(*pool_);
  f.stream[1].release(*pool_);
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
    if (f.l7_kind == kL7Unclassified) fi.l7 = 4;
    if (f.l7_kind == kL7Done) fi.l7 = 3;
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
      if (c.tls != kNil) fi.l7 = 3;
      else if (c.l7 && c.l7->proto() == L7Proto::http2) fi.l7 = 2;
      else if (c.l7 && c.l7->proto() == L7Proto::http1) fi.l7 = 1;
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

void Classifier::expire(uint64_t now_ns, uint32_t budget) noexcept { flows_->expire(now_ns, budget); }

void Classifier::flush() noexcept { flows_->clear(); }

}  // namespace aiqos
