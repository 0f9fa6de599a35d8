// The classifier's own logic over synthetic TCP connections: a request's
// life (head seen, model from the body, emitted with its fields when the
// response ends, incomplete on a flush), classes under a policy reload (a
// flow and its open requests, or its TLS server name, are re-evaluated at its
// first frame under the new generation),
// and budgets as the classifier applies them (demoted, dropped frames, token
// budgets reconciled with the usage the server reported).
#include "classify/classifier.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "classifier_fixture.h"
#include "data/tls_fixtures.h"

namespace aiqos {
namespace {

using test::chat_body;
using test::chunk;
using test::http1_ok;
using test::http1_post;
using test::kMs;
using test::RecordSink;
using test::TcpConn;

// Requests naming `model` are class `hit`, the others `miss`; flows before
// any request are class `flow`. A rule testing the model comes first: while
// the model is not known, the answer is pending.
struct ModelPolicy final : ClassResolver {
  std::string model;
  bool model_rule = true;  // false: requests are `miss` at once
  uint16_t hit = 1, miss = 0, flow = 0;
  std::vector<std::string> names = {"bulk", "gold", "silver", "l3"};
  ClassBudget hit_budget;  // class `hit`'s
  uint8_t prio[4] = {7, 0, 3, 5};

  uint16_t classify(const RequestFacts& f, uint16_t, bool* pending) const noexcept override {
    if (!model_rule) return miss;
    if (!f.model_known) {
      if (pending != nullptr) *pending = true;
      return miss;
    }
    return f.model == model ? hit : miss;
  }
  uint16_t classify_flow(uint16_t, uint8_t, const uint8_t*, const uint8_t*) const noexcept override { return flow; }
  void tenant(const RequestFacts&, BoundedString<64>& out) const noexcept override { out.append("t"); }
  uint8_t priority(uint16_t c) const noexcept override { return c < 4 ? prio[c] : 7; }
  uint16_t default_class() const noexcept override { return 0; }
  // Both arms string_view: `names[c] : "?"` would be a std::string temporary, and the view dangle.
  std::string_view class_name_of(uint16_t c) const noexcept override {
    return c < names.size() ? std::string_view(names[c]) : std::string_view("?");
  }
  ClassBudget budget(uint16_t c) const noexcept override { return c == hit ? hit_budget : ClassBudget{}; }
  uint16_t class_count() const noexcept override { return 4; }
};


constexpr std::string_view kUsage = "{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5}}";

// One classifier under `pol` (requests naming llama-3: class 1 "gold"),
// generation 1, or under no policy at all.
class ClassifierTest : public ::testing::Test {
 protected:
  ModelPolicy pol;
  RecordSink sink;
  Classifier cls{test::small_config(), sink};
  const uint64_t t0 = 1000 * kMs;
  const std::string req = http1_post("/v1/chat/completions", chat_body(64, "llama-3"));

