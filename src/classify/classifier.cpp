// The classifier's L7 glue: frames -> flows -> reassembled bytes -> L7
// parser events -> request records, classified and charged to budgets.
// Slot pools: classifier_slots.cpp; budgets: budget.cpp; flow dump: flow_dump.cpp.
#include "classify/classifier.h"

#include <algorithm>

#include "classify/classifier_slots.h"
#include "classify/endpoint.h"
#include "classify/flow_key.h"
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

// --- RequestEvents: an L7 parser's events become request records ---

void Classifier::FlowL7::on_request_headers(const RequestHead& h) noexcept {
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
  link(s);
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

void Classifier::FlowL7::on_request_body(uint32_t stream, std::span<const uint8_t> b) noexcept {
  ReqSlot* s = find_req(stream);
  if (s == nullptr) return;
  s->rec.req_bytes += b.size();
  // Both searches (gRPC message, JSON body) see the body's first body_scan_bytes.
  const uint64_t limit = cls->cfg_.body_scan_bytes;
  if (!(s->grpc_open || s->body_open) || s->scanned >= limit) return;
  const std::span<const uint8_t> part = b.first(static_cast<size_t>(std::min<uint64_t>(b.size(), limit - s->scanned)));
  s->scanned += part.size();
  if (s->grpc_open) {
    // gRPC: the model is field 1 of each ModelInferRequest; the first one named wins,
    // after which (or once the path named it) nothing more is decoded.
    s->grpc.feed_all(part, [&](const GrpcMessage& m) {
      if (m.has_model && s->rec.model_source == ModelSource::none) {
        s->rec.model = m.model;
        s->rec.model_source = ModelSource::grpc;
        s->rec.proto = ReqProto::grpc;
        ++cls->ctr_.models_found;
        if (s->class_pending) cls->classify_request(*this, *s, true);
      }
    });
    if (s->grpc.failed() || s->rec.model_source != ModelSource::none) s->grpc_open = false;
  }
  if (s->body_open) s->body.feed(part, cls->scratch_);
}

void Classifier::FlowL7::on_request_end(uint32_t stream) noexcept {
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
    cls->update_flow_class(*this, s);
  }
  if (s->resp_ended) finish_req(s);
}

void Classifier::FlowL7::on_response_headers(const ResponseHead& h) noexcept {
  ReqSlot* s = find_resp(h.stream_id);
  if (s == nullptr) return;
  if (s->rec.resp_first_ns == 0) s->rec.resp_first_ns = cls->now_;
  s->rec.status = h.status;
  if (h.grpc_status >= 0) s->rec.grpc_status = static_cast<int16_t>(h.grpc_status);
  const bool grpc_stream = s->rec.proto == ReqProto::grpc && s->rec.path.view().find("StreamInfer") != std::string_view::npos;
  s->resp.start(s->rec.endpoint, h.content_type, h.encoded, grpc_stream, &s->resp_tpl);
}

void Classifier::FlowL7::on_response_body(uint32_t stream, std::span<const uint8_t> b) noexcept {
  ReqSlot* s = find_resp(stream);
  if (s == nullptr) return;
  s->rec.resp_bytes += b.size();
  if (s->resp.active()) s->resp.feed(b, cls->now_);
}

void Classifier::FlowL7::on_response_trailers(uint32_t stream, int grpc_status) noexcept {
  ReqSlot* s = find_resp(stream);
  if (s != nullptr && grpc_status >= 0) s->rec.grpc_status = static_cast<int16_t>(grpc_status);
}

