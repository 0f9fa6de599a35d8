#include "aiqosd/service_notify.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <ctime>

namespace aiqos {

ServiceNotify::ServiceNotify() {
  const char* sock = std::getenv("NOTIFY_SOCKET");
  enabled_ = sock != nullptr && *sock != '\0';
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    wd_ = std::chrono::microseconds(usec);
    spdlog::info("systemd watchdog: every {} ms while every worker's heartbeat advances", usec / 2000);
  }
}

void ServiceNotify::send(const std::string& state) {
  if (!enabled_) return;
  if (int rc = sd_notify(0, state.c_str()); rc < 0) spdlog::warn("sd_notify: {}", rc);
}

void ServiceNotify::ready(const std::string& status) { send("READY=1\nSTATUS=" + status); }

// MONOTONIC_USEC: systemd >= 253 (Type=notify-reload) matches it with the reload it asked for;
// older ones ignore it.
void ServiceNotify::reloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t us = uint64_t(ts.tv_sec) * 1000000u + uint64_t(ts.tv_nsec) / 1000u;
  send("RELOADING=1\nSTATUS=reloading the policy\nMONOTONIC_USEC=" + std::to_string(us));
}

void ServiceNotify::stopping() { send("STOPPING=1\nSTATUS=stopping"); }

void ServiceNotify::status(const std::string& line) { send("STATUS=" + line); }

void ServiceNotify::watchdog(std::span<const uint64_t> heartbeats, Clock::time_point now) {
  if (wd_.count() == 0) return;
  if (last_.size() != heartbeats.size()) {  // first call: a baseline, and a ping (we are alive)
    last_.assign(heartbeats.begin(), heartbeats.end());
    last_check_ = now;
    send("WATCHDOG=1");
    return;
  }
  if (now - last_check_ < wd_ / 2) return;
  std::string stuck;
  for (size_t w = 0; w < heartbeats.size(); ++w)
    if (heartbeats[w] == last_[w]) stuck += (stuck.empty() ? "" : ", ") + std::to_string(w);
  last_.assign(heartbeats.begin(), heartbeats.end());
  last_check_ = now;
  if (stuck.empty()) {
    if (stall_logged_) spdlog::info("watchdog: every worker's heartbeat advances again");
    stall_logged_ = false;
    send("WATCHDOG=1");
    return;
  }
  if (!stall_logged_)
    spdlog::error("watchdog: worker(s) {} made no poll loop for {} ms; not pinging systemd (it restarts the "
                  "service after WatchdogSec)",
                  stuck, std::chrono::duration_cast<std::chrono::milliseconds>(wd_ / 2).count());
  stall_logged_ = true;
  send("STATUS=worker(s) " + stuck + " stalled");
}

}  // namespace aiqos
