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
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aiqos_version.h"
#include "aiqosctl/render.h"
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

// ------------------------------------------------------------------ commands

struct Command {
  std::string name;  // protocol name
  json args = json::object();
};

// The words after a command's name, parsed with its own options; --json,
// --socket and --timeout are accepted there too so they may come last.
class Words {
 public:
  Words(std::vector<std::string> words, Global& g) : rest(std::move(words)), g_(g) {}

  std::vector<std::string> rest;  // a subcommand's name is taken off before parse()

  po::options_description_easy_init options() { return own_.add_options(); }
  // The next `count` words (-1: all the rest) are the value of option `name`.
  void positional(const char* name, const po::value_semantic* v, const char* what, int count = 1) {
    own_.add_options()(name, v, what);
    pos_.add(name, count);
  }
  // Parses the words; false when --help was asked for (and `usage` printed).
  bool parse(const std::string& usage) {
    po::options_description common("Global options");
    common.add_options()("help,h", "this help")("json", po::bool_switch(), "print JSON")(
        "socket", po::value<std::string>(), "control socket")("timeout", po::value<double>(), "seconds");
    po::options_description all;
    all.add(own_).add(common);
    po::store(po::command_line_parser(rest).options(all).positional(pos_).run(), vm);
    po::notify(vm);
    if (vm["json"].as<bool>()) g_.json = true;
    if (vm.count("socket")) g_.socket = vm["socket"].as<std::string>();
    if (vm.count("timeout")) g_.timeout_s = vm["timeout"].as<double>();
    if (!vm.count("help")) return true;
    std::cout << usage << '\n';
    if (!own_.options().empty()) std::cout << own_;
    return false;
  }
  std::string str(const char* name) const { return vm.count(name) ? vm[name].as<std::string>() : ""; }

  po::variables_map vm;

 private:
  Global& g_;
  po::options_description own_{"Options"};
  po::positional_options_description pos_;
};

bool build_policy(Words& w, Command& c) {
  if (w.rest.empty()) throw UsageError("policy: missing subcommand (show or reload)");
  std::string sub = w.rest[0];
  if (sub == "--help" || sub == "-h") {
    std::cout << "Usage: aiqosctl policy show\n       aiqosctl policy reload [FILE]\n";
    return false;
  }
  w.rest.erase(w.rest.begin());
  if (sub == "show") {
    c.name = "policy.show";
    return w.parse("Usage: aiqosctl policy show\n  The policy in force, as loaded.");
  }
  if (sub != "reload") throw UsageError("policy: unknown subcommand '" + sub + "' (show or reload)");
  w.positional("file", po::value<std::string>(), "policy file");
  bool run = w.parse(
      "Usage: aiqosctl policy reload [FILE]\n"
      "  Parse, validate and publish FILE (relative paths are resolved here);\n"
      "  without FILE, reload the file in force. On error the running policy stays.\n"
      "  Changed limits are not applied: they size tables at start (restart_needed).");
  c.name = "policy.reload";
  if (w.vm.count("file")) c.args["file"] = std::filesystem::absolute(w.str("file")).string();
  return run;
}

