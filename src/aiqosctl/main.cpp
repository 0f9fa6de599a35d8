// aiqosctl: talks to a running aiqosd over its control socket (one JSON
// request line, one JSON reply line; control/ctl_protocol.h) and renders the
// reply as tables, or as JSON with --json. docs/cli.md is the reference.
//
// Exit codes: 0 ok, 1 the daemon said no or cannot be reached, 2 usage.
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "aiqos_version.h"
#include "aiqosctl/top.h"
#include "control/ctl_protocol.h"
#include "control/policy.h"

namespace po = boost::program_options;
using nlohmann::json;

namespace {

constexpr int kOk = 0, kDaemonError = 1, kUsage = 2;
constexpr const char* kDefaultSocket = "/run/aiqos/aiqosd.sock";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Global {
  std::string socket = kDefaultSocket;
  bool json = false;
  double timeout_s = 10;
};

const char* kHelp =
    "Usage: aiqosctl [--socket PATH] [--json] [--timeout SEC] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  status                          daemon, ports and policy at a glance\n"
    "  policy show                     the policy in force\n"
    "  policy reload [FILE]            load FILE (default: the file in force) and publish it\n"
    "  classes                         traffic classes with their rates and counters\n"
    "  class set NAME rate=R burst=B   change a class's rate and/or burst live\n"
    "  flows [--top N] [--class C] [--model M]\n"
    "                                  largest flows by bytes\n"
    "  stats [--by class|model|endpoint|tenant|port|worker]\n"
    "                                  request and appliance statistics\n"
    "  stats reset                     zero the request statistics\n"
    "  bypass on|off                   forward every frame unparsed and unclassified (on), or resume (off)\n"
    "  top [--interval SEC] [--iterations N]\n"
    "                                  live view per class and model (frames/s, bit/s, requests/s,\n"
    "                                  TTFT p99, drops); q quits\n"
    "\n"
    "Global options:\n"
    "  --socket PATH   control socket (default /run/aiqos/aiqosd.sock)\n"
    "  --json          print the daemon's reply data as JSON instead of tables\n"
    "  --timeout SEC   give up waiting for a reply after SEC seconds (default 10)\n"
    "  -h, --help      this help; `aiqosctl COMMAND --help` for one command\n"
    "  -V, --version   the version\n"
    "\n"
    "Exit codes: 0 ok, 1 daemon error or daemon unreachable, 2 usage error.\n";

// ------------------------------------------------------------------ transport

// Sends one request and returns the daemon's result; connection problems are
// failures with an operator-facing message.
aiqos::CtlResult call(const Global& g, const std::string& cmd, const json& args) {
  using aiqos::CtlResult;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (g.socket.size() >= sizeof addr.sun_path) return CtlResult::failure("socket path too long: " + g.socket);
  std::memcpy(addr.sun_path, g.socket.c_str(), g.socket.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return CtlResult::failure(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd);
    if (e == ENOENT) return CtlResult::failure("aiqosd is not running (no socket at " + g.socket + ")");
    if (e == ECONNREFUSED)
      return CtlResult::failure("aiqosd is not running (stale socket at " + g.socket + ", nobody listening)");
    if (e == EACCES || e == EPERM) {
      std::string group;
      struct stat st{};
      if (::stat(g.socket.c_str(), &st) == 0) {
        if (struct group* gr = ::getgrgid(st.st_gid))
          group = gr->gr_name;
        else
          group = std::to_string(st.st_gid);
      }
      return CtlResult::failure("permission denied on " + g.socket + ": run as root" +
                                (group.empty() ? std::string() : " or as a member of group '" + group + "'"));
    }
    return CtlResult::failure("cannot connect to " + g.socket + ": " + std::strerror(e));
  }
  const std::string req = aiqos::ctl_request_line(cmd, args);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(g.timeout_s);
  auto wait = [&](short ev) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, ev, 0};
    return left.count() > 0 && ::poll(&p, 1, static_cast<int>(left.count())) > 0;
  };
  size_t off = 0;
  while (off < req.size()) {
    if (!wait(POLLOUT)) break;
    ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EINTR) break;
    if (n > 0) off += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[65536];
  while (reply.find('\n') == std::string::npos) {
    if (!wait(POLLIN)) {
      ::close(fd);
      return CtlResult::failure("no reply from aiqosd on " + g.socket + " within " +
                                std::to_string(static_cast<int>(g.timeout_s)) + " s");
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) break;
    if (n < 0 && errno != EAGAIN && errno != EINTR) break;
    if (n > 0) reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (reply.empty()) return CtlResult::failure("aiqosd closed the connection without a reply");
  return aiqos::parse_ctl_reply(reply);
}

