// aiqosd: the appliance. `aiqosd [EAL options] -- [aiqos options]`, or
// `aiqosd --pcap-in IN.pcap [--pcap-out OUT.pcap] [aiqos options]` offline.
// The main lcore runs this control loop; workers run on every other lcore.
#include <rte_eal.h>
#include <rte_errno.h>
#include <spdlog/spdlog.h>
#include <linux/capability.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "control/options.h"
#include "aiqosd/appliance.h"
#include "aiqosd/privileges.h"
#include "aiqosd/service_notify.h"
#include "control/ctl_server.h"
#include "control/metrics.h"
#include "dataplane/telemetry.h"
#include "dataplane/xdp_steer.h"  // xdp steering (deployment)

namespace {

volatile std::sig_atomic_t g_signal = 0;  // signal handler: wo, control loop: ro (SIGINT/SIGTERM)
volatile std::sig_atomic_t g_hup = 0;     // SIGHUP: reload the policy
volatile std::sig_atomic_t g_usr1 = 0;    // SIGUSR1: reopen the request log (rotation)
volatile std::sig_atomic_t g_usr2 = 0;    // SIGUSR2 with --test-stall-signal: stall worker 0 (test only)

void on_signal(int sig) { g_signal = sig; }
void on_hup(int) { g_hup = 1; }
void on_usr1(int) { g_usr1 = 1; }
void on_usr2(int) { g_usr2 = 1; }

void install_signals(bool test_stall) {
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sa.sa_handler = on_hup;
  sigaction(SIGHUP, &sa, nullptr);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, nullptr);
  if (test_stall) {
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, nullptr);
  }
}

// "; restart needed for limits.flows, ..." when the policy in force has limits
// other than those aiqosd started with (they size tables at start).
std::string restart_needed_note(const nlohmann::json& keys) {
  std::string s;
  for (const auto& k : keys) s += (s.empty() ? "; restart needed for " : ", ") + k.get<std::string>();
  return s;
}

// systemd's STATUS= line: the policy in force, ports, workers and traffic so far.
std::string status_line(aiqos::Appliance& app) {
  const nlohmann::json s = app.status().data;
  const nlohmann::json& pol = s["policy"];
  std::string file = pol["file"].get<std::string>();
  return "policy generation " + std::to_string(pol["generation"].get<uint32_t>()) +
         (file.empty() ? " (built-in)" : " from " + file) + "; " + std::to_string(s["ports"].size()) +
         " ports, " + std::to_string(s["workers"].get<unsigned>()) + " workers; frames rx " +
         std::to_string(s["frames"]["rx"].get<uint64_t>()) + " tx " + std::to_string(s["frames"]["tx"].get<uint64_t>()) +
         " dropped " + std::to_string(s["frames"]["drops"].get<uint64_t>()) + "; requests " +
         std::to_string(s["requests"].get<uint64_t>()) + restart_needed_note(pol["restart_needed"]);
}

// An empty capture for the unused RX side of offline mode's output port.
std::string write_empty_pcap() {
  char path[] = "/tmp/aiqos-empty-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return {};
  const uint32_t hdr[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1};
  bool ok = write(fd, hdr, sizeof hdr) == static_cast<ssize_t>(sizeof hdr);
  ::close(fd);
  return ok ? path : std::string();
}