  ClassifierTest() { pol.model = "llama-3"; }
  void use_policy() { cls.set_policy(&pol, 1, 0); }
  // A connection from client port `port`, opened at t0.
  TcpConn conn(uint16_t port) {
    TcpConn c{cls, port};
    c.open(t0);
    return c;
  }
  // `request` whole, then its response (usage `response`) whole, at `t`.
  void exchange(TcpConn& c, uint64_t t, std::string_view request, std::string_view response = kUsage) {
    c.send(true, request, t);
    c.send(false, http1_ok("application/json", response), t);
  }
  // `request` but its last `rest` bytes, then `between`, then the rest.
  template <class F>
  void split_request(TcpConn& c, std::string_view request, size_t rest, F between) {
    c.send(true, request.substr(0, request.size() - rest), t0);
    between();
    c.send(true, request.substr(request.size() - rest), t0 + 1 * kMs);
  }
};

// The fast path: bare TCP segments of an L7 flow (the handshake's last ACK,
// pure ACKs) and every frame of a decided flow go without reassembly or a
// parser; frames with bytes or SYN/FIN/RST do not. The request is still
// classified and logged whole around the ACKs.
TEST_F(ClassifierTest, BareAcksAndDecidedFlowsTakeTheFastPath) {
  use_policy();
  TcpConn c = conn(40100);  // SYN, SYN-ACK: slow; the ACK: fast
  EXPECT_EQ(cls.counters().fast_path_frames, 1u);
  c.send(true, std::string_view(req).substr(0, 40), t0);  // bytes: slow
  c.frame(false, 0x10, {}, t0);                            // the server's ACK: fast
  c.send(true, std::string_view(req).substr(40), t0);
  c.frame(false, 0x10, {}, t0);
  EXPECT_EQ(cls.counters().fast_path_frames, 3u);
  c.send(false, http1_ok("application/json", kUsage), t0 + 1 * kMs);
  c.frame(true, 0x10, {}, t0 + 1 * kMs);
  EXPECT_EQ(cls.counters().fast_path_frames, 4u);
  ASSERT_EQ(sink.recs.size(), 1u);
  EXPECT_EQ(sink.recs[0].model.view(), "llama-3");
  EXPECT_EQ(sink.recs[0].class_name.view(), "gold");

  // Not HTTP: unclassified at its first bytes, then every frame is fast.
  TcpConn d = conn(40101);
  const uint64_t before = cls.counters().fast_path_frames;
  d.send(true, "\x01\x02 not a protocol anyone speaks here\r\n\r\n", t0);
  uint64_t unclassified = 0;
  for (uint64_t n : cls.counters().unclassified) unclassified += n;
  ASSERT_EQ(unclassified, 1u);
  d.send(true, "more bytes", t0);
  d.send(false, "and some back", t0);
  EXPECT_EQ(cls.counters().fast_path_frames, before + 2);  // the two frames after the first bytes
}

TEST_F(ClassifierTest, RequestHeadThenModelThenEmittedWithItsFields) {
  TcpConn c = conn(40001);
  const std::string body = chat_body(64, "llama-3");
  const std::string r1 = http1_post("/v1/chat/completions", body, "api.example");
  const size_t head = r1.size() - body.size();
  c.send(true, std::string_view(r1).substr(0, head), t0 + 1 * kMs);
  EXPECT_EQ(cls.counters().requests, 1u) << "the head makes a request";
  EXPECT_EQ(cls.requests_in_use(), 1u);
  EXPECT_EQ(cls.counters().models_found, 0u);
  c.send(true, std::string_view(r1).substr(head, 20), t0 + 2 * kMs);
  c.send(true, std::string_view(r1).substr(head + 20), t0 + 3 * kMs);
  EXPECT_EQ(cls.counters().models_found, 1u) << "the body named the model";
  EXPECT_TRUE(sink.recs.empty()) << "nothing is emitted before the response ends";
  c.send(false, http1_ok("application/json", kUsage), t0 + 9 * kMs);
  ASSERT_EQ(sink.recs.size(), 1u);
  EXPECT_EQ(cls.requests_in_use(), 0u);
  EXPECT_EQ(cls.l7_in_use(), 1u) << "keep-alive: the connection stays";
  const RequestRecord& r = sink.recs[0];
  EXPECT_EQ(r.proto, ReqProto::h1);
  EXPECT_EQ(r.method.view(), "POST");
  EXPECT_EQ(r.path.view(), "/v1/chat/completions");
  EXPECT_EQ(r.authority.view(), "api.example");
  EXPECT_EQ(r.endpoint, Endpoint::chat_completions);
  EXPECT_EQ(r.model.view(), "llama-3");
  EXPECT_EQ(r.model_source, ModelSource::body);
  EXPECT_EQ(r.src[0], 10);
  EXPECT_EQ(r.src[3], 1) << "the client";
  EXPECT_EQ(r.dst[3], 2);
  EXPECT_EQ(r.sport, 40001);
  EXPECT_EQ(r.dport, 8080);
  EXPECT_EQ(r.ts_ns, t0 + 1 * kMs);
  EXPECT_EQ(r.req_end_ns, t0 + 3 * kMs);
  EXPECT_EQ(r.resp_first_ns, t0 + 9 * kMs);
  EXPECT_EQ(r.resp_end_ns, t0 + 9 * kMs);
  EXPECT_EQ(r.req_bytes, body.size());
  EXPECT_EQ(r.resp_bytes, kUsage.size());
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.incomplete);
  EXPECT_FALSE(r.reset);
  EXPECT_EQ(r.class_name.view(), "default") << "no policy";
  EXPECT_EQ(r.input_tokens, 3u);
  EXPECT_EQ(r.output_tokens, 5u);
  EXPECT_EQ(r.token_source, TokenSource::usage);
  EXPECT_EQ(r.budget, BudgetState::within);
  EXPECT_EQ(cls.counters().requests_emitted, 1u);
}

TEST_F(ClassifierTest, OpenRequestsAreIncompleteOnFlush) {
  TcpConn c = conn(40002);
  c.send(true, http1_post("/v1/chat/completions", chat_body(8)), t0);
  c.send(false, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
         t0 + 1 * kMs);
  c.send(false, chunk(test::token_event(0)), t0 + 2 * kMs);
  EXPECT_TRUE(sink.recs.empty());
  cls.flush();
  ASSERT_EQ(sink.recs.size(), 1u);
  const RequestRecord& r = sink.recs[0];
  EXPECT_TRUE(r.incomplete);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.resp_end_ns, 0u);
  EXPECT_EQ(r.first_token_ns, t0 + 2 * kMs) << "what was seen of the stream is kept";
  EXPECT_EQ(r.model.view(), "m");
  EXPECT_EQ(cls.requests_in_use(), 0u);
  EXPECT_EQ(cls.l7_in_use(), 0u);
  cls.flush();
  EXPECT_EQ(sink.recs.size(), 1u) << "emitted once";
}

// More requests at once than slots: the heads are counted, the ones without
// a slot are not logged, the others are.
TEST_F(ClassifierTest, RequestsWithoutASlotAreCountedNotLogged) {
  TcpConn c = conn(40014);
  std::string pipeline;
  for (int i = 0; i < 10; ++i) pipeline += req;  // small_config: 8 slots (HTTP/1 pipelines 16)
  c.send(true, pipeline, t0);
  EXPECT_EQ(cls.counters().requests, 10u);
  EXPECT_EQ(cls.counters().request_slots_full, 2u);
  EXPECT_EQ(cls.requests_in_use(), 8u);
  std::string responses;
  for (int i = 0; i < 10; ++i) responses += http1_ok("application/json", kUsage);
  c.send(false, responses, t0 + 1 * kMs);
  EXPECT_EQ(sink.recs.size(), 8u);
  EXPECT_EQ(cls.requests_in_use(), 0u);
}

