// Dropping privileges after start (docs/deployment.md, "Privileges").
//
// DPDK needs root's powers to start (hugepages, /dev/vfio or uio, raw or AF_XDP sockets, BPF,
// /proc/self/pagemap); once the ports are up, the sockets bound and the memory mapped, a
// running aiqosd needs none of them. drop_privileges() then, in every thread of the process
// (EAL lcores, interrupt, telemetry and control threads included), drops the capability
// bounding set, the effective, permitted and inheritable sets (keeping only `keep` in the main
// thread) and sets no_new_privs; with --user it also changes to that user and group and drops
// supplementary groups (glibc applies setresuid/setresgid to every thread).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace aiqos {

struct RunAs {
  bool set = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string spec;  // USER[:GROUP] as given
};

// Resolves --user USER[:GROUP] (names or numbers; the group defaults to the user's).
bool resolve_run_as(const std::string& spec, RunAs& out, std::string& err);

// Capability names as --keep-caps takes them ("net_admin" or "cap_net_admin"); "all" keeps
// every capability (no drop). False with the unknown name in `err`.
bool parse_caps(const std::vector<std::string>& names, std::vector<unsigned>& caps, bool& all, std::string& err);

// Drops as described above. `summary` says what the process is left with, for the log.
bool drop_privileges(const RunAs& user, const std::vector<unsigned>& keep, bool keep_all, std::string& summary,
                     std::string& err);

}  // namespace aiqos
