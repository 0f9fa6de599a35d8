#include "control/ctl_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "control/ctl_protocol.h"

namespace aiqos {

namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text(int e) { return std::strerror(e); }

struct Conn {
  int fd = -1;
  std::string in;
  std::string out;
  size_t out_off = 0;
  bool writing = false;
  Clock::time_point deadline;
};

}  // namespace

StreamServer::StreamServer(StreamServerConfig cfg, Framer framer, Handler handler)
    : cfg_(cfg), framer_(std::move(framer)), handler_(std::move(handler)) {}

StreamServer::~StreamServer() { stop(); }

bool StreamServer::start(int listen_fd, std::string& error) {
  if (running()) {
    ::close(listen_fd);
    error = "server already running";
    return false;
  }
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    error = "eventfd: " + errno_text(errno);
    ::close(listen_fd);
    return false;
  }
  int fl = fcntl(listen_fd, F_GETFL);
  fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK);
  listen_fd_ = listen_fd;
  stop_.store(false);
  thread_ = std::thread([this] { loop(); });
  return true;
}

void StreamServer::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

void StreamServer::loop() {
  std::vector<Conn> conns;
  std::vector<pollfd> pfds;
  char chunk[16384];

  auto respond = [&](Conn& c, std::string_view req, RequestStatus st) {
    c.out = handler_(req, st);
    c.out_off = 0;
    c.writing = true;
    c.in.clear();
    c.in.shrink_to_fit();
    c.deadline = Clock::now() + std::chrono::milliseconds(cfg_.write_timeout_ms);
    served_.fetch_add(1, std::memory_order_relaxed);
  };

  while (!stop_.load()) {
    pfds.clear();
    pfds.push_back({wake_fd_, POLLIN, 0});
    const bool accepting = conns.size() < cfg_.max_conns;
    pfds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});
    for (auto& c : conns) pfds.push_back({c.fd, static_cast<short>(c.writing ? POLLOUT : POLLIN), 0});

    auto now = Clock::now();
    int timeout_ms = 1000;
    for (auto& c : conns) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(c.deadline - now).count();
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left + 1, 0, timeout_ms));
    }
    int n = ::poll(pfds.data(), pfds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) break;
    if (stop_.load()) break;

    now = Clock::now();
    if (accepting && (pfds[1].revents & POLLIN)) {
      while (conns.size() < cfg_.max_conns) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;  // EAGAIN, or a client gone before accept
        conns.push_back({.fd = fd, .deadline = now + std::chrono::milliseconds(cfg_.read_timeout_ms)});
      }
    }
    // Only the connections that were polled (accepted ones come after them).
    const size_t polled = pfds.size() - 2;
    for (size_t i = 0; i < polled; ++i) {
      Conn& c = conns[i];
      short re = pfds[i + 2].revents;
      if (!c.writing && (re & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t r = ::recv(c.fd, chunk, sizeof chunk, 0);
        if (r > 0) {
          c.in.append(chunk, static_cast<size_t>(r));
          size_t len = framer_(c.in);
          if (len != std::string::npos && len <= cfg_.max_request)
            respond(c, std::string_view(c.in).substr(0, len), RequestStatus::complete);
          else if (c.in.size() > cfg_.max_request ||
                   (len != std::string::npos && len > cfg_.max_request))
            respond(c, c.in, RequestStatus::too_large);
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          ::close(c.fd);  // peer closed before a whole request: nobody to answer
          c.fd = -1;
          continue;
        }
      } else if (c.writing && (re & (POLLOUT | POLLHUP | POLLERR))) {
        ssize_t w = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
        if (w > 0) c.out_off += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || c.out_off >= c.out.size()) {
          ::close(c.fd);
          c.fd = -1;
          continue;
        }
      }
      if (now >= c.deadline) {
        if (!c.writing) {
          respond(c, c.in, RequestStatus::timeout);
          // One non-blocking attempt; a peer that does not read is dropped.
          if (!c.out.empty()) (void)::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        }
        ::close(c.fd);
        c.fd = -1;
      }
    }
    // An empty reply means "close": those were marked writing with nothing to write.
    for (auto& c : conns)
      if (c.fd >= 0 && c.writing && c.out_off >= c.out.size()) {
        ::close(c.fd);
        c.fd = -1;
      }
    std::erase_if(conns, [](const Conn& c) { return c.fd < 0; });
  }
  for (auto& c : conns) ::close(c.fd);
}