// Classified when the head is seen would be too early: a rule on the model
// comes first. The request (and its connection's frames) get their class
// once the body has named the model.
TEST_F(ClassifierTest, ModelRuleWaitsForTheBody) {
  use_policy();
  TcpConn c = conn(40003);
  EXPECT_EQ(c.last.class_id, 0) << "L3 class before any request";
  split_request(c, req, 10, [&] { EXPECT_EQ(c.last.class_id, 0) << "model not known yet"; });
  EXPECT_EQ(c.last.class_id, 1) << "the body named the model";
  c.send(false, http1_ok("application/json", kUsage), t0 + 2 * kMs);
  ASSERT_EQ(sink.recs.size(), 1u);
  EXPECT_EQ(sink.recs[0].class_id, 1);
  EXPECT_EQ(sink.recs[0].class_name.view(), "gold");
  // Another model on the same connection: the other class.
  c.send(true, http1_post("/v1/chat/completions", chat_body(64, "phi")), t0 + 3 * kMs);
  EXPECT_EQ(c.last.class_id, 0);
  c.send(false, http1_ok("application/json", kUsage), t0 + 4 * kMs);
  ASSERT_EQ(sink.recs.size(), 2u);
  EXPECT_EQ(sink.recs[1].class_name.view(), "bulk");
}

// A policy reload: each flow is re-evaluated at its first frame under the new
// policy. A request in flight takes the class the new rules give what it
// showed (the flow's frames and its record, name included); a connection
// with no request open starts again from the new L3 rules; the next request
// is classified under the new policy.
TEST_F(ClassifierTest, PolicyReloadReevaluatesOpenRequests) {
  ModelPolicy next = pol;
  next.hit = 2;
  next.flow = 3;
  next.names = {"bulk2", "gold2", "silver2", "l3-2"};
  use_policy();
  TcpConn idle = conn(40014);
  exchange(idle, t0, req);
  EXPECT_EQ(idle.last.class_id, 1);
  TcpConn c = conn(40004);
  c.send(true, req, t0);
  EXPECT_EQ(c.last.class_id, 1);
  cls.set_policy(&next, 2, 0);
  // The response's first frame: the open request, by the new rules.
  c.send(false, http1_ok("application/json", kUsage), t0 + 1 * kMs);
  EXPECT_EQ(c.last.class_id, 2);
  ASSERT_EQ(sink.recs.size(), 2u);
  EXPECT_EQ(sink.recs[1].class_id, 2) << "re-evaluated under generation 2";
  EXPECT_EQ(sink.recs[1].class_name.view(), "silver2");
  // No request open: the new L3 rules.
  idle.frame(true, 0x10, {}, t0 + 1 * kMs);
  EXPECT_EQ(idle.last.class_id, 3);
  EXPECT_EQ(cls.counters().flows_reclassified, 2u);
  EXPECT_EQ(cls.counters().requests_reclassified, 1u);
  c.send(true, req, t0 + 2 * kMs);
  EXPECT_EQ(c.last.class_id, 2) << "the next request: generation 2";
  c.send(false, http1_ok("application/json", kUsage), t0 + 3 * kMs);
  ASSERT_EQ(sink.recs.size(), 3u);
  EXPECT_EQ(sink.recs[2].class_id, 2);
  EXPECT_EQ(sink.recs[2].class_name.view(), "silver2");
  EXPECT_EQ(cls.counters().requests_reclassified, 1u) << "once per flow and generation";
}

// A request decided under one policy and whose body ends under the next
// takes the new rules' class and name, but is charged to none of the new
// budgets (the old ones charged it).
TEST_F(ClassifierTest, RequestAcrossReloadIsNotChargedAgain) {
  pol.model_rule = false;  // decided at the head
  pol.miss = 2;
  ModelPolicy next = pol;
  next.names = {"bulk2", "gold2", "silver2", "l3-2"};
  next.hit = 2;  // class 2 has a budget under the new policy: 1 token a minute
  next.hit_budget.tokens_per_minute = 1;
  next.hit_budget.demote = true;
  use_policy();
  TcpConn c = conn(40005);
  split_request(c, req, 10, [&] {
    EXPECT_EQ(c.last.class_id, 2);
    cls.set_policy(&next, 2, 0);
  });
  c.send(false, http1_ok("application/json", kUsage), t0 + 2 * kMs);
  ASSERT_EQ(sink.recs.size(), 1u);
  EXPECT_EQ(sink.recs[0].class_id, 2);
  EXPECT_EQ(sink.recs[0].class_name.view(), "silver2");
  EXPECT_EQ(sink.recs[0].budget, BudgetState::within);
  EXPECT_EQ(sink.recs[0].est_tokens, 0u) << "no token budget charged";
  EXPECT_EQ(cls.counters().over_tokens, 0u);
}

