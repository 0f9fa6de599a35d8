// The policy as the classifier sees it: which class a request (or a flow
// with no visible request) belongs to, and which tenant. Implemented by the
// control plane's compiled policy (control/policy_engine.h); the classifier
// only holds a pointer to the snapshot in force (RCU: the snapshot outlives
// every worker's use of it).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "classify/endpoint.h"
#include "classify/model_name.h"
#include "classify/request_record.h"

namespace aiqos {

// What is known about a request when it is classified. Strings are valid
// only for the call.
struct RequestFacts {
  ReqProto proto = ReqProto::unknown;
  Endpoint endpoint = Endpoint::other;
  std::string_view method, path, authority, model, sni, tenant;
  bool model_known = false;  // the body (or path) has been searched for the model
  // Some header fields were lost (a connection picked up mid-stream): a rule's
  // conditions on them (endpoint, method, path, authority, headers) are not
  // known. Such a rule matches only if it tests the model and the model matches.
  bool headers_partial = false;
  std::span<const std::string_view> extra;  // captured header values, in capture order
  uint16_t vlan = 0;
  uint8_t family = 4;
  const uint8_t* src = nullptr;  // client address, 16 bytes (IPv4 in the first 4)
  const uint8_t* dst = nullptr;
};

// Request budgets of one class (see docs/qos.md). Rates are the whole
// appliance's; each worker enforces its share.
struct ClassBudget {
  double requests_per_second = 0;  // 0: none
  double tokens_per_minute = 0;    // 0: none
  bool tokens_per_tenant = false;  // one budget per tenant, else one for the class
  bool demote = false;             // over budget: demote (else drop the request's frames)
  uint16_t demote_to = 0;
  // Budgets shared with the fleet (classify/fleet_view.h): while the fleet's
  // figures are fresh the worker enforces them; otherwise its local buckets
  // hold `local_share` of the rates above (1 for budgets that are not shared).
  bool requests_fleet = false;
  bool tokens_fleet = false;
  double local_share = 1;
};

class ClassResolver {
 public:
  virtual ~ClassResolver() = default;
  // First matching rule's class, else the default class. When the model is
  // not known yet and a rule that tests it comes before the one chosen,
  // `*model_pending` is set: the caller asks again once the model is known.
  virtual uint16_t classify(const RequestFacts& f, uint16_t worker, bool* model_pending) const noexcept = 0;
  // Class of a flow before (or without) any request: rules whose conditions
  // are all on L3 facts (ingress VLAN, source and destination prefixes).
  virtual uint16_t classify_flow(uint16_t vlan, uint8_t family, const uint8_t* src,
                                 const uint8_t* dst) const noexcept = 0;
  virtual void tenant(const RequestFacts& f, BoundedString<64>& out) const noexcept = 0;
  // 0 highest .. 7 lowest: a connection carrying several classes is charged
  // to the most urgent of its open requests.
  virtual uint8_t priority(uint16_t class_id) const noexcept = 0;
  virtual uint16_t default_class() const noexcept = 0;
  virtual std::string_view class_name_of(uint16_t class_id) const noexcept = 0;
  virtual ClassBudget budget(uint16_t class_id) const noexcept = 0;
  virtual uint16_t class_count() const noexcept = 0;
};

}  // namespace aiqos