bool build_class_set(Words& w, Command& c) {
  auto& rest = w.rest;
  if (rest.empty()) throw UsageError("class: missing subcommand (set)");
  if (rest[0] == "--help" || rest[0] == "-h") rest.insert(rest.begin(), "set");
  if (rest[0] != "set") throw UsageError("class: unknown subcommand '" + rest[0] + "' (set)");
  rest.erase(rest.begin());
  w.positional("name", po::value<std::string>(), "class name");
  w.positional("kv", po::value<std::vector<std::string>>(), "rate=R burst=B", -1);
  if (!w.parse("Usage: aiqosctl class set NAME [rate=RATE] [burst=SIZE]\n"
               "  Change a class's token bucket live. RATE: 20Mbit, 1.5G, 500k, unlimited\n"
               "  (bits per second); SIZE: 64KB, 1MiB, 3028 (bytes). At least one of them."))
    return false;
  if (!w.vm.count("name")) throw UsageError("class set: missing NAME");
  c.name = "class.set";
  c.args["name"] = w.str("name");
  if (w.vm.count("kv")) {
    for (auto& kv : w.vm["kv"].as<std::vector<std::string>>()) {
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

bool build_flows(Words& w, Command& c) {
  w.options()("top", po::value<uint32_t>()->default_value(20), "show the N largest flows by bytes")(
      "class", po::value<std::string>(), "only flows of class C")(
      "model", po::value<std::string>(), "only flows whose last request named model M");
  bool run = w.parse("Usage: aiqosctl flows [--top N] [--class C] [--model M]");
  uint32_t top = w.vm["top"].as<uint32_t>();
  if (top == 0) throw UsageError("flows: --top must be at least 1");
  c.args["top"] = top;
  for (const char* k : {"class", "model"})
    if (w.vm.count(k)) c.args[k] = w.str(k);
  return run;
}

bool build_top(Words& w, Command& c) {
  w.options()("interval", po::value<double>()->default_value(1.0), "seconds between refreshes")(
      "iterations", po::value<unsigned>()->default_value(0), "refreshes before exiting (0: until q)");
  bool run = w.parse(
      "Usage: aiqosctl top [--interval SEC] [--iterations N]\n"
      "  A live view of the classes and models, redrawn every SEC seconds; q quits.");
  c.args["interval"] = w.vm["interval"].as<double>();
  c.args["iterations"] = w.vm["iterations"].as<unsigned>();
  if (!(c.args["interval"].get<double>() >= 0.1)) throw UsageError("top: --interval must be at least 0.1 s");
  return run;
}

bool build_bypass(Words& w, Command& c) {
  w.positional("state", po::value<std::string>(), "on or off");
  if (!w.parse("Usage: aiqosctl bypass on|off\n"
               "  on: workers forward every frame to the peer port without parsing, classification\n"
               "  or QoS (counted as bypassed); off: back to normal. `aiqosctl status` shows which."))
    return false;
  std::string st = w.str("state");
  if (st != "on" && st != "off")
    throw UsageError("bypass: expected on or off" + (st.empty() ? std::string() : ", got '" + st + "'"));
  c.args["on"] = st == "on";
  return true;
}

bool build_stats(Words& w, Command& c) {
  if (!w.rest.empty() && w.rest[0] == "reset") {
    w.rest.erase(w.rest.begin());
    c.name = "stats.reset";
    return w.parse("Usage: aiqosctl stats reset\n  Zero the request statistics.");
  }
  w.options()("by", po::value<std::string>()->default_value("class"),
              "class | model | endpoint | tenant | port | worker");
  bool run = w.parse(
      "Usage: aiqosctl stats [--by class|model|endpoint|tenant|port|worker]\n"
      "       aiqosctl stats reset");
  static const std::vector<std::string> kBy = {"class", "model", "endpoint", "tenant", "port", "worker"};
  std::string by = w.str("by");
  if (std::find(kBy.begin(), kBy.end(), by) == kBy.end())
    throw UsageError("stats: --by must be class, model, endpoint, tenant, port or worker (got '" + by + "')");
  c.args["by"] = by;
  return run;
}

// Returns false when --help was printed.
bool build(const std::vector<std::string>& words, Global& g, Command& c) {
  if (words.empty()) throw UsageError("missing COMMAND");
  const std::string& head = words[0];
  Words w({words.begin() + 1, words.end()}, g);
  c.name = head;  // the protocol name, unless a subcommand names another
  if (head == "status")
    return w.parse("Usage: aiqosctl status\n  Version, uptime, workers, ports, policy generation, frame totals.");
  if (head == "classes")
    return w.parse("Usage: aiqosctl classes\n  Every class: priority, rate, burst, exceed action, counters.");
  if (head == "policy") return build_policy(w, c);
  if (head == "class") return build_class_set(w, c);
  if (head == "flows") return build_flows(w, c);
  if (head == "top") return build_top(w, c);
  if (head == "bypass") return build_bypass(w, c);
  if (head == "stats") return build_stats(w, c);
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
  aiqos::ctl::render(std::cout, c.name, r.data, g.json);
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