// A request demoted under the old policy stays demoted across a reload: the
// new rules' class, demoted as that class's budget says.
TEST_F(ClassifierTest, DemotedRequestStaysDemotedAcrossReload) {
  pol.hit_budget.requests_per_second = 1;
  pol.hit_budget.demote = true;
  pol.hit_budget.demote_to = 2;
  use_policy();
  TcpConn c = conn(40015);
  exchange(c, t0, req);
  c.send(true, req, t0 + 1 * kMs);  // over 1/s: demoted to 2
  EXPECT_EQ(c.last.class_id, 2);
  ModelPolicy next = pol;
  next.names = {"bulk2", "gold2", "silver2", "l3-2"};
  next.hit_budget.demote_to = 3;
  cls.set_policy(&next, 2, 0);
  c.send(false, http1_ok("application/json", kUsage), t0 + 2 * kMs);
  EXPECT_EQ(c.last.class_id, 3);
  ASSERT_EQ(sink.recs.size(), 2u);
  EXPECT_EQ(sink.recs[1].budget, BudgetState::demoted);
  EXPECT_EQ(sink.recs[1].class_name.view(), "l3-2");
}

// A request whose class waits for its model, with a reload in between: it is
// decided under the policy in force when the model is known.
TEST_F(ClassifierTest, PendingRequestIsDecidedUnderThePolicyInForce) {
  ModelPolicy next = pol;
  next.hit = 2;
  next.names = {"bulk2", "gold2", "silver2", "l3-2"};
  use_policy();
  TcpConn c = conn(40013);
  split_request(c, req, 10, [&] {
    EXPECT_EQ(c.last.class_id, 0) << "pending";
    cls.set_policy(&next, 2, 0);
  });
  EXPECT_EQ(c.last.class_id, 2);
  c.send(false, http1_ok("application/json", kUsage), t0 + 2 * kMs);
  ASSERT_EQ(sink.recs.size(), 1u);
  EXPECT_EQ(sink.recs[0].class_id, 2);
  EXPECT_EQ(sink.recs[0].class_name.view(), "silver2");
}

// Over the requests-per-second budget (1/s) of class 1 (`demote`: to class 2).
void over_one_rps(ModelPolicy& pol, bool demote) {
  pol.hit_budget.requests_per_second = 1;
  pol.hit_budget.demote = demote;
  pol.hit_budget.demote_to = 2;
}

// Over the requests-per-second budget with action demote: the second request
// of the second is demoted (class, name, budget field) and so are its frames.
TEST_F(ClassifierTest, OverBudgetDemotes) {
  over_one_rps(pol, true);
  use_policy();
  TcpConn c = conn(40006);
  for (int i = 0; i < 2; ++i) {
    c.send(true, req, t0 + i * kMs);
    EXPECT_EQ(c.last.class_id, i == 0 ? 1 : 2) << i;
    EXPECT_FALSE(c.last.drop);
    c.send(false, http1_ok("application/json", kUsage), t0 + i * kMs);
  }
  ASSERT_EQ(sink.recs.size(), 2u);
  EXPECT_EQ(sink.recs[0].budget, BudgetState::within);
  EXPECT_EQ(sink.recs[1].budget, BudgetState::demoted);
  EXPECT_EQ(sink.recs[1].class_id, 2);
  EXPECT_EQ(sink.recs[1].class_name.view(), "silver");
  EXPECT_EQ(cls.counters().over_rps, 1u);
  EXPECT_EQ(cls.counters().budget_demoted, 1u);
  EXPECT_EQ(cls.counters().budget_frames_dropped, 0u);
}

// Classes by the model: "a" 1 and "c" 3 (both priority 3), "b" 2 (priority 0).
// While the model is unknown: class `pending_class`.
struct ModelClassPolicy final : ClassResolver {
  uint16_t pending_class = 0;
  uint16_t classify(const RequestFacts& f, uint16_t, bool* pending) const noexcept override {
    if (!f.model_known) {
      if (pending != nullptr) *pending = true;
      return pending_class;
    }
    return f.model == "a" ? 1 : f.model == "b" ? 2 : f.model == "c" ? 3 : 0;
  }
  uint16_t classify_flow(uint16_t, uint8_t, const uint8_t*, const uint8_t*) const noexcept override { return 0; }
  void tenant(const RequestFacts&, BoundedString<64>&) const noexcept override {}
  uint8_t priority(uint16_t c) const noexcept override { return c == 2 ? 0 : c == 0 ? 7 : 3; }
  uint16_t default_class() const noexcept override { return 0; }
  std::string_view class_name_of(uint16_t) const noexcept override { return "x"; }
  ClassBudget budget(uint16_t) const noexcept override { return {}; }
  uint16_t class_count() const noexcept override { return 4; }
};