// ------------------------------------------------------------------ rendering

std::string human_count(uint64_t v) { return std::to_string(v); }

std::string scalar(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_float()) {
    std::ostringstream o;
    double d = v.get<double>();
    o.precision(d != 0 && std::fabs(d) < 1 ? 3 : 6);
    o << d;
    return o.str();
  }
  if (v.is_number()) return v.dump();
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string rate_text(const json& v) {
  if (!v.is_number_unsigned()) return scalar(v);
  uint64_t b = v.get<uint64_t>();
  if (b == 0) return "unlimited";
  const char* units[] = {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"};
  double x = static_cast<double>(b);
  int u = 0;
  while (x >= 1000 && u < 4) x /= 1000, ++u;
  std::ostringstream o;
  o << x << ' ' << units[u];
  return o.str();
}

std::string size_text(const json& v) {
  if (!v.is_number_unsigned()) return scalar(v);
  uint64_t b = v.get<uint64_t>();
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double x = static_cast<double>(b);
  int u = 0;
  while (x >= 1000 && u < 4) x /= 1000, ++u;
  std::ostringstream o;
  o << x << ' ' << units[u];
  return o.str();
}

// Aligned columns; numbers right-aligned, text left-aligned.
void print_table(std::ostream& out, const std::vector<std::string>& head,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(head.size());
  for (size_t c = 0; c < head.size(); ++c) w[c] = head[c].size();
  for (auto& r : rows)
    for (size_t c = 0; c < r.size() && c < w.size(); ++c) w[c] = std::max(w[c], r[c].size());
  auto numeric = [](const std::string& s) {
    return !s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s == "-");
  };
  auto line = [&](const std::vector<std::string>& r, bool header) {
    std::string s;
    for (size_t c = 0; c < w.size(); ++c) {
      std::string cell = c < r.size() ? r[c] : "";
      std::string pad(w[c] - std::min(w[c], cell.size()), ' ');
      bool right = !header && c > 0 && numeric(cell);
      s += right ? pad + cell : cell + (c + 1 < w.size() ? pad : "");
      if (c + 1 < w.size()) s += "  ";
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << '\n';
  };
  line(head, true);
  for (auto& r : rows) line(r, false);
}

// Flattens one level of nesting: {"drops": {"tx_full": 1}} -> "drops.tx_full".
void flatten(const json& obj, const std::string& prefix, std::vector<std::pair<std::string, json>>& out) {
  for (auto& [k, v] : obj.items()) {
    if (v.is_object() && prefix.empty())
      flatten(v, k + ".", out);
    else
      out.emplace_back(prefix + k, v);
  }
}

void print_generic_table(std::ostream& out, const json& arr) {
  std::vector<std::string> cols;
  std::vector<std::map<std::string, std::string>> rows;
  for (auto& e : arr) {
    std::vector<std::pair<std::string, json>> f;
    if (e.is_object())
      flatten(e, "", f);
    else
      f.emplace_back("value", e);
    std::map<std::string, std::string> row;
    for (auto& [k, v] : f) {
      if (std::find(cols.begin(), cols.end(), k) == cols.end()) cols.push_back(k);
      row[k] = scalar(v);
    }
    rows.push_back(std::move(row));
  }
  // JSON objects arrive with sorted keys: put the identifying columns first.
  static const std::vector<std::string> kFirst = {"port", "worker", "lcore", "name", "key", "class",
                                                  "client", "src", "server", "dst", "proto", "model",
                                                  "endpoint", "tenant"};
  auto rank = [](const std::string& c) {
    auto it = std::find(kFirst.begin(), kFirst.end(), c);
    return it == kFirst.end() ? kFirst.size() : static_cast<size_t>(it - kFirst.begin());
  };
  std::stable_sort(cols.begin(), cols.end(), [&](auto& a, auto& b) { return rank(a) < rank(b); });
  std::vector<std::vector<std::string>> cells;
  for (auto& r : rows) {
    std::vector<std::string> line;
    for (auto& c : cols) line.push_back(r.contains(c) ? r[c] : "");
    cells.push_back(std::move(line));
  }
  std::vector<std::string> head;
  for (auto& c : cols) {
    std::string h = c;
    std::transform(h.begin(), h.end(), h.begin(), ::toupper);
    head.push_back(h);
  }
  print_table(out, head, cells);
}

// Objects as indented "key: value" lines; arrays of objects as tables.
void print_tree(std::ostream& out, const json& v, int indent = 0) {
  std::string pad(indent, ' ');
  if (v.is_object()) {
    for (auto& [k, x] : v.items()) {
      if (x.is_object() && !x.empty()) {
        out << pad << k << ":\n";
        print_tree(out, x, indent + 2);
      } else if (x.is_array() && !x.empty() && x[0].is_object()) {
        out << pad << k << ":\n";
        std::ostringstream t;
        print_generic_table(t, x);
        std::istringstream in(t.str());
        for (std::string l; std::getline(in, l);) out << pad << "  " << l << '\n';
      } else {
        out << pad << k << ": " << scalar(x) << '\n';
      }
    }
  } else if (v.is_array() && !v.empty() && v[0].is_object()) {
    print_generic_table(out, v);
  } else if (v.is_array()) {
    for (auto& x : v) out << pad << scalar(x) << '\n';
  } else if (!v.is_null()) {
    out << pad << scalar(v) << '\n';
  }
}

void print_classes(std::ostream& out, const json& data) {
  if (!data.is_array()) return print_tree(out, data);
  std::vector<std::vector<std::string>> rows;
  for (auto& c : data) {
    if (!c.is_object()) continue;
    auto get = [&](const char* k) { return c.contains(k) ? c[k] : json(); };
    rows.push_back({scalar(get("name")), scalar(get("priority")), rate_text(get("rate_bps")),
                    get("rate_bps") == json(0) ? "-" : size_text(get("burst_bytes")), scalar(get("exceed")), scalar(get("frames")),
                    scalar(get("bytes")), scalar(get("drops")), scalar(get("requests")),
                    scalar(get("active_flows"))});
  }
  print_table(out, {"CLASS", "PRIO", "RATE", "BURST", "EXCEED", "FRAMES", "BYTES", "DROPS", "REQUESTS", "FLOWS"},
              rows);
}

// `stats --by class|model|endpoint|tenant`: StatsAgg::snapshot's shape.
void print_request_stats(std::ostream& out, const json& d) {
  std::vector<std::vector<std::string>> rows;
  auto ms = [](const json& lat, const char* q) {
    return lat.is_object() && lat.contains(q) ? scalar(lat[q]) : std::string("-");
  };
  auto tok = [](const json& k, const char* f) {
    if (!k.contains("tokens") || !k["tokens"].is_object() || !k["tokens"].contains(f) || k["tokens"][f].is_null())
      return std::string("-");
    const json& v = k["tokens"][f];
    return v.is_number_float() ? scalar(v) : human_count(v.get<uint64_t>());
  };
  for (auto& k : d["keys"]) {
    const json& st = k.contains("status") ? k["status"] : json::object();
    auto sc = [&](const char* c) { return st.contains(c) ? scalar(st[c]) : std::string("0"); };
    uint64_t errs = k.value("incomplete", uint64_t{0}) + k.value("reset", uint64_t{0});
    rows.push_back({scalar(k["key"]), scalar(k["requests"]), size_text(k["req_bytes"]),
                    size_text(k["resp_bytes"]), sc("2xx"), sc("4xx"), sc("5xx"), human_count(errs),
                    ms(k["ttfb_ms"], "p50"), ms(k["ttfb_ms"], "p99"), ms(k["duration_ms"], "p50"),
                    ms(k["duration_ms"], "p99"), ms(k["ttft_ms"], "p50"), ms(k["ttft_ms"], "p99"),
                    ms(k["tpot_ms"], "p50"), ms(k["tpot_ms"], "p99"), tok(k, "input"), tok(k, "output"),
                    tok(k, "output_per_s")});
  }
  std::string by = d.value("by", "key");
  std::transform(by.begin(), by.end(), by.begin(), ::toupper);
  print_table(out,
              {by, "REQUESTS", "REQ_BYTES", "RESP_BYTES", "2XX", "4XX", "5XX", "INCOMPL/RST",
               "TTFB_P50_MS", "TTFB_P99_MS", "DUR_P50_MS", "DUR_P99_MS", "TTFT_P50_MS", "TTFT_P99_MS",
               "TPOT_P50_MS", "TPOT_P99_MS", "IN_TOK", "OUT_TOK", "OUT_TOK/S"},
              rows);
  if (d.value("overflow", uint64_t{0}) > 0)
    out << "(" << scalar(d["overflow"]) << " requests counted under (other): more than "
        << scalar(d["limit"]) << " distinct keys)\n";
  // Fleet budgets (stats --by tenant|class with a fleet section): this box's
  // part of each budget's current window beside the fleet's total.
  if (d.contains("fleet") && d["fleet"].is_object()) {
    const json& f = d["fleet"];
    out << "\nfleet budgets: redis " << scalar(f.value("redis", json())) << ", mode " << scalar(f.value("mode", json()))
        << ", syncs " << scalar(f.value("syncs", json())) << ", sync errors " << scalar(f.value("sync_errors", json()))
        << ", last sync " << scalar(f.value("last_sync_age_s", json())) << " s ago\n";
    std::vector<std::vector<std::string>> fr;
    if (f.contains("budgets") && f["budgets"].is_array())
      for (auto& b : f["budgets"])
        fr.push_back({scalar(b.value("class", json())), scalar(b.value("budget", json())), scalar(b.value("limit", json())),
                      scalar(b.value("local", json())), scalar(b.value("fleet", json())),
                      scalar(b.value("allow_per_worker", json()))});
    print_table(out, {"CLASS", "BUDGET", "LIMIT", "LOCAL", "FLEET", "ALLOW/WORKER"}, fr);
  }
}

void render(const std::string& cmd, const json& data, const Global& g) {
  if (g.json) {
    std::cout << data.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
    return;
  }
  if (cmd == "classes") return print_classes(std::cout, data);
  if (cmd == "stats" && data.is_object() && data.contains("keys") && data["keys"].is_array())
    return print_request_stats(std::cout, data);
  if (data.is_null()) {
    std::cout << "ok\n";
    return;
  }
  // A single array member (e.g. {"ports": [...]}) reads best as a table.
  if (data.is_object() && data.size() == 1 && data.begin()->is_array()) return print_tree(std::cout, *data.begin());
  print_tree(std::cout, data);
}

// ------------------------------------------------------------------ commands

struct Command {
  std::string name;  // protocol name
  json args = json::object();
};

// Parses the words after the command with its own options; --json, --socket
// and --timeout are accepted here too so they may come last.
po::variables_map parse_sub(const std::vector<std::string>& words, po::options_description& own,
                            po::positional_options_description* pos, Global& g, const std::string& usage,
                            bool& help) {
  po::options_description common("Global options");
  common.add_options()("help,h", "this help")("json", po::bool_switch(), "print JSON")(
      "socket", po::value<std::string>(), "control socket")("timeout", po::value<double>(), "seconds");
  po::options_description all;
  all.add(own).add(common);
  po::variables_map vm;
  auto parser = po::command_line_parser(words).options(all);
  po::positional_options_description none;
  parser.positional(pos ? *pos : none);
  po::store(parser.run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << usage << '\n';
    if (!own.options().empty()) std::cout << own;
    help = true;
  }
  if (vm["json"].as<bool>()) g.json = true;
  if (vm.count("socket")) g.socket = vm["socket"].as<std::string>();
  if (vm.count("timeout")) g.timeout_s = vm["timeout"].as<double>();
  return vm;
}

// Returns false when --help was printed.
bool build(const std::vector<std::string>& w, Global& g, Command& c) {
  if (w.empty()) throw UsageError("missing COMMAND");
  const std::string& head = w[0];
  std::vector<std::string> rest(w.begin() + 1, w.end());
  bool help = false;
  po::options_description own("Options");
  if (head == "status" || head == "classes") {
    parse_sub(rest, own, nullptr, g,
              head == "status" ? "Usage: aiqosctl status\n  Version, uptime, workers, ports, policy generation, frame totals."
                               : "Usage: aiqosctl classes\n  Every class: priority, rate, burst, exceed action, counters.",
              help);
    c.name = head;
    return !help;
  }
  if (head == "policy") {
    if (rest.empty() || rest[0] == "--help" || rest[0] == "-h") {
      if (rest.empty()) throw UsageError("policy: missing subcommand (show or reload)");
      std::cout << "Usage: aiqosctl policy show\n       aiqosctl policy reload [FILE]\n";
      return false;
    }
    std::string sub = rest[0];
    rest.erase(rest.begin());
    if (sub == "show") {
      parse_sub(rest, own, nullptr, g, "Usage: aiqosctl policy show\n  The policy in force, as loaded.", help);
      c.name = "policy.show";
      return !help;
    }
    if (sub == "reload") {
      own.add_options()("file", po::value<std::string>(), "policy file");
      po::positional_options_description pos;
      pos.add("file", 1);
      auto vm = parse_sub(rest, own, &pos, g,
                          "Usage: aiqosctl policy reload [FILE]\n"
                          "  Parse, validate and publish FILE (relative paths are resolved here);\n"
                          "  without FILE, reload the file in force. On error the running policy stays.",
                          help);
      c.name = "policy.reload";
      if (vm.count("file")) c.args["file"] = std::filesystem::absolute(vm["file"].as<std::string>()).string();
      return !help;
    }
    throw UsageError("policy: unknown subcommand '" + sub + "' (show or reload)");
  }
  if (head == "class") {
    if (rest.empty()) throw UsageError("class: missing subcommand (set)");
    if (rest[0] == "--help" || rest[0] == "-h") rest.insert(rest.begin(), "set");
    if (rest[0] != "set") throw UsageError("class: unknown subcommand '" + rest[0] + "' (set)");
    rest.erase(rest.begin());
    own.add_options()("name", po::value<std::string>(), "class name")(
        "kv", po::value<std::vector<std::string>>(), "rate=R burst=B");
    po::positional_options_description pos;
    pos.add("name", 1).add("kv", -1);
    auto vm = parse_sub(rest, own, &pos, g,
                        "Usage: aiqosctl class set NAME [rate=RATE] [burst=SIZE]\n"
                        "  Change a class's token bucket live. RATE: 20Mbit, 1.5G, 500k, unlimited\n"
                        "  (bits per second); SIZE: 64KB, 1MiB, 3028 (bytes). At least one of them.",
                        help);
    if (help) return false;
    if (!vm.count("name")) throw UsageError("class set: missing NAME");
    c.name = "class.set";
    c.args["name"] = vm["name"].as<std::string>();
    if (vm.count("kv")) {
      for (auto& kv : vm["kv"].as<std::vector<std::string>>()) {
        auto eq = kv.find('=');
        std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
        if (eq == std::string::npos || (k != "rate" && k != "burst"))
          throw UsageError("class set: expected rate=RATE or burst=SIZE, got '" + kv + "'");
        auto parsed = k == "rate" ? aiqos::parse_rate(v) : aiqos::parse_size(v);
        if (!parsed)
          throw UsageError("class set: bad " + k + " '" + v + "'" +
                           (k == "rate" ? " (e.g. 20Mbit, 1.5G, 500k, unlimited)" : " (e.g. 64KB, 1MiB, 3028)"));
        c.args[k] = *parsed;
      }
    }
    if (!c.args.contains("rate") && !c.args.contains("burst"))
      throw UsageError("class set: give rate=RATE, burst=SIZE or both");
    return true;
  }
  if (head == "flows") {
    own.add_options()("top", po::value<uint32_t>()->default_value(20), "show the N largest flows by bytes")(
        "class", po::value<std::string>(), "only flows of class C")(
        "model", po::value<std::string>(), "only flows whose last request named model M");
    auto vm = parse_sub(rest, own, nullptr, g, "Usage: aiqosctl flows [--top N] [--class C] [--model M]", help);
    c.name = "flows";
    uint32_t top = vm["top"].as<uint32_t>();
    if (top == 0) throw UsageError("flows: --top must be at least 1");
    c.args["top"] = top;
    if (vm.count("class")) c.args["class"] = vm["class"].as<std::string>();
    if (vm.count("model")) c.args["model"] = vm["model"].as<std::string>();
    return !help;
  }
  if (head == "top") {
    own.add_options()("interval", po::value<double>()->default_value(1.0), "seconds between refreshes")(
        "iterations", po::value<unsigned>()->default_value(0), "refreshes before exiting (0: until q)");
    auto vm = parse_sub(rest, own, nullptr, g,
                        "Usage: aiqosctl top [--interval SEC] [--iterations N]\n"
                        "  A live view of the classes and models, redrawn every SEC seconds; q quits.",
                        help);
    c.name = "top";
    c.args["interval"] = vm["interval"].as<double>();
    c.args["iterations"] = vm["iterations"].as<unsigned>();
    if (!(c.args["interval"].get<double>() >= 0.1)) throw UsageError("top: --interval must be at least 0.1 s");
    return !help;
  }
  if (head == "bypass") {
    own.add_options()("state", po::value<std::string>(), "on or off");
    po::positional_options_description pos;
    pos.add("state", 1);
    auto vm = parse_sub(rest, own, &pos, g,
                        "Usage: aiqosctl bypass on|off\n"
                        "  on: workers forward every frame to the peer port without parsing, classification\n"
                        "  or QoS (counted as bypassed); off: back to normal. `aiqosctl status` shows which.",
                        help);
    if (help) return false;
    std::string st = vm.count("state") ? vm["state"].as<std::string>() : "";
    if (st != "on" && st != "off") throw UsageError("bypass: expected on or off" + (st.empty() ? std::string() : ", got '" + st + "'"));
    c.name = "bypass";
    c.args["on"] = st == "on";
    return true;
  }
  if (head == "stats") {
    if (!rest.empty() && rest[0] == "reset") {
      rest.erase(rest.begin());
      parse_sub(rest, own, nullptr, g, "Usage: aiqosctl stats reset\n  Zero the request statistics.", help);
      c.name = "stats.reset";
      return !help;
    }
    own.add_options()("by", po::value<std::string>()->default_value("class"),
                      "class | model | endpoint | tenant | port | worker");
    auto vm = parse_sub(rest, own, nullptr, g,
                        "Usage: aiqosctl stats [--by class|model|endpoint|tenant|port|worker]\n"
                        "       aiqosctl stats reset",
                        help);
    static const std::vector<std::string> kBy = {"class", "model", "endpoint", "tenant", "port", "worker"};
    std::string by = vm["by"].as<std::string>();
    if (std::find(kBy.begin(), kBy.end(), by) == kBy.end())
      throw UsageError("stats: --by must be class, model, endpoint, tenant, port or worker (got '" + by + "')");
    c.name = "stats";
    c.args["by"] = by;
    return !help;
  }
  throw UsageError("unknown command '" + head + "'");
}

int run(int argc, char** argv) {
  Global g;
  if (const char* env = std::getenv("AIQOS_SOCKET"); env && *env) g.socket = env;
  std::vector<std::string> words;
  // Global options come before the command; the rest belongs to the command.
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << kHelp;
      return kOk;
    } else if (a == "-V" || a == "--version") {
      std::cout << "aiqosctl " << aiqos::version_string() << '\n';
      return kOk;
    } else if (a == "--json") {
      g.json = true;
    } else if (a == "--socket" || a == "--timeout") {
      if (i + 1 >= argc) throw UsageError(a + " needs a value");
      (a == "--socket" ? g.socket : words.emplace_back()) = argv[++i];
      if (a == "--timeout") {
        g.timeout_s = std::stod(words.back());
        words.pop_back();
      }
    } else if (a.rfind("--socket=", 0) == 0) {
      g.socket = a.substr(9);
    } else if (a.rfind("--timeout=", 0) == 0) {
      g.timeout_s = std::stod(a.substr(10));
    } else if (a.size() > 1 && a[0] == '-') {
      throw UsageError("unknown option '" + a + "'");
    } else {
      break;
    }
  }
  for (; i < argc; ++i) words.emplace_back(argv[i]);
  if (!(g.timeout_s > 0)) throw UsageError("--timeout must be positive");

  Command c;
  if (!build(words, g, c)) return kOk;  // --help
  if (c.name == "top")  // client side: many requests, one screen
    return aiqos::ctl::run_top([&g](const std::string& cmd, const json& args) { return call(g, cmd, args); },
                               {.interval_s = c.args["interval"].get<double>(),
                                .iterations = c.args["iterations"].get<unsigned>()});
  aiqos::CtlResult r = call(g, c.name, c.args);
  if (!r.ok) {
    std::cerr << "aiqosctl: " << r.error << '\n';
    return kDaemonError;
  }
  render(c.name == "stats.reset" ? "stats.reset" : c.name, r.data, g);
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "aiqosctl: " << e.what() << "\n(aiqosctl --help for usage)\n";
    return kUsage;
  } catch (const po::error& e) {
    std::cerr << "aiqosctl: " << e.what() << "\n(aiqosctl --help for usage)\n";
    return kUsage;
  } catch (const std::invalid_argument&) {
    std::cerr << "aiqosctl: --timeout needs a number of seconds\n";
    return kUsage;
  } catch (const std::exception& e) {
    std::cerr << "aiqosctl: " << e.what() << '\n';
    return kDaemonError;
  }
}
