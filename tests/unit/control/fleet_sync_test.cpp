// Fleet budgets: the policy section, the window and key arithmetic, and the
// sync thread's logic against a real redis-server this test starts (on a
// unix socket in a temporary directory, no persistence) and kills.
#include "control/fleet_sync.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "control/policy_yaml.h"

namespace aiqos {
namespace {

LoadResult load(const std::string& yaml) { return load_policy_string(yaml, "t.yaml"); }

std::string errors_of(const std::string& yaml) {
  LoadResult r = load(yaml);
  EXPECT_FALSE(r.ok()) << yaml;
  return r.format_errors();
}

// ------------------------------------------------------------ policy section

TEST(FleetPolicy, SectionAndScopesLoad) {
  LoadResult r = load(R"(version: 1
fleet:
  redis: {host: 198.18.0.9, port: 6380, username: aiqos, password_file: /etc/aiqos/redis.pass}
  prefix: "dc1:edge"
  sync_interval: 200ms
  timeout: 80ms
  expected_members: 4
  local_share: 0.3
classes:
  - name: default
  - name: tenant-a
    requests_per_second: {rate: 100, scope: fleet}
    token_budget: {tokens_per_minute: 60000, scope: fleet}
  - name: local-only
    requests_per_second: 5
    token_budget: {tokens_per_minute: 1000, scope: local}
)");
  ASSERT_TRUE(r.ok()) << r.format_errors();
  const Policy& p = *r.policy;
  EXPECT_TRUE(p.fleet.enabled);
  EXPECT_EQ(p.fleet.host, "198.18.0.9");
  EXPECT_EQ(p.fleet.port, 6380);
  EXPECT_EQ(p.fleet.username, "aiqos");
  EXPECT_EQ(p.fleet.password_file, "/etc/aiqos/redis.pass");
  EXPECT_EQ(p.fleet.prefix, "dc1:edge");
  EXPECT_EQ(p.fleet.sync_interval_ns, 200'000'000u);
  EXPECT_EQ(p.fleet.timeout_ns, 80'000'000u);
  EXPECT_EQ(p.fleet.expected_members, 4u);
  EXPECT_DOUBLE_EQ(p.fleet.local_share, 0.3);
  EXPECT_TRUE(p.classes[1].requests_fleet);
  EXPECT_EQ(*p.classes[1].requests_per_second, 100);
  EXPECT_TRUE(p.classes[1].token_budget->fleet);
  EXPECT_FALSE(p.classes[2].requests_fleet);
  EXPECT_FALSE(p.classes[2].token_budget->fleet);

  auto keys = fleet_keys(p);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].class_id, 1);
  EXPECT_EQ(keys[0].kind, FleetKind::requests);
  EXPECT_EQ(keys[0].limit, 100);
  EXPECT_EQ(keys[1].kind, FleetKind::tokens);
  EXPECT_EQ(keys[1].limit, 60000);
}

TEST(FleetPolicy, DefaultsAndTimeoutFollowsInterval) {
  LoadResult r = load("version: 1\nfleet: {redis: {unix: /run/redis/redis.sock}, sync_interval: 60ms}\n"
                      "classes: [{name: default}]\n");
  ASSERT_TRUE(r.ok()) << r.format_errors();
  EXPECT_EQ(r.policy->fleet.unix_socket, "/run/redis/redis.sock");
  EXPECT_EQ(r.policy->fleet.prefix, "aiqos");
  EXPECT_EQ(r.policy->fleet.expected_members, 2u);
  EXPECT_EQ(r.policy->fleet.timeout_ns, 30'000'000u);  // half the interval when not given
  EXPECT_TRUE(fleet_keys(*r.policy).empty());
}