// A connection with several open requests (HTTP/1.1 pipelining) is charged to
// the most urgent class among them, the earliest request's on a tie; a request
// ending hands the flow to the next most urgent one (update_flow_class keeps
// the request it chose and compares only the one that changed with it).
TEST_F(ClassifierTest, FlowTakesTheMostUrgentOpenRequest) {
  ModelClassPolicy mp;
  cls.set_policy(&mp, 1, 0);
  auto post = [](std::string_view m) { return http1_post("/v1/chat/completions", chat_body(8, m)); };
  auto ok = [] { return http1_ok("application/json", kUsage); };
  TcpConn c = conn(40200);
  c.send(true, post("a"), t0);
  EXPECT_EQ(c.last.class_id, 1);
  c.send(true, post("c"), t0);
  EXPECT_EQ(c.last.class_id, 1) << "a tie: the earlier request";
  c.send(true, post("b"), t0);
  EXPECT_EQ(c.last.class_id, 2) << "more urgent";
  c.send(false, ok(), t0);  // answers "a"
  EXPECT_EQ(c.last.class_id, 2);
  c.send(false, ok(), t0);  // answers "c"
  EXPECT_EQ(c.last.class_id, 2);
  c.send(true, post("c"), t0);
  EXPECT_EQ(c.last.class_id, 2) << "\"b\" is still open";
  c.send(false, ok(), t0);  // answers "b"
  EXPECT_EQ(c.last.class_id, 3) << "the request left open";
  c.send(false, ok(), t0);
  EXPECT_EQ(c.last.class_id, 3) << "none open: the last class";
  ASSERT_EQ(sink.recs.size(), 4u);

  TcpConn d = conn(40201);
  d.send(true, post("a"), t0);
  d.send(true, post("c"), t0);
  EXPECT_EQ(d.last.class_id, 1);
  d.send(false, ok(), t0);  // the request the flow's class came from ends
  EXPECT_EQ(d.last.class_id, 3);
  d.send(true, post("a"), t0);
  EXPECT_EQ(d.last.class_id, 3) << "a tie: the earlier request";

  // HTTP/2: the earlier stream learns its class (priority 3) after a later one
  // got another class of the same priority: the earlier one's wins the tie.
  TcpConn e = conn(40202);
  test::h2c_start(e, t0);
  const std::string hb = test::h2_post_headers("/v1/chat/completions");
  const std::string body_c = chat_body(8, "c"), body_a = chat_body(8, "a");
  e.send(true, test::h2frame(1, 0x4, 1, hb) + test::h2frame(0, 0, 1, body_c.substr(0, 10)), t0);
  EXPECT_EQ(e.last.class_id, 0) << "stream 1: model not known yet";
  e.send(true, test::h2frame(1, 0x4, 3, hb) + test::h2frame(0, 0x1, 3, body_a), t0);
  EXPECT_EQ(e.last.class_id, 1);
  e.send(true, test::h2frame(0, 0x1, 1, body_c.substr(10)), t0);
  EXPECT_EQ(e.last.class_id, 3) << "a tie: the earlier stream";

  // The request the flow's class came from becomes less urgent: another one takes over.
  mp.pending_class = 2;  // priority 0 until the model is known
  TcpConn g = conn(40203);
  g.send(true, std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24) + test::h2frame(4, 0, 0, ""), t0);
  g.send(false, test::h2frame(4, 0, 0, ""), t0);
  g.send(true, test::h2frame(1, 0x4, 1, hb) + test::h2frame(0, 0x1, 1, body_c), t0);
  EXPECT_EQ(g.last.class_id, 3);
  g.send(true, test::h2frame(1, 0x4, 3, hb) + test::h2frame(0, 0, 3, body_a.substr(0, 10)), t0);
  EXPECT_EQ(g.last.class_id, 2) << "stream 3, pending, is more urgent";
  g.send(true, test::h2frame(0, 0x1, 3, body_a.substr(10)), t0);
  EXPECT_EQ(g.last.class_id, 3) << "stream 3 is now priority 3, after stream 1";
}

// Action drop: while the request over budget is open, its client's frames on
// the connection are dropped (FIN still passes); when it ends they pass again.
TEST_F(ClassifierTest, OverBudgetDropsClientFramesWhileOpen) {
  over_one_rps(pol, false);
  use_policy();
  TcpConn c = conn(40007);
  exchange(c, t0, req);
  c.send(true, req, t0 + 1 * kMs);
  EXPECT_TRUE(c.last.drop) << "the frame that made it over the budget";
  EXPECT_EQ(c.last.class_id, 1) << "dropped, not demoted";
  c.frame(true, 0x10, {}, t0 + 2 * kMs);
  EXPECT_TRUE(c.last.drop) << "the client's next frame";
  c.frame(false, 0x10, {}, t0 + 2 * kMs);
  EXPECT_FALSE(c.last.drop) << "the server's frames pass";
  c.send(false, http1_ok("application/json", kUsage), t0 + 3 * kMs);
  ASSERT_EQ(sink.recs.size(), 2u);
  EXPECT_EQ(sink.recs[1].budget, BudgetState::dropped);
  c.frame(true, 0x10, {}, t0 + 4 * kMs);
  EXPECT_FALSE(c.last.drop) << "the request is over";
  EXPECT_EQ(cls.counters().budget_dropped, 1u);
  EXPECT_EQ(cls.counters().budget_frames_dropped, 2u);
  // Over again (still within the second): the client's FIN passes, so it can close.
  c.send(true, req, t0 + 5 * kMs);
  EXPECT_TRUE(c.last.drop);
  c.frame(true, 0x11, {}, t0 + 6 * kMs);
  EXPECT_FALSE(c.last.drop) << "FIN passes";
}

