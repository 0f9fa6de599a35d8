#include "aiqosd/appliance.h"

#include <spdlog/spdlog.h>

#include <arpa/inet.h>

#include <ctime>

#include "control/policy_engine.h"
#include "control/policy_yaml.h"
#include "control/tenant_salt.h"

#include "aiqos_version.h"

namespace aiqos {
namespace {

std::string iso_time(std::chrono::system_clock::time_point t) {
  std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json class_json(const ClassCfg& c, const std::vector<ClassCfg>& all) {
  nlohmann::json j = {{"name", c.name},
                      {"priority", c.priority},
                      {"rate_bps", c.rate_bps},
                      {"burst_bytes", c.burst_bytes},
                      {"exceed", exceed_action_name(c.exceed)}};
  j["vlan"] = c.vlan ? nlohmann::json(*c.vlan) : nlohmann::json(nullptr);
  j["pcp"] = c.pcp ? nlohmann::json(*c.pcp) : nlohmann::json(nullptr);
  j["dscp"] = c.dscp ? nlohmann::json(*c.dscp) : nlohmann::json(nullptr);
  j["exceed_dscp"] = c.exceed_dscp ? nlohmann::json(*c.exceed_dscp) : nlohmann::json(nullptr);
  j["exceed_pcp"] = c.exceed_pcp ? nlohmann::json(*c.exceed_pcp) : nlohmann::json(nullptr);
  j["demote_to"] = c.demote_to && *c.demote_to < all.size() ? nlohmann::json(all[*c.demote_to].name)
                                                          : nlohmann::json(nullptr);
  j["requests_per_second"] = c.requests_per_second ? nlohmann::json(*c.requests_per_second) : nlohmann::json(nullptr);
  return j;
}

// The limits in force (fixed at start, whatever a reload's file says).
nlohmann::json limits_json(const Limits& l) {
  auto s = [](uint64_t ns) { return static_cast<double>(ns) / 1e9; };
  return {{"flows", l.flows},
          {"reassembly_bytes_per_flow", l.reassembly_bytes_per_flow},
          {"reassembly_bytes_total", l.reassembly_bytes_total},
          {"streams_per_connection", l.streams_per_connection},
          {"header_block_bytes", l.header_block_bytes},
          {"hpack_table_bytes", l.hpack_table_bytes},
          {"request_body_scan_bytes", l.request_body_scan_bytes},
          {"idle_timeout_s",
           {{"tcp", s(l.idle_timeout.tcp_ns)},
            {"tcp_closing", s(l.idle_timeout.tcp_closing_ns)},
            {"other", s(l.idle_timeout.other_ns)}}}};
}

}  // namespace

Appliance::Appliance(Options opts) : opts_(std::move(opts)) {}

bool Appliance::load_policy(std::string& errors) {
  if (opts_.policy.empty()) {
    pending_ = PolicyEngine::builtin_default();
    limits_ = limits_of(opts_);
    return load_salt(errors);
  }
  LoadResult r = load_policy_file(opts_.policy);
  if (!r.ok()) {
    errors = r.format_errors();
    return false;
  }
  pending_ = std::move(*r.policy);
  policy_file_ = opts_.policy;
  // The policy's limits size the classifier when a policy is given, over the command line.
  for (const std::string& w : apply_policy_limits(pending_.limits, opts_)) spdlog::warn("{}", w);
  limits_ = limits_of(opts_);
  return load_salt(errors);
}

// Credential tenants need the salt of their hash; read (or made) before EAL and
// before privileges are dropped. Its bytes are never logged.
bool Appliance::load_salt(std::string& errors) {
  if (pending_.tenants.by == TenantBy::header && is_credential_header(pending_.tenants.header) &&
      opts_.tenant_salt_file.empty()) {
    errors = opts_.policy + ": tenants.header '" + pending_.tenants.header +
             "' is a credential: tenants are named by its salted hash, give --tenant-salt-file";
    return false;
  }
  if (opts_.tenant_salt_file.empty()) return true;
  bool created = false;
  if (!load_tenant_salt(opts_.tenant_salt_file, opts_.tenant_salt, created, errors)) return false;
  spdlog::info("tenant salt {} {} ({} bytes)", opts_.tenant_salt_file, created ? "created" : "read",
               unsigned{opts_.tenant_salt.len});
  return true;
}

void Appliance::init() {
  if (!opts_.request_log.empty() && !log_.open(opts_.request_log))
    throw std::runtime_error("cannot open request log " + opts_.request_log);
  dp_.set_request_consumer([this](const RequestRecord& r) {
    std::string_view cls = r.class_name.view();
    log_.write(r, std::string(cls));
    agg_.add(r, cls);
  });
  dp_.init(opts_, pending_.capture.headers);
  std::vector<const FleetUsage*> usage;
  for (uint16_t w = 0; w < dp_.nb_workers(); ++w) usage.push_back(&dp_.fleet_usage(w));
  fleet_ = std::make_unique<FleetSync>(dp_.fleet_view(), std::move(usage));
  std::lock_guard lk(mu_);
  CtlResult r = publish_locked(std::move(pending_), policy_file_);
  if (!r.ok) throw std::runtime_error(r.error);
}

void Appliance::poll() {
  if (dp_.drain_requests() > 0) log_.flush();
}

void Appliance::start() {
  dp_.start();
  // Offline (--pcap-in) frame times are the capture's: fleet budgets stay at
  // their local share there.
  if (opts_.pcap_in.empty()) fleet_->start();
}

void Appliance::stop() {
  if (fleet_) fleet_->stop();
  dp_.stop();
  log_.flush();
}

void Appliance::reopen_log() {
  if (log_.is_open() && !log_.reopen()) spdlog::error("cannot reopen request log {}", opts_.request_log);
}

CtlResult Appliance::publish_locked(Policy p, const std::string& file) {
  std::vector<PolicyError> errs;
  auto engine = PolicyEngine::compile(std::move(p), dp_.capture_headers(), dp_.nb_workers(), file, errs);
  if (!engine) {
    std::string msg;
    for (const auto& e : errs) msg += e.format() + "\n";
    if (!msg.empty()) msg.pop_back();
    return CtlResult::failure(msg);
  }
  std::string err;
  auto snap = PolicySnapshot::build(std::move(engine), dp_.nb_workers(), generation_ + 1, err);
  if (!snap) return CtlResult::failure(err);
  ++generation_;
  dp_.publish(std::move(snap));
  const Policy& in_force = dp_.policy()->engine->policy();
  if (fleet_) fleet_->configure(in_force.fleet, fleet_keys(in_force));
  policy_file_ = file;
  loaded_at_ = std::chrono::system_clock::now();
  spdlog::info("policy generation {} in force ({} classes, {} rules){}", generation_,
               dp_.policy()->engine->policy().classes.size(), dp_.policy()->engine->policy().rules.size(),
               file.empty() ? " (built-in)" : " from " + file);
  return CtlResult::success({{"generation", generation_}, {"file", file}});
}

CtlResult Appliance::reload(const std::string& file_in) {
  std::lock_guard lk(mu_);
  std::string file = file_in.empty() ? policy_file_ : file_in;
  if (file.empty()) return CtlResult::failure("no policy file in force: name one (aiqosctl policy reload FILE)");
  LoadResult r = load_policy_file(file);
  if (!r.ok()) {
    ++reloads_failed_;
    spdlog::error("policy reload rejected, the running policy stays:\n{}", r.format_errors());
    return CtlResult::failure(r.format_errors());
  }
  // Limits size tables allocated at start: the rest of the policy applies, these wait for a restart.
  const std::vector<std::string> changed = limits_changed(limits_, r.policy->limits);
  CtlResult res = publish_locked(std::move(*r.policy), file);
  if (res.ok) {
    ++reloads_ok_;
    res.data["restart_needed"] = changed;
    restart_needed_ = changed;
    if (!changed.empty()) {
      std::string keys;
      for (const std::string& k : changed) keys += (keys.empty() ? "" : ", ") + k;
      spdlog::warn("policy reload: {} changed, the rest of the policy is in force; limits size tables at "
                   "start: restart aiqosd to apply them (the values it started with stay until then)",
                   keys);
    }
  } else {
    ++reloads_failed_;
    spdlog::error("policy reload rejected, the running policy stays:\n{}", res.error);
  }
  return res;
}

CtlResult Appliance::status() {
  std::lock_guard lk(mu_);
  const DataplaneStats st = dp_.stats();
  nlohmann::json ports = nlohmann::json::array();
  for (const PortStats& t : st.ports)
    ports.push_back({{"port", t.port},
                     {"name", t.name},
                     {"rx_packets", t.rx_packets},
                     {"tx_packets", t.tx_packets},
                     {"drops", t.drops_total()}});
  double up = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  return CtlResult::success({{"version", version_string()},
                             {"uptime_s", up},
                             {"workers", dp_.nb_workers()},
                             {"ports", ports},
                             {"policy",
                              {{"file", policy_file_},
                               {"generation", generation_},
                               {"loaded_at", iso_time(loaded_at_)},
                               {"reloads_ok", reloads_ok_},
                               {"reloads_failed", reloads_failed_},
                               // Limits of the policy in force (published by the last reload)
                               // that differ from those the tables were sized with at start.
                               {"restart_needed", restart_needed_}}},
                             {"frames", {{"rx", st.rx_packets()}, {"tx", st.tx_packets()}, {"drops", st.drops()}}},
                             {"bypass", {{"on", st.bypass_on != 0}, {"frames", st.bypassed_frames}}},
                             {"requests", agg_.total_requests()}});
}

CtlResult Appliance::policy_show() {
  std::lock_guard lk(mu_);
  const Policy& p = dp_.policy()->engine->policy();
  nlohmann::json cls = nlohmann::json::array();
  for (const auto& c : p.classes) cls.push_back(class_json(c, p.classes));
  nlohmann::json rules = nlohmann::json::array();
  for (const auto& r : p.rules)
    rules.push_back({{"name", r.name}, {"class", p.classes[r.class_index].name}, {"line", r.line}});
  return CtlResult::success({{"file", policy_file_},
                             {"generation", generation_},
                             {"default_class", p.classes[p.default_class].name},
                             {"classes", cls},
                             {"rules", rules},
                             {"capture_headers", dp_.capture_headers()},
                             {"limits", limits_json(limits_)}});
}

CtlResult Appliance::policy_reload(const std::string& file) { return reload(file); }

nlohmann::json Appliance::classes_json(const DataplaneStats& st) {
  const Policy& p = dp_.policy()->engine->policy();
  nlohmann::json out = nlohmann::json::array();
  auto by_class = agg_.snapshot(StatsDim::klass);
  for (uint16_t i = 0; i < p.classes.size(); ++i) {
    nlohmann::json j = class_json(p.classes[i], p.classes);
    if (i < st.classes.size()) add_class_counters(j, st.classes[i]);
    uint64_t reqs = 0;
    for (const auto& k : by_class["keys"])
      if (k["key"] == p.classes[i].name) reqs = k["requests"].get<uint64_t>();
    j["requests"] = reqs;
    out.push_back(j);
  }
  return out;
}

std::optional<ApplianceMetrics> Appliance::appliance_metrics() {
  std::lock_guard lk(mu_);
  ApplianceMetrics m;
  m.dp = dp_.stats();
  // For aiqos_build_info and the reload alerts (docs/metrics.md).
  m.version = AIQOS_VERSION;
  m.git = AIQOS_GIT_DESCRIBE;
  m.policy_generation = generation_;
  m.reloads_ok = reloads_ok_;
  m.reloads_failed = reloads_failed_;
  if (fleet_ && fleet_->enabled()) m.fleet = fleet_->status();
  return m;
}

CtlResult Appliance::classes() {
  std::lock_guard lk(mu_);
  return CtlResult::success(classes_json(dp_.stats()));
}

CtlResult Appliance::class_set(const std::string& name, std::optional<uint64_t> rate_bps,
                               std::optional<uint64_t> burst_bytes) {
  std::lock_guard lk(mu_);
  Policy p = dp_.policy()->engine->policy();
  auto idx = p.class_index(name);
  if (!idx) {
    std::string names;
    for (const auto& c : p.classes) names += (names.empty() ? "" : ", ") + c.name;
    return CtlResult::failure("no class named '" + name + "' (classes: " + names + ")");
  }
  ClassCfg& c = p.classes[*idx];
  if (rate_bps) c.rate_bps = *rate_bps;
  if (burst_bytes) c.burst_bytes = *burst_bytes;
  if (c.rate_bps != 0 && c.burst_bytes == 0) c.burst_bytes = std::max<uint64_t>(c.rate_bps / 800, kMinBurstBytes);
  if (c.rate_bps != 0 && c.burst_bytes < 1514)
    return CtlResult::failure("burst must be at least 1514 bytes (one full frame)");
  CtlResult r = publish_locked(std::move(p), policy_file_);
  if (!r.ok) return r;
  return CtlResult::success(class_json(dp_.policy()->engine->policy().classes[*idx],
                                       dp_.policy()->engine->policy().classes));
}

CtlResult Appliance::flows(const FlowQuery& q) {
  std::lock_guard lk(mu_);
  const PolicyEngine& e = *dp_.policy()->engine;
  FlowFilter f;
  if (q.klass) {
    auto idx = e.policy().class_index(*q.klass);
    if (!idx) return CtlResult::failure("no class named '" + *q.klass + "'");
    f.class_id = *idx;
  }
  if (q.model) f.model.append(*q.model);
  std::vector<FlowInfo> flows = dp_.top_flows(q.top, f);
  static const char* kL7[] = {"-", "h1", "h2", "tls", "unclassified"};
  nlohmann::json out = nlohmann::json::array();
  for (const FlowInfo& fi : flows) {
    bool lo = fi.client_side == kSideLo;
    char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
    int af = fi.key.family == 4 ? AF_INET : AF_INET6;
    inet_ntop(af, (lo ? fi.key.lo_addr : fi.key.hi_addr).data(), a, sizeof a);
    inet_ntop(af, (lo ? fi.key.hi_addr : fi.key.lo_addr).data(), b, sizeof b);
    uint8_t cs = fi.client_side, ss = static_cast<uint8_t>(cs ^ 1);
    out.push_back({{"client", std::string(a) + ":" + std::to_string(lo ? fi.key.lo_port : fi.key.hi_port)},
                   {"server", std::string(b) + ":" + std::to_string(lo ? fi.key.hi_port : fi.key.lo_port)},
                   {"proto", fi.key.proto == 6 ? "tcp" : fi.key.proto == 17 ? "udp" : std::to_string(fi.key.proto)},
                   {"vlan", fi.key.vlan},
                   {"l7", kL7[fi.l7 < 5 ? fi.l7 : 0]},
                   {"class", e.class_name(fi.class_id)},
                   {"model", fi.last_model.empty() ? nlohmann::json(nullptr) : nlohmann::json(std::string(fi.last_model.view()))},
                   {"server_name", fi.server_name.empty() ? nlohmann::json(nullptr) : nlohmann::json(std::string(fi.server_name.view()))},
                   {"open_requests", fi.open_requests},
                   {"bytes_from_client", fi.bytes[cs]},
                   {"bytes_from_server", fi.bytes[ss]},
                   {"packets", fi.pkts[0] + fi.pkts[1]},
                   {"age_s", static_cast<double>(fi.last_seen_ns - fi.created_ns) / 1e9}});
  }
  return CtlResult::success(out);
}

CtlResult Appliance::stats(const std::string& by) {
  std::lock_guard lk(mu_);
  if (by == "port" || by == "worker") {
    const DataplaneStats st = dp_.stats();
    nlohmann::json keys = nlohmann::json::array();
    if (by == "port")
      for (const PortStats& p : st.ports) keys.push_back(port_json(p));
    else
      for (const WorkerStats& w : st.workers) keys.push_back(worker_json(w));
    return CtlResult::success({{"by", by}, {"keys", std::move(keys)}});
  }
  auto s = agg_.snapshot(by);
  if (!s) return CtlResult::failure("stats --by " + by + ": expected class, model, endpoint, tenant, port or worker");
  if (by == "class") {
    // Frames and bytes as the dataplane charged them, beside the request statistics.
    nlohmann::json cls = classes_json(dp_.stats());
    for (auto& k : (*s)["keys"])
      for (const auto& c : cls)
        if (c["name"] == k["key"]) {
          k["frames"] = c["frames"];
          k["bytes"] = c["bytes"];
          k["policed"] = c["policed"];
        }
  }
  // Fleet budgets: this box's part of each window and the fleet's total.
  if ((by == "tenant" || by == "class") && fleet_ && fleet_->enabled()) (*s)["fleet"] = fleet_->status();
  return CtlResult::success(*s);
}

CtlResult Appliance::bypass(bool on) {
  std::lock_guard lk(mu_);
  bool was = dp_.bypass();
  dp_.set_bypass(on);
  if (on != was) {
    if (on)
      spdlog::warn("bypass on (aiqosctl): frames go port to port unparsed, unclassified and unshaped");
    else
      spdlog::info("bypass off (aiqosctl): classification and QoS resume");
  }
  return CtlResult::success({{"bypass", on}, {"bypassed_frames", dp_.total_bypassed()}});
}

CtlResult Appliance::stats_reset() {
  std::lock_guard lk(mu_);
  agg_.reset();
  return CtlResult::success({{"reset", true}});
}

}  // namespace aiqos
