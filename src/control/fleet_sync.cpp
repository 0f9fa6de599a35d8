#include "control/fleet_sync.h"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <signal.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <sstream>

namespace aiqos {
namespace {

uint64_t unix_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ULL + uint64_t(ts.tv_nsec);
}

timeval to_timeval(uint64_t ns) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ns / 1'000'000'000ULL);
  tv.tv_usec = static_cast<suseconds_t>((ns % 1'000'000'000ULL) / 1000);
  return tv;
}

const char* kind_tag(FleetKind k) { return k == FleetKind::requests ? "rps" : "tpm"; }

std::string endpoint_of(const FleetCfg& c) {
  return c.unix_socket.empty() ? c.host + ":" + std::to_string(c.port) : "unix:" + c.unix_socket;
}

}  // namespace

std::vector<FleetBudgetKey> fleet_keys(const Policy& p) {
  std::vector<FleetBudgetKey> out;
  if (!p.fleet.enabled) return out;
  for (size_t i = 0; i < p.classes.size() && i < kFleetMaxClasses; ++i) {
    const ClassCfg& c = p.classes[i];
    if (c.requests_fleet && c.requests_per_second)
      out.push_back({static_cast<uint16_t>(i), FleetKind::requests, c.name, *c.requests_per_second});
    if (c.token_budget && c.token_budget->fleet)
      out.push_back({static_cast<uint16_t>(i), FleetKind::tokens, c.name,
                     static_cast<double>(c.token_budget->tokens_per_minute)});
  }
  return out;
}

std::string fleet_redis_key(std::string_view prefix, const FleetBudgetKey& k, uint64_t window) {
  std::string s(prefix);
  s += ':';
  s += k.class_name;
  s += ':';
  s += kind_tag(k.kind);
  s += ':';
  s += std::to_string(window);
  return s;
}

FleetSync::FleetSync(FleetView& view, std::vector<const FleetUsage*> usage) : view_(view), usage_(std::move(usage)) {
  // hiredis writes with write(2): a Redis that went away would raise SIGPIPE
  // and kill the process. Nothing in aiqos wants SIGPIPE (its sockets send
  // with MSG_NOSIGNAL), so it is ignored unless someone installed a handler.
  struct sigaction sa {};
  if (sigaction(SIGPIPE, nullptr, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
}

FleetSync::~FleetSync() {
  stop();
  std::lock_guard lk(mu_);
  disconnect_locked();
}

int64_t FleetSync::used_sum(const FleetBudgetKey& k) const noexcept {
  int64_t s = 0;
  for (const FleetUsage* u : usage_)
    s += u->used[k.class_id][static_cast<size_t>(k.kind)].load(std::memory_order_relaxed);
  return s;
}

void FleetSync::configure(const FleetCfg& cfg, std::vector<FleetBudgetKey> keys) {
  std::lock_guard lk(mu_);
  go_local_locked();
  bool endpoint_changed = endpoint_of(cfg) != endpoint_of(cfg_) || cfg.password_file != cfg_.password_file ||
                          cfg.username != cfg_.username || cfg.timeout_ns != cfg_.timeout_ns;
  if (endpoint_changed) disconnect_locked();
  cfg_ = cfg;
  keys_.clear();
  // What the workers took before this point is not pushed: a class number
  // names another class under another policy.
  for (auto& k : keys) keys_.push_back({k, used_sum(k)});
}

bool FleetSync::enabled() const {
  std::lock_guard lk(mu_);
  return cfg_.enabled && !keys_.empty();
}

void FleetSync::go_local_locked() {
  view_.valid_until_ns.store(0, std::memory_order_release);
  ctr_.fleet_mode.store(false, std::memory_order_relaxed);
}

void FleetSync::disconnect_locked() {
  if (ctx_ != nullptr) redisFree(ctx_);
  ctx_ = nullptr;
}

bool FleetSync::connect_locked(std::string& err) {
  timeval tv = to_timeval(cfg_.timeout_ns);
  redisContext* c = cfg_.unix_socket.empty() ? redisConnectWithTimeout(cfg_.host.c_str(), cfg_.port, tv)
                                             : redisConnectUnixWithTimeout(cfg_.unix_socket.c_str(), tv);
  if (c == nullptr) {
    err = "out of memory";
    return false;
  }
  if (c->err) {
    err = c->errstr;
    redisFree(c);
    return false;
  }
  redisSetTimeout(c, tv);  // every command from here on
  if (!cfg_.password_file.empty()) {
    std::ifstream in(cfg_.password_file);
    std::string pw;
    if (!in || !std::getline(in, pw)) {
      err = "cannot read password_file " + cfg_.password_file;
      redisFree(c);
      return false;
    }
    while (!pw.empty() && (pw.back() == '\r' || pw.back() == ' ')) pw.pop_back();
    auto* r = static_cast<redisReply*>(cfg_.username.empty()
                                           ? redisCommand(c, "AUTH %s", pw.c_str())
                                           : redisCommand(c, "AUTH %s %s", cfg_.username.c_str(), pw.c_str()));
    bool ok = r != nullptr && r->type == REDIS_REPLY_STATUS;
    err = r == nullptr ? std::string(c->errstr) : r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "";
    if (r) freeReplyObject(r);
    if (!ok) {
      err = "AUTH: " + err;
      redisFree(c);
      return false;
    }
  }
  ctx_ = c;
  return true;
}

void FleetSync::fail_locked(const std::string& why, uint64_t now_unix_ns) {
  go_local_locked();
  disconnect_locked();
  ctr_.errors.fetch_add(1, std::memory_order_relaxed);
  ++outage_errors_;
  if (!in_outage_) {
    in_outage_ = true;
    outage_since_ns_ = now_unix_ns;
    outage_errors_ = 1;
    ctr_.outages.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("fleet: Redis {} failed ({}): enforcing the local share ({:.3g}) of the fleet budgets until it answers",
                 endpoint_of(cfg_), why, fleet::local_share(cfg_.local_share, cfg_.expected_members));
  }
}

bool FleetSync::sync_once(uint64_t now_unix_ns) {
  std::lock_guard lk(mu_);
  if (!cfg_.enabled || keys_.empty()) return true;
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t now_ms = now_unix_ns / 1'000'000ULL;
  // Deltas since the last round. While Redis is unreachable they are dropped:
  // the box enforced its local share meanwhile, and that consumption belongs
  // to windows that are over by the time Redis answers.
  std::vector<int64_t> delta(keys_.size());
  for (size_t i = 0; i < keys_.size(); ++i) {
    int64_t cur = used_sum(keys_[i].key);
    delta[i] = cur - keys_[i].last_used;
    keys_[i].last_used = cur;
  }
  std::string err;
  if (ctx_ == nullptr && !connect_locked(err)) {
    fail_locked("connect: " + err, now_unix_ns);
    return false;
  }
  if (in_outage_) {
    // Reconnected: what was taken during the outage is not pushed (above).
    std::fill(delta.begin(), delta.end(), 0);
  }
  std::vector<std::string> names(keys_.size());
  for (size_t i = 0; i < keys_.size(); ++i) {
    KeyState& k = keys_[i];
    uint64_t w = fleet::window_index(now_ms, k.key.kind);
    names[i] = fleet_redis_key(cfg_.prefix, k.key, w);
    redisAppendCommand(ctx_, "INCRBY %s %lld", names[i].c_str(), static_cast<long long>(delta[i]));
    redisAppendCommand(ctx_, "PEXPIRE %s %llu", names[i].c_str(),
                       static_cast<unsigned long long>(2 * fleet::window_ms(k.key.kind)));
  }
  std::vector<int64_t> totals(keys_.size());
  for (size_t i = 0; i < keys_.size(); ++i) {
    for (int j = 0; j < 2; ++j) {
      void* rv = nullptr;
      if (redisGetReply(ctx_, &rv) != REDIS_OK || rv == nullptr) {
        fail_locked(std::string("reply: ") + ctx_->errstr, now_unix_ns);
        return false;
      }
      auto* r = static_cast<redisReply*>(rv);
      bool ok = r->type == REDIS_REPLY_INTEGER;
      if (ok && j == 0) totals[i] = r->integer;
      std::string what = r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "unexpected reply type";
      freeReplyObject(r);
      if (!ok) {
        // Drain the rest of the pipeline is not needed: the connection is dropped.
        fail_locked(names[i] + ": " + what, now_unix_ns);
        return false;
      }
    }
  }
  const uint32_t workers = static_cast<uint32_t>(usage_.size());
  for (size_t i = 0; i < keys_.size(); ++i) {
    KeyState& k = keys_[i];
    uint64_t w = fleet::window_index(now_ms, k.key.kind);
    if (w != k.window) {
      k.window = w;
      k.local_window = 0;
    }
    k.local_window += delta[i];
    k.fleet_total = totals[i];
    k.allow = fleet::allowance(k.key.limit, static_cast<double>(totals[i]), cfg_.expected_members, workers);
    view_.allow[k.key.class_id][static_cast<size_t>(k.key.kind)].store(k.allow, std::memory_order_relaxed);
  }
  // Fresh for two intervals: a sync thread that stops answering (a hung
  // Redis past its timeout) leaves the workers in local mode soon after.
  view_.valid_until_ns.store(now_unix_ns + 2 * cfg_.sync_interval_ns, std::memory_order_release);
  view_.epoch.fetch_add(1, std::memory_order_release);
  ctr_.fleet_mode.store(true, std::memory_order_relaxed);
  ctr_.syncs.fetch_add(1, std::memory_order_relaxed);
  ctr_.last_ok_unix_ns.store(now_unix_ns, std::memory_order_relaxed);
  ctr_.last_lag_ns.store(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                   std::chrono::steady_clock::now() - t0)
                                                   .count()),
                         std::memory_order_relaxed);
  if (in_outage_) {
    in_outage_ = false;
    spdlog::info("fleet: Redis {} answers again after {:.1f} s ({} failed syncs): fleet budgets enforced",
                 endpoint_of(cfg_), static_cast<double>(now_unix_ns - outage_since_ns_) / 1e9, outage_errors_);
  }
  return true;
}

void FleetSync::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lk(wake_mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void FleetSync::stop() {
  {
    std::lock_guard lk(wake_mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

// Rounds start on a fixed schedule (every sync_interval), not sync_interval
// after the previous one ended: a slow round does not shift the next.
void FleetSync::run() {
  auto next = std::chrono::steady_clock::now();
  std::unique_lock lk(wake_mu_);
  while (!stopping_) {
    lk.unlock();
    uint64_t interval;
    {
      std::lock_guard g(mu_);
      interval = cfg_.sync_interval_ns;
    }
    sync_once(unix_ns());
    next += std::chrono::nanoseconds(interval);
    auto now = std::chrono::steady_clock::now();
    if (next < now) next = now;  // fell behind (a slow Redis): do not burst to catch up
    lk.lock();
    wake_.wait_until(lk, next, [this] { return stopping_; });
  }
}

nlohmann::json FleetSync::status() const {
  std::lock_guard lk(mu_);
  nlohmann::json budgets = nlohmann::json::array();
  for (const KeyState& k : keys_)
    budgets.push_back({{"class", k.key.class_name},
                       {"budget", k.key.kind == FleetKind::requests ? "requests_per_second" : "tokens_per_minute"},
                       {"limit", k.key.limit},
                       {"window", k.window},
                       {"local", k.local_window},
                       {"fleet", k.fleet_total},
                       {"allow_per_worker", k.allow}});
  uint64_t ok = ctr_.last_ok_unix_ns.load(std::memory_order_relaxed);
  return {{"enabled", cfg_.enabled && !keys_.empty()},
          {"redis", endpoint_of(cfg_)},
          {"prefix", cfg_.prefix},
          {"mode", ctr_.fleet_mode.load(std::memory_order_relaxed) ? "fleet" : "local"},
          {"sync_interval_s", static_cast<double>(cfg_.sync_interval_ns) / 1e9},
          {"expected_members", cfg_.expected_members},
          {"local_share", fleet::local_share(cfg_.local_share, cfg_.expected_members)},
          {"syncs", ctr_.syncs.load(std::memory_order_relaxed)},
          {"sync_errors", ctr_.errors.load(std::memory_order_relaxed)},
          {"outages", ctr_.outages.load(std::memory_order_relaxed)},
          {"sync_lag_s", static_cast<double>(ctr_.last_lag_ns.load(std::memory_order_relaxed)) / 1e9},
          {"last_sync_age_s", ok ? static_cast<double>(unix_ns() - ok) / 1e9 : -1.0},
          {"budgets", budgets}};
}

}  // namespace aiqos