// The token budget is charged the estimate when the body is in and corrected
// by what the server reported when the response ends: the refund lets the
// next request in, where the estimate alone would not have.
TEST_F(ClassifierTest, TokenBudgetReconciledWithReportedUsage) {
  const std::string body = chat_body(1000, "llama-3");
  const double est = 1000 + static_cast<double>(body.size()) / 4.0;
  pol.hit_budget.tokens_per_minute = est * 1.5;  // one estimate fits, two do not
  pol.hit_budget.demote = true;
  pol.hit_budget.demote_to = 0;
  use_policy();
  TcpConn c = conn(40009);
  const std::string big_req = http1_post("/v1/chat/completions", body);
  exchange(c, t0, big_req);  // 3 + 5 used
  exchange(c, t0, big_req);
  ASSERT_EQ(sink.recs.size(), 2u);
  for (const RequestRecord& r : sink.recs) {
    EXPECT_EQ(r.budget, BudgetState::within);
    EXPECT_EQ(r.class_id, 1);
    EXPECT_EQ(r.est_tokens, static_cast<uint32_t>(est));
    EXPECT_EQ(r.input_tokens, 3u);
    EXPECT_EQ(r.output_tokens, 5u);
  }
  EXPECT_EQ(cls.counters().tokens_refunded, 2 * static_cast<uint64_t>(est - 8));
  // Usage far above the estimate: charged on top, into debt; the next request is over.
  exchange(c, t0, big_req, "{\"usage\":{\"prompt_tokens\":100000,\"completion_tokens\":5}}");
  EXPECT_EQ(cls.counters().tokens_extra, static_cast<uint64_t>(100005 - est));
  exchange(c, t0, big_req);
  ASSERT_EQ(sink.recs.size(), 4u);
  EXPECT_EQ(sink.recs[3].budget, BudgetState::demoted);
  EXPECT_EQ(sink.recs[3].class_id, 0);
  EXPECT_EQ(cls.counters().over_tokens, 1u);
}

// A response that ends after a reload corrects nothing: the budget that
// charged its estimate went with the old policy (the new one's buckets are
// other buckets, whatever the request's class is now).
TEST_F(ClassifierTest, NoBudgetCorrectionAcrossReload) {
  const std::string body = chat_body(1000, "llama-3");
  pol.hit_budget.tokens_per_minute = 1e6;
  use_policy();
  TcpConn c = conn(40016);
  c.send(true, http1_post("/v1/chat/completions", body), t0);  // charged its estimate
  ModelPolicy next = pol;
  cls.set_policy(&next, 2, 0);
  c.send(false, http1_ok("application/json", kUsage), t0 + 1 * kMs);
  ASSERT_EQ(sink.recs.size(), 1u);
  EXPECT_EQ(sink.recs[0].class_id, 1) << "re-evaluated: the same class";
  EXPECT_GT(sink.recs[0].est_tokens, 1000u);
  EXPECT_EQ(cls.counters().tokens_refunded, 0u);
  EXPECT_EQ(cls.counters().tokens_extra, 0u);
}

// `aiqosctl flows`: the flows largest first, what they carry, their open
// requests and the model of their latest request.
TEST_F(ClassifierTest, TopFlowsShowsL7AndModel) {
  TcpConn a = conn(40010), b = conn(40011), u = conn(40012);
  exchange(a, t0, req);
  b.send(true, http1_post("/v1/chat/completions", chat_body(64, "a-much-longer-model-name")), t0);
  u.send(true, std::string(40, '\x01'), t0);  // neither HTTP nor TLS
  FlowInfo out[4];
  ASSERT_EQ(cls.top_flows(out, 4, FlowFilter{}), 3u);
  auto port = [](const FlowInfo& f) { return f.key.lo_port == 8080 ? f.key.hi_port : f.key.lo_port; };
  auto total = [](const FlowInfo& f) { return f.bytes[0] + f.bytes[1]; };
  EXPECT_GE(total(out[0]), total(out[1]));
  EXPECT_GE(total(out[1]), total(out[2]));
  for (const FlowInfo& f : out) {
    if (port(f) == 40010) {
      EXPECT_EQ(f.l7, FlowInfo::l7_http1);
      EXPECT_EQ(f.open_requests, 0u);
      EXPECT_EQ(f.last_model.view(), "llama-3") << "of the latest request, ended";
    } else if (port(f) == 40011) {
      EXPECT_EQ(f.l7, FlowInfo::l7_http1);
      EXPECT_EQ(f.open_requests, 1u);
      EXPECT_EQ(f.last_model.view(), "a-much-longer-model-name") << "of the open request";
    } else if (port(f) == 40012) {
      EXPECT_EQ(f.l7, FlowInfo::l7_unclassified);
      EXPECT_STREQ(flow_l7_name(f.l7), "unclassified");
      EXPECT_TRUE(f.last_model.empty());
    }
  }
  FlowFilter by_model;
  by_model.model.append("llama-3");
  ASSERT_EQ(cls.top_flows(out, 4, by_model), 1u);
  EXPECT_EQ(port(out[0]), 40010);
  EXPECT_EQ(cls.top_flows(out, 1, FlowFilter{}), 1u) << "at most max";
}

// TLS connections by their ClientHello's server name: `sni` is class `hit`,
// other names and other requests `miss`, flows before any `flow`.
struct SniPolicy final : ClassResolver {
  std::string sni = "api.openai.com";
  uint16_t hit = 1, miss = 0, flow = 3;
  uint16_t classify(const RequestFacts& f, uint16_t, bool*) const noexcept override {
    return f.proto == ReqProto::tls && f.sni == sni ? hit : miss;
  }
  uint16_t classify_flow(uint16_t, uint8_t, const uint8_t*, const uint8_t*) const noexcept override { return flow; }
  void tenant(const RequestFacts&, BoundedString<64>&) const noexcept override {}
  uint8_t priority(uint16_t) const noexcept override { return 3; }
  uint16_t default_class() const noexcept override { return 0; }
  std::string_view class_name_of(uint16_t) const noexcept override { return "c"; }
  ClassBudget budget(uint16_t) const noexcept override { return {}; }
  uint16_t class_count() const noexcept override { return 4; }
};