TEST(FleetPolicy, ErrorsSayWhere) {
  std::string e = errors_of(R"(version: 1
fleet:
  redis: {host: r1, tls: true, unix: relative.sock}
  prefix: "has space"
  sync_interval: 5ms
  expected_members: 0
  local_share: 1.5
  members: 2
classes:
  - name: default
  - name: a
    requests_per_second: {rate: 0.5, scope: fleet}
  - name: b
    requests_per_second: {rate: 10, scope: global}
)");
  EXPECT_NE(e.find("t.yaml:3:26: fleet.redis.tls: TLS to Redis needs hiredis_ssl"), std::string::npos) << e;
  EXPECT_NE(e.find("t.yaml:3:38: fleet.redis.unix: expected the absolute path of Redis' unix socket"), std::string::npos) << e;
  EXPECT_NE(e.find("t.yaml:4:11: fleet.prefix: expected a key prefix"), std::string::npos) << e;
  EXPECT_NE(e.find("t.yaml:5:18: fleet.sync_interval: expected a sync interval of 10ms..10s"), std::string::npos) << e;
  EXPECT_NE(e.find("t.yaml:6:21: fleet.expected_members: expected a member count 1..64, got 0"), std::string::npos) << e;
  EXPECT_NE(e.find("t.yaml:7:16: fleet.local_share: expected a share above 0 and at most 1"), std::string::npos) << e;
  EXPECT_NE(e.find("t.yaml:8:3: fleet.members: unknown key 'members'"), std::string::npos) << e;
  EXPECT_NE(e.find("t.yaml:12:33: classes[1].requests_per_second.rate: a fleet request budget counts whole requests"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("t.yaml:14:44: classes[2].requests_per_second.scope: expected local or fleet, got 'global'"),
            std::string::npos)
      << e;
}

TEST(FleetPolicy, FleetScopeNeedsTheSectionAndAClassBudget) {
  std::string e = errors_of(R"(version: 1
tenants: {by: header, header: x-tenant}
classes:
  - name: default
    token_budget: {tokens_per_minute: 100, scope: fleet}
)");
  EXPECT_NE(e.find("t.yaml:5:51: classes[0].token_budget.scope: 'scope: fleet' needs a 'fleet' section"),
            std::string::npos)
      << e;
  e = errors_of(R"(version: 1
tenants: {by: header, header: x-tenant}
fleet: {redis: {host: 127.0.0.1}}
classes:
  - name: default
    token_budget: {tokens_per_minute: 100, per: tenant, scope: fleet}
)");
  EXPECT_NE(e.find("t.yaml:6:64: classes[0].token_budget.scope: 'scope: fleet' with 'per: tenant' is not supported"),
            std::string::npos)
      << e;
  e = errors_of("version: 1\nfleet: {redis: {host: h}, sync_interval: 100ms, timeout: 200ms}\nclasses: [{name: default}]\n");
  EXPECT_NE(e.find("t.yaml:2:58: fleet.timeout: the Redis timeout must not exceed sync_interval (100ms)"),
            std::string::npos)
      << e;
  e = errors_of("version: 1\nfleet: {prefix: x}\nclasses: [{name: default}]\n");
  EXPECT_NE(e.find("t.yaml:2:8: fleet: missing required key 'redis'"), std::string::npos) << e;
}

// ------------------------------------------------------------ arithmetic

TEST(FleetMath, WindowsKeysAllowanceAndLocalShare) {
  EXPECT_EQ(fleet::window_index(1'700'000'000'999ULL, FleetKind::requests), 1'700'000'000ULL);
  EXPECT_EQ(fleet::window_index(1'700'000'001'000ULL, FleetKind::requests), 1'700'000'001ULL);
  EXPECT_EQ(fleet::window_index(1'700'000'019'999ULL, FleetKind::tokens), 28'333'333ULL);
  EXPECT_EQ(fleet::window_index(1'700'000'020'000ULL, FleetKind::tokens), 28'333'333ULL);
  EXPECT_EQ(fleet::window_index(1'700'000'040'000ULL, FleetKind::tokens), 28'333'334ULL);
  FleetBudgetKey k{3, FleetKind::requests, "tenant-a", 100};
  EXPECT_EQ(fleet_redis_key("dc1", k, 42), "dc1:tenant-a:rps:42");
  k.kind = FleetKind::tokens;
  EXPECT_EQ(fleet_redis_key("dc1", k, 7), "dc1:tenant-a:tpm:7");
  // The box's share of what is left, split over its workers; nothing when spent.
  EXPECT_DOUBLE_EQ(fleet::allowance(100, 0, 2, 1), 50);
  EXPECT_DOUBLE_EQ(fleet::allowance(100, 60, 2, 2), 10);
  EXPECT_DOUBLE_EQ(fleet::allowance(100, 130, 2, 1), 0);
  EXPECT_DOUBLE_EQ(fleet::allowance(100, 0, 0, 0), 100);  // never divides by zero
  EXPECT_DOUBLE_EQ(fleet::local_share(0, 4), 0.25);
  EXPECT_DOUBLE_EQ(fleet::local_share(0.6, 4), 0.6);
}

TEST(FleetMath, TakerFollowsEpochsAndFreshness) {
  FleetView v;
  FleetUsage u;
  FleetTaker t;
  const uint64_t now = 5'000'000'000ULL;
  EXPECT_EQ(t.take(v, u, 1, FleetKind::requests, 1, now), FleetTaker::Result::stale);  // never synced
  v.allow[1][0].store(2);
  v.valid_until_ns.store(now + 1);
  v.epoch.store(1);
  EXPECT_EQ(t.take(v, u, 1, FleetKind::requests, 1, now), FleetTaker::Result::ok);
  EXPECT_EQ(t.take(v, u, 1, FleetKind::requests, 1, now), FleetTaker::Result::ok);
  EXPECT_EQ(t.take(v, u, 1, FleetKind::requests, 1, now), FleetTaker::Result::over);
  EXPECT_EQ(u.used[1][0].load(), 2);
  v.epoch.store(2);  // a new sync: a new allowance to count against
  EXPECT_EQ(t.take(v, u, 1, FleetKind::requests, 1, now), FleetTaker::Result::ok);
  EXPECT_EQ(u.used[1][0].load(), 3);
  EXPECT_EQ(t.take(v, u, 1, FleetKind::requests, 1, now + 1), FleetTaker::Result::stale);  // past valid_until
  EXPECT_EQ(t.take(v, u, 999, FleetKind::requests, 1, now), FleetTaker::Result::stale);    // no such class
}

// ------------------------------------------------------------ real Redis

// A redis-server of our own: unix socket in a temporary directory, no
// persistence, killed by the destructor.
struct Redis {
  std::string dir, sock;
  pid_t pid = -1;
  std::vector<std::string> extra;

  explicit Redis(std::vector<std::string> args = {}) : extra(std::move(args)) {
    char tmpl[] = "/tmp/aiqos-fleet-test-XXXXXX";
    dir = mkdtemp(tmpl);
    sock = dir + "/redis.sock";
    start();
  }
  ~Redis() {
    kill_now();
    std::filesystem::remove_all(dir);
  }
  void start() {
    pid = fork();
    if (pid == 0) {
      std::vector<std::string> a = {"redis-server", "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
                                    "--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning",
                                    "--enable-debug-command", "yes"};
      a.insert(a.end(), extra.begin(), extra.end());
      std::vector<char*> argv;
      for (auto& s : a) argv.push_back(s.data());
      argv.push_back(nullptr);
      execvp("redis-server", argv.data());
      _exit(127);
    }
    // Ready when it answers PING (at most 5 s).
    for (int i = 0; i < 250; ++i) {
      if (ping()) return;
      int st = 0;
      if (waitpid(pid, &st, WNOHANG) == pid) {
        pid = -1;
        FAIL() << "redis-server exited (is it installed? scripts/setup installs it)";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL() << "redis-server did not answer on " << sock << " within 5 s";
  }
  void kill_now() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      pid = -1;
    }
    std::filesystem::remove(sock);
  }
  redisReply* cmd(const char* fmt, const char* arg = nullptr) {
    timeval tv{2, 0};
    redisContext* c = redisConnectUnixWithTimeout(sock.c_str(), tv);
    if (c == nullptr || c->err) {
      if (c) redisFree(c);
      return nullptr;
    }
    auto* r = static_cast<redisReply*>(arg ? redisCommand(c, fmt, arg) : redisCommand(c, fmt));
    redisFree(c);
    return r;
  }
  bool ping() {
    redisReply* r = cmd("PING");
    bool ok = r != nullptr;  // NOAUTH is an answer too
    if (r) freeReplyObject(r);
    return ok;
  }
  long long get(const std::string& key) {
    redisReply* r = cmd("GET %s", key.c_str());
    long long v = r && r->type == REDIS_REPLY_STRING ? std::atoll(r->str) : -1;
    if (r) freeReplyObject(r);
    return v;
  }
};

FleetCfg cfg_for(const Redis& r, std::string prefix) {
  FleetCfg c;
  c.enabled = true;
  c.unix_socket = r.sock;
  c.prefix = std::move(prefix);
  c.sync_interval_ns = 100'000'000ULL;
  c.timeout_ns = 50'000'000ULL;
  c.expected_members = 2;
  return c;
}

// One appliance: a view, one worker's usage and taker, and its sync.
struct Box {
  FleetView view;
  FleetUsage usage;
  FleetTaker taker;
  FleetSync sync{view, {&usage}};
  uint64_t admitted = 0, refused = 0, stale = 0;
  void request(uint64_t now) {
    switch (taker.take(view, usage, 0, FleetKind::requests, 1, now)) {
      case FleetTaker::Result::ok: ++admitted; break;
      case FleetTaker::Result::over: ++refused; break;
      case FleetTaker::Result::stale: ++stale; break;
    }
  }
};

uint64_t aligned_now_ns() {
  uint64_t t = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count());
  return (t / 1'000'000'000ULL + 1) * 1'000'000'000ULL;  // the next whole second
}

// Two boxes, each offered `rate_each` requests/s, syncing every 100 ms (the
// second 50 ms after the first), one fleet budget of 100 requests/s: what the
// fleet admits in each whole second. Simulated time (1 ms steps), real Redis.
std::vector<uint64_t> run_fleet(Redis& redis, const std::string& prefix, double rate_each, int seconds,
                                bool second_box_idle = false) {
  Box a, b;
  std::vector<FleetBudgetKey> keys = {{0, FleetKind::requests, "tenant-a", 100}};
  a.sync.configure(cfg_for(redis, prefix), keys);
  b.sync.configure(cfg_for(redis, prefix), keys);
  const uint64_t t0 = aligned_now_ns(), ms = 1'000'000ULL;
  std::vector<uint64_t> per_second;
  uint64_t before = 0;
  double due_a = 0, due_b = 0;
  // Both boxes have synced once before the run (a box starts in local mode).
  EXPECT_TRUE(b.sync.sync_once(t0 - 50 * ms));
  for (uint64_t step = 0; step < static_cast<uint64_t>(seconds) * 1000; ++step) {
    const uint64_t now = t0 + step * ms;
    if (step % 100 == 0) {
      EXPECT_TRUE(a.sync.sync_once(now));
    }
    if (step % 100 == 50) {
      EXPECT_TRUE(b.sync.sync_once(now));
    }
    for (due_a += rate_each / 1000; due_a >= 1; due_a -= 1) a.request(now);
    if (!second_box_idle)
      for (due_b += rate_each / 1000; due_b >= 1; due_b -= 1) b.request(now);
    if (step % 1000 == 999) {
      uint64_t total = a.admitted + b.admitted;
      per_second.push_back(total - before);
      before = total;
    }
  }
  EXPECT_EQ(a.stale, 0u);
  EXPECT_EQ(b.stale, 0u);
  return per_second;
}

void expect_each_second(const std::vector<uint64_t>& per_second, uint64_t lo, uint64_t hi, const char* what) {
  for (size_t s = 0; s < per_second.size(); ++s) {
    std::printf("second %zu: %s %lu\n", s, what, static_cast<unsigned long>(per_second[s]));
    EXPECT_GE(per_second[s], lo) << "second " << s;
    EXPECT_LE(per_second[s], hi) << "second " << s;
  }
}

TEST(FleetRedis, TwoBoxesAdmitTheFleetBudgetOnce) {
  Redis redis;
  const std::string prefix = "t" + std::to_string(getpid()) + "a";
  // Each box is offered 150/s: alone with a local 100/s budget each would
  // admit 100, 200 together. The fleet admits 100/s +- 10% in every second.
  expect_each_second(run_fleet(redis, prefix, 150, 5), 90, 110, "fleet admitted");
}

TEST(FleetRedis, ALoneBoxStillGetsTheWholeFleetBudget) {
  Redis redis;
  const std::string prefix = "t" + std::to_string(getpid()) + "b";
  expect_each_second(run_fleet(redis, prefix, 300, 3, /*second_box_idle=*/true), 90, 100, "one busy box admitted");
}

TEST(FleetRedis, PushesDeltasToWindowKeysWithTtl) {
  Redis redis;
  const std::string prefix = "t" + std::to_string(getpid()) + "c";
  Box a;
  a.sync.configure(cfg_for(redis, prefix), {{0, FleetKind::requests, "tenant-a", 100},
                                            {0, FleetKind::tokens, "tenant-a", 6000}});
  const uint64_t now = aligned_now_ns();
  a.usage.add(0, FleetKind::requests, 7);  // after configure(): pushed by the first sync
  ASSERT_TRUE(a.sync.sync_once(now));
  FleetBudgetKey rk{0, FleetKind::requests, "tenant-a", 100}, tk{0, FleetKind::tokens, "tenant-a", 6000};
  const uint64_t w = now / 1'000'000'000ULL;
  EXPECT_EQ(redis.get(fleet_redis_key(prefix, rk, w)), 7);
  a.usage.add(0, FleetKind::requests, 5);
  a.usage.add(0, FleetKind::tokens, 900);
  a.usage.add(0, FleetKind::tokens, -300);  // a refund when a response ended
  ASSERT_TRUE(a.sync.sync_once(now + 100'000'000ULL));
  EXPECT_EQ(redis.get(fleet_redis_key(prefix, rk, w)), 12);
  EXPECT_EQ(redis.get(fleet_redis_key(prefix, tk, now / 60'000'000'000ULL)), 600);
  redisReply* r = redis.cmd("PTTL %s", fleet_redis_key(prefix, rk, w).c_str());
  ASSERT_NE(r, nullptr);
  EXPECT_GT(r->integer, 1000);   // 2 windows
  EXPECT_LE(r->integer, 2000);
  freeReplyObject(r);
  // Allowance: (100 - 12) / 2 members / 1 worker; (6000 - 600) / 2.
  EXPECT_DOUBLE_EQ(a.view.allow[0][0].load(), 44);
  EXPECT_DOUBLE_EQ(a.view.allow[0][1].load(), 2700);
  nlohmann::json st = a.sync.status();
  EXPECT_EQ(st["mode"], "fleet");
  EXPECT_EQ(st["budgets"][0]["local"], 12);
  EXPECT_EQ(st["budgets"][0]["fleet"], 12);
}

// One 100 requests/s fleet budget, synced once at the next whole second (returned).
uint64_t first_sync(Box& a, Redis& redis, const std::string& prefix) {
  a.sync.configure(cfg_for(redis, prefix), {{0, FleetKind::requests, "tenant-a", 100}});
  uint64_t now = aligned_now_ns();
  EXPECT_TRUE(a.sync.sync_once(now));
  return now;
}

TEST(FleetRedis, KilledRedisGoesLocalAtOnceAndResyncsAtTheNextInterval) {
  Redis redis;
  const std::string prefix = "t" + std::to_string(getpid()) + "d";
  Box a;
  uint64_t now = first_sync(a, redis, prefix);
  a.request(now + 1);
  EXPECT_EQ(a.admitted, 1u);
  redis.kill_now();
  now += 100'000'000ULL;
  // The first sync after the kill fails and puts the box in local mode: the
  // very next request is stale (the caller uses its local bucket).
  EXPECT_FALSE(a.sync.sync_once(now));
  EXPECT_EQ(a.view.valid_until_ns.load(), 0u);
  a.request(now + 1);
  EXPECT_EQ(a.stale, 1u);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(a.sync.sync_once(now += 100'000'000ULL));
  EXPECT_EQ(a.sync.counters().errors.load(), 6u);
  EXPECT_EQ(a.sync.counters().outages.load(), 1u);  // logged and counted once per outage
  EXPECT_EQ(a.sync.status()["mode"], "local");
  a.usage.add(0, FleetKind::requests, 40);  // taken locally during the outage: not pushed later
  redis.start();
  // Back at the next interval.
  EXPECT_TRUE(a.sync.sync_once(now += 100'000'000ULL));
  EXPECT_EQ(a.sync.status()["mode"], "fleet");
  a.request(now + 1);
  EXPECT_EQ(a.admitted, 2u);
  EXPECT_EQ(a.sync.counters().outages.load(), 1u);
  EXPECT_EQ(a.sync.status()["budgets"][0]["fleet"], 0);
}

TEST(FleetRedis, SlowRedisCostsTheSyncAtMostItsTimeout) {
  Redis redis;
  const std::string prefix = "t" + std::to_string(getpid()) + "e";
  Box a;
  uint64_t now = first_sync(a, redis, prefix);
  // Redis busy for 500 ms (one command blocks the server).
  std::thread sleeper([&] {
    redisReply* r = redis.cmd("DEBUG SLEEP 0.5");
    if (r) freeReplyObject(r);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(a.sync.sync_once(now += 100'000'000ULL));
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("sync against a sleeping Redis gave up after %.1f ms (timeout 50 ms)\n", ms);
  EXPECT_LT(ms, 120.0);
  EXPECT_EQ(a.sync.status()["mode"], "local");
  sleeper.join();
  EXPECT_TRUE(a.sync.sync_once(now += 100'000'000ULL));
}

TEST(FleetRedis, AuthWithPasswordFile) {
  Redis redis({"--requirepass", "s3cret"});
  const std::string prefix = "t" + std::to_string(getpid()) + "f";
  std::string pw = redis.dir + "/pass";
  std::ofstream(pw) << "wrong\n";
  Box a;
  FleetCfg c = cfg_for(redis, prefix);
  c.password_file = pw;
  a.sync.configure(c, {{0, FleetKind::requests, "tenant-a", 100}});
  EXPECT_FALSE(a.sync.sync_once(aligned_now_ns()));
  std::ofstream(pw) << "s3cret\n";
  EXPECT_TRUE(a.sync.sync_once(aligned_now_ns()));
}

TEST(FleetRedis, ThreadSyncsOnItsOwn) {
  Redis redis;
  const std::string prefix = "t" + std::to_string(getpid()) + "g";
  Box a;
  FleetCfg c = cfg_for(redis, prefix);
  c.sync_interval_ns = 20'000'000ULL;
  c.timeout_ns = 10'000'000ULL;
  a.sync.configure(c, {{0, FleetKind::requests, "tenant-a", 100}});
  a.sync.start();
  for (int i = 0; i < 100 && a.sync.counters().syncs.load() < 5; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  a.sync.stop();
  EXPECT_GE(a.sync.counters().syncs.load(), 5u);
  EXPECT_EQ(a.sync.counters().errors.load(), 0u);
}

}  // namespace
}  // namespace aiqos
