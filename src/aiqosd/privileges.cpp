#include "aiqosd/privileges.h"

#include <cap-ng.h>
#include <dirent.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace aiqos {
namespace {

bool number(const std::string& s, unsigned long& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  v = std::strtoul(s.c_str(), &end, 10);
  return errno == 0 && *end == '\0';
}

// Other threads: what libcap-ng does for the calling thread, as raw syscalls that are
// async-signal-safe, run by each thread in a signal handler (capabilities, the bounding set
// and no_new_privs are per thread; libcap-ng applies them to the caller only).
std::atomic<int> g_done{0}, g_failed{0};
int g_last_cap = CAP_LAST_CAP;
// With --user, the capability sets are left to the user change: glibc runs setresuid() in every
// thread and the kernel clears their capabilities then; a thread without CAP_SETUID would make
// that fail. Without --user they are cleared here.
bool g_capset = true;

void drop_this_thread(int) {
  int saved = errno;
  bool ok = true;
  // The bounding set needs CAP_SETPCAP to shrink (systemd's CapabilityBoundingSet may have
  // removed it): best effort, as it only matters at execve, which no_new_privs already guards.
  for (int c = 0; c <= g_last_cap; ++c) ::prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ok = false;
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (g_capset && ::syscall(SYS_capset, &hdr, data) != 0) ok = false;
  if (!ok) g_failed.fetch_add(1);
  g_done.fetch_add(1);
  errno = saved;
}

// Every thread but this one drops everything; returns how many were asked.
bool drop_other_threads(bool capset, std::string& err) {
  g_capset = capset;
  const int sig = SIGRTMIN + 7;
  struct sigaction sa{}, old{};
  sa.sa_handler = drop_this_thread;
  sa.sa_flags = SA_RESTART;  // accept(), read() in DPDK's threads carry on
  sigemptyset(&sa.sa_mask);
  if (::sigaction(sig, &sa, &old) != 0) {
    err = std::string("sigaction: ") + std::strerror(errno);
    return false;
  }
  const pid_t pid = ::getpid(), self = static_cast<pid_t>(::syscall(SYS_gettid));
  g_done = 0;
  g_failed = 0;
  int asked = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d)) {
      unsigned long tid;
      if (!number(e->d_name, tid) || static_cast<pid_t>(tid) == self) continue;
      if (::syscall(SYS_tgkill, pid, static_cast<pid_t>(tid), sig) == 0) ++asked;
    }
    ::closedir(d);
  } else {
    err = std::string("/proc/self/task: ") + std::strerror(errno);
    return false;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (g_done.load() < asked && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ::sigaction(sig, &old, nullptr);
  if (g_done.load() < asked) {
    err = std::to_string(asked - g_done.load()) + " of " + std::to_string(asked) +
          " threads did not drop their capabilities within 5 s (signal blocked?)";
    return false;
  }
  if (g_failed.load() != 0) {
    err = std::to_string(g_failed.load()) + " threads could not drop their capabilities";
    return false;
  }
  return true;
}

}  // namespace

bool resolve_run_as(const std::string& spec, RunAs& out, std::string& err) {
  out = RunAs{};
  if (spec.empty()) return true;
  size_t colon = spec.find(':');
  std::string user = spec.substr(0, colon), grp = colon == std::string::npos ? "" : spec.substr(colon + 1);
  unsigned long n;
  if (passwd* pw = ::getpwnam(user.c_str())) {
    out.uid = pw->pw_uid;
    out.gid = pw->pw_gid;
  } else if (number(user, n)) {
    out.uid = static_cast<uid_t>(n);
    passwd* p2 = ::getpwuid(out.uid);
    out.gid = p2 ? p2->pw_gid : static_cast<gid_t>(n);
  } else {
    err = "--user " + spec + ": no user '" + user + "'";
    return false;
  }
  if (!grp.empty()) {
    if (struct group* gr = ::getgrnam(grp.c_str())) {
      out.gid = gr->gr_gid;
    } else if (number(grp, n)) {
      out.gid = static_cast<gid_t>(n);
    } else {
      err = "--user " + spec + ": no group '" + grp + "'";
      return false;
    }
  }
  if (out.uid == 0) {
    err = "--user " + spec + ": that is root; leave --user out to stay root without capabilities";
    return false;
  }
  out.set = true;
  out.spec = spec;
  return true;
}

