// The control socket: a Unix domain stream socket (default
// /run/aiqos/aiqosd.sock, mode 0660, the daemon's user and group) on which
// aiqosctl sends one request line and reads one reply line
// (control/ctl_protocol.h). It runs in its own thread and calls ControlApi
// from that thread: the ControlApi implementation must be thread-safe
// against the main loop.
//
// StreamServer is the poll() loop under it, shared with the Prometheus
// exporter (control/metrics.h): one listening socket, a bounded number of
// connections, each read until a framer says a request is complete (or it is
// too large, or times out), answered once, and closed.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

#include "control/control_api.h"

namespace aiqos {

struct StreamServerConfig {
  size_t max_conns = 16;        // connections at once; more wait in the listen backlog
  size_t max_request = 65536;   // bytes of one request; more is answered as too_large
  int read_timeout_ms = 2000;   // from accept until the request is complete
  int write_timeout_ms = 2000;  // from the reply until it is written
};

enum class RequestStatus : uint8_t { complete, too_large, timeout };

class StreamServer {
 public:
  // Length of the first complete request in `buf`, terminator included, or
  // npos while more bytes are needed.
  using Framer = std::function<size_t(std::string_view buf)>;
  // The reply to send (empty: close without a reply). For too_large and
  // timeout, `request` holds what was read so far.
  using Handler = std::function<std::string(std::string_view request, RequestStatus)>;

  StreamServer(StreamServerConfig cfg, Framer framer, Handler handler);
  ~StreamServer();
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;

  // Takes ownership of `listen_fd` (bound and listening) and starts the thread.
  bool start(int listen_fd, std::string& error);
  // Wakes the thread, closes every connection and joins; returns within one
  // poll round (the thread is woken through an eventfd, not a timeout).
  void stop();
  bool running() const noexcept { return thread_.joinable(); }
  uint64_t served() const noexcept { return served_.load(std::memory_order_relaxed); }

 private:
  void loop();

  StreamServerConfig cfg_;
  Framer framer_;
  Handler handler_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};  // stop(): wo, loop: ro
  std::atomic<uint64_t> served_{0};  // loop: wo, anyone: ro
  std::thread thread_;
};

struct CtlServerConfig {
  std::string path = "/run/aiqos/aiqosd.sock";
  mode_t mode = 0660;
  // Owner and group of the socket; -1: the daemon's (aiqosd --user gives its user and group
  // here, so that its members keep access after the daemon changes to them).
  uid_t owner = static_cast<uid_t>(-1);
  gid_t group = static_cast<gid_t>(-1);
  size_t max_conns = 16;
  int timeout_ms = 2000;
};

class CtlServer {
 public:
  CtlServer(ControlApi& api, CtlServerConfig cfg = {});
  ~CtlServer();  // stop()
  CtlServer(const CtlServer&) = delete;
  CtlServer& operator=(const CtlServer&) = delete;

  // Creates the parent directory (0755) if missing, removes a stale socket
  // (one nobody answers on; any other file at the path is an error), binds,
  // sets the mode and the group (the process's), listens and starts the
  // thread. False with a message naming the path on failure.
  bool start(std::string& error);
  // Stops the thread (within ~100 ms at most) and removes the socket.
  void stop();
  const std::string& path() const noexcept { return cfg_.path; }
  uint64_t served() const noexcept { return server_.served(); }

 private:
  ControlApi& api_;
  CtlServerConfig cfg_;
  StreamServer server_;
  bool bound_ = false;
};

}  // namespace aiqos