// ------------------------------------------------------------------ CtlServer

CtlServer::CtlServer(ControlApi& api, CtlServerConfig cfg)
    : api_(api),
      cfg_(std::move(cfg)),
      server_(
          StreamServerConfig{.max_conns = cfg_.max_conns,
                             .max_request = kMaxRequestBytes + 1,
                             .read_timeout_ms = cfg_.timeout_ms,
                             .write_timeout_ms = cfg_.timeout_ms},
          [](std::string_view buf) {
            size_t nl = buf.find('\n');
            return nl == std::string_view::npos ? nl : nl + 1;
          },
          [this](std::string_view req, RequestStatus st) -> std::string {
            switch (st) {
              case RequestStatus::complete:
                req.remove_suffix(1);  // '\n'
                return handle_ctl_line(api_, req);
              case RequestStatus::too_large:
                return ctl_reply_line(CtlResult::failure(
                    "request too large (the limit is " + std::to_string(kMaxRequestBytes) +
                    " bytes up to the newline)"));
              case RequestStatus::timeout:
                return ctl_reply_line(CtlResult::failure(
                    "timed out waiting for a request line (JSON terminated by a newline)"));
            }
            return {};
          }) {}

CtlServer::~CtlServer() { stop(); }

namespace {

// mkdir -p for the socket's directory.
bool make_parent_dirs(const std::string& path, std::string& error) {
  for (size_t pos = 1; (pos = path.find('/', pos)) != std::string::npos; ++pos) {
    std::string dir = path.substr(0, pos);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      error = "cannot create directory " + dir + ": " + errno_text(errno);
      return false;
    }
  }
  return true;
}

}  // namespace

bool CtlServer::start(std::string& error) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (cfg_.path.empty() || cfg_.path.size() >= sizeof addr.sun_path) {
    error = "control socket path '" + cfg_.path + "' is empty or longer than " +
            std::to_string(sizeof addr.sun_path - 1) + " bytes";
    return false;
  }
  std::memcpy(addr.sun_path, cfg_.path.c_str(), cfg_.path.size() + 1);
  if (!make_parent_dirs(cfg_.path, error)) return false;

  struct stat st{};
  if (::lstat(cfg_.path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      error = cfg_.path + " exists and is not a socket; not removing it";
      return false;
    }
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (probe >= 0) ::close(probe);
    if (live) {
      error = "another process (aiqosd?) is listening on " + cfg_.path;
      return false;
    }
    ::unlink(cfg_.path.c_str());  // stale: left by a daemon that died
  }

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = "socket: " + errno_text(errno);
    return false;
  }
  auto fail = [&](const char* what) {
    error = std::string(what) + " " + cfg_.path + ": " + errno_text(errno);
    ::close(fd);
    if (bound_) ::unlink(cfg_.path.c_str());
    bound_ = false;
    return false;
  };
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return fail("cannot bind");
  bound_ = true;
  // Mode and group before listen(): nobody can connect before they are right.
  if (::chmod(cfg_.path.c_str(), cfg_.mode) != 0) return fail("cannot chmod");
  const gid_t group = cfg_.group == static_cast<gid_t>(-1) ? ::getegid() : cfg_.group;
  if (::chown(cfg_.path.c_str(), cfg_.owner, group) != 0) return fail("cannot chown");
  if (::listen(fd, 64) != 0) return fail("cannot listen on");
  if (!server_.start(fd, error)) {
    ::unlink(cfg_.path.c_str());
    bound_ = false;
    return false;
  }
  return true;
}

void CtlServer::stop() {
  server_.stop();
  if (bound_) {
    ::unlink(cfg_.path.c_str());
    bound_ = false;
  }
}

}  // namespace aiqos