// A real client's ClientHello (curl, SNI api.openai.com), then TLS records.
void tls_connection(TcpConn& c, uint64_t t) {
  c.open(t);
  c.send(true, std::string_view(reinterpret_cast<const char*>(tls_client_hello_curl_bin), tls_client_hello_curl_bin_len), t);
  c.send(false, std::string(300, '\x17'), t);
}

// A TLS connection past its ClientHello keeps its class by server name
// across a reload: the new rules evaluate the name again (not the L3
// rules); every connection naming the same server shares one kept name, which
// `aiqosctl flows` shows.
TEST(ClassifierTls, ReloadReevaluatesTheServerName) {
  RecordSink sink;
  Classifier cls{test::small_config(), sink};
  SniPolicy pol, next;
  next.hit = 2;
  cls.set_policy(&pol, 1, 0);
  const uint64_t t0 = 1000 * kMs;
  TcpConn a{cls, 40200}, b{cls, 40201};
  a.sport = b.sport = 443;
  tls_connection(a, t0);
  tls_connection(b, t0);
  EXPECT_EQ(a.last.class_id, 1);
  ASSERT_EQ(sink.recs.size(), 2u);
  EXPECT_EQ(sink.recs[0].authority.view(), "api.openai.com");
  EXPECT_EQ(cls.tls_names().in_use(), 1u) << "one name for both connections";
  FlowInfo top[2];
  ASSERT_EQ(cls.top_flows(top, 2, FlowFilter{}), 2u);
  EXPECT_EQ(top[0].l7, FlowInfo::l7_tls);
  EXPECT_EQ(top[0].server_name.view(), "api.openai.com") << "aiqosctl flows shows the kept name";
  cls.set_policy(&next, 2, 0);
  a.send(false, std::string(100, '\x17'), t0 + 1 * kMs);
  EXPECT_EQ(a.last.class_id, 2) << "the server name under the new rules";
  next.sni = "other.example.com";
  cls.set_policy(&next, 3, 0);
  b.send(true, std::string(100, '\x17'), t0 + 2 * kMs);
  EXPECT_EQ(b.last.class_id, 0) << "a name no rule names any more";
  EXPECT_EQ(cls.counters().flows_reclassified, 2u);
  cls.flush();
  EXPECT_EQ(cls.tls_names().in_use(), 0u) << "released with the flows";
}

// No room for the name (here: none kept at all): counted, and after a reload
// the connection falls back to the new L3 rules.
TEST(ClassifierTls, NameNotKeptFallsBackToL3Rules) {
  RecordSink sink;
  ClassifierConfig cfg = test::small_config();
  cfg.max_tls_names = 0;
  Classifier cls{cfg, sink};
  SniPolicy pol, next;
  next.hit = 2;
  cls.set_policy(&pol, 1, 0);
  TcpConn a{cls, 40202};
  a.sport = 443;
  tls_connection(a, 1000 * kMs);
  EXPECT_EQ(a.last.class_id, 1);
  EXPECT_EQ(cls.counters().tls_names_not_kept, 1u);
  FlowInfo top[1];
  ASSERT_EQ(cls.top_flows(top, 1, FlowFilter{}), 1u);
  EXPECT_TRUE(top[0].server_name.empty());
  cls.set_policy(&next, 2, 0);
  a.send(false, std::string(100, '\x17'), 1001 * kMs);
  EXPECT_EQ(a.last.class_id, 3);
}

// A gRPC request's model (field 1 of its first ModelInferRequest) is searched
// within the body's first body_scan_bytes like a JSON body's: 0, never.
TEST(ClassifierGrpc, ModelSearchedWithinTheBodyScanBound) {
  using test::h2frame;
  using test::hpack_lit;
  for (uint64_t scan : {uint64_t{0}, uint64_t{1} << 20}) {
    RecordSink sink;
    ClassifierConfig cfg = test::small_config();
    cfg.body_scan_bytes = scan;
    Classifier cls{cfg, sink};
    TcpConn c{cls, 40300};
    const uint64_t t0 = 1000 * kMs;
    c.open(t0);
    test::h2c_start(c, t0);
    const std::string req = test::h2_post_headers("/inference.GRPCInferenceService/ModelInfer", "application/grpc");
    const std::string pb = std::string("\x0a\x07", 2) + "llama-3" + std::string("\x12\x01", 2) + "1";
    const std::string msg = std::string("\0\0\0\0", 4) + static_cast<char>(pb.size()) + pb;
    c.send(true, h2frame(1, 0x4, 1, req) + h2frame(0, 0x1, 1, msg), t0);
    std::string head, trailers;
    hpack_lit(head, ":status", "200");
    hpack_lit(head, "content-type", "application/grpc");
    hpack_lit(trailers, "grpc-status", "0");
    c.send(false, h2frame(1, 0x4, 1, head) + h2frame(1, 0x5, 1, trailers), t0 + kMs);
    ASSERT_EQ(sink.recs.size(), 1u) << scan;
    EXPECT_EQ(sink.recs[0].proto, ReqProto::grpc) << scan;
    EXPECT_EQ(sink.recs[0].model.view(), scan ? "llama-3" : "") << scan;
    EXPECT_EQ(sink.recs[0].model_source, scan ? ModelSource::grpc : ModelSource::none) << scan;
  }
}


