// systemd's service protocol (sd_notify) for the unit's Type=notify: READY=1 once every port and
// worker is up, RELOADING=1 / READY=1 around a SIGHUP reload, STOPPING=1, a one-line STATUS=, and
// WATCHDOG=1 pings (WatchdogSec=) only while every worker's heartbeat advances, so a worker stuck
// in a loop gets the service restarted. Without NOTIFY_SOCKET (not started by systemd) every call
// does nothing. Control lcore only: owned and called by the main loop, never by a worker or the
// control socket's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace aiqos {

class ServiceNotify {
 public:
  using Clock = std::chrono::steady_clock;

  ServiceNotify();  // reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (sd_watchdog_enabled)

  void ready(const std::string& status);
  void reloading();
  void stopping();
  void status(const std::string& line);
  // Called at every turn of the main loop with each worker's heartbeat (Dataplane::heartbeat):
  // every half watchdog interval, pings WATCHDOG=1 if every heartbeat moved since the last
  // check; otherwise logs the stuck workers (once) and does not ping.
  void watchdog(std::span<const uint64_t> heartbeats, Clock::time_point now);

  std::chrono::microseconds watchdog_interval() const noexcept { return wd_; }

 private:
  void send(const std::string& state);

  bool enabled_ = false;
  std::chrono::microseconds wd_{0};  // 0: no watchdog requested
  std::vector<uint64_t> last_;       // heartbeats at the last check
  Clock::time_point last_check_{};
  bool stall_logged_ = false;
};

}  // namespace aiqos
