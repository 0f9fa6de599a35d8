// aiqosd: the appliance. `aiqosd [EAL options] -- [aiqos options]`, or
// `aiqosd --pcap-in IN.pcap [--pcap-out OUT.pcap] [aiqos options]` offline.
// The main lcore runs this control loop; workers run on every other lcore.
#include <rte_eal.h>
#include <rte_errno.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "control/options.h"
#include "control/request_log.h"
#include "dataplane/dataplane.h"

namespace {

volatile std::sig_atomic_t g_signal = 0;  // signal handler: wo, control loop: ro

void on_signal(int sig) { g_signal = sig; }

void install_signals() {
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
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

  if (rte_eal_init(static_cast<int>(eal_args.size()), eal_args.data()) < 0) {
    std::cerr << "aiqosd: EAL initialisation failed: " << rte_strerror(rte_errno) << '\n';
    if (!empty_pcap.empty()) unlink(empty_pcap.c_str());
    return 1;
  }
  install_signals();

  int rc = 0;
  {
    aiqos::Dataplane dp;
    aiqos::RequestLog reqlog;
    if (!opts.request_log.empty()) {
      if (!reqlog.open(opts.request_log)) {
        spdlog::error("cannot open request log {}: {}", opts.request_log, std::strerror(errno));
        rc = 1;
      }
    }
    const std::string default_class = "default";
    dp.set_request_consumer([&](const aiqos::RequestRecord& r) { reqlog.write(r, default_class); });
    try {
      if (rc == 0) dp.init(opts);
      if (rc == 0) dp.start();
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      rc = 1;
    }
    if (rc == 0) {
      using clock = std::chrono::steady_clock;
      auto last_print = clock::now();
      auto last_rx_change = clock::now();
      uint64_t last_rx = 0;
      while (g_signal == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (dp.drain_requests() > 0) reqlog.flush();
        auto now = clock::now();
        if (opts.stats_interval_s > 0 &&
            std::chrono::duration<double>(now - last_print).count() >= opts.stats_interval_s) {
          std::cout << "[aiqosd] " << dp.stats_line() << std::endl;
          last_print = now;
        }
        if (opts.idle_exit_s > 0) {
          uint64_t rx = dp.total_rx();
          if (rx != last_rx) {
            last_rx = rx;
            last_rx_change = now;
          } else if (std::chrono::duration<double>(now - last_rx_change).count() >= opts.idle_exit_s) {
            spdlog::info("no frame for {} s: stopping", opts.idle_exit_s);
            break;
          }
        }
      }
      if (g_signal != 0) spdlog::info("signal {}: stopping", static_cast<int>(g_signal));
      dp.stop();
      reqlog.flush();
    }
    dp.close();
    if (rc == 0) {
      std::cout << dp.stats_table();
      std::cout << "mbufs in use at exit: " << dp.mbufs_in_use() << std::endl;
      if (!opts.stats_json.empty()) {
        std::ofstream f(opts.stats_json);
        f << dp.stats_json() << '\n';
        if (!f) {
          spdlog::error("cannot write {}", opts.stats_json);
          rc = 1;
        }
      }
    }
  }
  rte_eal_cleanup();
  if (!empty_pcap.empty()) unlink(empty_pcap.c_str());
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
