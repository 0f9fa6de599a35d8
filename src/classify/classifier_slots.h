// The classifier's slots (private to src/classify/classifier*.cpp): one
// FlowL7 per connection with L7 state, one ReqSlot per request in flight,
// each from a fixed pool allocated at construction (classifier_slots.cpp),
// plus the TLS ClientHello parsers lent to connections that start with TLS.
// A connection's requests are a list of slots, oldest first.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "classify/budget.h"
#include "classify/classifier.h"
#include "classify/grpc.h"
#include "classify/response_tracker.h"

namespace aiqos {

inline constexpr uint32_t kNil = UINT32_MAX;

// Flow::l7_kind values.
inline constexpr uint8_t kL7None = 0;          // no payload seen yet
inline constexpr uint8_t kL7Active = 1;        // l7_index names a FlowL7
inline constexpr uint8_t kL7Unclassified = 2;  // given up: frames pass without inspection
inline constexpr uint8_t kL7Done = 3;          // classified (TLS: SNI seen); nothing more to parse;
                                               // l7_index: 1 + its server name's NameTable slot, 0: none kept

struct Classifier::ReqSlot {
  RequestRecord rec;
  uint32_t class_gen = 0;  // policy generation rec.class_id belongs to
  uint32_t charge_gen = 0;  // policy generation whose budgets it is charged to (the one that decided it)
  BudgetCharge charge;     // what its budgets were charged, corrected when the response ends
  bool has_json = false;   // `body` was opened for this request (else it holds an earlier one's fields)
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
  uint64_t order = 0;    // creation order on its connection (FlowL7::next_order)
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
  // The request whose class the flow took at the last update_flow_class(), kNil: unknown (the
  // next update scans every request); cls_gen: the policy generation of that update.
  uint32_t cls_from = kNil;
  uint32_t cls_gen = 0;
  // cls_from's priority; after it was unlinked (floor_ok), no open request is more urgent, so
  // the next update may stop at the first request of that priority.
  uint8_t cls_prio = 0;
  bool floor_ok = false;
  uint64_t next_order = 0;
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
  // Only HTTP/1 (stream 0) has several: an HTTP/2 stream id (and an h2c upgrade's, 1) opens one
  // request at most, so there the first one found is the newest.
  ReqSlot* find_req(uint32_t stream) noexcept {
    ReqSlot* found = nullptr;
    for (uint32_t i = head; i != kNil; i = cls->req_[i].next) {
      if (cls->req_[i].stream_id != stream || cls->req_[i].req_ended) continue;
      found = &cls->req_[i];
      if (stream != 0) break;
    }
    return found;
  }
  // Oldest slot of `stream` whose response is still open (HTTP/1 pipelining
  // answers requests in order).
  ReqSlot* find_resp(uint32_t stream) noexcept {
    for (uint32_t i = head; i != kNil; i = cls->req_[i].next)
      if (cls->req_[i].stream_id == stream && !cls->req_[i].resp_ended) return &cls->req_[i];
    return nullptr;
  }
  void link(ReqSlot* s) noexcept {
    const uint32_t idx = static_cast<uint32_t>(s - cls->req_.get());
    s->order = next_order++;
    if (tail == kNil) {
      head = tail = idx;
    } else {
      cls->req_[tail].next = idx;
      tail = idx;
    }
  }
  void unlink(ReqSlot* s) noexcept {
    uint32_t idx = static_cast<uint32_t>(s - cls->req_.get());
    if (cls_from == idx) {
      cls_from = kNil;
      floor_ok = true;
    }
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
  // The request is over: its response accounted, its record emitted, its slot freed.
  void finish_req(ReqSlot* s) noexcept {
    if (s->rec.budget == BudgetState::dropped && blocked > 0) --blocked;
    cls->account_response(*s);
    unlink(s);
    cls->emit(*this, *s);
    cls->req_free(s);
    if (head != kNil) cls->update_flow_class(*this);
  }
  // The request body is over: the model it named, and a classification that waited for it.
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
  // Emits whatever is still open as incomplete and returns the slots.
  void drain() noexcept {
    while (head != kNil) {
      ReqSlot& s = cls->req_[head];
      s.rec.incomplete = true;
      close_body(s);
      finish_req(&s);
    }
  }

  // --- RequestEvents (classifier.cpp) ---
  void on_request_headers(const RequestHead& h) noexcept override;
  void on_request_body(uint32_t stream, std::span<const uint8_t> b) noexcept override;
  void on_request_end(uint32_t stream) noexcept override;
  void on_response_headers(const ResponseHead& h) noexcept override;
  void on_response_body(uint32_t stream, std::span<const uint8_t> b) noexcept override;
  void on_response_trailers(uint32_t stream, int grpc_status) noexcept override;
  void on_response_end(uint32_t stream) noexcept override;
  void on_stream_reset(uint32_t stream, uint32_t code, Dir d) noexcept override;
  void on_parse_error(L7Error e) noexcept override { if (pending_error == L7Error::none) pending_error = e; }
};

}  // namespace aiqos