bool parse_caps(const std::vector<std::string>& names, std::vector<unsigned>& caps, bool& all, std::string& err) {
  all = false;
  for (const auto& list : names) {
    size_t b = 0;
    while (b <= list.size()) {
      size_t e = list.find(',', b);
      if (e == std::string::npos) e = list.size();
      std::string n = list.substr(b, e - b);
      b = e + 1;
      if (n.empty()) continue;
      for (auto& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (n == "all") {
        all = true;
        continue;
      }
      if (n.rfind("cap_", 0) == 0) n = n.substr(4);
      int c = capng_name_to_capability(n.c_str());
      if (c < 0) {
        err = "--keep-caps: unknown capability '" + n + "' (e.g. net_admin, net_raw, ipc_lock, or all)";
        return false;
      }
      caps.push_back(static_cast<unsigned>(c));
    }
  }
  return true;
}

bool drop_privileges(const RunAs& user, const std::vector<unsigned>& keep, bool keep_all, std::string& summary,
                     std::string& err) {
  capng_get_caps_process();
  const bool privileged = capng_have_permitted_capabilities() != CAPNG_NONE;
  // Shrinking the bounding set needs CAP_SETPCAP, which a systemd CapabilityBoundingSet may lack.
  const bool setpcap = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
  if (keep_all && !user.set) {
    summary = "capabilities kept (--keep-caps all)";
    return true;
  }
  if (!privileged && !user.set) {
    // Nothing to give up (an unprivileged offline run); no_new_privs all the same.
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
      err = std::string("no_new_privs: ") + std::strerror(errno);
      return false;
    }
    summary = "no capabilities to drop (not privileged); no_new_privs set";
    return true;
  }
  if (int lc = capng_name_to_capability("checkpoint_restore"); lc > g_last_cap) g_last_cap = lc;
  if (!keep_all && !drop_other_threads(!user.set, err)) return false;
  if (keep_all) {
    capng_fill(CAPNG_SELECT_BOTH);
  } else {
    capng_clear(CAPNG_SELECT_BOTH);
    for (unsigned c : keep)
      if (capng_update(CAPNG_ADD, static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET),
                       c) != 0) {
        err = std::string("cannot keep ") + (capng_capability_to_name(c) ? capng_capability_to_name(c) : "?");
        return false;
      }
  }
  int rc = user.set ? capng_change_id(static_cast<int>(user.uid), static_cast<int>(user.gid),
                                      static_cast<capng_flags_t>(setpcap ? CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING
                                                                         : CAPNG_DROP_SUPP_GRP))
                    : capng_apply(setpcap ? CAPNG_SELECT_BOTH : CAPNG_SELECT_CAPS);
  if (rc != 0) {
    err = std::string(user.set ? "capng_change_id" : "capng_apply") + " failed (" + std::to_string(rc) + ")";
    return false;
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    err = std::string("no_new_privs: ") + std::strerror(errno);
    return false;
  }
  summary = keep.empty() || keep_all ? (keep_all ? std::string("all capabilities kept") : std::string("no capabilities"))
                                     : std::string("capabilities ");
  if (!keep.empty() && !keep_all)
    for (size_t i = 0; i < keep.size(); ++i)
      summary += (i ? "," : "") + std::string(capng_capability_to_name(keep[i]) ? capng_capability_to_name(keep[i]) : "?");
  if (!keep.empty() && !keep_all) summary += " kept in the main thread only";
  if (user.set) summary += ", running as " + user.spec + " (uid " + std::to_string(user.uid) + ", gid " +
                           std::to_string(user.gid) + ")";
  summary += ", no_new_privs set";
  return true;
}

}  // namespace aiqos