void Classifier::FlowL7::on_response_end(uint32_t stream) noexcept {
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

void Classifier::FlowL7::on_stream_reset(uint32_t stream, uint32_t, Dir) noexcept {
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

// What the rules see of request `s` now; `extra` holds the captured header
// views. Names its tenant first if nothing did (the tenant header, else the
// policy's tenants).
void Classifier::request_facts(ReqSlot& s, RequestFacts& f,
                               std::array<std::string_view, kMaxExtraHeaders>& extra) const noexcept {
  RequestRecord& r = s.rec;
  for (size_t i = 0; i < s.n_extra; ++i) extra[i] = s.extra[i].view();
  f.proto = r.proto;
  f.endpoint = r.endpoint;
  f.method = r.method.view();
  f.path = r.path.view();
  f.authority = r.authority.view();
  f.model = r.model.view();
  f.model_known = r.model_source != ModelSource::none;
  f.headers_partial = r.headers_partial;
  f.extra = {extra.data(), s.n_extra};
  f.vlan = r.vlan;
  f.family = r.family;
  f.src = r.src.data();
  f.dst = r.dst.data();
  if (r.tenant.empty()) resolver_->tenant(f, r.tenant);
  f.tenant = r.tenant.view();
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
  RequestFacts f;
  request_facts(s, f, extra);
  f.model_known = f.model_known || final;
  bool pending = false;
  r.class_id = resolver_->classify(f, worker_, &pending);
  s.class_gen = policy_gen_;
  s.charge_gen = policy_gen_;
  s.class_pending = pending && !final;
  charge_budgets(c, s, final || !s.class_pending);
  set_class_name(r);
  update_flow_class(c, &s);
}

// A request open across a policy reload, at its flow's first frame under the
// new policy: a request still waiting for its model is decided by the new
// rules as it would have been without the reload; one already decided is
// re-evaluated by them from what it showed (its class and name follow, it
// stays charged to the budgets that decided it and to no new one; one that
// was demoted takes the new class's demotion when it has one).
void Classifier::reclassify_request(FlowL7& c, ReqSlot& s) noexcept {
  ++ctr_.requests_reclassified;
  if (s.class_pending) return classify_request(c, s, false);
  RequestRecord& r = s.rec;
  std::array<std::string_view, kMaxExtraHeaders> extra{};
  RequestFacts f;
  request_facts(s, f, extra);
  f.model_known = f.model_known || s.req_ended;
  bool pending = false;
  uint16_t cid = resolver_->classify(f, worker_, &pending);
  if (r.budget == BudgetState::demoted) {
    const ClassBudget b = resolver_->budget(cid);
    if (b.demote) cid = b.demote_to;
  }
  r.class_id = cid;
  s.class_gen = policy_gen_;
  s.class_pending = pending && !s.req_ended;
  set_class_name(r);
}

void Classifier::set_policy(const ClassResolver* r, uint32_t generation, uint16_t worker, uint16_t workers) noexcept {
  resolver_ = r;
  policy_gen_ = generation;
  worker_ = worker;
  // (Allocation here is once per policy change, not per frame.)
  uint16_t n = r ? r->class_count() : 0;
  prio_.assign(n, 7);
  for (uint16_t i = 0; i < n; ++i) prio_[i] = r->priority(i);
  default_class_ = r ? r->default_class() : 0;
  budgets_.arm(r, workers);
}

namespace {
uint32_t clamp_tokens(double t) noexcept { return static_cast<uint32_t>(std::clamp(t, 0.0, 4e9)); }
}  // namespace

// Requests per second are charged when the request's class is first known;
// LLM tokens when the body has been read (budget.h). Over budget: the request
// is demoted, or its client's frames are dropped (docs/qos.md).
void Classifier::charge_budgets(FlowL7& c, ReqSlot& s, bool final) noexcept {
  if (s.charge_gen != policy_gen_) return;
  const JsonFields* body = s.has_json ? &s.body.json().fields() : nullptr;
  if (budgets_.charge(s.charge, s.rec, body, final && s.req_ended, now_) == BudgetState::dropped) ++c.blocked;
}

// The response is over (ended, reset, or its flow gone): what the server
// reported (usage), else what its stream showed (counted), else the estimate.
// The token budget charged with the estimate is corrected by the difference
// (RequestBudgets::reconcile).
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
  double out = s.has_json ? estimated_output_tokens(s.body.json().fields()) : 0;
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
  if (s.charge.tokens_taken <= 0 || r.token_source == TokenSource::estimated || s.charge_gen != policy_gen_) return;
  budgets_.reconcile(s.charge, r.tenant.view(), in + out, now_);
}

// A connection carrying requests of several classes is charged to the most
// urgent class among its open requests (lowest priority number; the earliest
// request on a tie). With none open it keeps the last class it had.
//
// Cost: a connection multiplexes many requests, and this runs at each of their
// events. When only `changed` may differ since the last call, and the request
// that call chose (cls_from) is still open under the same policy, the answer is
// that request or `changed`, whichever is more urgent (earlier on a tie): the
// others are as they were. Anything else scans every request.
void Classifier::update_flow_class(FlowL7& c, const ReqSlot* changed) noexcept {
  // The request the last update chose was unlinked since, nothing else changed: none is more
  // urgent than it was, so the earliest request of its priority (if any) is the answer.
  const bool floor = c.floor_ok && changed == nullptr && c.cls_from == kNil && c.cls_gen == policy_gen_;
  c.floor_ok = false;
  if (c.flow == nullptr || resolver_ == nullptr) return;
  auto prio = [&](uint16_t cid) { return cid < prio_.size() ? prio_[cid] : resolver_->priority(cid); };
  if (changed != nullptr && c.cls_from != kNil && c.cls_gen == policy_gen_ && c.flow->policy_gen == policy_gen_ &&
      changed->class_gen == policy_gen_) {
    const ReqSlot& h = req_[c.cls_from];
    if (&h == changed && h.in_use && prio(h.rec.class_id) <= c.cls_prio) {
      // The chosen request became as urgent or more: it stays the earliest of the most urgent.
      c.flow->class_id = h.rec.class_id;
      c.cls_prio = prio(h.rec.class_id);
      return;
    }
    if (&h != changed && h.in_use && h.class_gen == policy_gen_ && c.flow->class_id == h.rec.class_id) {
      const uint8_t ph = prio(h.rec.class_id), ps = prio(changed->rec.class_id);
      if (ps < ph || (ps == ph && changed->order < h.order)) {
        c.flow->class_id = changed->rec.class_id;
        c.cls_from = static_cast<uint32_t>(changed - req_.get());
        c.cls_prio = ps;
      }
      return;
    }
  }
  // Only requests classified under the policy in force count: a class number
  // means nothing under another policy.
  bool any = false;
  uint16_t best = 0;
  uint8_t best_prio = 0;
  uint32_t from = kNil;
  for (uint32_t i = c.head; i != kNil; i = req_[i].next) {
    if (req_[i].class_gen != policy_gen_) continue;
    const uint16_t cid = req_[i].rec.class_id;
    uint8_t p = prio(cid);
    if (!any || p < best_prio) {
      any = true;
      best_prio = p;
      best = req_[i].rec.class_id;
      from = i;
      if (floor && p == c.cls_prio) break;
    }
  }
  c.cls_from = from;
  c.cls_prio = best_prio;
  c.cls_gen = policy_gen_;
  if (!any) return;
  c.flow->class_id = best;
  c.flow->policy_gen = policy_gen_;
}

// The first frame of a flow under the policy in force: a new flow, or one
// last classified under another generation (a reload). The L3 rules, then,
// after a reload, what its L7 state still knows, evaluated by the new rules:
// its open requests (HTTP), or its server name (TLS past its ClientHello).
// Once per flow and policy generation.
void Classifier::reclassify_flow(Flow& f) noexcept {
  const bool reload = f.policy_gen != 0;
  const FlowKey& k = f.key;
  const bool client_lo = f.client_side == kSideLo;
  f.class_id = resolver_->classify_flow(k.vlan, k.family, client_lo ? k.lo_addr.data() : k.hi_addr.data(),
                                        client_lo ? k.hi_addr.data() : k.lo_addr.data());
  f.policy_gen = policy_gen_;
  if (!reload) return;
  ++ctr_.flows_reclassified;
  if (f.l7_kind == kL7Active && f.l7_index != 0) {
    FlowL7& c = l7_[f.l7_index - 1];
    for (uint32_t i = c.head; i != kNil; i = req_[i].next)
      if (req_[i].class_gen != policy_gen_) reclassify_request(c, req_[i]);
    update_flow_class(c);
  } else if (f.l7_kind == kL7Done && f.l7_index != 0) {
    RequestRecord r;
    const std::string_view sni = tls_names_.name(f.l7_index - 1);
    tls_record(f, sni, r);
    f.class_id = tls_class(sni, r);
  }
}

// A TLS connection's record as its ClientHello shows it: endpoints, and the
// server name as authority.
void Classifier::tls_record(const Flow& f, std::string_view sni, RequestRecord& r) const noexcept {
  set_endpoints(r, f.key, f.client_side == kSideLo);
  r.proto = ReqProto::tls;
  r.authority.append(sni);
  r.endpoint = Endpoint::other;
}

// The class of a TLS connection by its server name (whole: the record's
// authority may be cut), from its record (its tenant named here).
uint16_t Classifier::tls_class(std::string_view sni, RequestRecord& r) const noexcept {
  RequestFacts facts;
  facts.proto = ReqProto::tls;
  facts.sni = sni;
  facts.authority = sni;
  facts.model_known = true;
  facts.vlan = r.vlan;
  facts.family = r.family;
  facts.src = r.src.data();
  facts.dst = r.dst.data();
  resolver_->tenant(facts, r.tenant);
  facts.tenant = r.tenant.view();
  return resolver_->classify(facts, worker_, nullptr);
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
  if (f.l7_kind == kL7Done && f.l7_index != 0) self->tls_names_.release(f.l7_index - 1);
  f.l7_index = 0;
  f.l7_kind = kL7None;
}

PacketClass Classifier::on_packet(const PacketInfo& p, std::span<const uint8_t> frame, uint64_t now_ns,
                                  const FlowId& id) noexcept {
  ++ctr_.packets;
  now_ = now_ns;
  PacketClass pc;
  pc.class_id = default_class_;
  if (!id.keyed) {
    // Non-IP, fragments and undecodable frames: the L3 rules where there is
    // an IP header, else the default class.
    if (resolver_ && p.l3 != L3Kind::none)
      pc.class_id = resolver_->classify_flow(p.vlan_id(), p.l3 == L3Kind::ipv4 ? 4 : 6, p.src.data(), p.dst.data());
    return pc;
  }
  const uint8_t side = side_of(id.swapped);
  const bool tcp = p.l4proto == 6;
  FlowLookup lk = flows_->lookup_or_create(id.key, id.hash, side, tcp ? p.tcp_flags : 0,
                                           static_cast<uint32_t>(frame.size()), now_ns);
  if (lk.flow == nullptr) {
    ++ctr_.unclassified[static_cast<size_t>(Unclassified::table_full)];
    if (resolver_) pc.class_id = resolver_->classify_flow(id.key.vlan, id.key.family, p.src.data(), p.dst.data());
    return pc;
  }
  Flow& f = *lk.flow;
  pc.from_client = lk.from_client;
  if (f.policy_gen != policy_gen_ && resolver_ != nullptr) reclassify_flow(f);
  // The fast path: a flow whose class L7 can no longer change (not TCP, TLS
  // after its ClientHello, unclassified) or a TCP segment that carries no
  // byte and no SYN/FIN/RST (a pure ACK) needs no reassembly and no parser.
  constexpr uint8_t kStateFlags = tcpflag::syn | tcpflag::fin | tcpflag::rst;
  if (!tcp || f.l7_kind == kL7Unclassified || f.l7_kind == kL7Done) {
    ++ctr_.fast_path_frames;
  } else if (p.payload_len == 0 && (p.tcp_flags & kStateFlags) == 0) {
    on_bare_ack(f, side, p);
    ++ctr_.fast_path_frames;
  } else {
    on_tcp(f, side, p, frame);
  }
  if (resolver_ != nullptr) pc.class_id = f.class_id;
  // A request over its budget with action drop: the client's frames on that
  // connection go no further (FIN and RST still pass, so it can close).
  if (f.l7_kind == kL7Active && l7_[f.l7_index - 1].blocked > 0 && lk.from_client == true &&
      (p.tcp_flags & (tcpflag::fin | tcpflag::rst)) == 0) {
    pc.drop = true;
    ++ctr_.budget_frames_dropped;
  }
  return pc;
}

// A segment with neither bytes nor SYN/FIN/RST (a pure ACK, a keep-alive) can
// only move the other direction's acknowledgement: nothing reaches the L7
// parsers. An ACK that proves a hole there (strict policy) fails the flow.
void Classifier::on_bare_ack(Flow& f, uint8_t side, const PacketInfo& p) noexcept {
  // feed_tcp() for a segment that is neither RST nor carries bytes, inline.
  f.stream[side].on_bare_segment(*pool_);
  if (p.tcp_flags & tcpflag::ack) f.stream[side ^ 1].on_peer_ack(p.ack, *pool_);
  if (f.stream[0].state() == StreamState::failed || f.stream[1].state() == StreamState::failed)
    fail_flow(f, f.l7_kind == kL7Active ? &l7_[f.l7_index - 1] : nullptr, Unclassified::reassembly);
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
  // The steady state of an HTTP connection, without the layers: bytes exactly
  // in order go straight to its parser (all that `deliver` does with them
  // once the protocol is HTTP/1 or HTTP/2), the ACK to the other direction;
  // anything else takes feed_tcp().
  const L7Proto proto_now = c != nullptr ? c->l7->proto() : L7Proto::undecided;
  const bool direct = c != nullptr && c->tls == kNil && c->pending_error == L7Error::none &&
                      (proto_now == L7Proto::http1 || proto_now == L7Proto::http2);
  if (direct && rs.in_order(seg, *pool_, [&](std::span<const uint8_t> b) {
        c->l7->feed(side == c->c2s_side ? Dir::c2s : Dir::s2c, b);
      })) {
    if (seg.flags & tcpflag::ack) f.stream[side ^ 1].on_peer_ack(seg.ack, *pool_);
  } else {
    feed_tcp(f, side, seg, *pool_, StreamSink(deliver));
  }
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
  if (!c.swap_applied && c.l7->client_side() == ClientSide::swapped) {
    ++ctr_.direction_swaps;
    flows_->set_client_side(f, c.client_side());
  }
  RequestRecord r;
  r.ts_ns = now_;
  r.req_bytes = tls_[c.tls]->consumed();
  tls_record(f, h.sni, r);
  if (resolver_ != nullptr) {
    r.class_id = tls_class(h.sni, r);
    f.class_id = r.class_id;
    f.policy_gen = policy_gen_;
  }
  set_class_name(r);
  ++ctr_.tls_hellos;
  ++ctr_.requests_emitted;
  sink_.emit(r);
  // The server name stays (shared by every flow naming it) for a reload to
  // evaluate again; the parser and the L7 context go back to their pools.
  const uint32_t name = tls_names_.acquire(h.sni);
  if (name == NameTable::kNone) ++ctr_.tls_names_not_kept;
  l7_free(c);
  f.l7_index = name == NameTable::kNone ? 0 : name + 1;
  f.l7_kind = kL7Done;
  f.stream[0].release(*pool_);
  f.stream[1].release(*pool_);
}

void Classifier::expire(uint64_t now_ns, uint32_t budget) noexcept { flows_->expire(now_ns, budget); }

void Classifier::flush() noexcept { flows_->clear(); }

}  // namespace aiqos
