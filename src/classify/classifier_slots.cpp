// The classifier's fixed pools (classifier_slots.h): sized from
// ClassifierConfig and allocated at construction; connections and requests
// take a slot and give it back, never allocating.
#include "classify/classifier_slots.h"

#include "classify/tls.h"

namespace aiqos {

Classifier::Classifier(const ClassifierConfig& cfg, RequestSink& sink, const BodyMatcher* body_db)
    : cfg_(cfg), sink_(sink), body_db_(body_db), tls_names_(cfg.max_tls_names) {
  // What connections picked up mid-stream hold while they resynchronise, together.
  midstream_budget_.cap = cfg_.midstream_bytes;
  cfg_.l7.midstream_budget = &midstream_budget_;
  pool_ = std::make_unique<ReassemblyPool>(cfg_.reassembly);
  // What every HTTP/2 connection's HPACK inflaters allocate from.
  const uint32_t hpack_max = cfg_.l7.http2.max_hpack_mem;
  hpack_pool_ = std::make_unique<HpackPool>(
      cfg_.hpack_pool_bytes != 0 ? cfg_.hpack_pool_bytes : hpack_pool_default_bytes(cfg_.max_l7_conns, hpack_max),
      hpack_max);
  cfg_.l7.http2.hpack_pool = hpack_pool_.get();
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
  return flows_->memory_bytes() + pool_->memory_bytes() + hpack_pool_->memory_bytes() +
         uint64_t{cfg_.max_l7_conns} * sizeof(FlowL7) +
         uint64_t{cfg_.max_requests} * sizeof(ReqSlot) +
         uint64_t{cfg_.max_tls_handshakes} * (sizeof(TlsClientHelloParser) + cfg_.tls_hello_bytes) +
         tls_names_.memory_bytes();
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
  c.cls_from = kNil;
  c.floor_ok = false;
  c.next_order = 0;
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
  s->charge = BudgetCharge{};
  s->has_json = false;
  s->resp.reset();
  s->class_gen = 0;
  s->charge_gen = 0;
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

}  // namespace aiqos
