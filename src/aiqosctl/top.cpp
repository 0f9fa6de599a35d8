#include "aiqosctl/top.h"

#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <map>

namespace aiqos::ctl {
namespace {

using nlohmann::json;

volatile std::sig_atomic_t g_quit = 0;
void on_quit(int) { g_quit = 1; }

uint64_t count(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

// Per-second rate of a counter between two snapshots; "-" when there is no interval.
std::string rate(uint64_t now, uint64_t before, double dt, double scale = 1) {
  if (dt <= 0) return "-";
  double r = static_cast<double>(now >= before ? now - before : 0) * scale / dt;
  static const char* units[] = {"", "k", "M", "G", "T"};
  size_t u = 0;
  while (r >= 1000 && u + 1 < std::size(units)) {
    r /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 && r == static_cast<uint64_t>(r) ? "%.0f%s" : "%.1f%s", r, units[u]);
  return buf;
}

std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", s);
  return buf;
}

std::string p99(const json& key) {
  auto it = key.find("ttfb_ms");
  if (it == key.end() || !it->is_object() || !it->contains("p99")) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", (*it)["p99"].get<double>());
  return buf;
}

// The rows of a `stats --by ...` reply, by key.
std::map<std::string, json> keyed(const json& stats) {
  std::map<std::string, json> m;
  if (stats.is_object() && stats.contains("keys"))
    for (const auto& k : stats["keys"])
      if (k.contains("key") && k["key"].is_string()) m[k["key"].get<std::string>()] = k;
  return m;
}

std::string line(const char* fmt, const std::string& a, const std::string& b, const std::string& c,
                 const std::string& d, const std::string& e, const std::string& f) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, a.c_str(), b.c_str(), c.c_str(), d.c_str(), e.c_str(), f.c_str());
  return buf;
}

const char* kRow = "%-24.24s %10s %10s %10s %12s %10s\n";

// Restores the terminal however the view ends.
struct RawTerminal {
  termios saved{};
  bool active = false;
  RawTerminal() {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved) != 0) return;
    termios raw = saved;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active) tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  }
};

}  // namespace

std::string render_top(const TopSnapshot& prev, const TopSnapshot& cur, const TopOptions& o,
                       const std::string& header) {
  const double dt = cur.t_s - prev.t_s;
  std::string s = header + "\n\n";
  s += line(kRow, "CLASS", "FRAMES/S", "BIT/S", "REQ/S", "TTFT_P99_MS", "DROPS/S");
  std::map<std::string, json> before;
  if (prev.classes.is_array())
    for (const auto& c : prev.classes) before[c.value("name", "")] = c;
  auto cls_stats = keyed(cur.by_class);
  auto cls_before = keyed(prev.by_class);
  unsigned n = 0;
  if (cur.classes.is_array())
    for (const auto& c : cur.classes) {
      if (++n > o.rows) break;
      std::string name = c.value("name", "?");
      const json& b = before.count(name) ? before[name] : c;
      const json& st = cls_stats.count(name) ? cls_stats[name] : json::object();
      const json& sb = cls_before.count(name) ? cls_before[name] : st;
      s += line(kRow, name, rate(count(c, "frames"), count(b, "frames"), dt),
                rate(count(c, "bytes"), count(b, "bytes"), dt, 8),
                rate(count(st, "requests"), count(sb, "requests"), dt), p99(st),
                rate(count(c, "policed"), count(b, "policed"), dt));
    }
  s += "\n";
  // Per model: request and response bodies as bit/s; errors are 5xx, incomplete and reset.
  s += line(kRow, "MODEL", "REQUESTS", "BIT/S", "REQ/S", "TTFT_P99_MS", "ERRORS/S");
  auto models = keyed(cur.by_model);
  auto models_before = keyed(prev.by_model);
  auto errors = [](const json& k) {
    uint64_t e = count(k, "incomplete") + count(k, "reset");
    if (auto st = k.find("status"); st != k.end() && st->is_object()) e += count(*st, "5xx");
    return e;
  };
  n = 0;
  for (const auto& [name, k] : models) {
    if (++n > o.rows) break;
    const json& b = models_before.count(name) ? models_before[name] : k;
    s += line(kRow, name, std::to_string(count(k, "requests")),
              rate(count(k, "req_bytes") + count(k, "resp_bytes"), count(b, "req_bytes") + count(b, "resp_bytes"), dt, 8),
              rate(count(k, "requests"), count(b, "requests"), dt), p99(k), rate(errors(k), errors(b), dt));
  }
  s += "\nTTFT p99 since start or `stats reset`; rates over the last " + seconds(dt) + " s.  q: quit\n";
  return s;
}

int run_top(const Fetch& fetch, const TopOptions& o) {
  RawTerminal term;
  struct sigaction sa{};
  sa.sa_handler = on_quit;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  auto take = [&](TopSnapshot& s, std::string& err) {
    s.t_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CtlResult a = fetch("classes", json::object());
    CtlResult b = a.ok ? fetch("stats", {{"by", "class"}}) : a;
    CtlResult c = b.ok ? fetch("stats", {{"by", "model"}}) : b;
    if (!c.ok) {
      err = c.error;
      return false;
    }
    s.classes = a.data;
    s.by_class = b.data;
    s.by_model = c.data;
    return true;
  };
  TopSnapshot prev, cur;
  std::string err;
  if (!take(cur, err)) {
    std::cerr << "aiqosctl: " << err << '\n';
    return 1;
  }
  prev = cur;
  for (unsigned i = 1;; ++i) {
    CtlResult st = fetch("status", json::object());
    std::string header = "aiqosctl top";
    if (st.ok)
      header += " - aiqosd " + st.data.value("version", std::string("?")) + ", policy generation " +
                std::to_string(st.data["policy"].value("generation", 0u)) + ", refresh " + seconds(o.interval_s) + " s";
    // Home, clear: the whole screen is redrawn each time.
    std::cout << "\033[H\033[2J" << render_top(prev, cur, o, header) << std::flush;
    if (o.iterations != 0 && i >= o.iterations) break;
    // Wait for the next refresh, or a `q`.
    const auto due = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.interval_s);
    bool quit = false;
    while (!quit && !g_quit) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(due - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{STDIN_FILENO, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) > 0) {
        char ch = 0;
        ssize_t r = read(STDIN_FILENO, &ch, 1);
        if (r == 0 && !term.active) poll(nullptr, 0, static_cast<int>(left.count()));  // stdin at EOF: on time only
        quit = r == 1 && (ch == 'q' || ch == 'Q');
      }
    }
    if (quit || g_quit) break;
    prev = cur;
    if (!take(cur, err)) {
      std::cerr << "\naiqosctl: " << err << '\n';
      return 1;
    }
  }
  std::cout << '\n';
  return 0;
}

}  // namespace aiqos::ctl