// HPACK: a literal field with incremental indexing (new name), so that each
// connection's dynamic tables fill; lengths of any size (7-bit prefix).
void hpack_indexed(std::string& out, std::string_view name, std::string_view value) {
  auto len = [&](size_t n) {
    if (n < 127) {
      out += static_cast<char>(n);
      return;
    }
    out += static_cast<char>(127);
    for (n -= 127; n >= 128; n >>= 7) out += static_cast<char>(0x80 | (n & 0x7f));
    out += static_cast<char>(n);
  };
  out += '\x40';
  len(name.size());
  out += name;
  len(value.size());
  out += value;
}

std::string h2_request(int i, size_t big = 0) {
  std::string hb;
  hpack_indexed(hb, ":method", "POST");
  hpack_indexed(hb, ":scheme", "http");
  hpack_indexed(hb, ":path", "/v1/chat/completions");
  hpack_indexed(hb, "content-type", "application/json");
  hpack_indexed(hb, "x-request-id", "req-" + std::to_string(i));
  if (big != 0) hpack_indexed(hb, "x-big", std::string(big, 'x'));
  return hb;
}

// The HPACK inflaters of every HTTP/2 connection allocate from the worker's
// pool: connection after connection, the blocks are reused (the pool touches
// no more memory after warm-up) and the heap is never asked.
TEST(ClassifierHttp2, HpackMemoryFromThePool) {
  using test::h2frame;
  RecordSink sink;
  ClassifierConfig cfg = test::small_config();
  Classifier cls{cfg, sink};
  const HpackPool& pool = cls.hpack_pool();
  EXPECT_EQ(pool.capacity(), hpack_pool_default_bytes(cfg.max_l7_conns, cfg.l7.http2.max_hpack_mem));
  std::string status;
  hpack_indexed(status, ":status", "200");
  uint64_t t = 1000 * kMs, heap0 = 0, touched = 0;
  for (int i = 0; i < 40; ++i) {
    if (i == 5) {  // warmed up
      heap0 = Http2Connection::heap_allocations();
      touched = pool.touched();
    }
    TcpConn c{cls, static_cast<uint16_t>(41000 + i)};
    c.open(t);
    test::h2c_start(c, t);
    for (uint32_t id = 1; id <= 7; id += 2) {
      c.send(true, h2frame(1, 0x5, id, h2_request(i * 10 + static_cast<int>(id))), t);
      c.send(false, h2frame(1, 0x5, id, status), t);
    }
    EXPECT_GT(pool.in_use(), 0u);
    c.close(t);
    t += 20'000 * kMs;  // past the closing timeout
    cls.expire(t, 1024);
    ASSERT_EQ(cls.l7_in_use(), 0u);
    ASSERT_EQ(pool.in_use(), 0u) << "the connection's inflaters gave their blocks back";
  }
  EXPECT_EQ(sink.recs.size(), 160u);
  EXPECT_GT(touched, 0u);
  EXPECT_EQ(pool.touched(), touched) << "no block beyond those of the first connections";
  EXPECT_EQ(Http2Connection::heap_allocations(), heap0);
  EXPECT_EQ(pool.exhausted(), 0u);
}

// A pool with no block for an allocation fails the connection open, as the
// HPACK budget does (hpack_memory, l7_error), and counts it.
TEST(ClassifierHttp2, HpackPoolDryFailsTheFlowOpen) {
  using test::h2frame;
  for (uint64_t pool_bytes : {uint64_t{16384}, uint64_t{8192}}) {
    RecordSink sink;
    ClassifierConfig cfg = test::small_config();
    cfg.l7.http2.max_hpack_mem = 8192;  // blocks of up to 8 KiB
    cfg.hpack_pool_bytes = pool_bytes;  // 8 KiB: the two inflaters fit, a 4500-byte value then does not
    Classifier cls{cfg, sink};
    ASSERT_EQ(cls.hpack_pool().capacity(), pool_bytes);
    TcpConn c{cls, 41200};
    const uint64_t t0 = 1000 * kMs;
    c.open(t0);
    test::h2c_start(c, t0);
    c.send(true, h2frame(1, 0x5, 1, h2_request(1, 4500)), t0);
    std::string status;
    hpack_indexed(status, ":status", "200");
    c.send(false, h2frame(1, 0x5, 1, status), t0);
    const ClassifierCounters& k = cls.counters();
    const bool dry = pool_bytes == 8192;
    EXPECT_EQ(cls.hpack_pool().exhausted(), dry ? 1u : 0u) << pool_bytes;
    EXPECT_EQ(k.l7_errors[static_cast<size_t>(L7Error::hpack_memory)], dry ? 1u : 0u) << pool_bytes;
    EXPECT_EQ(k.unclassified[static_cast<size_t>(Unclassified::l7_error)], dry ? 1u : 0u) << pool_bytes;
    EXPECT_EQ(sink.recs.size(), dry ? 0u : 1u) << pool_bytes;
    // Failed open: the frames still pass, the L7 state and its blocks are given back.
    c.send(true, h2frame(1, 0x5, 3, h2_request(3)), t0);
    EXPECT_FALSE(c.last.drop);
    if (dry) {
      EXPECT_EQ(cls.l7_in_use(), 0u);
      EXPECT_EQ(cls.hpack_pool().in_use(), 0u);
    }
  }
}

}  // namespace
}  // namespace aiqos