int run(int argc, char** argv) {
  // Split at "--": EAL options before, aiqos options after. Without "--",
  // everything is an aiqos option (offline mode and --help need no EAL).
  int sep = -1;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--") == 0) {
      sep = i;
      break;
    }
  std::vector<char*> app_args{argv[0]};
  for (int i = (sep < 0 ? 1 : sep + 1); i < argc; ++i) app_args.push_back(argv[i]);

  aiqos::Options opts;
  switch (aiqos::parse_options(static_cast<int>(app_args.size()), app_args.data(), opts, std::cout, std::cerr)) {
    case aiqos::ParseOutcome::help: return 0;
    case aiqos::ParseOutcome::error: return 2;
    case aiqos::ParseOutcome::run: break;
  }
  spdlog::set_level(spdlog::level::from_str(opts.log_level));

  // Who to become after start-up, and what to keep: checked before anything starts.
  aiqos::RunAs run_as;
  std::vector<unsigned> keep_caps;
  bool keep_all_caps = false;
  if (std::string err; !aiqos::resolve_run_as(opts.user, run_as, err) ||
                       !aiqos::parse_caps(opts.keep_caps, keep_caps, keep_all_caps, err)) {
    std::cerr << "aiqosd: " << err << '\n';
    return 2;
  }

  std::vector<std::string> eal_store;
  std::string empty_pcap;
  if (!opts.pcap_in.empty()) {
    if (sep >= 0) {
      std::cerr << "aiqosd: --pcap-in builds its own EAL options; drop the ones before '--'\n";
      return 2;
    }
    if (access(opts.pcap_in.c_str(), R_OK) != 0) {
      std::cerr << "aiqosd: cannot read " << opts.pcap_in << ": " << std::strerror(errno) << '\n';
      return 2;
    }
    empty_pcap = write_empty_pcap();
    eal_store = aiqos::offline_eal_args(opts, argv[0], empty_pcap);
    if (opts.idle_exit_s == 0) opts.idle_exit_s = 0.3;  // the capture is exhausted
  } else {
    if (sep < 0) {
      std::cerr << "aiqosd: EAL options missing. Usage: aiqosd [EAL options] -- [aiqos options], "
                   "or aiqosd --pcap-in FILE (see --help)\n";
      return 2;
    }
    for (int i = 0; i < sep; ++i) eal_store.emplace_back(argv[i]);
  }
  std::vector<char*> eal_args;
  for (auto& s : eal_store) eal_args.push_back(s.data());

  // A bad policy refuses to start, before anything else is set up.
  auto appliance = std::make_unique<aiqos::Appliance>(opts);
  aiqos::Appliance& app = *appliance;
  if (std::string errors; !app.load_policy(errors)) {
    std::cerr << errors << "\naiqosd: policy rejected, not starting\n";
    if (!empty_pcap.empty()) unlink(empty_pcap.c_str());
    return 2;
  }

  if (rte_eal_init(static_cast<int>(eal_args.size()), eal_args.data()) < 0) {
    std::cerr << "aiqosd: EAL initialisation failed: " << rte_strerror(rte_errno) << '\n';
    if (!empty_pcap.empty()) unlink(empty_pcap.c_str());
    return 1;
  }
  install_signals(opts.test_stall_signal);

  int rc = 0;
  bool priv_failed = false;
  {
    aiqos::XdpSteer xdp;  // xdp steering: declared first so it outlives the ports it watches
    aiqos::Dataplane& dp = app.dataplane();
    aiqos::CtlServerConfig ccfg;
    ccfg.path = opts.ctl_socket;
    if (run_as.set) {
      ccfg.owner = run_as.uid;
      ccfg.group = run_as.gid;
    }
    aiqos::CtlServer ctl(app, ccfg);
    aiqos::MetricsConfig mcfg;
    mcfg.listen = opts.prometheus;
    mcfg.allow_remote = opts.prometheus_allow_remote;
    aiqos::MetricsServer prom(app.stats_agg(), [&app] { return app.appliance_metrics(); }, mcfg);
    try {
      if (rc == 0) xdp.prepare(opts);    // xdp steering: detach a stale aiqos_steer
      if (rc == 0) app.init();
      if (rc == 0) xdp.configure(opts);  // xdp steering: fill the maps of the PMD-loaded program
      if (rc == 0 && opts.bypass) spdlog::warn("bypass on (--bypass): frames go port to port unparsed, unclassified and unshaped");
      if (rc == 0) app.start();
      if (rc == 0 && !opts.ctl_socket.empty()) {
        if (std::string err; !ctl.start(err)) spdlog::warn("control socket: {} (aiqosctl will not reach this daemon)", err);
      }
      if (rc == 0 && !opts.prometheus.empty()) {
        if (std::string err; !prom.start(err)) spdlog::warn("prometheus: {}", err);
        else spdlog::info("prometheus metrics at http://{}/metrics", opts.prometheus);
      }
      if (rc == 0) aiqos::telemetry_register(app);
      // Everything that needs root is done: ports, memory, sockets. Drop what a running
      // daemon does not need, in every thread (docs/deployment.md, "Privileges").
      if (rc == 0) {
        std::vector<unsigned> keep = keep_caps;
        if (opts.keep_caps.empty())
          for (uint16_t p = 0; p < dp.nb_ports(); ++p)
            if (dp.port(p).name.rfind("net_af_xdp", 0) == 0) {
              keep = {CAP_NET_ADMIN};  // the PMD detaches its XDP program at exit
              break;
            }
        std::string summary, err;
        if (aiqos::drop_privileges(run_as, keep, keep_all_caps, summary, err)) {
          spdlog::info("privileges dropped: {}", summary);
        } else {
          spdlog::error("cannot drop privileges: {}; stopping", err);
          priv_failed = true;
          g_signal = SIGTERM;
        }
      }
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      rc = 1;
    }
    if (rc == 0) {
      using clock = std::chrono::steady_clock;
      aiqos::ServiceNotify notify;  // sd_notify: from this loop only
      bool ready = false;
      std::vector<uint64_t> heartbeats(dp.nb_workers());
      auto last_status = clock::now();
      auto last_print = clock::now();
      auto last_rx_change = clock::now();
      uint64_t last_rx = 0;
      while (g_signal == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        app.poll();
        auto now = clock::now();
        for (uint16_t w = 0; w < dp.nb_workers(); ++w) heartbeats[w] = dp.heartbeat(w);
        // Ready once every worker has turned its poll loop (ports were started by init()).
        if (!ready && std::all_of(heartbeats.begin(), heartbeats.end(), [](uint64_t h) { return h > 0; })) {
          ready = true;
          notify.ready(status_line(app));
          spdlog::info("ready: {}", status_line(app));
          last_status = now;
        }
        if (ready) notify.watchdog(heartbeats, now);
        if (ready && now - last_status >= std::chrono::seconds(10)) {
          notify.status(status_line(app));
          last_status = now;
        }
        if (g_hup) {
          g_hup = 0;
          notify.reloading();
          aiqos::CtlResult r = app.reload("");
          notify.ready(r.ok ? status_line(app)
                            : "policy reload failed, the running policy stays: " + r.error.substr(0, r.error.find('\n')));
        }
        if (g_usr2) {
          g_usr2 = 0;
          spdlog::warn("--test-stall-signal: SIGUSR2: worker 0 stalls (test only)");
          dp.test_stall_worker0();
        }
        if (g_usr1) {
          g_usr1 = 0;
          app.reopen_log();
        }
        if (opts.stats_interval_s > 0 &&
            std::chrono::duration<double>(now - last_print).count() >= opts.stats_interval_s) {
          std::cout << "[aiqosd] " << aiqos::stats_line(dp.stats()) << std::endl;
          last_print = now;
        }
        if (opts.idle_exit_s > 0) {
          // Idle: nothing received and nothing sent, so that frames a
          // dispatching worker handed to others (oversubscribed lcores may
          // run them late) are through before the stop.
          uint64_t rx = dp.total_rx_tx();
          if (rx != last_rx) {
            last_rx = rx;
            last_rx_change = now;
          } else if (std::chrono::duration<double>(now - last_rx_change).count() >= opts.idle_exit_s) {
            spdlog::info("no frame for {} s: stopping", opts.idle_exit_s);
            break;
          }
        }
      }
      notify.stopping();
      if (g_signal != 0) spdlog::info("signal {}: stopping", static_cast<int>(g_signal));
      ctl.stop();
      prom.stop();
      aiqos::telemetry_detach();
      app.stop();
    }
    app.close();
    xdp.detach();  // xdp steering: log its counters, leave no aiqos_steer attached
    if (rc == 0) {
      const aiqos::DataplaneStats st = dp.stats();
      std::cout << aiqos::stats_table(st);
      std::cout << "mbufs in use at exit: " << st.mbufs_in_use << std::endl;
      if (!opts.stats_json.empty()) {
        std::ofstream f(opts.stats_json);
        f << aiqos::stats_json(st).dump(2) << '\n';
        if (!f) {
          spdlog::error("cannot write {}", opts.stats_json);
          rc = 1;
        }
      }
    }
  }
  if (priv_failed) rc = 1;
  appliance.reset();  // frees DPDK memory: before the EAL goes away
  // Offline runs have a runtime directory of their own (file prefix with the
  // pid) that EAL leaves behind even with --no-shconf: remove it.
  const std::string runtime_dir = empty_pcap.empty() ? "" : rte_eal_get_runtime_dir();
  rte_eal_cleanup();
  if (!empty_pcap.empty()) unlink(empty_pcap.c_str());
  if (runtime_dir.find("aiqos-offline-") != std::string::npos) {
    std::error_code ec;
    std::filesystem::remove_all(runtime_dir, ec);
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "aiqosd: " << e.what() << '\n';
    return 1;
  }
}
