// The dataplane's statistics as the control plane holds them: one typed
// aggregate, summed off the fast path from per-worker snapshots
// (dataplane/stats_snapshot.h), that every renderer reads: the JSON of
// --stats-json and of the control socket (dp_stats_json.cpp), Prometheus
// (metrics.cpp), DPDK telemetry (over that JSON, dataplane/telemetry.cpp)
// and the exit report (dp_stats_text.cpp).
//
// Every scalar and every per-enum array is declared once, in an X-macro list
// (here and in dataplane/stats_fields.h), and reached by the renderers only
// through visit(): a field cannot be left out of one renderer by accident,
// and tests/unit/control/dp_stats_test.cpp fails if a renderer drops one.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "classify/classifier.h"
#include "classify/http_events.h"
#include "classify/packet_parse.h"
#include "classify/tcp_reassembly.h"
#include "dataplane/stats_fields.h"

namespace aiqos {

// The PMD's own counters of a port (rte_eth_stats), read when stats are taken.
#define AIQOS_PORT_HW_STATS(X)                                                            \
  X(no_mbuf, counter, "aiqos_port_drops_total", "reason=\"rx_nombuf\"",                   \
    "Frames the NIC received but had no mbuf for (rte_eth_stats.rx_nombuf).")             \
  X(imissed, counter, "aiqos_port_drops_total", "reason=\"imissed\"",                     \
    "Frames the NIC dropped for lack of RX descriptors (rte_eth_stats.imissed).")         \
  X(ierrors, counter, "aiqos_port_errors_total", "direction=\"rx\"",                      \
    "Erroneous frames received, and frames the NIC failed to send, by direction.")        \
  X(oerrors, counter, "aiqos_port_errors_total", "direction=\"tx\"", "Frames the NIC failed to send.")

// A worker's classifier: X(name, kind, family, labels, help, source). `source`
// is read on the control thread by the snapshot (stats_snapshot.cpp) with
// c = the Classifier, k = its counters, f = its flow table's counters,
// rc = its reassembly counters, sink = the worker's request ring sink.
// Prometheus shows the sum over workers.
#define AIQOS_CLASSIFIER_STATS(X)                                                                                      \
  X(packets, counter, "aiqos_classifier_frames_total", "", "Frames the classifiers looked at.", k.packets)           \
  X(fast_path_frames, counter, "aiqos_classifier_fast_path_frames_total", "",                                        \
    "Frames that took the fast path: no reassembly, no L7 parser (a decided flow, or a bare TCP segment).",           \
    k.fast_path_frames)                                                                                                \
  X(flows_active, gauge, "aiqos_flows_active", "", "Flows in the flow tables of all workers.", c.flows().size())      \
  X(flows_created, counter, "aiqos_flows_created_total", "", "Flows created, all workers.", f.flows_created)          \
  X(flows_expired, counter, "aiqos_flows_expired_total", "", "Flows expired (idle timeout), all workers.",            \
    f.flows_expired)                                                                                                   \
  X(flows_evicted, counter, "aiqos_flows_evicted_total", "", "Flows evicted before their deadline to make room.",     \
    f.flows_evicted)                                                                                                   \
  X(flow_table_full, counter, "aiqos_flow_table_full_total", "",                                                     \
    "Frames that found the flow table full (forwarded without a flow).", f.table_full)                                \
  X(l7_conns, counter, "aiqos_l7_connections_total", "", "Connections that got L7 state.", k.l7_conns)                \
  X(l7_conns_active, gauge, "aiqos_l7_connections_active", "", "Connections holding L7 state now.", c.l7_in_use())    \
  X(requests, counter, "aiqos_classifier_requests_total", "", "Request heads seen by the classifiers.", k.requests)   \
  X(requests_completed, counter, "aiqos_classifier_requests_completed_total", "",                                      \
    "Requests finished and handed to the control plane.", k.requests_emitted)                                         \
  X(request_slots_full, counter, "aiqos_request_slots_full_total", "",                                                \
    "Request heads seen with no free request slot (not logged).", k.request_slots_full)                                \
  X(request_records_dropped, counter, "aiqos_request_records_dropped_total", "",                                      \
    "Finished requests lost because the ring to the control plane was full.", sink.dropped.get())                     \
  X(models_found, counter, "aiqos_models_found_total", "", "Requests that named a model.", k.models_found)            \
  X(direction_swaps, counter, "aiqos_direction_swaps_total", "",                                                      \
    "Connections whose client and server L7 found the other way round.", k.direction_swaps)                           \
  X(flows_reclassified, counter, "aiqos_flows_reclassified_total", "",                                              \
    "Flows re-evaluated under a new policy at their first frame after a reload.", k.flows_reclassified)              \
  X(requests_reclassified, counter, "aiqos_requests_reclassified_total", "",                                        \
    "Open requests re-evaluated under a new policy (their flow's first frame after a reload).",                      \
    k.requests_reclassified)                                                                                           \
  X(tls_names_kept, gauge, "aiqos_tls_names_kept", "",                                                              \
    "Distinct TLS server names kept for connections past their ClientHello (re-evaluated after a reload).",          \
    c.tls_names().in_use())                                                                                            \
  X(tls_names_not_kept, counter, "aiqos_tls_names_not_kept_total", "",                                              \
    "TLS connections whose server name found no room: after a reload they take the L3 rules.",                       \
    k.tls_names_not_kept)                                                                                              \
  X(midstream_conns, counter, "aiqos_midstream_connections_total", "",                                                \
    "TCP connections picked up mid-stream (open before aiqosd saw their handshake).", k.midstream_conns)              \
  X(midstream_partial_headers, counter, "aiqos_midstream_partial_headers_total", "",                                  \
    "Requests whose header block could not be decoded whole (HPACK table of a picked-up connection).",                \
    k.partial_headers)                                                                                                 \
  X(midstream_buffer_bytes, gauge, "aiqos_midstream_buffer_bytes", "",                                                \
    "Bytes of the mid-stream pickup budget in use.", c.midstream().used)                                               \
  X(midstream_budget_refused, counter, "aiqos_midstream_budget_refused_total", "",                                    \
    "Directions that gave up mid-stream pickup for lack of budget.", c.midstream().refused)                           \
  X(hpack_pool_bytes_in_use, gauge, "aiqos_hpack_pool_bytes_in_use", "",                                              \
    "Bytes of the HPACK pools in blocks held by HTTP/2 connections' inflaters, all workers.",                         \
    c.hpack_pool().in_use())                                                                                          \
  X(hpack_pool_exhausted, counter, "aiqos_hpack_pool_exhausted_total", "",                                            \
    "HPACK allocations the pool had no block for (the connection failed open, hpack_memory).",                        \
    c.hpack_pool().exhausted())                                                                                       \
  X(over_rps, counter, "aiqos_over_budget_total", "budget=\"rps\"",                                                   \
    "Requests over a request-rate (rps) or token budget of their class, all workers.", k.over_rps)                    \
  X(over_tokens, counter, "aiqos_over_budget_total", "budget=\"tokens\"", "Requests over a token budget.",            \
    k.over_tokens)                                                                                                     \
  X(budget_demoted, counter, "aiqos_budget_demoted_total", "", "Requests over budget demoted by the budget action.",  \
    k.budget_demoted)                                                                                                  \
  X(budget_dropped, counter, "aiqos_budget_dropped_total", "",                                                        \
    "Requests over budget whose client frames were dropped.", k.budget_dropped)                                        \
  X(budget_frames_dropped, counter, "aiqos_budget_frames_dropped_total", "",                                          \
    "Client frames dropped for requests over budget.", k.budget_frames_dropped)                                        \
  X(responses_usage, counter, "aiqos_responses_tokens_total", "source=\"usage\"",                                     \
    "Responses whose output tokens are known, by source: reported by the server (usage), counted from its stream, "  \
    "or given up on (scan_failed, encoded: estimated).",                                                               \
    k.responses_usage)                                                                                                 \
  X(responses_counted, counter, "aiqos_responses_tokens_total", "source=\"counted\"",                                 \
    "Responses whose output tokens were counted from stream events.", k.responses_counted)                            \
  X(responses_scan_failed, counter, "aiqos_responses_tokens_total", "source=\"scan_failed\"",                         \
    "Responses whose body could not be scanned (estimated).", k.responses_scan_failed)                                \
  X(responses_encoded, counter, "aiqos_responses_tokens_total", "source=\"encoded\"",                                 \
    "Compressed responses, not decoded (estimated).", k.responses_encoded)                                            \
  X(tokens_refunded, counter, "aiqos_budget_tokens_corrected_total", "direction=\"refunded\"",                        \
    "Budget corrections when responses ended: estimated tokens given back (refunded) or charged on top (extra).",     \
    k.tokens_refunded)                                                                                                 \
  X(tokens_extra, counter, "aiqos_budget_tokens_corrected_total", "direction=\"extra\"",                              \
    "Usage above the estimate, charged on top.", k.tokens_extra)                                                       \
  X(fleet_checked, counter, "aiqos_fleet_checks_total", "figures=\"fleet\"",                                          \
    "Requests admitted against fleet budgets: with the fleet's figures, or with the local share (stale figures).",    \
    k.fleet_checked)                                                                                                   \
  X(fleet_local, counter, "aiqos_fleet_checks_total", "figures=\"local\"",                                            \
    "Requests that found the fleet figures stale and used the local share.", k.fleet_local)                           \
  X(reassembly_bytes_in_use, gauge, "aiqos_reassembly_bytes_in_use", "",                                              \
    "Bytes held for TCP reassembly (out-of-order segments), all workers.", c.reassembly().bytes_in_use())             \
  X(reassembly_conflict_bytes, counter, "aiqos_reassembly_conflict_bytes_total", "",                                  \
    "Retransmitted bytes that differed from the bytes buffered (an evasion indicator).", rc.conflict_bytes)           \
  X(reassembly_acked_ahead, counter, "aiqos_reassembly_acked_ahead_total", "",                                        \
    "Peer ACKs beyond the bytes seen (a hole, or an ACK early).", rc.acked_ahead)                                      \
  X(reassembly_acked_ahead_filled, counter, "aiqos_reassembly_acked_ahead_filled_total", "",                          \
    "ACKs ahead whose bytes arrived within the grace.", rc.acked_ahead_filled)                                         \
  X(memory_bytes, gauge, "aiqos_classifier_memory_bytes", "", "Memory of the classifiers' tables.", c.memory_bytes())

// One class on all workers: X(name, kind, family, labels, help, source), cc = ClassCounters.
#define AIQOS_CLASS_STATS(X)                                                                                         \
  X(frames, counter, "aiqos_class_frames_total", "", "Frames charged to a class.", cc.frames.get())                 \
  X(bytes, counter, "aiqos_class_bytes_total", "", "Bytes charged to a class.", cc.bytes.get())                     \
  X(policed, counter, "aiqos_class_policed_total", "",                                                              \
    "Frames of a class over its rate (dropped, remarked or demoted per its exceed action).", cc.policed.get())       \
  X(remarked, counter, "aiqos_class_remarked_total", "", "Frames of a class re-marked by its exceed action.",       \
    cc.remarked.get())                                                                                               \
  X(demoted, counter, "aiqos_class_demoted_total", "", "Frames of a class demoted to another class.", cc.demoted.get())

// RX to TX inside the appliance, all workers together, in nanoseconds (the
// histogram bucket's upper bound: never an underestimate).
#define AIQOS_LATENCY_STATS(X)                                                                              \
  X(p50, gauge, "aiqos_latency_p50_seconds", "", "Median time of a frame inside the appliance, RX to TX.") \
  X(p99, gauge, "aiqos_latency_p99_seconds", "", "99th percentile of the time inside the appliance.")      \
  X(p999, gauge, "aiqos_latency_p999_seconds", "", "99.9th percentile of the time inside the appliance.")  \
  X(max, gauge, "aiqos_latency_max_seconds", "", "Longest time of a frame inside the appliance.")

#define AIQOS_STAT_FIELD(name, kind, prom, labels, help, ...) \
  StatField{#name, StatKind::kind, prom, labels, help}

namespace stat_arrays {
inline const char* drop_name(size_t i) { return drop_reason_name(static_cast<DropReason>(i)); }
inline const char* parse_name(size_t i) { return parse_status_name(static_cast<ParseStatus>(i)); }
inline const char* unclassified(size_t i) { return unclassified_name(static_cast<Unclassified>(i)); }
inline const char* l7_error(size_t i) { return l7_error_name(static_cast<L7Error>(i)); }
inline const char* segment(size_t i) { return segment_outcome_name(static_cast<SegmentOutcome>(i)); }
inline const char* stream_fail(size_t i) { return stream_fail_name(static_cast<StreamFail>(i)); }
}  // namespace stat_arrays

inline constexpr StatArray kPortDrops{
    "drops", StatKind::counter, "aiqos_port_drops_total", "reason",
    "Frames dropped, by port and reason (dataplane reasons, rx_nombuf and imissed from the PMD).", 0, false,
    stat_arrays::drop_name};
inline constexpr StatArray kWorkerParse{"parse", StatKind::counter, "aiqos_worker_parse_total", "status",
                                        "Frames by the outcome of their header parse.", 0, false,
                                        stat_arrays::parse_name};
inline constexpr StatArray kUnclassifiedArray{"unclassified", StatKind::counter, "aiqos_flows_unclassified_total",
                                              "reason", "Flows left unclassified (forwarded), by reason.", 0, false,
                                              stat_arrays::unclassified};
// Parser errors: the first value is "none"; only those seen are shown.
inline constexpr StatArray kParserErrors{"parser_errors", StatKind::counter, "aiqos_parser_errors_total", "reason",
                                         "HTTP/TLS parser failures, by reason.", 1, true, stat_arrays::l7_error};
inline constexpr StatArray kSegmentOutcomes{"reassembly_segments", StatKind::counter,
                                            "aiqos_reassembly_segments_total", "outcome",
                                            "TCP segments seen by reassembly, by outcome.", 0, false,
                                            stat_arrays::segment};
inline constexpr StatArray kStreamFailures{
    "reassembly_failures", StatKind::counter, "aiqos_reassembly_failures_total", "reason",
    "TCP stream directions that failed reassembly (their flow goes unclassified), by reason.", 1, false,
    stat_arrays::stream_fail};

// Calls v(StatField, uint64_t&) for every scalar and v(StatArray, std::span<uint64_t>)
// for every array of `s` (const or not: the same visit reads and, in tests, fills).
#define AIQOS_VISIT_SCALAR(name, kind, prom, labels, help, ...) \
  v(AIQOS_STAT_FIELD(name, kind, prom, labels, help), s.name);
#define AIQOS_DECLARE_U64(name, ...) uint64_t name = 0;

struct ClassifierStats {
  AIQOS_CLASSIFIER_STATS(AIQOS_DECLARE_U64)
  std::array<uint64_t, kUnclassifiedCount> unclassified{};
  std::array<uint64_t, static_cast<size_t>(L7Error::count_)> parser_errors{};
  std::array<uint64_t, kSegmentOutcomeCount> reassembly_segments{};
  std::array<uint64_t, kStreamFailCount> reassembly_failures{};

  template <class S, class V>
  static void visit(S& s, V&& v) {
    AIQOS_CLASSIFIER_STATS(AIQOS_VISIT_SCALAR)
    v(kUnclassifiedArray, std::span(s.unclassified));
    v(kParserErrors, std::span(s.parser_errors));
    v(kSegmentOutcomes, std::span(s.reassembly_segments));
    v(kStreamFailures, std::span(s.reassembly_failures));
  }
};

// One port, summed over workers, with the PMD's counters.
struct PortStats {
  uint16_t port = 0;
  std::string name;
  std::optional<uint16_t> peer;  // none: the last port of an odd count
  AIQOS_PORT_COUNTERS(AIQOS_DECLARE_U64)
  AIQOS_PORT_HW_STATS(AIQOS_DECLARE_U64)
  std::array<uint64_t, kDropReasons> drops{};

  uint64_t drops_total() const noexcept {
    uint64_t t = 0;
    for (uint64_t d : drops) t += d;
    return t;
  }
  template <class S, class V>
  static void visit(S& s, V&& v) {
    AIQOS_PORT_COUNTERS(AIQOS_VISIT_SCALAR)
    v(kPortDrops, std::span(s.drops));  // before the PMD's drops: its family's HELP
    AIQOS_PORT_HW_STATS(AIQOS_VISIT_SCALAR)
  }
};

// One worker: its own counters, the frames it received and sent over all
// ports, and its classifier.
#define AIQOS_WORKER_FRAMES(X)                                                                                    \
  X(rx_packets, counter, "aiqos_worker_rx_packets_total", "", "Frames a worker received, all ports.")             \
  X(tx_packets, counter, "aiqos_worker_tx_packets_total", "", "Frames a worker sent, all ports.")

struct WorkerStats {
  uint16_t worker = 0;
  unsigned lcore = 0;
  AIQOS_WORKER_FRAMES(AIQOS_DECLARE_U64)
  AIQOS_WORKER_COUNTERS(AIQOS_DECLARE_U64)
  std::array<uint64_t, static_cast<size_t>(ParseStatus::count_)> parse{};
  ClassifierStats classifier;

  // The worker's own fields; the classifier is visited on its own (nested in JSON, summed in Prometheus).
  template <class S, class V>
  static void visit(S& s, V&& v) {
    AIQOS_WORKER_FRAMES(AIQOS_VISIT_SCALAR)
    AIQOS_WORKER_COUNTERS(AIQOS_VISIT_SCALAR)
    v(kWorkerParse, std::span(s.parse));
  }
};

struct ClassStats {
  uint16_t id = 0;
  std::string name;
  AIQOS_CLASS_STATS(AIQOS_DECLARE_U64)

  template <class S, class V>
  static void visit(S& s, V&& v) {
    AIQOS_CLASS_STATS(AIQOS_VISIT_SCALAR)
  }
};

struct LatencyStats {
  AIQOS_LATENCY_STATS(AIQOS_DECLARE_U64)

  template <class S, class V>
  static void visit(S& s, V&& v) {
    AIQOS_LATENCY_STATS(AIQOS_VISIT_SCALAR)
  }
};

// Appliance-wide figures. JSON keeps its historical names for these
// ("mbufs_in_use_at_exit", "bypass": {"on", "frames"}), listed in the renderers.
#define AIQOS_APPLIANCE_STATS(X)                                                                              \
  X(mbufs_in_use, gauge, "aiqos_mbufs_in_use", "", "Mbufs of the packet pool in use (queued or in flight).")  \
  X(bypass_on, gauge, "aiqos_bypass", "", "1 while operator bypass is on (frames forwarded unparsed).")       \
  X(bypassed_frames, counter, "aiqos_bypassed_frames_total", "", "Frames forwarded unparsed in operator bypass.")

struct DataplaneStats {
  std::vector<PortStats> ports;
  std::vector<WorkerStats> workers;
  std::vector<ClassStats> classes;  // the classes of the policy in force, by id
  LatencyStats latency_ns;
  AIQOS_APPLIANCE_STATS(AIQOS_DECLARE_U64)

  template <class S, class V>
  static void visit(S& s, V&& v) {
    AIQOS_APPLIANCE_STATS(AIQOS_VISIT_SCALAR)
  }
  // Sums over ports (status, the --stats-interval line).
  uint64_t rx_packets() const noexcept;
  uint64_t tx_packets() const noexcept;
  uint64_t drops() const noexcept;
};

#undef AIQOS_DECLARE_U64
#undef AIQOS_VISIT_SCALAR

// The classifiers of all workers together (Prometheus shows their sum).
ClassifierStats classifier_total(const DataplaneStats& s);

// Renderers (dp_stats_json.cpp, dp_stats_text.cpp; Prometheus: metrics.cpp).
// JSON: {"ports": [...], "workers": [...], "classes": [...], "latency_ns": {...},
//        "mbufs_in_use_at_exit", "bypass": {"on", "frames"}}, the shape tools read.
nlohmann::json stats_json(const DataplaneStats& s);
nlohmann::json port_json(const PortStats& p);
nlohmann::json worker_json(const WorkerStats& w);
// A class's counters into its object (frames, bytes, policed, remarked, demoted).
void add_class_counters(nlohmann::json& j, const ClassStats& c);
// The exit report (every field) and the --stats-interval line.
std::string stats_table(const DataplaneStats& s);
std::string stats_line(const DataplaneStats& s);

}  // namespace aiqos
